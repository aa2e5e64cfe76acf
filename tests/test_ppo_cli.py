"""`scalerl train --algo ppo`: run directories, metrics, options, exact resume."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
from flax import serialization

from scalerl.cli import main
from scalerl.config_ppo import PPOConfig, PPOTrainConfig
from scalerl.errors import ConfigError
from scalerl.train import ppo_run
from scalerl.train.logging import read_metrics_csv

TINY = [
    "--algo", "ppo", "--env", "gymnax:CartPole-v1", "--env-steps", "32", "--log-every", "16",
    "--checkpoint-every", "16", "--num-envs", "2", "--num-steps", "8", "--num-minibatches", "2",
    "--update-epochs", "1", "--actor-width", "8", "--value-width", "8", "--no-tensorboard",
    "--no-progress", "--no-health",
]  # fmt: skip


def _params(run_dir: Path) -> list[np.ndarray]:
    payload = serialization.msgpack_restore((run_dir / "checkpoint.msgpack").read_bytes())
    return jax.tree_util.tree_leaves(payload["state"])


@pytest.mark.slow
def test_cli_runs_two_seeds_and_resume_is_exact(tmp_path, monkeypatch, capsys):
    args = TINY + ["--run-root", str(tmp_path), "--name", "a", "--seeds", "0-1"]
    assert main(["train", *args]) == 0
    full = tmp_path / "a-s1"
    rows = read_metrics_csv(full / "metrics.csv")
    assert {r["env_step"] for r in rows} == {16, 32}
    assert {"train/policy_loss", "perf/env_steps_per_second"} <= {r["metric"] for r in rows}
    assert "run written to" in capsys.readouterr().out

    original = ppo_run.FusedRun._checkpoint

    def crash(self, states, carries, iteration):
        original(self, states, carries, iteration)
        raise KeyboardInterrupt

    monkeypatch.setattr(ppo_run.FusedRun, "_checkpoint", crash)
    args = TINY + ["--run-root", str(tmp_path), "--name", "b", "--seeds", "0-1"]
    assert main(["train", *args]) == 130
    monkeypatch.setattr(ppo_run.FusedRun, "_checkpoint", original)
    assert main(["train", "--resume", str(tmp_path / "b-s0"), str(tmp_path / "b-s1")]) == 0
    for a, b in zip(_params(full), _params(tmp_path / "b-s1"), strict=True):
        np.testing.assert_array_equal(a, b)
    resumed = read_metrics_csv(tmp_path / "b-s1" / "metrics.csv")
    assert sorted(r["env_step"] for r in resumed) == sorted(r["env_step"] for r in rows)


def test_bad_options_are_config_errors(tmp_path, capsys):
    assert main(["train", *TINY, "--num-minibatches", "3", "--run-root", str(tmp_path)]) == 2
    assert "not divisible by num_minibatches" in capsys.readouterr().err
    assert main(["train", "--algo", "ppo", "--agent", "nope"]) == 2
    with pytest.raises(ConfigError, match="ReDo"):
        from scalerl.config import PlasticityConfig
        from scalerl.config_ppo import validate_ppo_train

        agent = PPOConfig(plasticity=PlasticityConfig(redo_every=10))
        validate_ppo_train(PPOTrainConfig(agent=agent))


def test_agent_preset_and_strip_algo():
    cfg = ppo_run.parse_ppo(["--algo", "ppo", "--agent", "simbav2", "--lr", "1e-4"])
    assert cfg.agent.agent == "simbav2" and cfg.agent.project_weights and cfg.agent.lr == 1e-4
    assert cfg.agent.actor_width == 128 and cfg.agent.normalize_obs
    assert ppo_run.strip_algo(["--algo", "ppo", "--name", "ppo"]) == ["--name", "ppo"]


def test_summarize_averages_over_finished_episodes():
    import jax.numpy as jnp

    from scalerl.train.ppo_fused import summarize

    metrics = {
        "train/loss": jnp.array([1.0, 3.0]),
        "episodes/episodes": jnp.array([1.0, 3.0]),
        "episodes/return_sum": jnp.array([10.0, 30.0]),
        "episodes/Achievements/collect_wood": jnp.array([100.0, 100.0]),
    }
    out = summarize(metrics)
    assert out["train/loss"] == 2.0 and out["train/episodes"] == 4.0
    assert out["train/episode_return"] == out["eval/return"] == 10.0
    assert out["train/achievement/collect_wood"] == 50.0  # % of episodes that unlocked it
    none = summarize({k: v * 0 for k, v in metrics.items()})
    assert "train/episode_return" not in none and "eval/return" not in none
