"""Sweeps: a grid of training runs on local worker processes or a Ray cluster (docs/sweeps.md).

`SweepSpec` (grid.py) describes the grid, `expand` lists its runs, `pack` (packing.py) groups the
seeds of each cell into jobs, `run_sweep` (runner.py) runs the jobs (jobs.py) with the local or the
Ray backend (ray_backend.py) under the sweep directory's lock (lock.py); `main_sweep` is
`scalerl sweep`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from scalerl.errors import ScalerlError
from scalerl.sweep.grid import RunSpec, SweepSpec, expand, load_grid, parse_pairs
from scalerl.sweep.jobs import Trainer
from scalerl.sweep.packing import Job, Plan, pack, plan_packing
from scalerl.sweep.runner import (
    DONE_NAME,
    LOG_DIR,
    REPORT_NAME,
    LocalBackend,
    RunStatus,
    run_sweep,
)

__all__ = [
    "DONE_NAME",
    "Job",
    "LocalBackend",
    "Plan",
    "RunSpec",
    "RunStatus",
    "SweepArgs",
    "SweepSpec",
    "Trainer",
    "expand",
    "main_sweep",
    "pack",
    "plan_packing",
    "run_from_args",
    "run_sweep",
    "spec_from_args",
]


@dataclass(frozen=True)
class SweepArgs:
    """Run a grid of training runs, skipping completed ones (scalerl sweep; docs/sweeps.md)."""

    grid: Path | None = None
    """YAML grid file; the options below replace (envs, seeds, agents) or extend its entries."""
    envs: tuple[str, ...] | None = None
    """Env ids or task lists: dmc-easy, dmc-hard, mujoco, myosuite, hbench, hbench-hard
    (None: the grid file's)."""
    seeds: str | None = None
    """Seeds, e.g. 0-4 or 0,3,5 (None: the grid file's, else 0)."""
    agents: tuple[str, ...] | None = None
    """Agent presets (None: the grid file's, else simbav2)."""
    algo: str | None = None
    """Algorithm with its own loop: ppo (None: the grid file's, else the off-policy algorithms
    of scalerl train; sweep those with --set algo=sac,td3)."""
    set: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """Swept field, repeatable: --set critic_width=128,256 --set utd=1,2 (values go in names)."""
    base: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """Field fixed for every run, repeatable: --base env_steps=200000 (not in names)."""
    name: str | None = None
    """Sweep name (None: the grid file's, else 'sweep')."""
    out: Path | None = None
    """Sweep directory (None: <out_dir>/<name>, runs/sweep by default); launching again with
    the same directory resumes the sweep."""
    backend: Literal["local", "ray"] = "local"
    """local: worker processes on this machine; ray: tasks on a Ray cluster."""
    address: str | None = None
    """Ray: cluster address ('auto' = the running cluster); None starts a local Ray instance."""
    seeds_per_process: int | None = None
    """Seeds of one env/configuration trained together, vmapped, in one process (None: all of
    them, or fewer so that every worker gets a job; docs/sweeps.md)."""
    workers: int | None = None
    """Local: concurrent worker processes (None: one per core, at most one per job)."""
    threads_per_worker: int | None = None
    """Cores (XLA threads) per worker (None: 1, more when there are fewer jobs than cores)."""
    pin: bool = True
    """Local: pin each worker to its own cores (Linux); --no-pin leaves placement to the OS."""
    retries: int = 1
    """Extra attempts of a failed job before its runs are reported failed (a retry resumes)."""
    cpus_per_run: float = 1.0
    """Ray: CPUs reserved per job (one process training a pack of seeds)."""
    gpus_per_run: float = 0.0
    """Ray: GPUs reserved per job (fractions share a GPU)."""
    copy_back: bool = False
    """Ray: send each finished run directory back to this machine (no shared filesystem)."""


def spec_from_args(args: SweepArgs) -> SweepSpec:
    """The grid of `scalerl sweep` options on top of the grid file's."""
    data = load_grid(args.grid) if args.grid else {}
    given = {"envs": args.envs, "seeds": args.seeds, "agents": args.agents, "name": args.name}
    given["algo"] = args.algo
    data |= {k: v for k, v in given.items() if v is not None}
    data["overrides"] = parse_pairs(data.get("overrides")) | parse_pairs(args.set)
    data["base"] = parse_pairs(data.get("base")) | parse_pairs(args.base)
    if args.out is not None:
        data["name"], data["out_dir"] = args.out.name, args.out.parent
    return SweepSpec.from_options(**data)


def run_from_args(args: SweepArgs) -> list[RunStatus]:
    """Run the sweep of parsed options; ScalerlError if a run failed (after the report)."""
    spec = spec_from_args(args)
    ray_options = {
        "address": args.address,
        "cpus_per_run": args.cpus_per_run,
        "gpus_per_run": args.gpus_per_run,
        "copy_back": args.copy_back,
    }
    options = ray_options if args.backend == "ray" else {"pin": args.pin}
    packing = {"threads": args.threads_per_worker, "seeds_per_process": args.seeds_per_process}
    if args.backend == "ray" and args.workers is not None:
        raise ScalerlError("--workers is for --backend local; Ray runs as many jobs as fit")
    statuses = run_sweep(spec, args.backend, args.retries, args.workers, **packing, **options)
    failed = [s.name for s in statuses if s.status == "failed"]
    if failed:
        raise ScalerlError(
            f"{len(failed)} of {len(statuses)} runs failed (see {spec.sweep_dir / REPORT_NAME} "
            f"and {spec.sweep_dir / LOG_DIR}); launch again to retry them"
        )
    return statuses


def main_sweep(argv: list[str]) -> None:
    """`scalerl sweep [options]`: parse with tyro and run (wire as a cli.py handler)."""
    args = tyro.cli(SweepArgs, args=argv, prog="scalerl sweep")
    run_from_args(args)
