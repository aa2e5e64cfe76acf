"""Wall-clock time of a whole training run (default: 100k frames, small SimbaV2, cartpole).

Prints one JSON line: wall seconds, frames per second and the final evaluation return.

    python benchmarks/end_to_end.py [--env dmc:cartpole-swingup] [--env-steps 100000] [--seeds 1]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

from scalerl.config import TrainConfig, agent_preset, replace
from scalerl.train.loop import train_seeds


def final_return(run_dir: Path) -> float:
    """The last eval/return of a run."""
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["metric"] == "eval/return"]
    return float(rows[-1]["value"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dmc:cartpole-swingup")
    parser.add_argument("--env-steps", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--utd", type=float, default=None, help="default: the action repeat")
    args = parser.parse_args()
    agent = replace(agent_preset("simbav2"), critic_width=128, actor_width=64)
    with tempfile.TemporaryDirectory() as root:
        cfg = TrainConfig(
            env=args.env,
            env_steps=args.env_steps,
            num_seeds=args.seeds,
            utd=args.utd,
            eval_every=25_000,
            progress=False,
            tensorboard=False,
            run_root=Path(root),
            name="e2e",
            agent=agent,
        )
        start = time.perf_counter()
        runs = train_seeds(cfg)
        wall = time.perf_counter() - start
        returns = [final_return(r) for r in runs]
    print(
        json.dumps(
            {
                "env": args.env,
                "env_steps": args.env_steps,
                "seeds": args.seeds,
                "utd": args.utd or "auto",
                "wall_s": round(wall, 1),
                "frames_per_s": round(args.env_steps * args.seeds / wall, 1),
                "final_returns": [round(r, 1) for r in returns],
                "loadavg": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
