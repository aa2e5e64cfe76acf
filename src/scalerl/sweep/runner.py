"""Running a sweep: the local backend (a pinned worker process per core), bookkeeping, the report.

The runs of a grid are packed into jobs (packing.py): the seeds of one cell, trained together in
one vmapped process. A run is *completed* when its directory holds a `DONE` file (jobs.py);
completed runs are skipped when the sweep is launched again, and an interrupted job resumes its
seeds exactly from their checkpoints. Every attempt runs in a fresh 'spawn' process, so a crash
or a killed worker fails that attempt only. Each job's output goes to `<sweep>/logs/<job>.log`.
One launch at a time may use a sweep directory (lock.py).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Literal

from scalerl.errors import ScalerlError
from scalerl.sweep.algos import default_seeds_per_process
from scalerl.sweep.grid import RunSpec, SweepSpec, expand
from scalerl.sweep.jobs import (
    DONE_NAME,
    Trainer,
    execute_job,
    is_done,
    run_dir_of,
    set_aside,
)
from scalerl.sweep.lock import SweepLock
from scalerl.sweep.packing import (
    Job,
    Plan,
    available_cores,
    core_slots,
    pack,
    plan_packing,
    setup_worker,
)

__all__ = [
    "DONE_NAME",
    "LOG_DIR",
    "REPORT_NAME",
    "LocalBackend",
    "RunStatus",
    "format_table",
    "is_done",
    "run_dir_of",
    "run_sweep",
    "set_aside",
]

REPORT_NAME = "sweep.json"
"""Status of every run of the last launch, in the sweep directory."""
LOG_DIR = "logs"
"""Per-job output of the workers, in the sweep directory."""


@dataclass
class RunStatus:
    """Outcome of one run in one launch of a sweep."""

    name: str
    status: Literal["done", "failed", "skipped"]
    """done: completed now; skipped: completed by an earlier launch; failed: retries used up."""
    attempts: int = 0
    """Attempts of the run's job in this launch (0 for skipped runs)."""
    error: str | None = None
    """One-line error of the last failed attempt."""
    params: dict[str, str] = field(default_factory=dict)
    """The run's grid coordinates (env, agent, seed, overrides)."""
    job: str | None = None
    """The job (process) that trained the run in this launch: its cell and seeds."""


def error_line(err: BaseException) -> str:
    """`Type: first line of the message`, for the report."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def job_statuses(job: Job, attempts: int, error: str | None) -> dict[str, RunStatus]:
    """Statuses of a job's runs after its last attempt: done where `DONE` exists, else failed."""
    out = {}
    for run in job.runs:
        ok = is_done(run_dir_of(run.config))
        status = "done" if ok else "failed"
        reason = None if ok else error or "job ended without completing this run"
        out[run.name] = RunStatus(run.name, status, attempts, reason, run.params, job.name)
    return out


def log_path(job: Job) -> Path:
    """The job's output file, `<sweep>/logs/<job>.log`."""
    return Path(job.runs[0].config.run_root) / LOG_DIR / f"{job.name}.log"


# ----------------------------------------------------------------------------- local backend


@dataclass
class _Attempt:
    job: Job
    number: int
    process: BaseProcess
    reader: Connection
    slot: int


def _die_with_parent() -> None:
    """Linux: end this worker when the sweep process dies (so no orphan keeps training after the
    sweep's lock is released)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker(
    job: Job,
    trainer: Trainer | None,
    writer: Connection,
    log: Path,
    cores: tuple[int, ...] | None,
    threads: int,
) -> None:
    """Worker process body: pin, output to the job's log, train, send None or the error line."""
    _die_with_parent()
    setup_worker(cores, threads)
    with open(log, "ab", buffering=0) as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    print(f"pid {os.getpid()}, cores {cores or 'any'}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}")
    try:
        execute_job(job, trainer)
    except BaseException as err:  # every failure, even KeyboardInterrupt, goes to the parent
        traceback.print_exc()
        writer.send(error_line(err))
        raise SystemExit(1) from None
    writer.send(None)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"worker died ({signal.Signals(-code).name})"
    return f"worker exited with code {code} without a result"


def default_workers() -> int:
    """Cores available to this process."""
    return len(available_cores())


