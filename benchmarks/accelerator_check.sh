#!/usr/bin/env bash
# Accelerator check: install JAX's CUDA build, list the devices, measure the learner's update
# throughput for every benchmark config (1 and 8 vmapped seeds, fp32 and bf16) and run a
# 5-minute training run; one JSON line per figure, to stdout and to --out.
#
#   bash benchmarks/accelerator_check.sh                 # on a GPU machine (installs jax[cuda12])
#   bash benchmarks/accelerator_check.sh --no-install    # keep the installed JAX
#   bash benchmarks/accelerator_check.sh --tiny          # CPU smoke test (what the CI runs)
#
# Options: --tiny (small sizes, implies --no-install), --no-install, --out FILE (default
# accelerator_check.jsonl), --minutes M (training run length, default 5). PYTHON selects the
# interpreter (default: python). Without an NVIDIA GPU the install is skipped and everything runs
# on the CPU, with a note. See docs/performance.md, "Accelerators".
set -euo pipefail

PY=${PYTHON:-python}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TINY=0 INSTALL=1 OUT=accelerator_check.jsonl MINUTES=5
while [[ $# -gt 0 ]]; do
  case $1 in
    --tiny) TINY=1 INSTALL=0 ;;
    --no-install) INSTALL=0 ;;
    --out) OUT=$2; shift ;;
    --minutes) MINUTES=$2; shift ;;
    *) echo "accelerator_check.sh: unknown option $1 (see the header of this script)" >&2; exit 2 ;;
  esac
  shift
done
: > "$OUT"

emit() {  # add "figure": $1 to each JSON line on stdin; print it and append it to $OUT
  "$PY" -c 'import json, sys
for line in sys.stdin:
    if line.strip():
        print(json.dumps({"figure": sys.argv[1], **json.loads(line)}), flush=True)' "$1" \
    | tee -a "$OUT"
}

# 1. JAX's CUDA build (the `cuda` extra: jax[cuda12] at the installed JAX version)
if [[ $INSTALL == 1 ]]; then
  if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
    JAXV=$("$PY" -c 'import jax; print(jax.__version__)')
    echo "installing jax[cuda12]==$JAXV (the cuda extra)" >&2
    "$PY" -m pip install --quiet "jax[cuda12]==$JAXV"
  else
    echo "note: no NVIDIA GPU found (nvidia-smi): skipping the CUDA install" >&2
  fi
fi

# 2. Devices
"$PY" -c 'import json, jax
devices = jax.devices()
print(json.dumps({"backend": jax.default_backend(), "jax_version": jax.__version__,
                  "devices": [str(d) for d in devices],
                  "device_kind": devices[0].device_kind}))' | emit devices
if [[ $("$PY" -c 'import jax; print(jax.default_backend())') == cpu ]]; then
  echo "note: no GPU visible to JAX: every figure below is a CPU figure"
fi

# 3. Update throughput: every config x (1, 8 seeds) x (fp32, bf16)
if [[ $TINY == 1 ]]; then
  CONFIGS=(simbav2-small)
  SIZES=(--batch-size 8 --capacity 256 --fill 64 --warmup-calls 1 --calls 2 --flops analytic)
else
  CONFIGS=(simbav2-default simbav2-small mlp simba-default)
  SIZES=(--min-seconds 10)
fi
for seeds in 1 8; do
  for precision in fp32 bf16; do
    "$PY" "$HERE/update_throughput.py" --configs "${CONFIGS[@]}" --seeds "$seeds" \
      --precision "$precision" "${SIZES[@]}" | emit update_throughput
  done
done

# 4. Training run: the default SimbaV2 on walker-walk for MINUTES minutes (interrupted with
#    SIGINT, which keeps the run directory), or a few hundred steps of a tiny MLP
RUNS=$(mktemp -d)
if [[ $TINY == 1 ]]; then
  ENV=Pendulum-v1 AGENT=mlp LIMIT=0
  TRAIN=(--env-steps 300 --warmup-steps 100 --eval-every 150 --eval-episodes 1 --log-every 50
         --critic-width 16 --actor-width 16 --batch-size 8)
else
  ENV=dmc:walker-walk AGENT=simbav2 LIMIT=$((MINUTES * 60))
  TRAIN=(--env-steps 1000000 --eval-every 10000)
fi
START=$(date +%s)
set +e
if [[ $LIMIT -gt 0 ]]; then
  timeout --signal=INT "$LIMIT" "$PY" -m scalerl.cli train --env "$ENV" --agent "$AGENT" \
    "${TRAIN[@]}" --run-root "$RUNS" --name check --no-progress --no-tensorboard > /dev/null
else
  "$PY" -m scalerl.cli train --env "$ENV" --agent "$AGENT" "${TRAIN[@]}" \
    --run-root "$RUNS" --name check --no-progress --no-tensorboard > /dev/null
fi
CODE=$?
set -e
if [[ $CODE != 0 && $CODE != 124 && $CODE != 130 ]]; then
  echo "accelerator_check.sh: the training run failed (exit $CODE)" >&2
  exit 1
fi
SECONDS_RUN=$(( $(date +%s) - START ))
"$PY" -c 'import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/check/metrics.csv")))
last = lambda key: [float(r["value"]) for r in rows if r["metric"] == key][-1:] or [None]
evals = [[int(r["env_step"]), float(r["value"])] for r in rows if r["metric"] == "eval/return"]
print(json.dumps({"env": sys.argv[2], "agent": sys.argv[3], "seconds": int(sys.argv[4]),
                  "env_steps": max(int(r["env_step"]) for r in rows),
                  "updates_per_s": last("perf/updates_per_s")[0],
                  "final_eval_return": evals[-1][1] if evals else None,
                  "eval_returns": evals}))' "$RUNS" "$ENV" "$AGENT" "$SECONDS_RUN" \
  | emit training_run
rm -rf "$RUNS"
