"""Probability of improvement between two configurations (Agarwal et al. 2021, §4.3).

P(X > Y) is the chance that a run of configuration X, on a task drawn uniformly, scores higher
than a run of Y on the same task (ties count one half), i.e. the Mann-Whitney U statistic of
every task averaged over tasks:

    P(X > Y) = (1/M) Σ_m (1/(N_m K_m)) Σ_i Σ_j S(x_{m,i}, y_{m,j}),
    S(a, b) = 1 if a > b, 1/2 if a = b, 0 otherwise,

with N_m runs of X and K_m runs of Y on task m. Its confidence interval comes from a stratified
bootstrap that resamples the runs of X and of Y independently within every task (rliable's
``StratifiedIndependentBootstrap``). Written from the paper's definition with numpy only.
"""

from __future__ import annotations

import numpy as np

from scalerl.analysis.aggregate import (
    Interval,
    ScoresLike,
    TaskScores,
    _check_bootstrap,
    as_task_scores,
    resample_indices,
)
from scalerl.errors import ScalerlError


def _task_slices(data: TaskScores) -> list[slice]:
    """Slice of every task's runs in ``data.values``."""
    ends = np.cumsum(data.counts)
    return [slice(int(e - c), int(e)) for e, c in zip(ends, data.counts, strict=True)]


def _paired(x: ScoresLike, y: ScoresLike) -> tuple[TaskScores, TaskScores]:
    """Both score sets as TaskScores; ScalerlError unless they cover the same number of tasks."""
    xs, ys = as_task_scores(x), as_task_scores(y)
    if xs.counts.size != ys.counts.size:
        raise ScalerlError(
            f"probability of improvement needs the same tasks on both sides, got "
            f"{xs.counts.size} and {ys.counts.size} tasks; restrict both to their common tasks"
        )
    return xs, ys


def _improvement(xs: TaskScores, ys: TaskScores) -> float:
    """P(X > Y) of two TaskScores with the same task layout (module formula)."""
    per_task = []
    for sx, sy in zip(_task_slices(xs), _task_slices(ys), strict=True):
        a, b = xs.values[sx][:, None], ys.values[sy][None, :]
        per_task.append(np.mean((a > b) + 0.5 * (a == b)))
    return float(np.mean(per_task))


def probability_of_improvement(x: ScoresLike, y: ScoresLike) -> float:
    """P(X > Y): probability that X outperforms Y on a random task (Agarwal et al. 2021).

    Args:
        x: Scores of configuration X, any layout of :func:`as_task_scores` (task by task).
        y: Scores of configuration Y on the same tasks, in the same order; run counts may differ.

    Returns:
        A probability in [0, 1]; 0.5 when neither is better; P(X > Y) + P(Y > X) = 1.

    Raises:
        ScalerlError: If a side is empty or the two sides have different numbers of tasks.
    """
    return _improvement(*_paired(x, y))


def probability_of_improvement_ci(
    x: ScoresLike,
    y: ScoresLike,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """P(X > Y) with a percentile interval from an independent stratified bootstrap.

    Every replicate resamples, within each task, the runs of X and, independently, the runs of
    Y with replacement, and recomputes P(X > Y); the interval holds the ``alpha/2`` and
    ``1 - alpha/2`` percentiles of the replicates.

    Args:
        x: Scores of X (task by task).
        y: Scores of Y on the same tasks.
        reps: Bootstrap replicates.
        alpha: One minus the confidence level.
        seed: Seed of the resampling.

    Returns:
        ``Interval(P(X > Y), lower, upper)``.
    """
    _check_bootstrap(reps, alpha)
    xs, ys = _paired(x, y)
    rng = np.random.default_rng(seed)
    ix, iy = resample_indices(xs.counts, reps, rng), resample_indices(ys.counts, reps, rng)
    boot = [
        _improvement(TaskScores(xs.values[a], xs.counts), TaskScores(ys.values[b], ys.counts))
        for a, b in zip(ix, iy, strict=True)
    ]
    lower, upper = np.percentile(boot, [50.0 * alpha, 100.0 - 50.0 * alpha])
    return Interval(_improvement(xs, ys), float(lower), float(upper))
