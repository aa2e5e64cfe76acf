"""Packing a sweep's seeds into processes: jobs, and workers x threads x seeds per process.

A *job* is one process training several seeds of one (environment, configuration) cell together,
vmapped (`scalerl train --seeds`); every seed still writes its own run directory. On CPUs small
networks use XLA's threads poorly, so the default plan runs one single-threaded worker pinned to
each core, and packs each cell's seeds so that every core has a job (see docs/sweeps.md,
"Packing seeds").
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from scalerl.errors import ScalerlError
from scalerl.sweep.grid import RunSpec

SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
"""XLA_FLAGS added for a single-threaded worker (Eigen's matmuls run on the calling thread)."""


@dataclass(frozen=True)
class Plan:
    """How a sweep uses the machine: concurrent worker processes, threads and seeds of each."""

    workers: int
    """Concurrent worker processes (local) or jobs in flight (Ray: bounded by the cluster)."""
    threads: int
    """Cores (XLA threads) per worker; 1 = single-threaded XLA, pinned to one core."""
    seeds_per_process: int
    """Seeds of one cell trained together, vmapped, in one process (the last pack may be less)."""


def _check_positive(**values: int | None) -> None:
    bad = {k: v for k, v in values.items() if v is not None and v < 1}
    if bad:
        opts = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in bad.items())
        raise ScalerlError(f"{opts}: must be >= 1 (or omit it for the automatic choice)")


def plan_packing(
    cells: int,
    seeds: int,
    cores: int,
    workers: int | None = None,
    threads: int | None = None,
    seeds_per_process: int | None = None,
) -> Plan:
    """Workers x threads x seeds per process that keep every core busy with few, large packs.

    Automatic choices: one single-threaded worker per core (XLA's threads scale poorly on the
    small matmuls of RL networks, so two single-threaded processes outrun one two-threaded one);
    all of a cell's seeds in one process, unless there are fewer cells than workers, then each
    cell's seeds are split into as many equal packs as it takes to give every worker a job; and
    when even that leaves cores idle (fewer seeds than cores), the workers get more threads.

    Args:
        cells: (environment, configuration) cells of the sweep.
        seeds: Seeds per cell.
        cores: Cores (local) or CPUs (Ray cluster) available.
        workers: Concurrent workers (None: automatic).
        threads: Threads per worker (None: automatic).
        seeds_per_process: Seeds per job (None: automatic).

    Returns:
        The plan; `workers * threads` never exceeds `cores` unless asked for.
    """
    _check_positive(
        workers=workers, threads_per_worker=threads, seeds_per_process=seeds_per_process
    )
    cores = max(1, cores)
    slots = workers or max(1, cores // (threads or 1))
    if seeds_per_process is None:
        per_cell = min(seeds, math.ceil(slots / max(1, cells)))
        seeds_per_process = math.ceil(seeds / per_cell)
    jobs = cells * math.ceil(seeds / seeds_per_process)
    if workers is None:
        slots = min(slots, jobs)
    if threads is None:
        threads = max(1, cores // slots)
    return Plan(workers=slots, threads=threads, seeds_per_process=seeds_per_process)


@dataclass(frozen=True)
class Job:
    """One process of a sweep: the seeds of one cell still to complete, trained together."""

    name: str
    """Job name (log file name): the cell and its seeds, e.g. mlp-Pendulum-v1-s0-3."""
    runs: tuple[RunSpec, ...]
    """The pack's runs (one per seed, same cell), in grid order; completed ones are left out."""

    @property
    def seeds(self) -> list[int]:
        """The seeds of the job's runs."""
        return [r.config.seed for r in self.runs]


def seed_text(seeds: list[int]) -> str:
    """Compact seed list: [0, 1, 2, 3] -> '0-3', [0, 2, 5] -> '0,2,5'."""
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def pack(runs: list[RunSpec], seeds_per_process: int, done: set[str] = frozenset()) -> list[Job]:
    """Jobs of a grid: each cell's seeds in packs of `seeds_per_process`, completed runs dropped.

    Packs are cut from the cell's full seed list, so a relaunch forms the same packs (an
    interrupted pack resumes with the seeds it trained with). Jobs are ordered pack-major: the
    first pack of every cell, then the second, ... (as runs are seed-major).

    Args:
        runs: Every run of the grid (`grid.expand`).
        seeds_per_process: Seeds per pack.
        done: Names of completed runs.

    Returns:
        The jobs with at least one run to do.
    """
    cells: dict[str, list[RunSpec]] = {}
    for run in runs:
        cells.setdefault(run.cell or run.name, []).append(run)
    jobs: list[tuple[int, int, Job]] = []
    for c, (cell, members) in enumerate(cells.items()):
        for p in range(0, len(members), seeds_per_process):
            todo = tuple(r for r in members[p : p + seeds_per_process] if r.name not in done)
            if todo:
                seeds = [r.config.seed for r in todo]
                name = todo[0].name if len(todo) == 1 else f"{cell}-s{seed_text(seeds)}"
                jobs.append((p, c, Job(name, todo)))
    return [job for _, _, job in sorted(jobs, key=lambda x: x[:2])]


# ----------------------------------------------------------------------------- worker processes


def available_cores() -> list[int]:
    """The cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(os.cpu_count() or 1))


def core_slots(cores: list[int], workers: int, threads: int) -> list[tuple[int, ...] | None]:
    """Cores of each worker slot: consecutive groups of `threads` cores; None (unpinned) when
    the workers need more cores than there are."""
    if workers * threads > len(cores):
        return [None] * workers
    return [tuple(cores[i * threads : (i + 1) * threads]) for i in range(workers)]


def single_thread_flags(flags: str) -> str:
    """`flags` (XLA_FLAGS) with the single-thread flags in place of any thread setting."""
    words = SINGLE_THREAD_FLAGS.split()
    keep = [w for w in flags.split() if w.split("=")[0] not in {x.split("=")[0] for x in words}]
    return " ".join(keep + words)


def setup_worker(cores: tuple[int, ...] | None, threads: int) -> None:
    """In a fresh worker process, before JAX starts: pin to `cores`, single-thread XLA if asked.

    XLA sizes its CPU thread pool from the cores the process may use, so pinning also bounds
    its threads.
    """
    if threads == 1:
        os.environ["XLA_FLAGS"] = single_thread_flags(os.environ.get("XLA_FLAGS", ""))
    if cores is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
