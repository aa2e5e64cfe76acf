"""Performance profiles and aggregate curves over training (Agarwal et al. 2021, §4.1, §5).

A performance profile (the run-score distribution) is, for every threshold τ, the fraction of
runs whose normalised score exceeds τ:

    F(τ) = (1/M) Σ_m (1/N_m) Σ_i 1[x_{m,i} > τ],

each task weighing the same (rliable's pooled fraction when every task has N runs). An aggregate
curve is an aggregate metric (IQM by default) of the normalised scores at every evaluation step.
Both come with percentile bands from the stratified bootstrap of
:mod:`scalerl.analysis.aggregate`, computed on the same replicates for every τ.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scalerl.analysis.aggregate import (
    ScoresLike,
    Stat,
    TaskScores,
    _check_bootstrap,
    as_task_scores,
    iqm,
    resample_indices,
    stratified_bootstrap_ci,
)
from scalerl.errors import ScalerlError

Band = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(estimate, lower, upper), each of shape (points,)."""


def _fractions(data: TaskScores, taus: np.ndarray) -> np.ndarray:
    """F(τ) for every τ of ``taus`` (module formula), shape (len(taus),)."""
    above = (data.values[None, :] > taus[:, None]).astype(np.float64)
    starts = np.cumsum(data.counts) - data.counts
    per_task = np.add.reduceat(above, starts, axis=1) / data.counts
    return per_task.mean(axis=1)


def performance_profile(scores: ScoresLike, taus: Sequence[float] | np.ndarray) -> np.ndarray:
    """Fraction of runs scoring above each τ, tasks weighted equally (Agarwal et al. §4.1).

    Args:
        scores: Any layout of :func:`scalerl.analysis.aggregate.as_task_scores`.
        taus: Thresholds τ.

    Returns:
        F(τ) of shape (len(taus),), non-increasing in τ; e.g. scores 0, 1, 2, 3 at τ = 1.5: 0.5.
    """
    return _fractions(as_task_scores(scores), np.asarray(taus, np.float64).ravel())


def performance_profile_ci(
    scores: ScoresLike,
    taus: Sequence[float] | np.ndarray,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Band:
    """Performance profile with pointwise percentile bands of a stratified bootstrap.

    Args:
        scores: Scores task by task.
        taus: Thresholds τ.
        reps: Bootstrap replicates (runs resampled within every task).
        alpha: One minus the confidence level.
        seed: Seed of the resampling.

    Returns:
        ``(F(τ), lower, upper)``, each of shape (len(taus),).
    """
    _check_bootstrap(reps, alpha)
    data, t = as_task_scores(scores), np.asarray(taus, np.float64).ravel()
    draws = resample_indices(data.counts, reps, np.random.default_rng(seed))
    boot = np.stack([_fractions(TaskScores(data.values[i], data.counts), t) for i in draws])
    lower, upper = np.percentile(boot, [50.0 * alpha, 100.0 - 50.0 * alpha], axis=0)
    return _fractions(data, t), lower, upper


def aggregate_curve(
    scores_by_step: Sequence[ScoresLike],
    stat: Stat = iqm,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Band:
    """An aggregate metric (default IQM) of the scores at every step, with bootstrap CIs.

    Args:
        scores_by_step: One score set (task by task) per evaluation step, e.g. the slices
            ``scores[:, :, s]`` of a ``(runs, tasks, steps)`` array.
        stat: Aggregate metric, e.g. :func:`scalerl.analysis.aggregate.iqm`.
        reps: Bootstrap replicates per step.
        alpha: One minus the confidence level.
        seed: Seed of the resampling (the same at every step).

    Returns:
        ``(estimate, lower, upper)``, each of shape (steps,).

    Raises:
        ScalerlError: If there is no step.
    """
    if not len(scores_by_step):
        raise ScalerlError("no evaluation steps to aggregate; the runs hold no scores")
    cis = [stratified_bootstrap_ci(s, stat, reps, alpha, seed) for s in scores_by_step]
    return tuple(np.array([ci[k] for ci in cis]) for k in range(3))  # type: ignore[return-value]
