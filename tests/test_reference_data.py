"""The shipped SimbaV2 reference curves: short names, exact match with the source CSVs."""

from __future__ import annotations

import os
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalerl.analysis.reference_data import (
    archive_path,
    reference_frame,
    reference_names,
    short_name,
)
from scalerl.analysis.report import aggregate_table, load_reference, score_at
from scalerl.errors import ScalerlError

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(os.environ.get("SCALERL_REFERENCE_DIR", "/work/shared/reference/simbav2-results"))


def test_short_names_resolve_and_ship_as_package_data():
    names = set(reference_names())
    assert {f"simbav2-utd{u}" for u in (1, 2, 4, 8)} <= names
    assert {"baseline/sac", "scaling/utd/simba-utd4-reset", "design-study/e-mse-loss"} <= names
    assert short_name("scaling/param/simbaV2_cwidth128.csv") == "scaling/param/simbav2-cwidth128"
    assert archive_path().stat().st_size < 3_000_000
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["scalerl"]
    assert any(fnmatch(f"data/{archive_path().name}", p) for p in patterns)
    with pytest.raises(ScalerlError, match="unknown reference 'simbav3'"):
        reference_frame("simbav3")


def test_shipped_rows_match_the_published_file():
    df = reference_frame("simbav2-utd2")
    assert len(df) == 13_540
    first = df.iloc[0]  # the first data row of simbaV2_utd2.csv, copied by hand
    assert (first.exp_name, first.env_name, first.seed, first.metric, first.env_step) == (
        "simbaV2_utd2", "h1-pole-v0", 9000, "avg_return", 0)  # fmt: skip
    assert first.value == 34.269159082720236


def test_a_short_name_reports_like_the_paper():
    df = load_reference("simbav2-utd2")
    assert df["task"].nunique() == 57 and set(df.groupby("task")["seed"].nunique()) == {10}
    table = aggregate_table(score_at(df, 1_000_000), reps=50).set_index(["domain", "metric"])
    assert table.loc[("all", "mean"), "estimate"] == pytest.approx(0.892, abs=5e-4)


@pytest.mark.skipif(not SOURCE.is_dir(), reason="the published CSVs are not on this machine")
def test_every_shipped_file_equals_its_source_csv():
    files = sorted(SOURCE.rglob("*.csv"))
    assert {short_name(f.relative_to(SOURCE).as_posix()) for f in files} == set(reference_names())
    for path in files:
        source = pd.read_csv(path, index_col=0).reset_index(drop=True)
        shipped = reference_frame(short_name(path.relative_to(SOURCE).as_posix()))
        for col in source.columns:
            got, want = shipped[col].to_numpy(), source[col].to_numpy()
            assert np.array_equal(got.astype(want.dtype), want), (path, col)


def test_report_command_takes_a_short_name(tmp_path, capsys):
    from scalerl.cli import main
    from test_report import _run

    for seed in (0, 1):
        _run(tmp_path / "runs", "dmc:walker-walk", seed, [50.0, 400.0])
    out = tmp_path / "report"
    args = ["report", str(tmp_path / "runs"), "--reference", "simbav2-utd2", "--out", str(out)]
    assert main([*args, "--reps", "50"]) == 0
    text = (out / "report.md").read_text()
    assert "simbaV2_utd2 (ref)" in text and "walker-walk" in text
