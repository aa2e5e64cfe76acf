"""Environment steps per second per suite, through scalerl's full wrapper stack.

Prints one JSON line per environment: agent steps/s and environment frames/s with random actions
(resets included), measured on one core in the calling process.

    python benchmarks/env_speed.py [--envs dmc:cartpole-swingup Hopper-v5 ...] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from scalerl.envs import make_env, suite_preset

DEFAULT_ENVS = (
    "dmc:cartpole-swingup",
    "dmc:walker-walk",
    "dmc:cheetah-run",
    "dmc:humanoid-run",
    "dmc:dog-run",
    "Hopper-v5",
    "HalfCheetah-v5",
    "Humanoid-v5",
)


def measure(env_id: str, seconds: float) -> dict[str, object]:
    """Step `env_id` with uniform random actions for about `seconds`; return the rates."""
    env = make_env(env_id, seed=0)
    rng = np.random.default_rng(0)
    env.reset()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        action = rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32)
        _, _, terminated, truncated, _ = env.step(action)
        steps += 1
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    repeat = suite_preset(env_id).action_repeat
    env.close()
    return {
        "env": env_id,
        "agent_steps_per_s": round(steps / elapsed, 1),
        "env_frames_per_s": round(steps * repeat / elapsed, 1),
        "action_repeat": repeat,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS))
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    for env_id in args.envs:
        print(json.dumps(measure(env_id, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
