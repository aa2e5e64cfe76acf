"""Agent steps per second of N environments stepped together: synchronous vs worker processes.

Steps `make_vector_env(env, 0, N)` with uniform random actions, once synchronously (one after
another in this process, `SyncVectorEnv`) and once in spawned worker processes
(`AsyncVectorEnv`, `--async-envs`), and prints one JSON line per (env, N, mode): agent steps
(transitions) per second over all N environments, resets included.

    python benchmarks/vector_env_speed.py [--envs dmc:cartpole-swingup] [--num-envs 4 16]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from scalerl.envs import make_vector_env


def measure(env_id: str, num_envs: int, asynchronous: bool, seconds: float) -> dict[str, object]:
    """Step the vector env for about `seconds` (after one warm-up step); return the rate."""
    env = make_vector_env(env_id, 0, num_envs, asynchronous=asynchronous)
    rng = np.random.default_rng(0)
    shape = env.action_space.shape
    env.reset()
    env.step(rng.uniform(-1.0, 1.0, shape).astype(np.float32))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(rng.uniform(-1.0, 1.0, shape).astype(np.float32))
        steps += 1
    elapsed = time.perf_counter() - start
    env.close()
    return {
        "env": env_id,
        "num_envs": num_envs,
        "mode": "async" if asynchronous else "sync",
        "agent_steps_per_s": round(steps * num_envs / elapsed, 1),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["dmc:cartpole-swingup", "dmc:walker-walk"])
    parser.add_argument("--num-envs", nargs="+", type=int, default=[4, 16])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    for env_id in args.envs:
        for n in args.num_envs:
            for asynchronous in (False, True):
                print(json.dumps(measure(env_id, n, asynchronous, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
