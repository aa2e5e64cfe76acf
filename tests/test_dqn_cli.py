"""`scalerl train --algo dqn`: presets, run directories, metrics, bad options, exact resume."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
from flax import serialization

from scalerl.cli import main
from scalerl.train import dqn_run
from scalerl.train.logging import read_metrics_csv

TINY = [
    "--algo", "dqn", "--env", "gymnax:CartPole-v1", "--env-steps", "48", "--log-every", "16",
    "--checkpoint-every", "16", "--num-envs", "2", "--train-every", "4", "--learning-starts",
    "16", "--batch-size", "8", "--width", "8", "--depth", "1", "--buffer-capacity", "64",
    "--n-step", "2", "--eval-every", "0", "--no-tensorboard", "--no-progress",
]  # fmt: skip


def _leaves(run_dir: Path) -> list[np.ndarray]:
    payload = serialization.msgpack_restore((run_dir / "checkpoint.msgpack").read_bytes())
    return jax.tree_util.tree_leaves(payload["state"])


@pytest.mark.slow
def test_two_seeds_metrics_and_exact_resume(tmp_path, monkeypatch, capsys):
    args = TINY + ["--run-root", str(tmp_path), "--name", "a", "--seeds", "0-1"]
    assert main(["train", *args]) == 0
    full = tmp_path / "a-s1"
    rows = read_metrics_csv(full / "metrics.csv")
    assert {r["env_step"] for r in rows} == {16, 32, 48}
    names = {r["metric"] for r in rows}
    assert {"train/td_loss", "train/epsilon", "health/q/dormant_0.1", "eval/return"} <= names
    assert "run written to" in capsys.readouterr().out
    assert dqn_run.is_run(full) and not dqn_run.is_run(tmp_path)

    original = dqn_run.FusedRun._checkpoint

    def crash(self, states, carries, done):
        original(self, states, carries, done)
        if done == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(dqn_run.FusedRun, "_checkpoint", crash)
    args = TINY + ["--run-root", str(tmp_path), "--name", "b", "--seeds", "0-1"]
    assert main(["train", *args]) == 130
    monkeypatch.setattr(dqn_run.FusedRun, "_checkpoint", original)
    assert main(["train", "--resume", str(tmp_path / "b-s0"), str(tmp_path / "b-s1")]) == 0
    for a, b in zip(_leaves(full), _leaves(tmp_path / "b-s1"), strict=True):
        np.testing.assert_array_equal(a, b)
    resumed = read_metrics_csv(tmp_path / "b-s1" / "metrics.csv")
    assert sorted(r["env_step"] for r in resumed) == sorted(r["env_step"] for r in rows)


def test_presets_follow_the_env_and_options_override():
    cfg = dqn_run.parse_dqn(["--algo", "dqn", "--env", "gymnax:Breakout-MinAtar", "--double"])
    assert cfg.agent.torso == "minatar" and cfg.agent.double and cfg.agent.batch_size == 32
    cfg = dqn_run.parse_dqn(["--algo", "dqn", "--env", "ale:Pong", "--lr", "1e-4"])
    assert cfg.agent.torso == "nature" and cfg.agent.lr == 1e-4 and cfg.agent.train_every == 4
    cfg = dqn_run.parse_dqn(["--algo", "dqn", "--preset", "minatar"])
    assert cfg.env == "gymnax:CartPole-v1" and cfg.agent.torso == "minatar"
    assert dqn_run.strip_algo(["--algo", "dqn", "--name", "dqn"]) == ["--name", "dqn"]


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    assert main(["train", *TINY, "--num-atoms", "2", "--run-root", str(tmp_path)]) == 2
    assert "num_atoms" in capsys.readouterr().err
    assert main(["train", "--algo", "dqn", "--preset", "nope"]) == 2
    assert main(["train", *TINY, "--env", "gymnax:Pendulum-v1", "--run-root", str(tmp_path)]) == 2
    assert "discrete" in capsys.readouterr().err


@pytest.mark.slow
def test_vmapped_seed_equals_the_single_seed_run(tmp_path):
    args = [*TINY, "--no-health", "--run-root", str(tmp_path)]
    assert main(["train", *args, "--name", "pair", "--seeds", "0,1"]) == 0
    assert main(["train", *args, "--name", "one", "--seed", "1"]) == 0
    for a, b in zip(_leaves(tmp_path / "pair-s1"), _leaves(tmp_path / "one"), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
