"""`scalerl train --algo pqn`: run directories, metrics, exact resume, report, options."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import serialization

from scalerl.cli import main
from scalerl.train import pqn_run
from scalerl.train.logging import read_metrics_csv

TINY = [
    "--algo", "pqn", "--env", "gymnax:CartPole-v1", "--env-steps", "64", "--log-every", "32",
    "--checkpoint-every", "32", "--num-envs", "2", "--num-steps", "16", "--num-minibatches", "2",
    "--update-epochs", "1", "--width", "8", "--depth", "1", "--no-tensorboard", "--no-progress",
]  # fmt: skip


def _params(run_dir: Path) -> list[np.ndarray]:
    payload = serialization.msgpack_restore((run_dir / "checkpoint.msgpack").read_bytes())
    return jax.tree_util.tree_leaves(payload["state"])


@pytest.mark.slow
def test_cli_two_seeds_resume_is_exact_and_report_reads_runs(tmp_path, monkeypatch, capsys):
    args = TINY + ["--run-root", str(tmp_path), "--name", "a", "--seeds", "0-1"]
    assert main(["train", *args]) == 0
    full = tmp_path / "a-s1"
    rows = read_metrics_csv(full / "metrics.csv")
    assert {r["env_step"] for r in rows} == {32, 64}
    names = {r["metric"] for r in rows}
    assert {"train/td_loss", "train/epsilon", "health/q/dormant_0", "eval/return"} <= names
    assert rows[0]["exp_name"] == "pqn-mlp" and pqn_run.is_run(full)

    original = pqn_run.FusedRun._checkpoint

    def crash(self, states, carries, iteration):
        original(self, states, carries, iteration)
        raise KeyboardInterrupt

    monkeypatch.setattr(pqn_run.FusedRun, "_checkpoint", crash)
    args = TINY + ["--run-root", str(tmp_path), "--name", "b", "--seeds", "0-1"]
    assert main(["train", *args]) == 130
    monkeypatch.setattr(pqn_run.FusedRun, "_checkpoint", original)
    assert main(["train", "--resume", str(tmp_path / "b-s0"), str(tmp_path / "b-s1")]) == 0
    for a, b in zip(_params(full), _params(tmp_path / "b-s1"), strict=True):
        np.testing.assert_array_equal(a, b)
    resumed = read_metrics_csv(tmp_path / "b-s1" / "metrics.csv")
    assert sorted(r["env_step"] for r in resumed) == sorted(r["env_step"] for r in rows)

    capsys.readouterr()
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "a-s0"), str(full), "--out", str(out)]) == 0
    assert "pqn-mlp" in (out / "report.md").read_text()
    capsys.readouterr()
    assert main(["evaluate", str(full), "--episodes", "3"]) == 0  # a fused run's checkpoint
    assert "over 3 episodes" in capsys.readouterr().out


def test_bad_options_are_config_errors(tmp_path, capsys):
    assert main(["train", *TINY, "--num-minibatches", "3", "--run-root", str(tmp_path)]) == 2
    assert "not divisible by num_minibatches" in capsys.readouterr().err
    assert main(["train", *TINY, "--env", "Pendulum-v1", "--run-root", str(tmp_path)]) == 2
    assert "JAX-native" in capsys.readouterr().err  # Gymnasium ids other than ale:
    assert main(["train", *TINY, "--torso", "minatar", "--run-root", str(tmp_path)]) == 2
    assert "needs (H, W, C) frames" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written for a rejected run


def test_env_preset_strip_algo_and_is_run(tmp_path):
    cfg = pqn_run.parse_pqn(["--algo", "pqn", "--env", "gymnax:Asterix-MinAtar", "--lr", "1e-3"])
    assert cfg.agent.num_envs == 128 and cfg.agent.q_lambda == 0.65 and cfg.agent.lr == 1e-3
    assert pqn_run.exp_name(cfg) == "pqn-minatar"  # the preset has no dense trunk
    assert pqn_run.parse_pqn(["--algo", "pqn"]).agent.reward_scale == 0.1
    assert pqn_run.strip_algo(["--algo", "pqn", "--name", "pqn"]) == ["--name", "pqn"]
    assert pqn_run.parse_pqn(["--seeds", "0", "1", "5-6", "--seed", "3"]).seeds == "0,1,5-6"
    (tmp_path / "config.json").write_text('{"algo": "ppo"}')
    assert not pqn_run.is_run(tmp_path) and not pqn_run.is_run(tmp_path / "missing")


@pytest.mark.slow
def test_ale_host_loop_runs_with_uint8_frames(tmp_path):
    from scalerl.agents.pqn import make_pqn
    from scalerl.config_pqn import PQNConfig
    from scalerl.train import pqn_host

    args = ["train", "--algo", "pqn", "--env", "ale:Pong", "--env-steps", "128", "--log-every",
            "64", "--num-envs", "2", "--num-steps", "8", "--num-minibatches", "2",
            "--update-epochs", "1", "--no-tensorboard", "--no-progress", "--no-health",
            "--run-root", str(tmp_path), "--name", "pong"]  # fmt: skip
    assert main(args) == 0
    rows = read_metrics_csv(tmp_path / "pong" / "metrics.csv")
    assert {r["env_step"] for r in rows} == {64, 128}  # 2 envs x 8 steps x frame skip 4
    assert (tmp_path / "pong" / "checkpoint.msgpack").is_file()

    venv = pqn_host.make_ale_vector("ale:Pong", 2, 0)
    cfg = PQNConfig(num_envs=2, num_steps=3, num_minibatches=1, trunk="none")
    agent = make_pqn(cfg, (84, 84, 4), 6, 10, "nature")
    obs, _ = venv.reset(seed=0)
    tally = pqn_host.Tally(np.zeros(2), np.zeros(2))
    state = agent.init(jax.random.PRNGKey(0))
    _, traj, _ = pqn_host.collect(agent, jax.jit(agent.act), state, venv, obs, tally)
    venv.close()
    assert traj.obs.dtype == np.uint8 and traj.obs.shape == (3, 2, 84 * 84 * 4)
    assert traj.next_obs.dtype == np.uint8 and traj.action.shape == (3, 2)


@pytest.mark.slow
def test_ale_seeds_health_kill_resume_and_evaluate(tmp_path, monkeypatch, capsys):
    from scalerl.train import pqn_evaluate, pqn_host

    base = ["train", "--algo", "pqn", "--env", "ale:Pong", "--env-steps", "128", "--log-every",
            "64", "--checkpoint-every", "64", "--num-envs", "2", "--num-steps", "8",
            "--num-minibatches", "2", "--update-epochs", "1", "--no-tensorboard",
            "--no-progress", "--run-root", str(tmp_path),
            "--torso", "none", "--trunk", "mlp", "--width", "16", "--depth", "1"]  # fmt: skip
    assert main([*base, "--name", "a", "--seeds", "0", "1"]) == 0  # one after the other
    rows = read_metrics_csv(tmp_path / "a-s1" / "metrics.csv")
    assert {r["env_step"] for r in rows} == {64, 128}  # 2 envs x 8 steps x frame skip 4
    assert {"health/q/dormant_0", "train/td_loss"} <= {r["metric"] for r in rows}
    assert not all(
        np.array_equal(x, y)
        for x, y in zip(_params(tmp_path / "a-s0"), _params(tmp_path / "a-s1"), strict=True)
    )

    original = pqn_host.AleLoop._checkpoint

    def crash(self, pos):
        original(self, pos)
        raise KeyboardInterrupt

    monkeypatch.setattr(pqn_host.AleLoop, "_checkpoint", crash)
    assert main([*base, "--name", "b", "--seed", "1"]) == 130  # killed after env step 64
    monkeypatch.setattr(pqn_host.AleLoop, "_checkpoint", original)
    assert main(["train", "--resume", str(tmp_path / "b")]) == 0
    for x, y in zip(_params(tmp_path / "a-s1"), _params(tmp_path / "b"), strict=True):
        np.testing.assert_array_equal(x, y)
    resumed = read_metrics_csv(tmp_path / "b" / "metrics.csv")
    assert sorted(r["env_step"] for r in resumed) == sorted(r["env_step"] for r in rows)

    # evaluation: ε-greedy episodes with game scores (episodes cut at 400 frames here)
    short = dataclasses.replace(pqn_evaluate.EVAL_OPTIONS, max_episode_frames=400)
    monkeypatch.setattr(pqn_evaluate, "EVAL_OPTIONS", short)
    assert not short.clip_rewards
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "b"), "--episodes", "2"]) == 0
    assert "over 2 episodes" in capsys.readouterr().out
    result = pqn_evaluate.evaluate_pqn_run(tmp_path / "b", episodes=2)
    assert result.returns.shape == (2,) and np.all(result.lengths <= 100)  # 400 frames / 4
    assert np.all(result.returns <= 0) and np.all(result.returns == np.round(result.returns))
