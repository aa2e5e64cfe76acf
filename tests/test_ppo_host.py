"""PPO's Gymnasium host loop: sequential seeds, health metrics, exact resume after a kill,
`scalerl evaluate`."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from flax import serialization

from scalerl.cli import main
from scalerl.train import ppo_host
from scalerl.train.evaluate import evaluate_run
from scalerl.train.logging import read_metrics_csv

TINY = [
    "--algo", "ppo", "--env", "Pendulum-v1", "--env-steps", "64", "--log-every", "16",
    "--checkpoint-every", "32", "--num-envs", "2", "--num-steps", "8", "--num-minibatches", "2",
    "--update-epochs", "1", "--actor-width", "8", "--value-width", "8", "--no-tensorboard",
    "--no-progress", "--normalize-obs", "--normalize-reward", "--max-episode-steps", "12",
]  # fmt: skip
"""8 rollouts of 2 x 8 steps; log points every rollout, resume points every second one."""


def _leaves(run_dir: Path) -> list[np.ndarray]:
    payload = serialization.msgpack_restore((run_dir / "checkpoint.msgpack").read_bytes())
    return jax.tree_util.tree_leaves(payload["state"])


def _rows(run_dir: Path) -> list[tuple]:
    rows = read_metrics_csv(run_dir / "metrics.csv")
    return sorted((r["metric"], r["env_step"], r["value"]) for r in rows
                  if not r["metric"].startswith("perf/"))  # fmt: skip


def test_seeds_run_in_turn_and_a_killed_run_resumes_exactly(tmp_path, monkeypatch):
    assert main(["train", *TINY, "--run-root", str(tmp_path), "--name", "a", "--seeds", "0-1"]) == 0
    full = tmp_path / "a-s1"
    rows = _rows(full)
    names = {r[0] for r in rows}
    assert {"train/policy_loss", "train/episode_return", "eval/return"} <= names
    assert {"health/actor/param_norm", "health/value/dormant_0"} <= names
    assert sorted({r[1] for r in rows}) == [16, 32, 48, 64]
    assert sorted(p.name for p in (full / "resume").iterdir()) == [
        "step-0000000032.msgpack",
        "step-0000000064.msgpack",
    ]
    # kill after the log point at 48 (resume point at 32): the resume replays 4 rollouts of
    # actions, drops the row logged at 48 and redoes it
    original = ppo_host.HostLoop._log

    def crash(self, summary, iteration):
        original(self, summary, iteration)
        if iteration == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(ppo_host.HostLoop, "_log", crash)
    assert main(["train", *TINY, "--run-root", str(tmp_path), "--name", "b", "--seed", "1"]) == 130
    monkeypatch.setattr(ppo_host.HostLoop, "_log", original)
    assert main(["train", "--resume", str(tmp_path / "b")]) == 0
    for x, y in zip(_leaves(full), _leaves(tmp_path / "b"), strict=True):
        np.testing.assert_array_equal(x, y)
    assert _rows(tmp_path / "b") == rows  # seed 1 of the 2-seed job equals it, bit for bit
    # scalerl evaluate: deterministic episodes of the saved policy
    result = evaluate_run(full, episodes=2, seed=5)
    assert list(result.lengths) == [12, 12] and np.all(result.returns < 0)
    np.testing.assert_array_equal(evaluate_run(full, episodes=2, seed=5).returns, result.returns)


def test_replay_restores_observations_and_episode_tallies():
    from scalerl.config_ppo import PPOConfig, PPOTrainConfig

    cfg = PPOTrainConfig(env="Pendulum-v1", max_episode_steps=5, agent=PPOConfig(num_envs=2))
    venv = ppo_host.make_vector_env(cfg, 3)
    venv.reset(seed=3)
    actions = np.linspace(-1, 1, 7 * 2, dtype=np.float32).reshape(7, 2, 1)
    live = ppo_host.Tally(np.zeros(2), np.zeros(2))
    for a in actions:
        obs, reward, term, trunc, _ = venv.step(a)
        live.add(np.asarray(reward, np.float32), np.logical_or(term, trunc))
    again = ppo_host.Tally(np.zeros(2), np.zeros(2))
    replayed = ppo_host.replay(ppo_host.make_vector_env(cfg, 3), 3, actions, again)
    np.testing.assert_array_equal(replayed, obs)
    np.testing.assert_array_equal(again.ret, live.ret)
    assert list(again.length) == [2, 2] and again.returns == []  # 7 steps = 5 + 2