@dataclass
class LocalBackend:
    """Run jobs in at most `workers` spawned processes, each pinned to its own `threads` cores;
    retry a failed job `retries` times (the retry resumes what the failed attempt left)."""

    workers: int | None = None
    """Concurrent worker processes (default: cores available)."""
    retries: int = 1
    """Extra attempts of a failed job (exception or dead worker) before its runs fail."""
    trainer: Trainer | None = None
    """Training functions (picklable top-level functions); None: scalerl's."""
    threads: int = 1
    """Cores (XLA threads) per worker."""
    pin: bool = True
    """Pin each worker to its own cores."""

    def run(self, jobs: list[Job]) -> dict[str, RunStatus]:
        """Statuses of every run of `jobs` (completed runs are already left out of them)."""
        ctx = mp.get_context("spawn")
        workers = self.workers or default_workers()
        slots = core_slots(available_cores(), workers, self.threads)
        slots = slots if self.pin else [None] * workers
        free = deque(range(workers))
        pending = deque((job, 1) for job in jobs)
        active: dict[int, _Attempt] = {}
        out: dict[str, RunStatus] = {}
        self._done_jobs = 0
        try:
            while pending or active:
                while pending and free:
                    slot = free.popleft()
                    attempt = self._start(ctx, *pending.popleft(), slot, slots[slot])
                    active[attempt.process.sentinel] = attempt
                for sentinel in wait(list(active)):
                    attempt = active.pop(sentinel)
                    free.append(attempt.slot)
                    self._finish(attempt, pending, out, len(jobs))
        finally:
            _stop(list(active.values()))
        return out

    def _start(
        self, ctx: mp.context.BaseContext, job: Job, number: int, slot: int, cores: tuple | None
    ) -> _Attempt:
        log = log_path(job)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as f:
            f.write(f"=== attempt {number} {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n")
        reader, writer = ctx.Pipe(duplex=False)
        args = (job, self.trainer, writer, log, cores, self.threads)
        process = ctx.Process(target=_worker, args=args, name=job.name)
        process.start()
        writer.close()
        return _Attempt(job, number, process, reader, slot)

    def _finish(self, attempt: _Attempt, pending: deque, out: dict, total: int) -> None:
        error = _result(attempt)
        job, number = attempt.job, attempt.number
        statuses = job_statuses(job, number, error)
        complete = all(s.status == "done" for s in statuses.values())
        if error is None and not complete:
            error = "job ended without completing all its runs"
        if error is not None and number <= self.retries:
            pending.append((job, number + 1))
        else:
            out |= statuses
            self._done_jobs += 1
        word = "done" if error is None else f"attempt {number} failed: {error}"
        runs = f" ({len(job.runs)} runs)" if len(job.runs) > 1 else ""
        print(f"[{self._done_jobs}/{total}] {job.name}{runs}: {word}", flush=True)


def _result(attempt: _Attempt) -> str | None:
    """None for a successful attempt, else its error line (sent, or from the exit code)."""
    attempt.process.join()
    try:
        if attempt.reader.poll():
            return attempt.reader.recv()
    except EOFError:
        pass
    finally:
        attempt.reader.close()
    return _exit_reason(attempt.process.exitcode)


def _stop(attempts: list[_Attempt]) -> None:
    """Terminate the workers still running (on an interrupt or an error of the runner)."""
    for attempt in attempts:
        attempt.process.terminate()
    for attempt in attempts:
        attempt.process.join(5)


# ----------------------------------------------------------------------------- sweep and report


