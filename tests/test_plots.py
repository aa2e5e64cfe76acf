"""Tests for scalerl.analysis.plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scalerl.analysis.plots import (
    normalise_env_name,
    plot_compare,
    plot_learning_curve,
    seed_statistics,
)
from scalerl.errors import ScalerlError
from scalerl.train.logging import CsvSink

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REFERENCE = Path("/work/shared/reference/simbav2-results")


def _write_run(path: Path, exp_name: str, seed: int, offset: float, with_eval: bool = True) -> Path:
    sink = CsvSink(path, exp_name, "cheetah_run", seed)
    for step in (0, 1000, 2000, 3000):
        metrics = {"train/loss": 1.0 / (step + 1)}
        if with_eval:
            metrics["eval/return"] = step / 10 + offset
        sink.write(metrics, env_step=step)
    sink.close()
    return path


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5000


def test_learning_curve_png_for_two_seeds(tmp_path: Path) -> None:
    csv = tmp_path / "metrics.csv"
    _write_run(csv, "sac", 0, 0.0)
    _write_run(csv, "sac", 1, 20.0)
    out = plot_learning_curve(csv, tmp_path / "plots" / "curve.png")
    assert out == tmp_path / "plots" / "curve.png"
    _assert_png(out)


def test_learning_curve_without_metric_draws_note(tmp_path: Path) -> None:
    csv = _write_run(tmp_path / "metrics.csv", "sac", 0, 0.0, with_eval=False)
    out = plot_learning_curve(csv, tmp_path / "curve.png", title="cheetah-run")
    _assert_png(out)


def test_seed_statistics_interpolates_on_common_range() -> None:
    a = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0]))
    b = (np.array([0.0, 20.0, 30.0]), np.array([2.0, 22.0, 100.0]))
    steps, mean, std = seed_statistics([a, b])
    np.testing.assert_array_equal(steps, [0.0, 10.0, 20.0])
    np.testing.assert_allclose(mean, [1.0, 11.0, 21.0])
    np.testing.assert_allclose(std, [1.0, 1.0, 1.0])


def test_compare_reference_and_run(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "metrics.csv", "scalerl", 0, 0.0)
    ref = tmp_path / "ref.csv"
    lines = (REFERENCE / "simbaV2_utd2.csv").read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ",cheetah-run," in ln]
    ref.write_text("\n".join(keep) + "\n")
    out = plot_compare(
        [run, ref], tmp_path / "cmp.png", metric=("eval/return", "avg_return"),
        env_name="cheetah-run",
    )  # fmt: skip
    _assert_png(out)


def test_compare_without_rows_and_bad_label(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "metrics.csv", "sac", 0, 0.0, with_eval=False)
    _assert_png(plot_compare([run], tmp_path / "empty.png", metric="eval/return"))
    with pytest.raises(ScalerlError, match="label_by"):
        plot_compare([run], tmp_path / "x.png", label_by="colour")


def test_normalise_env_name() -> None:
    assert normalise_env_name("ball_in_cup-catch") == normalise_env_name("ball-in-cup-catch")
    assert normalise_env_name("H1-sit_hard-v0") == "h1-sit-hard-v0"


def test_env_names_match_reference_spelling_across_prefixes():
    from scalerl.analysis.plots import normalise_env_name

    assert normalise_env_name("dmc:ball_in_cup-catch") == normalise_env_name("ball-in-cup-catch")
    assert normalise_env_name("Hopper-v4") == "hopper-v4"
