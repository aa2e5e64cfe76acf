"""Atari steps per second: scalerl's preprocessed ALE env and ale-py's C++ AtariVectorEnv.

Prints one JSON line per setting: agent steps/s and emulator frames/s with random actions
(resets included). `single` is `make_ale_env` (numpy preprocessing, one env in this process);
`vector-N` is `make_ale_vector_env` with N environments on ale-py's threads.

    python benchmarks/ale_speed.py [--game ale:Pong] [--seconds 5] [--num-envs 1 8]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from scalerl.envs.ale import AtariOptions, make_ale_env, make_ale_vector_env


def single(game: str, seconds: float) -> dict[str, float]:
    """Random-action steps of one preprocessed env for `seconds`."""
    env = make_ale_env(game, 0, AtariOptions())
    env.reset()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            env.reset()
    return {"steps_per_s": steps / (time.perf_counter() - start)}


def vector(game: str, num_envs: int, seconds: float) -> dict[str, float]:
    """Random-action steps of ale-py's vector env (all envs step together)."""
    env = make_ale_vector_env(game, num_envs, AtariOptions())
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    n = int(env.single_action_space.n)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(rng.integers(0, n, num_envs))
        steps += num_envs
    env.close()
    return {"steps_per_s": steps / (time.perf_counter() - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="ale:Pong")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--num-envs", type=int, nargs="*", default=[1, 8])
    args = parser.parse_args()
    frame_skip = AtariOptions().frame_skip
    rows = [("single", single(args.game, args.seconds))]
    rows += [(f"vector-{n}", vector(args.game, n, args.seconds)) for n in args.num_envs]
    for name, row in rows:
        frames = row["steps_per_s"] * frame_skip
        print(json.dumps({"game": args.game, "setting": name, **row, "frames_per_s": frames}))


if __name__ == "__main__":
    main()
