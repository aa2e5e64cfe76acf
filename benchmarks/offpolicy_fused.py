"""Agent steps per second of SAC on a JAX-native id (fused loop) against the host loop.

The same `scalerl train` run twice: on a JAX-native id, where the environments step inside the
jitted program (`scalerl.train.ac_fused`), and on its Gymnasium counterpart, where Python steps
them and calls one jitted step per vector step (`scalerl.train.loop`): `gymnax:Pendulum-v1` vs
`Pendulum-v1`, and Brax's `brax:inverted_pendulum-positional` vs MuJoCo's `InvertedPendulum-v5`.
The rate is the median of the runs' `perf/env_steps_per_s` after the warm-up (compilation
excluded), in agent steps (transitions) per second. Prints one JSON line per (task, agent,
num_envs) with the ratio fused / host.

    python benchmarks/offpolicy_fused.py                      # mlp and small SimbaV2, N = 1 and 128
    python benchmarks/offpolicy_fused.py --agents mlp --num-envs 1 --updates 2000
    python benchmarks/offpolicy_fused.py --tasks inverted_pendulum --agents mlp
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
from pathlib import Path

from scalerl.config import TrainConfig, agent_preset, replace
from scalerl.train.logging import read_metrics_csv
from scalerl.train.loop import train_seeds

AGENTS = {
    "mlp": lambda: agent_preset("mlp"),
    "simbav2-small": lambda: replace(agent_preset("simbav2"), critic_width=128, actor_width=64),
}

TASKS = {
    "pendulum": ("gymnax:Pendulum-v1", "Pendulum-v1"),
    "inverted_pendulum": ("brax:inverted_pendulum-positional", "InvertedPendulum-v5"),
}
"""Task -> (fused JAX-native id, host-loop Gymnasium id)."""


def rate(run_dir: Path, warmup: int) -> float:
    """Median agent steps/s over the log points after the warm-up."""
    rows = read_metrics_csv(run_dir / "metrics.csv")
    values = [r["value"] for r in rows
              if r["metric"] == "perf/env_steps_per_s" and r["env_step"] > warmup + 1]  # fmt: skip
    return statistics.median(values)


def measure(env: str, agent: str, num_envs: int, updates: int, root: Path) -> float:
    """Steady agent steps/s of a run with `updates` gradient updates after the warm-up, at two
    updates per vector step (utd = 2 / num_envs: SimbaV2's UTD 2 with one environment, FastTD3's
    2 updates per step of all environments with 128)."""
    utd = 2 / num_envs
    warmup = 8 * num_envs
    steps = warmup + updates * num_envs // 2
    cfg = TrainConfig(env=env, agent=replace(AGENTS[agent](), batch_size=256), env_steps=steps,
                      num_envs=num_envs, utd=utd, warmup_steps=warmup, eval_every=steps,
                      eval_episodes=1, log_every=max(num_envs, steps // 10), health_every=0,
                      progress=False, tensorboard=False, run_root=root,
                      name=f"{agent}-{num_envs}-{env.replace(':', '-')}")  # fmt: skip
    (run,) = train_seeds(cfg)
    return rate(run, warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["pendulum"], choices=list(TASKS))
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=list(AGENTS))
    parser.add_argument("--num-envs", nargs="+", type=int, default=[1, 128])
    parser.add_argument("--updates", type=int, default=2000, help="timed updates per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for task, agent, n in itertools.product(args.tasks, args.agents, args.num_envs):
            fused_id, host_id = TASKS[task]
            fused = measure(fused_id, agent, n, args.updates, Path(tmp))
            host = measure(host_id, agent, n, args.updates, Path(tmp))
            line = {"task": task, "agent": agent, "num_envs": n, "updates_per_vector_step": 2,
                    "fused_steps_per_s": round(fused, 1), "host_steps_per_s": round(host, 1),
                    "ratio": round(fused / host, 2)}  # fmt: skip
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
