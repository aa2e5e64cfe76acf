"""Tests for scalerl.analysis.report on hand-made runs and reference files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalerl.analysis.report import (
    COLUMNS,
    aggregate_table,
    comparison_table,
    default_env_step,
    load_reference,
    load_runs,
    normalized_score,
    scaling_figure,
    score_at,
    task_domain,
    write_report,
)
from scalerl.config import AgentConfig, PlasticityConfig, TrainConfig
from scalerl.errors import ScalerlError
from scalerl.train.logging import INDEXED_CSV_HEADER, CsvSink
from scalerl.train.setup import write_config

REFERENCE = Path("/work/shared/reference/simbav2-results")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(root: Path, env: str, seed: int, returns: list[float], utd: float = 2.0, **kw) -> Path:
    """A run directory with config.json and eval/return every 100k frames (from 0)."""
    run_dir = root / f"{env.replace(':', '-')}-utd{utd}-s{seed}"
    run_dir.mkdir(parents=True)
    agent = AgentConfig(critic_width=kw.get("width", 512), plasticity=PlasticityConfig())
    budget = kw.get("env_steps", 100_000 * (len(returns) - 1))
    write_config(run_dir, TrainConfig(env=env, seed=seed, utd=utd, env_steps=budget, agent=agent))
    sink = CsvSink(run_dir / "metrics.csv", "simbav2", env, seed)
    for i, value in enumerate(returns):
        sink.write({"train/critic_loss": 0.1, "eval/return": value}, env_step=100_000 * i)
    sink.close()
    return run_dir


def _reference(path: Path, rows: list[tuple[str, str, int, str, float, float]]) -> Path:
    """A CSV in the reference schema from (exp_name, env_name, seed, metric, step, value)."""
    lines = [INDEXED_CSV_HEADER] + [",".join(map(str, (i, *row))) for i, row in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """cheetah-run at utd 1 and 2 (2 seeds each) and Hopper-v4 at utd 2 (1 seed)."""
    root = tmp_path / "sweep"
    _run(root / "a", "dmc:cheetah-run", 0, [0.0, 400.0, 600.0], utd=1.0)
    _run(root / "a", "dmc:cheetah-run", 1, [0.0, 500.0, 700.0], utd=1.0)
    _run(root / "b", "dmc:cheetah-run", 0, [0.0, 600.0, 800.0])
    _run(root / "b", "dmc:cheetah-run", 1, [0.0, 700.0, 900.0])
    _run(root / "b", "Hopper-v4", 0, [18.791, 1000.0, 3226.0])
    return root


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    rows = [
        ("simbaV2_utd2", "cheetah_run", s, "avg_return", step, v)
        for s, vals in ((0, (0.0, 800.0, 900.0)), (1000, (0.0, 850.0, 950.0)))
        for step, v in zip((0.0, 100000.0, 200000.0), vals, strict=True)
    ]
    rows += [("simbaV2_utd2", "dog-run", 0, "avg_return", 200000.0, 300.0)]
    rows += [("simbaV2_utd2", "cheetah_run", 0, "avg_success", 200000.0, 0.0)]
    return _reference(tmp_path / "ref.csv", rows)


def test_task_domain_and_normalised_scores() -> None:
    assert task_domain("dmc:dog-run") == ("dmc", "dmc-hard")
    assert task_domain("ball-in-cup-catch") == ("dmc", "dmc-easy")
    assert task_domain("Hopper-v4") == ("mujoco", "mujoco")
    assert task_domain("h1_sit_hard_v0") == ("hbench", "hbench")
    assert task_domain("Pendulum-v1") == ("gym", "gym")
    assert task_domain("mw-assembly") == ("other", "other")
    assert normalized_score("dmc:cheetah-run", 800.0) == pytest.approx(0.8)
    assert normalized_score("Hopper-v4", 3226.0) == pytest.approx(1.0)
    assert normalized_score("Hopper-v5", 18.791) == pytest.approx(0.0)
    assert normalized_score("h1-sit_hard-v0", (2.448 + 750.0) / 2) == pytest.approx(0.5)
    assert normalized_score("myo-reach", 12.0, success=0.7) == pytest.approx(0.7)
    assert math.isnan(normalized_score("Pendulum-v1", -150.0))
    np.testing.assert_allclose(normalized_score("walker-walk", np.array([0.0, 500.0])), [0, 0.5])


def test_load_runs_from_sweep_dir(sweep: Path) -> None:
    df = load_runs([sweep])
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 15  # 5 runs x 3 evaluations; train/ rows dropped
    assert set(df["label"]) == {"simbav2 utd=1", "simbav2 utd=2"}
    hopper = df[df["task"] == "hopper-v4"]
    assert set(hopper["suite"]) == {"mujoco"}
    np.testing.assert_allclose(hopper.sort_values("env_step")["score"], [0.0, 0.3059, 1.0], 1e-3)
    cheetah = df[df["task"] == "cheetah-run"]
    assert set(cheetah["domain"]) == {"dmc-easy"}
    assert set(df["utd"]) == {1.0, 2.0}
    assert set(df["critic_width"]) == {512}
    assert set(df["reset"]) == {"none"}
    assert set(df["source"]) == {"run"}


def test_load_runs_accepts_run_dirs_and_csv_files(sweep: Path) -> None:
    one = next(sweep.rglob("metrics.csv"))
    by_file = load_runs([one])
    by_dir = load_runs([one.parent, one])  # the same run twice counts once
    pd.testing.assert_frame_equal(by_file, by_dir)
    assert by_file["label"].iloc[0] == "simbav2"  # nothing varies: the agent name alone


def test_resumed_run_keeps_last_value_per_step(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, "dmc:walker-walk", 0, [10.0, 20.0])
    sink = CsvSink(run_dir / "metrics.csv", "simbav2", "dmc:walker-walk", 0)
    sink.write({"eval/return": 25.0}, env_step=100_000)  # repeated after a resume
    sink.close()
    df = load_runs([run_dir])
    assert df.sort_values("env_step")["return"].tolist() == [10.0, 25.0]


def test_load_runs_errors(tmp_path: Path) -> None:
    with pytest.raises(ScalerlError, match="does not exist"):
        load_runs([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScalerlError, match="no runs found"):
        load_runs([tmp_path / "empty"])
    run_dir = tmp_path / "fresh"
    CsvSink(run_dir / "metrics.csv", "simbav2", "dmc:walker-walk", 0).close()
    with pytest.raises(ScalerlError, match="no evaluation"):
        load_runs([run_dir])


def test_just_started_and_unfinished_runs_are_skipped_by_name(sweep: Path, tmp_path, capsys):
    fresh = sweep / "c" / "fresh"
    fresh.mkdir(parents=True)
    write_config(fresh, TrainConfig(env="dmc:cheetah-run", seed=5))
    CsvSink(fresh / "metrics.csv", "simbav2", "dmc:cheetah-run", 5).close()  # header only
    late = _run(sweep / "c", "dmc:cheetah-run", 6, [0.0, 100.0], utd=4.0, env_steps=200_000)
    df = load_runs([sweep])
    assert set(df["run"]) == {str(p.parent) for p in sweep.rglob("metrics.csv")} - {
        str(fresh),
        str(late),
    }
    err = capsys.readouterr().err
    assert f"skipping {fresh} (no evaluation yet)" in err
    assert f"skipping {late} (unfinished" in err
    assert write_report([sweep], tmp_path / "out", reps=50).is_file()  # no IndexError


def test_all_unfinished_runs_are_reported_at_their_common_step(tmp_path: Path) -> None:
    for seed in (0, 1):
        _run(tmp_path, "dmc:cheetah-run", seed, [0.0, 100.0 * (seed + 1)], env_steps=10**6)
    df = load_runs([tmp_path])
    assert len(df) == 4 and default_env_step(df) == 100_000


def test_single_run_aggregates_are_flagged(tmp_path: Path) -> None:
    run = _run(tmp_path / "runs", "dmc:cheetah-run", 0, [0.0, 400.0])
    text = write_report([run], tmp_path / "out", reps=50).read_text()
    assert "0.600 [0.600, 0.600] | 1 | 1 (single run: no interval) |" in text
    assert "not a confidence interval" in text
    table = write_report([tmp_path / "runs"], tmp_path / "out2", reps=50)
    assert "single run" in table.read_text()


def test_aggregate_axes_hold_every_estimate_and_interval(sweep: Path) -> None:
    from scalerl.analysis.aggregate import AGGREGATES
    from scalerl.analysis.report import aggregate_figure

    agg = aggregate_table(score_at(load_runs([sweep]), 200_000), reps=100)
    agg.loc[agg["label"] == "simbav2 utd=1", ["lower", "upper"]] = [0.1, 0.2]
    agg.loc[agg["label"] == "simbav2 utd=1", "estimate"] = 0.05  # outside its own bar
    fig = aggregate_figure(agg)
    for ax, metric in zip(fig.axes, AGGREGATES, strict=True):
        lo, hi = ax.get_xlim()
        rows = agg[(agg["domain"] == "all") & (agg["metric"] == metric)]
        values = rows[["estimate", "lower", "upper"]].to_numpy()
        assert lo < values.min() and values.max() < hi


def test_load_reference(reference: Path) -> None:
    df = load_reference(reference)
    assert list(df.columns) == list(COLUMNS)
    assert set(df["task"]) == {"cheetah-run", "dog-run"}
    assert set(df["label"]) == {"simbaV2_utd2 (ref)"}
    assert set(df["algo"]) == {"simbaV2"} and set(df["utd"]) == {2.0}
    last = df[(df["task"] == "cheetah-run") & (df["env_step"] == 200_000)]
    assert sorted(last["return"]) == [900.0, 950.0]
    assert last["success"].isna().sum() == 1  # success only logged for seed 0
    np.testing.assert_allclose(sorted(last["score"]), [0.9, 0.95])


def test_two_reference_files_and_exp_name_parsing(reference: Path, tmp_path: Path) -> None:
    rows = [("simbaV2_utd4_reset", "Hopper-v4", 0, "avg_return", 999960.0, 3226.0)]
    rows += [("simbaV2_utd4_reset", "Hopper-v4", 0, "avg_return", 1016626.0, 18.791)]
    df = load_reference([reference, _reference(tmp_path / "reset.csv", rows)])
    assert len(df) == 7 + 2
    hopper = score_at(df[df["task"] == "hopper-v4"], 1_000_000).iloc[0]
    assert (hopper.env_step, hopper.score) == (999960, pytest.approx(1.0))
    assert (hopper.algo, hopper.utd, hopper.reset) == ("simbaV2", 4.0, "periodic")
    assert pd.isna(hopper.critic_width)
    cheetah = df[(df["task"] == "cheetah-run") & (df["env_step"] == 100_000)]
    np.testing.assert_allclose(sorted(cheetah["score"]), [0.8, 0.85])


def test_load_reference_errors(tmp_path: Path) -> None:
    with pytest.raises(ScalerlError, match="not found"):
        load_reference(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("task,return\ncheetah-run,1.0\n")
    with pytest.raises(ScalerlError, match="not a metrics CSV"):
        load_reference(bad)
    other = _reference(tmp_path / "other.csv", [("x", "cheetah-run", 0, "loss", 0.0, 1.0)])
    with pytest.raises(ScalerlError, match="no avg_return"):
        load_reference([other])


def test_score_at_picks_last_eval_at_or_before(sweep: Path) -> None:
    df = load_runs([sweep])
    scores = score_at(df, 150_000)
    assert len(scores) == 5 and set(scores["env_step"]) == {100_000}
    assert sorted(scores[scores["task"] == "cheetah-run"]["return"]) == [400, 500, 600, 700]
    assert len(score_at(df, -1)) == 0
    assert default_env_step(df) == 200_000


def test_aggregate_table_by_hand(sweep: Path) -> None:
    table = aggregate_table(score_at(load_runs([sweep]), 200_000), reps=200)
    row = table[(table["label"] == "simbav2 utd=2") & (table["domain"] == "all")]
    means = row.set_index("metric")["estimate"]
    assert means["mean"] == pytest.approx((0.85 + 1.0) / 2)  # cheetah (0.8, 0.9), Hopper 1.0
    assert means["optimality gap"] == pytest.approx(1 - (0.85 + 1.0) / 2)
    assert set(row["tasks"]) == {2} and set(row["runs"]) == {3}
    per_domain = table[table["label"] == "simbav2 utd=2"]["domain"]
    assert set(per_domain) == {"all", "dmc-easy", "mujoco"}
    assert set(table[table["label"] == "simbav2 utd=1"]["domain"]) == {"all"}


def test_comparison_table(sweep: Path, reference: Path) -> None:
    runs, ref = load_runs([sweep]), load_reference(reference)
    table = comparison_table(runs, ref, 200_000, reps=200)
    assert list(table["task"]) == ["cheetah-run", "cheetah-run"]  # Hopper, dog-run not in both
    row = table[table["ours"] == "simbav2 utd=1"].iloc[0]
    assert (row.ours_mean, row.ours_n, row.ours_step) == (650.0, 2, 200_000)
    assert (row.ref_mean, row.ref_n, row.reference) == (925.0, 2, "simbaV2_utd2 (ref)")
    assert row["diff"] == -275.0
    assert row.ours_low <= 650.0 <= row.ours_high
    with pytest.raises(ScalerlError, match="no common tasks"):
        comparison_table(runs[runs["task"] == "hopper-v4"], ref, 200_000)


def test_scaling_figure_lines(sweep: Path) -> None:
    scores = score_at(load_runs([sweep]), 200_000)
    fig = scaling_figure(scores, by="utd", hue="reset", reps=100)
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_allclose(line.get_xdata(), [1.0, 2.0])
    np.testing.assert_allclose(line.get_ydata(), [0.65, 0.9])  # n < 4: IQM = mean
    empty = scaling_figure(scores.iloc[:0], by="critic_width")
    assert "no data" in empty.axes[0].texts[0].get_text()


def test_write_report(sweep: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    path = write_report([sweep], out, reference=reference, reps=200)
    assert path == out / "report.md"
    text = path.read_text()
    for part in (
        "## Aggregate normalised scores",
        "## Comparison with the reference",
        "200,000 environment frames",
        "learning_curves.png",
        "scaling_utd.png",
    ):
        assert part in text
    assert "scaling_critic_width" not in text  # one critic width only
    for stem in ("learning_curves", "aggregate", "scaling_utd"):
        assert (out / f"{stem}.png").read_bytes()[:8] == PNG_MAGIC
        assert (out / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
    assert "| cheetah-run | simbav2 utd=1 | 650.00 [600.00, 700.00] | 2 | 200,000 |" in text
    assert "| hopper-v4 | simbav2 utd=2 | 3226.00 (single run) | 1 | 200,000 |" in text
    returns = pd.read_csv(out / "task_returns.csv")
    assert len(returns) == 3 and set(returns["label"]) == {"simbav2 utd=1", "simbav2 utd=2"}
    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns) == list(COLUMNS)
    assert len(scores) == 5 + 2  # 5 runs + 2 reference seeds on the common task
    assert set(scores["env_step"]) == {200_000}


def test_write_report_errors(sweep: Path, tmp_path: Path) -> None:
    ref = _reference(tmp_path / "ref.csv", [("x", "dog-run", 0, "avg_return", 0.0, 1.0)])
    with pytest.raises(ScalerlError, match="no common tasks"):
        write_report([sweep], tmp_path / "out", reference=ref)
    with pytest.raises(ScalerlError, match="not found"):
        write_report([sweep], tmp_path / "out", reference=tmp_path / "nope.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScalerlError, match="no runs found"):
        write_report([tmp_path / "empty"], tmp_path / "out")


@pytest.mark.skipif(
    not (REFERENCE / "simbaV2_utd2.csv").is_file(), reason="reference results not present"
)
def test_real_reference_file() -> None:
    df = load_reference(REFERENCE / "simbaV2_utd2.csv")
    assert df["task"].nunique() == 57
    assert set(df.groupby("task")["seed"].nunique()) == {10}
    domains = df.groupby("domain")["task"].nunique().to_dict()
    assert domains == {"dmc-easy": 21, "dmc-hard": 7, "mujoco": 5, "myosuite": 10, "hbench": 14}
    table = aggregate_table(score_at(df, 1_000_000), reps=50).set_index(["domain", "metric"])
    assert table.loc[("all", "mean"), "estimate"] == pytest.approx(0.892, abs=5e-4)  # spec §8.3
    assert table.loc[("mujoco", "mean"), "estimate"] == pytest.approx(1.617, abs=5e-4)
