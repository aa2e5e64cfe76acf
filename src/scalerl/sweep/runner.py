"""Running a sweep: the local backend (a worker process per core), run bookkeeping, the report.

A run is *completed* when its directory holds a `DONE` file, written right after `train` returns;
completed runs are skipped when the sweep is launched again. Every attempt runs in a fresh
'spawn' process, so a crash or a killed worker fails that attempt only. Before an attempt starts,
a leftover directory of an earlier attempt is moved to `<run>.failed-<k>` (`create_run_dir`
never reuses a directory). Each attempt's output goes to `<sweep>/logs/<run>.log`.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Literal

from scalerl.config import TrainConfig
from scalerl.errors import ScalerlError
from scalerl.sweep.grid import RunSpec, SweepSpec, expand

DONE_NAME = "DONE"
"""Marker file of a completed run."""
REPORT_NAME = "sweep.json"
"""Status of every run of the last launch, in the sweep directory."""
LOG_DIR = "logs"
"""Per-run output of the workers, in the sweep directory."""

Target = Callable[[TrainConfig], Path]
"""What a worker calls with a run's config; `scalerl.train.loop.train` unless given."""


@dataclass
class RunStatus:
    """Outcome of one run in one launch of a sweep."""

    name: str
    status: Literal["done", "failed", "skipped"]
    """done: completed now; skipped: completed by an earlier launch; failed: retries used up."""
    attempts: int = 0
    """Attempts made in this launch (0 for skipped runs)."""
    error: str | None = None
    """One-line error of the last failed attempt."""
    params: dict[str, str] = field(default_factory=dict)
    """The run's grid coordinates (env, agent, seed, overrides)."""


def run_dir_of(cfg: TrainConfig) -> Path:
    """The directory `train` writes for a sweep run's config."""
    return Path(cfg.run_root) / str(cfg.name)


def is_done(run_dir: Path) -> bool:
    """Whether a run directory holds a completed run."""
    return (Path(run_dir) / DONE_NAME).is_file()


def set_aside(run_dir: Path) -> Path | None:
    """Move a failed attempt's directory to the first free `<run>.failed-<k>`; return it."""
    if not run_dir.exists():
        return None
    k = 1
    while run_dir.with_name(f"{run_dir.name}.failed-{k}").exists():
        k += 1
    return run_dir.rename(run_dir.with_name(f"{run_dir.name}.failed-{k}"))


def execute(cfg: TrainConfig, target: Target | None = None) -> Path:
    """One attempt of a run (in a worker): clear an earlier attempt, train, write DONE."""
    run_dir = run_dir_of(cfg)
    if is_done(run_dir):
        return run_dir
    set_aside(run_dir)
    if target is None:
        from scalerl.train.loop import train as target
    out = Path(target(cfg))
    (out / DONE_NAME).write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
    return out


