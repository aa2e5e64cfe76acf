"""Aggregate metrics over runs and tasks with stratified bootstrap confidence intervals.

The metrics are those of Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
Statistical Precipice" (NeurIPS), as implemented by their ``rliable`` library and used by the
SimbaV2 paper to summarise normalised scores: interquartile mean (IQM), median, mean
and optimality gap, each with a percentile confidence interval from a bootstrap that resamples
runs with replacement *within* every task (a stratified bootstrap).

Scores come either as a ``(runs, tasks)`` array (rliable's layout; a 1-D array is the runs of a
single task) or as one sequence of run scores per task, so that tasks may have different numbers
of runs. Written from the paper's definitions with numpy only (no rliable, no scipy); the IQM is
checked against ``scipy.stats.trim_mean`` in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from scalerl.errors import ScalerlError


@dataclass(frozen=True)
class TaskScores:
    """Scores of several runs on several tasks, stored task by task (tasks may be ragged)."""

    values: np.ndarray
    """All scores, concatenated task by task."""
    counts: np.ndarray
    """Number of runs of every task (each >= 1)."""

    def task_means(self) -> np.ndarray:
        """Mean over runs of every task."""
        starts = np.cumsum(self.counts) - self.counts
        return np.add.reduceat(self.values, starts) / self.counts


ScoresLike = TaskScores | np.ndarray | Sequence[Sequence[float]]
"""A ``(runs, tasks)`` array, a 1-D array (one task), per-task sequences, or TaskScores."""

Stat = Callable[[TaskScores], float]
"""An aggregate metric: TaskScores -> float (every function of this module accepts them)."""


def as_task_scores(scores: ScoresLike) -> TaskScores:
    """Converts any accepted score layout to :class:`TaskScores`.

    Args:
        scores: A ``(runs, tasks)`` numpy array (columns are tasks; a 1-D array is one task), a
            sequence with one sequence of run scores per task, or TaskScores (returned as is).

    Returns:
        The scores task by task.

    Raises:
        ScalerlError: If there are no tasks, a task has no runs, or an array has > 2 dimensions.
    """
    if isinstance(scores, TaskScores):
        return scores
    if isinstance(scores, np.ndarray):
        arr = np.atleast_1d(np.asarray(scores, np.float64))
        if arr.ndim > 2:
            raise ScalerlError(f"scores must be a (runs, tasks) array, got shape {arr.shape}")
        tasks = list(arr.reshape(len(arr), -1).T) if arr.size else []
    else:
        tasks = [np.asarray(task, np.float64).ravel() for task in scores]
    if not tasks or any(task.size == 0 for task in tasks):
        raise ScalerlError("no scores to aggregate: every task needs at least one run")
    return TaskScores(np.concatenate(tasks), np.array([task.size for task in tasks]))


def iqm(scores: ScoresLike) -> float:
    """Interquartile mean of all run x task scores (Agarwal et al. 2021, rliable).

    rliable computes ``scipy.stats.trim_mean(scores, 0.25, axis=None)``: the flattened scores
    are sorted and ``floor(0.25 * n)`` of them are dropped at *each* end; the rest are averaged
    with equal weights. There is no fractional weighting at the quartile boundaries, so when
    ``n`` is not a multiple of 4 slightly more than half of the scores are kept (n = 10 keeps
    the middle 6). Tasks with more runs weigh more, as in the pooled definition.

    Args:
        scores: Any layout accepted by :func:`as_task_scores`.

    Returns:
        The IQM; e.g. 4.5 for the scores 1, ..., 8.
    """
    values = np.sort(as_task_scores(scores).values)
    cut = int(0.25 * values.size)
    return float(values[cut : values.size - cut].mean())


def mean(scores: ScoresLike) -> float:
    """Mean over tasks of the per-task mean score (rliable's ``aggregate_mean``)."""
    return float(as_task_scores(scores).task_means().mean())


def median(scores: ScoresLike) -> float:
    """Median over tasks of the per-task mean score (rliable's ``aggregate_median``)."""
    return float(np.median(as_task_scores(scores).task_means()))


def optimality_gap(scores: ScoresLike, gamma: float = 1.0) -> float:
    """Amount by which scores fall short of ``gamma`` (Agarwal et al. 2021, rliable).

    ``gamma - mean(min(score, gamma))``, the mean taken per task first and then over tasks
    (identical to rliable's mean over all scores when every task has the same number of runs).
    SimbaV2 uses ``gamma = 1`` on normalised scores.

    Args:
        scores: Any layout accepted by :func:`as_task_scores`.
        gamma: The target score; scores above it count as ``gamma``.

    Returns:
        The optimality gap (lower is better; 0 when every score reaches ``gamma``).
    """
    data = as_task_scores(scores)
    clipped = TaskScores(np.minimum(data.values, gamma), data.counts)
    return float(gamma - clipped.task_means().mean())


AGGREGATES: dict[str, Stat] = {
    "IQM": iqm,
    "median": median,
    "mean": mean,
    "optimality gap": optimality_gap,
}
"""The four aggregate metrics of rliable / the SimbaV2 paper, by display name."""


class Interval(NamedTuple):
    """A point estimate with its confidence interval."""

    estimate: float
    lower: float
    upper: float


def _check_bootstrap(reps: int, alpha: float) -> None:
    """Raises ScalerlError unless ``reps >= 1`` and ``0 < alpha < 1``."""
    if reps < 1 or not 0.0 < alpha < 1.0:
        raise ScalerlError(f"need reps >= 1 and 0 < alpha < 1, got reps={reps}, alpha={alpha}")


def resample_indices(counts: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified bootstrap draws: each task's runs resampled with replacement from that task.

    Args:
        counts: Runs per task (task-by-task layout of :class:`TaskScores`).
        reps: Number of bootstrap replicates.
        rng: Random generator.

    Returns:
        ``(reps, sum(counts))`` indices into ``TaskScores.values``; replicate ``r`` keeps the
        task layout, every index of task ``t`` pointing to one of task ``t``'s runs.
    """
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    sizes = np.repeat(counts, counts)
    return starts + rng.integers(0, sizes, size=(reps, sizes.size))


def stratified_bootstrap_cis(
    scores: ScoresLike,
    stats: Mapping[str, Stat],
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Interval]:
    """Percentile confidence intervals of several statistics from one stratified bootstrap.

    Every replicate resamples, for each task independently, as many runs as the task has, with
    replacement (Agarwal et al. 2021, rliable's ``StratifiedBootstrap``); all statistics are
    evaluated on the same replicates. The interval is the ``alpha/2`` and ``1 - alpha/2``
    percentiles of the replicate values (linear interpolation between order statistics).

    Args:
        scores: Any layout accepted by :func:`as_task_scores`.
        stats: Statistics by name, e.g. :data:`AGGREGATES`.
        reps: Bootstrap replicates (the SimbaV2 notebooks use 10 000).
        alpha: One minus the confidence level.
        seed: Seed of the resampling; equal seeds give equal intervals.

    Returns:
        ``{name: Interval(estimate on the original scores, lower, upper)}``.

    Raises:
        ScalerlError: If the scores are empty, ``reps < 1`` or ``alpha`` is not in (0, 1).
    """
    _check_bootstrap(reps, alpha)
    data = as_task_scores(scores)
    draws = resample_indices(data.counts, reps, np.random.default_rng(seed))
    samples = [TaskScores(data.values[idx], data.counts) for idx in draws]
    out = {}
    for name, stat in stats.items():
        boot = np.array([stat(sample) for sample in samples])
        lower, upper = np.percentile(boot, [50.0 * alpha, 100.0 - 50.0 * alpha])
        out[name] = Interval(stat(data), float(lower), float(upper))
    return out


def stratified_bootstrap_ci(
    scores: ScoresLike,
    stat: Stat = iqm,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """Percentile confidence interval of one statistic (see :func:`stratified_bootstrap_cis`).

    Args:
        scores: A ``(runs, tasks)`` array or per-task sequences of unequal length.
        stat: The statistic, e.g. :func:`iqm` or ``functools.partial(optimality_gap, gamma=.5)``.
        reps: Bootstrap replicates.
        alpha: One minus the confidence level (0.05: a 95 % interval).
        seed: Seed of the resampling.

    Returns:
        ``Interval(estimate, lower, upper)``; zero width when every task has a single run.
    """
    return stratified_bootstrap_cis(scores, {"stat": stat}, reps, alpha, seed)["stat"]


def bootstrap_mean_ci(
    values: np.ndarray, reps: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs and its percentile bootstrap interval, for every column at once.

    Used for learning curves (columns are evaluation steps) and per-task tables (one column):
    each replicate resamples whole runs (rows) with replacement.

    Args:
        values: ``(runs, points)`` array, or 1-D runs of one point.
        reps: Bootstrap replicates.
        alpha: One minus the confidence level.
        seed: Seed of the resampling.

    Returns:
        ``(mean, lower, upper)``, each of shape ``(points,)``.

    Raises:
        ScalerlError: If there are no runs, ``reps < 1`` or ``alpha`` is not in (0, 1).
    """
    _check_bootstrap(reps, alpha)
    x = np.asarray(values, np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if x.shape[0] == 0:
        raise ScalerlError("no runs to average: the bootstrap needs at least one run")
    idx = np.random.default_rng(seed).integers(0, x.shape[0], size=(reps, x.shape[0]))
    boot = x[idx].mean(axis=1)
    lower, upper = np.percentile(boot, [50.0 * alpha, 100.0 - 50.0 * alpha], axis=0)
    return x.mean(axis=0), lower, upper
