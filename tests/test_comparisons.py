"""Probability of improvement, performance profiles, aggregate curves and their report hook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalerl.analysis.comparisons import (
    probability_of_improvement,
    probability_of_improvement_ci,
)
from scalerl.analysis.profiles import (
    aggregate_curve,
    performance_profile,
    performance_profile_ci,
)
from scalerl.analysis.report import write_report
from scalerl.analysis.report_extras import aggregate_curves, improvement_table
from scalerl.errors import ScalerlError
from scalerl.train.logging import CsvSink

X = [[3.0, 4.0], [1.0]]  # task A: 2 runs, task B: 1 run
Y = [[1.0, 5.0], [0.0, 0.0, 2.0]]


def test_probability_of_improvement_by_hand() -> None:
    # one task: pairs (1,2)(1,2)(2,2)(2,2)(3,2)(3,2) -> 0 0 .5 .5 1 1 -> 3/6
    assert probability_of_improvement([[1.0, 2.0, 3.0]], [[2.0, 2.0]]) == 0.5
    # task A: 3>1, 3<5, 4>1, 4<5 -> 2/4; task B: 1>0, 1>0, 1<2 -> 2/3; mean 7/12
    assert probability_of_improvement(X, Y) == pytest.approx(7 / 12)
    assert probability_of_improvement(Y, X) == pytest.approx(5 / 12)  # complement
    assert probability_of_improvement(np.array([[1.0, 9.0]]), np.array([[0.0, 9.0]])) == 0.75


def test_probability_of_improvement_ci() -> None:
    ci = probability_of_improvement_ci(X, Y, reps=500, seed=3)
    assert ci.estimate == pytest.approx(7 / 12) and 0.0 <= ci.lower <= ci.estimate <= ci.upper
    assert ci.upper <= 1.0 and ci.upper - ci.lower > 0.1
    single = probability_of_improvement_ci([[2.0], [1.0]], [[1.0], [1.0]], reps=50)
    assert tuple(single) == (0.75, 0.75, 0.75)  # one run per side and task: no spread
    assert probability_of_improvement_ci(X, Y, reps=200, seed=1) == probability_of_improvement_ci(
        X, Y, reps=200, seed=1
    )
    with pytest.raises(ScalerlError, match="same tasks"):
        probability_of_improvement(X, [[1.0]])


def test_performance_profile_by_hand() -> None:
    scores = [[0.0, 1.0, 2.0, 3.0], [0.5, 2.5]]
    taus = [-1.0, 0.25, 1.5, 3.0]
    # A: 4/4, 3/4, 2/4, 0/4; B: 2/2, 2/2, 1/2, 0/2 (strictly above tau)
    np.testing.assert_allclose(performance_profile(scores, taus), [1.0, 0.875, 0.5, 0.0])
    est, low, high = performance_profile_ci(scores, taus, reps=300)
    np.testing.assert_allclose(est, [1.0, 0.875, 0.5, 0.0])
    assert np.all(low <= est) and np.all(est <= high) and low[0] == high[0] == 1.0
    assert high[2] - low[2] > 0.2
    flat = performance_profile_ci(np.full((3, 2), 0.7), [0.5, 1.0], reps=50)
    np.testing.assert_allclose(np.stack(flat), [[1.0, 0.0]] * 3)


def test_aggregate_curve_by_hand() -> None:
    steps = [np.arange(1.0, 5.0), np.array([[0.0, 0, 10, 10], [10, 10, 20, 20]])]
    est, low, high = aggregate_curve(steps, reps=200)
    np.testing.assert_allclose(est, [2.5, 10.0])  # IQM of 1..4; middle half of 8 values
    assert np.all(low <= est) and np.all(est <= high)
    with pytest.raises(ScalerlError, match="no evaluation steps"):
        aggregate_curve([])


def _tidy(rows: list[tuple[str, str, int, int, float]]) -> pd.DataFrame:
    cols = ["label", "task", "seed", "env_step", "score"]
    return pd.DataFrame(rows, columns=cols).assign(run=lambda d: d["label"] + "-run")


def test_improvement_table_and_aggregate_curves_on_tidy_rows() -> None:
    scores = _tidy([("a", "t1", 0, 100, 0.9), ("a", "t1", 1, 100, 0.7), ("b", "t1", 0, 100, 0.8),
                    ("b", "t2", 0, 100, 0.1), ("c", "t3", 0, 100, 0.5)])  # fmt: skip
    table = improvement_table(scores, reps=100)
    assert list(zip(table.x, table.y, table.tasks, strict=True)) == [("a", "b", 1)]
    assert table.estimate.iloc[0] == 0.5  # 0.9 > 0.8, 0.7 < 0.8; c shares no task
    curves = _tidy([("a", "t1", 0, 0, 0.1), ("a", "t1", 1, 0, 0.3), ("a", "t1", 0, 100, 0.5),
                    ("a", "t1", 1, 100, 0.9), ("a", "t2", 0, 100, np.nan)])  # fmt: skip
    out = aggregate_curves(curves, reps=100)
    assert list(out["env_step"]) == [0, 100] and list(out["runs"]) == [2, 2]
    np.testing.assert_allclose(out["estimate"], [0.2, 0.7])  # n = 2 keeps both scores


def _run(root: Path, name: str, seed: int, returns: list[float]) -> None:
    run_dir = root / f"{name}-{seed}"
    run_dir.mkdir(parents=True)
    sink = CsvSink(run_dir / "metrics.csv", name, "dmc:cheetah-run", seed)
    for i, value in enumerate(returns):
        sink.write({"eval/return": value}, env_step=1000 * i)
    sink.close()


def test_write_report_adds_sections(tmp_path: Path) -> None:
    for seed in (0, 1):
        _run(tmp_path / "runs", "simbav2", seed, [0.0, 500.0 + 100 * seed, 900.0])
        _run(tmp_path / "runs", "mlp", seed, [0.0, 300.0, 400.0 + 100 * seed])
    text = write_report([tmp_path / "runs"], tmp_path / "out", reps=100).read_text()
    assert "## Probability of improvement" in text and "performance_profile.png" in text
    assert "| mlp | simbav2 | 1 | 0.000 [0.000, 0.000] |" in text  # every simbav2 run is higher
    curves = pd.read_csv(tmp_path / "out" / "aggregate_curves.csv")
    assert list(curves["env_step"]) == [0, 1000, 2000] * 2
    np.testing.assert_allclose(curves.loc[curves.label == "simbav2", "estimate"], [0, 0.55, 0.9])
    for stem in ("performance_profile", "aggregate_curves"):
        assert (tmp_path / "out" / f"{stem}.png").stat().st_size > 1000