def error_line(err: BaseException) -> str:
    """`Type: first line of the message`, for the report."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def split_done(runs: list[RunSpec]) -> tuple[list[RunSpec], dict[str, RunStatus]]:
    """Runs still to do, and `skipped` statuses of the runs an earlier launch completed."""
    done = {r.name: RunStatus(r.name, "skipped", params=r.params) for r in runs if _done(r)}
    return [r for r in runs if r.name not in done], done


def _done(run: RunSpec) -> bool:
    return is_done(run_dir_of(run.config))


# ----------------------------------------------------------------------------- local backend


@dataclass
class _Attempt:
    run: RunSpec
    number: int
    process: BaseProcess
    reader: Connection


def _worker(cfg: TrainConfig, target: Target | None, writer: Connection, log: Path) -> None:
    """Worker process body: output to the run's log, train, send None or the error line."""
    with open(log, "ab", buffering=0) as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    try:
        execute(cfg, target)
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
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass
class LocalBackend:
    """Run attempts in at most `workers` spawned processes; retry each failed run `retries` times.

    Each process calls `target(cfg)` (default `scalerl.train.loop.train`); no server is needed.
    """

    workers: int | None = None
    """Concurrent worker processes (default: cores available)."""
    retries: int = 1
    """Extra attempts of a failed run (exception or dead worker) before it is reported failed."""
    target: Target | None = None
    """Training function (a picklable top-level function); None: scalerl's `train`."""

    def run(self, runs: list[RunSpec]) -> dict[str, RunStatus]:
        """Statuses of every run to do (none is skipped here; see `split_done`)."""
        ctx = mp.get_context("spawn")
        pending = deque((run, 1) for run in runs)
        active: dict[int, _Attempt] = {}
        out: dict[str, RunStatus] = {}
        try:
            while pending or active:
                while pending and len(active) < (self.workers or default_workers()):
                    attempt = self._start(ctx, *pending.popleft())
                    active[attempt.process.sentinel] = attempt
                for sentinel in wait(list(active)):
                    self._finish(active.pop(sentinel), pending, out, len(runs))
        finally:
            _stop(list(active.values()))
        return out

    def _start(self, ctx: mp.context.BaseContext, run: RunSpec, number: int) -> _Attempt:
        log = Path(run.config.run_root) / LOG_DIR / f"{run.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as f:
            f.write(f"=== attempt {number} {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n")
        reader, writer = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=_worker, args=(run.config, self.target, writer, log), name=run.name
        )
        process.start()
        writer.close()
        return _Attempt(run, number, process, reader)

    def _finish(self, attempt: _Attempt, pending: deque, out: dict, total: int) -> None:
        error = _result(attempt)
        run, number = attempt.run, attempt.number
        if error is None:
            out[run.name] = RunStatus(run.name, "done", number, None, run.params)
        elif number <= self.retries:
            pending.append((run, number + 1))
        else:
            out[run.name] = RunStatus(run.name, "failed", number, error, run.params)
        word = "done" if error is None else f"attempt {number} failed: {error}"
        print(f"[{len(out)}/{total}] {run.name}: {word}", flush=True)


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
    target: Target | None = None,
    **ray_options: object,
) -> list[RunStatus]:
    """Run every run of a grid not completed yet; write sweep.json and print a summary.

    Args:
        spec: The grid; runs go to `spec.sweep_dir/<run name>/`.
        backend: local (worker processes on this machine) or ray (see `ray_backend.run_ray`).
        retries: Extra attempts of a failed run before it is reported failed.
        workers: Local worker processes (default: cores); ignored by ray.
        target: Training function (default `scalerl.train.loop.train`).
        **ray_options: address, cpus_per_run, gpus_per_run, copy_back (ray only).

    Returns:
        One status per run, in grid order.
    """
    runs = expand(spec)
    if retries < 0 or (workers is not None and workers < 1):
        raise ScalerlError(f"need --retries >= 0 and --workers >= 1, got {retries}, {workers}")
    spec.sweep_dir.mkdir(parents=True, exist_ok=True)
    todo, statuses = split_done(runs)
    print(f"sweep {spec.sweep_dir}: {len(runs)} runs, {len(statuses)} already done", flush=True)
    if backend == "local":
        statuses |= LocalBackend(workers, retries, target).run(todo)
    elif backend == "ray":
        from scalerl.sweep.ray_backend import run_ray

        statuses |= run_ray(todo, retries=retries, target=target, **ray_options)
    else:
        raise ScalerlError(f"unknown backend {backend!r}; choose local or ray")
    ordered = [statuses[r.name] for r in runs]
    write_report(spec, ordered, backend)
    print(format_table(ordered), flush=True)
    return ordered


def write_report(spec: SweepSpec, statuses: list[RunStatus], backend: str) -> Path:
    """Write <sweep>/sweep.json: the grid, the counts and one status per run."""
    counts = {s: sum(r.status == s for r in statuses) for s in ("done", "skipped", "failed")}
    grid = {k: v for k, v in asdict(spec).items() if k not in ("name", "out_dir")}
    report = {
        "name": spec.name,
        "backend": backend,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
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
