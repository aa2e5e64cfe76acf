"""Tests for scalerl.analysis.aggregate: aggregate metrics and the stratified bootstrap."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from scalerl.analysis.aggregate import (
    AGGREGATES,
    as_task_scores,
    bootstrap_mean_ci,
    iqm,
    mean,
    median,
    optimality_gap,
    resample_indices,
    stratified_bootstrap_ci,
    stratified_bootstrap_cis,
)
from scalerl.errors import ScalerlError


def test_iqm_hand_computed() -> None:
    assert iqm(np.arange(1, 9)) == 4.5  # mean of 3, 4, 5, 6
    assert iqm(np.arange(1, 9).reshape(2, 4)) == 4.5  # flattened over runs x tasks
    assert iqm(np.arange(1, 11)) == 5.5  # floor(2.5) = 2 dropped per end: mean of 3..8
    assert iqm([[1.0, 100.0, -50.0], [2.0]]) == 1.5  # ragged; drops -50 and 100


def test_iqm_matches_scipy_trim_mean() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    for shape in [(1, 1), (3, 1), (5, 3), (7, 2), (10, 57)]:
        x = rng.standard_cauchy(shape)
        assert iqm(x) == pytest.approx(stats.trim_mean(x, 0.25, axis=None), rel=1e-12)


def test_mean_and_median_are_over_task_means() -> None:
    scores = np.array([[1.0, 2.0, 10.0], [3.0, 2.0, 20.0]])  # task means 2, 2, 15
    assert mean(scores) == pytest.approx(19 / 3)
    assert median(scores) == 2.0


def test_ragged_tasks() -> None:
    scores = [[1.0, 3.0], [10.0]]  # task means 2 and 10
    assert mean(scores) == 6.0
    assert median(scores) == 6.0
    assert iqm(scores) == pytest.approx(14 / 3)  # n = 3: nothing trimmed
    data = as_task_scores(scores)
    np.testing.assert_array_equal(data.counts, [2, 1])
    np.testing.assert_array_equal(data.task_means(), [2.0, 10.0])


def test_optimality_gap_by_hand() -> None:
    scores = np.array([[0.5, 1.2], [0.8, 0.9]])
    assert optimality_gap(scores) == pytest.approx(1.0 - (0.5 + 1.0 + 0.8 + 0.9) / 4)  # 0.2
    assert optimality_gap(scores, gamma=0.8) == pytest.approx(0.8 - (0.5 + 0.8 * 3) / 4)
    assert optimality_gap(np.full((3, 2), 1.5)) == 0.0


def test_one_run_per_task_gives_zero_width() -> None:
    cis = stratified_bootstrap_cis(np.array([[0.2, 0.5, 0.9]]), AGGREGATES, reps=200)
    for ci in cis.values():
        assert ci.lower == ci.estimate == ci.upper


def test_resampling_stays_within_tasks() -> None:
    idx = resample_indices(np.array([2, 3]), reps=500, rng=np.random.default_rng(0))
    assert idx.shape == (500, 5)
    assert set(np.unique(idx[:, :2])) == {0, 1}
    assert set(np.unique(idx[:, 2:])) == {2, 3, 4}
    # A task whose runs all agree keeps its mean in every replicate: zero-width CI of the mean.
    ci = stratified_bootstrap_ci([[0.0] * 3, [1.0] * 7], mean, reps=300)
    assert ci == (0.5, 0.5, 0.5)


def test_two_runs_one_task_by_hand() -> None:
    # Replicate means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: the 95 % CI is [0, 1].
    ci = stratified_bootstrap_ci(np.array([0.0, 1.0]), mean, reps=4000)
    assert ci == (0.5, 0.0, 1.0)


def test_deterministic_given_seed() -> None:
    x = np.random.default_rng(2).normal(size=(5, 4))
    assert stratified_bootstrap_ci(x, reps=300, seed=7) == stratified_bootstrap_ci(
        x, reps=300, seed=7
    )
    assert stratified_bootstrap_ci(x, reps=300, seed=7) != stratified_bootstrap_ci(
        x, reps=300, seed=8
    )


def test_ci_contains_point_estimate_on_random_data() -> None:
    x = np.random.default_rng(3).normal(0.7, 0.3, size=(10, 6))
    stats = {**AGGREGATES, "gap 0.5": functools.partial(optimality_gap, gamma=0.5)}
    for name, ci in stratified_bootstrap_cis(x, stats, reps=1000).items():
        assert ci.lower < ci.estimate < ci.upper, name
        assert ci.estimate == pytest.approx(stats[name](x))


def test_mean_ci_coverage_is_about_95_percent() -> None:
    rng = np.random.default_rng(4)
    covered = 0
    for i in range(100):
        ci = stratified_bootstrap_ci(rng.normal(size=(10, 5)), mean, reps=400, seed=i)
        covered += ci.lower <= 0.0 <= ci.upper
    assert 85 <= covered <= 100


def test_bootstrap_mean_ci_per_column() -> None:
    values = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    m, lower, upper = bootstrap_mean_ci(values, reps=500)
    np.testing.assert_allclose(m, [2.0, 5.0])
    assert lower[0] < 2.0 < upper[0]
    assert 1.0 <= lower[0] and upper[0] <= 3.0
    assert lower[1] == upper[1] == 5.0
    m, lower, upper = bootstrap_mean_ci(np.array([4.0]))  # one run: zero width
    assert (m[0], lower[0], upper[0]) == (4.0, 4.0, 4.0)


def test_errors() -> None:
    for bad in ([], [[1.0], []], np.zeros((0, 3)), np.zeros((2, 2, 2))):
        with pytest.raises(ScalerlError):
            iqm(bad)
    with pytest.raises(ScalerlError, match="reps"):
        stratified_bootstrap_ci(np.ones((2, 2)), reps=0)
    with pytest.raises(ScalerlError, match="alpha"):
        bootstrap_mean_ci(np.ones(3), alpha=1.0)
