"""Ray backend: one Ray task per packed job, with Ray's scheduling and retries (scalerl[ray]).

Each job (the seeds of one cell, see packing.py) is a task reserving `cpus_per_run` CPUs (and
`gpus_per_run` GPUs), submitted with `max_retries=retries, retry_exceptions=True`: Ray re-runs
it after an exception or a lost worker or node, and the retry resumes what the failed attempt
left (jobs.py). Single-threaded jobs get the single-thread XLA flags through the task's runtime
environment (Ray does not pin tasks to cores). Run directories are written on the node running
the task, under the same path as on the driver, so the sweep directory should be on a filesystem
every node shares; otherwise pass `copy_back=True` and each completed run directory is sent back
to the driver as an archive.
"""

from __future__ import annotations

import io
import os
import tarfile
import uuid
from pathlib import Path
from typing import Any

from scalerl.errors import ScalerlError
from scalerl.sweep.grid import RunSpec
from scalerl.sweep.jobs import Trainer, execute_job, is_done, run_dir_of, set_aside
from scalerl.sweep.packing import Job, Plan, pack, plan_packing, single_thread_flags
from scalerl.sweep.runner import LOG_DIR, RunStatus, describe, error_line, job_statuses


def import_ray() -> Any:
    """The `ray` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ScalerlError(
            "--backend ray needs Ray: pip install ray==2.60.0 (or, in a scalerl checkout, "
            "pip install -e '.[ray]'), or use --backend local"
        ) from None
    return ray


def run_ray(
    runs: list[RunSpec],
    done: set[str],
    cells: int,
    seeds: int,
    retries: int = 1,
    trainer: Trainer | None = None,
    threads: int | None = None,
    seeds_per_process: int | None = None,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    copy_back: bool = False,
) -> tuple[Plan, dict[str, RunStatus]]:
    """Pack the runs for the cluster's CPUs, run the jobs as Ray tasks, gather them as they end.

    Args:
        runs: Every run of the grid.
        done: Names of the runs completed earlier (left out of the jobs).
        cells: Cells of the grid.
        seeds: Seeds per cell.
        retries: Ray's `max_retries` (exceptions and lost workers alike).
        trainer: Training functions (default: scalerl's); must be importable on every node.
        threads: XLA threads per job (None: `cpus_per_run` rounded, at least 1).
        seeds_per_process: Seeds per job (None: automatic for the cluster's CPUs).
        address: Cluster address; "auto" joins the running cluster, None starts a local Ray
            instance. Ignored when Ray is already initialised in this process.
        cpus_per_run: CPUs reserved per job.
        gpus_per_run: GPUs reserved per job.
        copy_back: Return each run directory to the driver (no shared filesystem).

    Returns:
        (the plan, run name -> status of every run not in `done`).
    """
    ray = import_ray()
    started = _connect(ray, address)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        threads = threads or max(1, round(cpus_per_run))
        plan = plan_packing(cells, seeds, cpus, None, threads, seeds_per_process)
        jobs = pack(runs, plan.seeds_per_process, done)
        print(describe(plan, jobs), flush=True)
        options = {"num_cpus": max(cpus_per_run, threads), "num_gpus": gpus_per_run}
        if threads == 1:
            flags = single_thread_flags(os.environ.get("XLA_FLAGS", ""))
            options["runtime_env"] = {"env_vars": {"XLA_FLAGS": flags}}
        task = ray.remote(_task).options(max_retries=retries, retry_exceptions=True, **options)
        launch = uuid.uuid4().hex
        refs = {task.remote(job, trainer, launch, copy_back): job for job in jobs}
        return plan, _gather(ray, refs, retries)
    finally:
        if started:
            ray.shutdown()


def _connect(ray: Any, address: str | None) -> bool:
    """Initialise Ray unless it already is; whether this call started it."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address)
    except ConnectionError as err:
        raise ScalerlError(
            f"cannot reach a Ray cluster at {address!r} ({err}); start one with "
            "`ray start --head` or omit --address for a local Ray instance"
        ) from None
    return True


def _gather(ray: Any, refs: dict[Any, Job], retries: int) -> dict[str, RunStatus]:
    out: dict[str, RunStatus] = {}
    total, finished = len(refs), 0
    while refs:
        (ref,), _ = ray.wait(list(refs), num_returns=1)
        job = refs.pop(ref)
        try:
            attempts, archives = ray.get(ref)
            for run in job.runs:
                _unpack(archives.get(run.name), run_dir_of(run.config))
            error = None
        except Exception as err:  # a failed job is reported, not raised
            attempts, error = retries + 1, error_line(getattr(err, "cause", None) or err)
        out |= job_statuses(job, attempts, error)
        finished += 1
        print(f"[{finished}/{total}] {job.name}: {error or 'done'}", flush=True)
    return out


def _task(
    job: Job, trainer: Trainer | None, launch: str, copy_back: bool
) -> tuple[int, dict[str, bytes]]:
    """One attempt on a Ray worker: count it, train, and archive the runs if asked."""
    first = run_dir_of(job.runs[0].config)
    attempts = _count_attempt(first.parent / LOG_DIR / f"{job.name}.attempts", launch)
    execute_job(job, trainer)
    if not copy_back:
        return attempts, {}
    return attempts, {r.name: archive(run_dir_of(r.config)) for r in job.runs}


def _count_attempt(path: Path, launch: str) -> int:
    """Attempt number of this launch, from `path` (`<sweep>/logs/<job>.attempts`) on this node."""
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = path.read_text().split() if path.exists() else []
    number = int(parts[1]) + 1 if len(parts) == 2 and parts[0] == launch else 1
    path.write_text(f"{launch} {number}\n")
    return number


def archive(run_dir: Path) -> bytes:
    """A run directory as gzipped tar bytes (top-level entry: the run's name)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(run_dir, arcname=run_dir.name)
    return buffer.getvalue()


def _unpack(data: bytes | None, run_dir: Path) -> None:
    """Extract a copied-back run unless the driver already sees it completed (shared disk)."""
    if data is None or is_done(run_dir):
        return
    set_aside(run_dir)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(run_dir.parent, filter="data")
