"""Aggregate throughput of a multi-seed study on this machine's cores, laid out three ways.

The same study (one network, `--seeds` seeds) is run as

- `process_per_seed`: one process per seed, all at once, XLA's default threading;
- `pinned_single`: one single-threaded process pinned to each core, one seed each (the best
  known practice for the official SimbaV2 code; a sweep of such processes runs its seeds one at
  a time per core);
- `packed`: scalerl's default sweep plan (`scalerl.sweep.plan_packing` for one cell): its
  workers x threads, each process training a vmapped pack of seeds.

Every process builds the real fused train step (`scalerl.train.step.make_train_step`, as in
update_throughput.py: store a transition, sample, `utd` SAC updates, act, fetch action and
metrics), compiles and warms it up, then all processes of a layout start together on one signal
and run for `--seconds`; the figure is the sum over processes of seeds x updates / seconds
(seed·updates/s), compilation excluded. The environment is left out (a learner-bound study).

One JSON line per network config:

    python benchmarks/sweep_throughput.py                     # simbav2-small and mlp, 8 seeds
    python benchmarks/sweep_throughput.py --configs simbav2-small --seconds 60
    python benchmarks/sweep_throughput.py --tiny              # smoke test, a few seconds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from machine import busy_cpu_seconds, cpu_model

from scalerl.sweep.packing import available_cores, core_slots, plan_packing, setup_worker

HERE = Path(__file__).resolve().parent
TINY = {"batch_size": 16, "capacity": 1000, "fill": 100, "warmup_calls": 1, "seconds": 2.0}
"""Sizes of `--tiny` (with 16-wide networks): a smoke test, not a measurement."""


# ----------------------------------------------------------------------------- one worker


def worker(args: argparse.Namespace) -> None:
    """Body of one benchmark process: pin, build, compile, say ready, wait, run, report."""
    cores = tuple(int(c) for c in args.cores.split(",")) if args.cores else None
    if args.threads:  # 0: XLA's default threading, not pinned
        setup_worker(cores, args.threads)
    sys.path.insert(0, str(HERE))
    import numpy as np
    import update_throughput as ut

    spec = ut.CONFIGS[args.config]
    if args.tiny:
        spec = ut.BenchConfig(spec.name, spec.agent, 16, 1, 16, 1, spec.use_cdq)
    ns = argparse.Namespace(**vars(args) | {"precision": "fp32", "calls": None})
    rng = np.random.default_rng(args.seed_offset)
    sac = ut.build_agent(spec, ns)
    step, state, buffer = ut.setup(sac, ns, rng)

    def run(s: Any, b: Any) -> tuple[Any, Any]:
        return ut.call_step(step, s, b, rng, (args.seeds,), (sac.obs_dim, sac.action_dim))

    for _ in range(1 + args.warmup_calls):  # the first call compiles
        state, buffer = run(state, buffer)
    print("ready", flush=True)
    sys.stdin.readline()
    calls, seconds = ut.timed_calls(run, state, buffer, args.seconds, None)
    updates = calls * args.utd * args.seeds
    print(json.dumps({"seed_updates": updates, "seconds": seconds}), flush=True)


# ----------------------------------------------------------------------------- one layout


def launch(
    args: argparse.Namespace, config: str, seeds: int, threads: int | None, cores: tuple | None
) -> subprocess.Popen:
    """Start one worker process of a layout (it prints 'ready' once compiled)."""
    opts = [
        "--worker", "--configs", config, "--seeds", str(seeds), "--seconds", str(args.seconds),
        "--threads", str(threads or 0), "--cores", ",".join(map(str, cores or ())),
        "--batch-size", str(args.batch_size), "--capacity", str(args.capacity),
        "--fill", str(args.fill), "--warmup-calls", str(args.warmup_calls),
        "--utd", str(args.utd), "--obs-dim", str(args.obs_dim),
        "--action-dim", str(args.action_dim),
    ] + (["--tiny"] if args.tiny else [])  # fmt: skip
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *opts],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def run_layout(args: argparse.Namespace, config: str, procs: list[tuple]) -> dict[str, Any]:
    """Run processes (seeds, threads, cores) together; their aggregate seed·updates/s."""
    workers = [launch(args, config, *p) for p in procs]
    try:
        for w in workers:
            if w.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a {config} worker failed before it was ready")
        before = busy_cpu_seconds()
        for w in workers:
            w.stdin.write("go\n")
            w.stdin.flush()
        results = [json.loads(w.stdout.readline()) for w in workers]
        after = busy_cpu_seconds()
    finally:
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
    seconds = max(r["seconds"] for r in results)
    rate = sum(r["seed_updates"] / r["seconds"] for r in results)
    busy = (after[0] - before[0]) / seconds if math.isfinite(after[0]) else math.nan
    return {
        "processes": len(procs),
        "seeds_per_process": sorted({p[0] for p in procs}),
        "threads": procs[0][1] or "default",
        "pinned": procs[0][2] is not None,
        "seed_updates_per_s": round(rate, 2),
        "busy_cores": round(busy, 2),
    }


def layouts(seeds: int, cores: list[int]) -> dict[str, list[tuple]]:
    """The three layouts as lists of processes (seeds, threads, cores)."""
    single = core_slots(cores, len(cores), 1)
    plan = plan_packing(1, seeds, len(cores))
    sizes = [
        min(plan.seeds_per_process, seeds - i) for i in range(0, seeds, plan.seeds_per_process)
    ]
    slots = core_slots(cores, plan.workers, plan.threads)
    packed = [(k, plan.threads, slot) for k, slot in zip(sizes, slots, strict=False)]
    return {
        "process_per_seed": [(1, None, None)] * seeds,
        "pinned_single": [(1, 1, slot) for slot in single[:seeds]],
        "packed": packed,
    }


def measure(args: argparse.Namespace, config: str) -> dict[str, Any]:
    """One JSON record: the three layouts of `config` and the ratio."""
    cores = available_cores()
    load = [round(x, 2) for x in os.getloadavg()]
    out = {
        name: run_layout(args, config, procs) for name, procs in layouts(args.seeds, cores).items()
    }
    best_other = max(out["process_per_seed"]["seed_updates_per_s"],
                     out["pinned_single"]["seed_updates_per_s"])  # fmt: skip
    return {
        "config": config + ("-tiny" if args.tiny else ""),
        "seeds": args.seeds,
        "cores": len(cores),
        "seconds": args.seconds,
        **out,
        "ratio": round(out["packed"]["seed_updates_per_s"] / best_other, 3),
        "cpu": cpu_model(),
        "loadavg_before": load,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", nargs="+", default=["simbav2-small", "mlp"])
    p.add_argument("--seeds", type=int, default=8, help="seeds of the study")
    p.add_argument("--seconds", type=float, default=30.0, help="timed window per layout")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--utd", type=int, default=2, help="updates per train-step call")
    p.add_argument("--capacity", type=int, default=100_000)
    p.add_argument("--fill", type=int, default=10_000)
    p.add_argument("--warmup-calls", type=int, default=5)
    p.add_argument("--obs-dim", type=int, default=24)
    p.add_argument("--action-dim", type=int, default=6)
    p.add_argument("--tiny", action="store_true", help="16-wide networks, tiny sizes (smoke)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--cores", default="", help=argparse.SUPPRESS)
    p.add_argument("--seed-offset", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tiny and not args.worker:
        for key, value in TINY.items():
            setattr(args, key, min(getattr(args, key), value))
        args.seeds = min(args.seeds, 2 * len(available_cores()))
    return args


def main() -> None:
    args = parse()
    if args.worker:
        args.config = args.configs[0]
        worker(args)
        return
    for config in args.configs:
        print(json.dumps(measure(args, config)), flush=True)


if __name__ == "__main__":
    main()
