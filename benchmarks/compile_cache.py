"""Start-up time with and without JAX's persistent compilation cache (docs/performance.md).

Runs the same short `scalerl train` three times in fresh processes: with the cache off, with
an empty cache (which fills it) and again with the filled cache (same shapes). Prints one JSON
line: the wall seconds of each run, the seconds the filled cache saved and the cache's size.

    python benchmarks/compile_cache.py [--agent simbav2] [--env dmc:cartpole-swingup]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(args: argparse.Namespace, root: Path, name: str, env: dict[str, str]) -> float:
    """Wall seconds of one short training run in a fresh process."""
    cmd = [
        sys.executable, "-m", "scalerl.cli", "train", "--env", args.env, "--agent", args.agent,
        "--env-steps", str(args.env_steps), "--warmup-steps", str(args.warmup_steps),
        "--eval-every", str(args.env_steps), "--eval-episodes", "1", "--no-tensorboard",
        "--no-progress", "--health-every", "0", "--run-root", str(root), "--name", name,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dmc:cartpole-swingup")
    parser.add_argument("--agent", default="simbav2")
    parser.add_argument("--env-steps", type=int, default=2_000)
    parser.add_argument("--warmup-steps", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "runs", Path(tmp) / "cache"
        base = os.environ | {"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
        base.pop("JAX_COMPILATION_CACHE_DIR", None)
        off = run_once(args, root, "off", base | {"SCALERL_COMPILATION_CACHE": "off"})
        cold = run_once(args, root, "cold", base | {"SCALERL_COMPILATION_CACHE": str(cache)})
        warm = run_once(args, root, "warm", base | {"SCALERL_COMPILATION_CACHE": str(cache)})
        size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    print(json.dumps({
        "agent": args.agent, "env": args.env, "env_steps": args.env_steps,
        "cache_off_s": round(off, 1), "cold_cache_s": round(cold, 1),
        "warm_cache_s": round(warm, 1), "saved_s": round(cold - warm, 1),
        "cache_mb": round(size / 2**20, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
