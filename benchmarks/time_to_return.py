"""Wall-clock time for training runs to reach an evaluation return, and their final return.

Reads each run directory's metrics.csv (`eval/return` and `perf/wall_time_s`, logged together at
every evaluation) and prints one JSON line per run: the first evaluation at or above
`--target` (environment frames and wall-clock seconds since the run started, or null if never
reached), the final evaluation return and the run's total wall-clock seconds.

    python benchmarks/time_to_return.py runs/default-* runs/parallel-* --target 800
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scalerl.train.logging import read_metrics_csv


def summarise(run_dir: Path, target: float) -> dict[str, object]:
    """The time-to-target and final return of one run."""
    rows = read_metrics_csv(run_dir / "metrics.csv")
    returns = {r["env_step"]: r["value"] for r in rows if r["metric"] == "eval/return"}
    walls = {r["env_step"]: r["value"] for r in rows if r["metric"] == "perf/wall_time_s"}
    steps = sorted(returns)
    hit = next((s for s in steps if returns[s] >= target), None)
    return {
        "run": run_dir.name,
        "target": target,
        "frames_to_target": hit,
        "seconds_to_target": None if hit is None else walls.get(hit),
        "final_return": returns[steps[-1]] if steps else None,
        "final_frames": steps[-1] if steps else None,
        "total_seconds": walls[max(walls)] if walls else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--target", type=float, required=True)
    args = parser.parse_args()
    for run_dir in args.runs:
        print(json.dumps(summarise(run_dir, args.target)), flush=True)


if __name__ == "__main__":
    main()
