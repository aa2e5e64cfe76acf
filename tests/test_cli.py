"""CLI smoke tests: every command with tiny budgets, and user errors without tracebacks."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from scalerl.cli import main
from scalerl.config import AgentConfig, PlasticityConfig, TrainConfig
from scalerl.errors import TrainingError
from scalerl.train import loop
from scalerl.train.checkpoint import load_checkpoint
from scalerl.train.evaluate import load_run_agent
from scalerl.train.setup import read_config

TINY = [
    "--env",
    "dmc:cartpole-balance",
    "--env-steps",
    "240",
    "--warmup-steps",
    "60",
    "--utd",
    "1",
    "--eval-every",
    "60",
    "--eval-episodes",
    "1",
    "--max-episode-steps",
    "100",
    "--critic-width",
    "16",
    "--actor-width",
    "16",
    "--batch-size",
    "8",
    "--log-every",
    "20",
    "--health-every",
    "60",
    "--video-every",
    "120",
    "--no-progress",
]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"MUJOCO_GL": "egl"}
    return subprocess.run(
        [sys.executable, "-m", "scalerl.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", *TINY, "--run-root", str(root), "--name", "tiny"]) == 0
    return root / "tiny"


def test_train_writes_the_run_layout(tiny_run):
    for name in ("config.json", "metrics.csv", "checkpoint.msgpack", "learning_curve.png"):
        assert (tiny_run / name).stat().st_size > 0, name
    assert list((tiny_run / "tb").glob("events.out.tfevents.*"))
    rows = (tiny_run / "metrics.csv").read_text().splitlines()
    assert rows[0] == "exp_name,env_name,seed,metric,env_step,value"
    evals = [r.split(",") for r in rows if ",eval/return," in r]
    # evaluations at agent steps 0, 60, 60*2 ... 120 (= 240 frames / repeat 2); x-axis in frames
    assert [int(r[4]) for r in evals] == [0, 120, 240]
    metrics = {r.split(",")[3] for r in rows[1:]}
    for key in (
        "train/critic_loss",
        "train/actor_loss",
        "train/temperature",
        "train/entropy",
        "train/q_mean",
        "perf/updates_per_s",
        "perf/env_steps_per_s",
        "eval/return",
        "health/critic/feature_norm",
        "health/actor/elr_grad_ratio",
    ):
        assert key in metrics, key


def test_evaluate_prints_mean_and_std(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "return" in out and "+-" in out and "over 2 episodes" in out


def test_training_and_evaluate_record_videos(tiny_run, tmp_path, capsys):
    assert (tiny_run / "videos" / "eval-240.mp4").stat().st_size > 1000  # agent step 120 x 2
    out = tmp_path / "clip.gif"
    args = [
        "--episodes",
        "1",
        "--video",
        "--video-out",
        str(out),
        "--width",
        "64",
        "--height",
        "48",
    ]
    assert main(["evaluate", str(tiny_run), *args]) == 0
    assert f"video written to {out}" in capsys.readouterr().out
    assert out.stat().st_size > 1000


def test_envs_lists_suites_and_installed_tasks(capsys):
    assert main(["envs", "--suite", "dmc"]) == 0
    text = capsys.readouterr().out
    assert "dmc:cartpole-swingup" in text and "dmc:dog-run" in text


def test_existing_run_directory_is_not_overwritten(tiny_run, capsys):
    code = main(["train", *TINY, "--run-root", str(tiny_run.parent), "--name", "tiny"])
    assert code == 2
    assert "already exists" in capsys.readouterr().err


def test_plot_draws_the_health_panel(tiny_run, tmp_path, capsys):
    out = tmp_path / "health.png"
    assert main(["plot", str(tiny_run), str(tiny_run), "--out", str(out), "--net", "actor"]) == 0
    assert out.stat().st_size > 10_000 and out.with_suffix(".svg").exists()
    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert "no metrics file" in capsys.readouterr().err


def test_help_documents_every_option():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    fields = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "agent"]
    fields += [f.name for f in dataclasses.fields(AgentConfig) if f.name != "plasticity"]
    fields += [f.name for f in dataclasses.fields(PlasticityConfig)]
    for name in fields:
        assert "--" + name.replace("_", "-") in result.stdout, name
    top = run_cli("--help")
    assert "train" in top.stdout and "evaluate" in top.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--env", "NoSuchEnv-v9"], "dmc:cartpole-swingup"),
        (["train", "--env", "dmc:cartpole-nope"], "cartpole"),
        (["train", "--utd", "0"], "utd must be positive"),
        (["train", "--critic-width", "-3"], "critic_width must be positive"),
        (["train", "--agent", "ppo"], "unknown agent"),
        (["evaluate", "/nonexistent/run"], "not a scalerl run directory"),
    ],
)
def test_user_errors_give_one_line_and_exit_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("scalerl: error")]
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_non_finite_loss_stops_and_saves_state(tiny_run, tmp_path):
    sac, state, _ = load_run_agent(tiny_run)
    seed_run = loop.SeedRun(read_config(tiny_run), tmp_path, None, None, None, None)
    states = jax.tree_util.tree_map(lambda x: x[None], state)
    with pytest.raises(TrainingError, match="train/critic_loss became nan at env step 20"):
        loop._check_losses(seed_run, states, 0, {"train/critic_loss": np.float32("nan")}, 10)
    saved, _ = load_checkpoint(tmp_path / "checkpoint_nan.msgpack", state)
    np.testing.assert_array_equal(
        saved.actor.params["head"]["mean"]["bias"], state.actor.params["head"]["mean"]["bias"]
    )


def test_plasticity_benchmark_prints_its_table(capsys):
    args = ["--num-tasks", "2", "--seeds", "1", "--steps", "20", "--variants", "base", "nap"]
    assert main(["plasticity", *args]) == 0
    out = capsys.readouterr().out
    assert "base" in out and "nap" in out and "|" in out


def test_sweep_and_report_are_wired(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "scalerl: error:" in capsys.readouterr().err
    code = main(
        ["sweep", "--envs", "Pendulum-v1", "--set", "no_such_field=1", "--out", str(tmp_path)]
    )
    assert code == 2
    assert "no_such_field" in capsys.readouterr().err
