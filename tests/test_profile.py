"""`--profile`: a timing breakdown by phase in the run directory (no timing thresholds)."""

from __future__ import annotations

import json
import time

import pytest

from scalerl.cli import main
from scalerl.train.profile import PHASES, Profiler, profile_table

ARGS = [
    "--env", "Pendulum-v1", "--agent", "mlp", "--env-steps", "120", "--warmup-steps", "40",
    "--utd", "1", "--eval-every", "60", "--eval-episodes", "1", "--log-every", "20",
    "--health-every", "50", "--critic-width", "16", "--actor-width", "16", "--batch-size", "16",
    "--no-progress", "--no-tensorboard",
]  # fmt: skip


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    start = time.perf_counter()
    assert main(["train", *ARGS, "--run-root", str(root), "--name", "p", "--profile"]) == 0
    return root / "p", time.perf_counter() - start


def test_profile_files_hold_every_phase(profiled, capsys):
    run_dir, _ = profiled
    report = json.loads((run_dir / "profile.json").read_text())
    assert set(report["phases"]) == set(PHASES)
    table = (run_dir / "profile.txt").read_text()
    assert all(name in table for name in (*PHASES, "other", "total"))
    calls = {name: row["calls"] for name, row in report["phases"].items()}
    # 120 agent steps; evaluations at steps 0, 60 and 120, checkpoints at 60 and 120.
    assert calls["env"] == 120 and calls["eval"] == 3 and calls["checkpoint"] == 2
    assert calls["compile"] == 2  # the warm-up and the 1-update variant of the train step
    assert calls["setup"] == 1 and calls["video"] == 0


def test_phases_add_up_to_the_wall_time(profiled):
    run_dir, outer = profiled
    report = json.loads((run_dir / "profile.json").read_text())
    parts = sum(row["seconds"] for row in report["phases"].values())
    assert all(row["seconds"] >= 0 for row in report["phases"].values())
    assert report["total_s"] <= outer
    assert parts == pytest.approx(report["total_s"], rel=0.1)
    assert report["unaccounted_s"] == pytest.approx(report["total_s"] - parts)


def test_nested_phases_are_charged_once():
    prof = Profiler(True)
    with prof.phase("setup"):
        time.sleep(0.02)
        with prof.phase("eval"):
            time.sleep(0.03)
    report = prof.report()
    setup, ev = report["phases"]["setup"]["seconds"], report["phases"]["eval"]["seconds"]
    assert setup + ev == pytest.approx(report["total_s"], abs=0.01)
    assert setup < ev  # the evaluation's time is not also charged to the setup


def test_disabled_profiler_records_nothing():
    prof = Profiler(False)
    with prof.phase("env"):
        time.sleep(0.001)
    prof.move("update", "compile", 1.0)
    assert sum(prof.seconds.values()) == 0 and sum(prof.calls.values()) == 0
    assert "total" in profile_table(prof.report())


def test_profile_flag_is_saved_and_off_by_default(profiled):
    run_dir, _ = profiled
    config = json.loads((run_dir / "config.json").read_text())
    assert config["profile"] is True
    from scalerl.config import TrainConfig

    assert TrainConfig().profile is False
