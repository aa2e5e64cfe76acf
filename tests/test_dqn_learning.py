"""DQN learns gymnax:CartPole-v1 (fused loop): random play returns about 22."""

from __future__ import annotations

import pytest

from scalerl.train import dqn_run
from scalerl.train.logging import read_metrics_csv

FAST = [
    "--algo", "dqn", "--env", "gymnax:CartPole-v1", "--env-steps", "21000", "--log-every",
    "5000", "--learning-starts", "1000", "--num-envs", "4", "--train-every", "1",
    "--batch-size", "64", "--target-every", "100", "--lr", "1e-3", "--eps-decay-steps",
    "10000", "--double", "--no-health", "--no-tensorboard", "--no-progress",
]  # fmt: skip


@pytest.mark.slow
def test_dqn_reaches_150_on_cartpole(tmp_path):
    (run_dir,) = dqn_run.main([*FAST, "--run-root", str(tmp_path), "--name", "cp"])
    rows = read_metrics_csv(run_dir / "metrics.csv")
    train = [r["value"] for r in rows if r["metric"] == "train/episode_return"]
    assert train[0] < 40, train  # the first log point: mostly random play
    returns = {r["env_step"]: r["value"] for r in rows if r["metric"] == "eval/return"}
    assert returns[max(returns)] >= 150, returns  # greedy (ε 0.05) episodes at the end