def run_sweep(
    spec: SweepSpec,
    backend: Literal["local", "ray"] = "local",
    retries: int = 1,
    workers: int | None = None,
    trainer: Trainer | None = None,
    threads: int | None = None,
    seeds_per_process: int | None = None,
    pin: bool = True,
    **ray_options: object,
) -> list[RunStatus]:
    """Run every run of a grid not completed yet; write sweep.json and print a summary.

    Args:
        spec: The grid; runs go to `spec.sweep_dir/<run name>/`.
        backend: local (worker processes on this machine) or ray (see `ray_backend.run_ray`).
        retries: Extra attempts of a failed job before its runs are reported failed.
        workers: Local worker processes (None: automatic, `packing.plan_packing`); not for ray.
        trainer: Training functions (default: scalerl's `train_seeds` and `resume`).
        threads: Cores (XLA threads) per worker (None: automatic).
        seeds_per_process: Seeds of a cell trained together in one process (None: automatic).
        pin: Local: pin each worker to its own cores.
        **ray_options: address, cpus_per_run, gpus_per_run, copy_back (ray only).

    Returns:
        One status per run, in grid order.

    Raises:
        ScalerlError: bad options, or another launch is using the sweep directory.
    """
    runs = expand(spec)
    if retries < 0:
        raise ScalerlError(f"--retries must be >= 0, got {retries}")
    if backend not in ("local", "ray"):
        raise ScalerlError(f"unknown backend {backend!r}; choose local or ray")
    if seeds_per_process is None:  # PPO's host loop trains packed seeds one after the other
        seeds_per_process = default_seeds_per_process([r.config for r in runs])
    spec.sweep_dir.mkdir(parents=True, exist_ok=True)
    with SweepLock(spec.sweep_dir):
        todo, statuses = split_done(runs)
        print(f"sweep {spec.sweep_dir}: {len(runs)} runs, {len(statuses)} already done", flush=True)
        cells, seeds = len({r.cell for r in runs}), len(spec.seeds)
        if backend == "local":
            cores = default_workers()
            plan = plan_packing(cells, seeds, cores, workers, threads, seeds_per_process)
            jobs = pack(runs, plan.seeds_per_process, set(statuses))
            print(describe(plan, jobs), flush=True)
            statuses |= LocalBackend(plan.workers, retries, trainer, plan.threads, pin).run(jobs)
        else:
            from scalerl.sweep.ray_backend import run_ray

            packing = {"threads": threads, "seeds_per_process": seeds_per_process}
            plan, done = run_ray(runs, set(statuses), cells, seeds, retries, trainer,
                                 **packing, **ray_options)  # fmt: skip
            statuses |= done
        ordered = [statuses[r.name] for r in runs]
        write_report(spec, ordered, backend, plan)
    print(format_table(ordered), flush=True)
    return ordered


def split_done(runs: list[RunSpec]) -> tuple[list[RunSpec], dict[str, RunStatus]]:
    """Runs still to do, and `skipped` statuses of the runs an earlier launch completed."""
    done = {
        r.name: RunStatus(r.name, "skipped", params=r.params)
        for r in runs
        if is_done(run_dir_of(r.config))
    }
    return [r for r in runs if r.name not in done], done


def describe(plan: Plan, jobs: list[Job]) -> str:
    """One line: the plan and the number of jobs."""
    thread = "thread" if plan.threads == 1 else "threads"
    return (
        f"{len(jobs)} jobs: {plan.workers} workers x {plan.threads} {thread}, "
        f"up to {plan.seeds_per_process} seeds per process"
    )


def write_report(
    spec: SweepSpec, statuses: list[RunStatus], backend: str, plan: Plan | None = None
) -> Path:
    """Write <sweep>/sweep.json: the grid, the plan, the counts and one status per run."""
    counts = {s: sum(r.status == s for r in statuses) for s in ("done", "skipped", "failed")}
    grid = {k: v for k, v in asdict(spec).items() if k not in ("name", "out_dir")}
    report = {
        "name": spec.name,
        "backend": backend,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "plan": asdict(plan) if plan is not None else None,
        "counts": counts,
        "grid": grid | {"seeds": list(spec.seeds)},
        "runs": [asdict(s) for s in statuses],
    }
    path = spec.sweep_dir / REPORT_NAME
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def format_table(statuses: list[RunStatus]) -> str:
    """Plain-text summary: one line per run (name, status, attempts, error) and the counts."""
    width = max([len(s.name) for s in statuses] + [3])
    lines = [f"{'run':<{width}}  {'status':<7}  attempts  error"]
    for s in statuses:
        lines.append(f"{s.name:<{width}}  {s.status:<7}  {s.attempts:>8}  {s.error or ''}".rstrip())
    counts = {k: sum(s.status == k for s in statuses) for k in ("done", "skipped", "failed")}
    lines.append(", ".join(f"{n} {k}" for k, n in counts.items()))
    return "\n".join(lines)
