"""DQN's host loop: Gymnasium discrete ids and ale: ids with unclipped logged returns."""

from __future__ import annotations

import numpy as np
import pytest

from scalerl.cli import main
from scalerl.train.dqn_host import game_scores
from scalerl.train.logging import read_metrics_csv

TINY = [
    "--algo", "dqn", "--env-steps", "32", "--log-every", "16", "--learning-starts", "8",
    "--train-every", "4", "--batch-size", "4", "--buffer-capacity", "32", "--no-tensorboard",
    "--no-progress",
]  # fmt: skip


def test_game_scores_prefer_raw_reward() -> None:
    clipped = np.array([1.0, -1.0], np.float32)
    np.testing.assert_array_equal(game_scores(clipped, {}), clipped)
    info = {"raw_reward": np.array([7.0, -0.5])}
    np.testing.assert_array_equal(game_scores(clipped, info), [7.0, -0.5])


def test_gymnasium_cartpole_run(tmp_path, capsys) -> None:
    args = [*TINY, "--env", "CartPole-v1", "--num-envs", "2", "--width", "8", "--depth", "1",
            "--eps-eval", "0", "--eval-episodes", "2"]  # fmt: skip
    assert main(["train", *args, "--run-root", str(tmp_path), "--name", "cp"]) == 0
    rows = read_metrics_csv(tmp_path / "cp" / "metrics.csv")
    names = {r["metric"] for r in rows}
    assert {"train/td_loss", "train/episode_return", "health/q/param_norm"} <= names
    assert {r["env_step"] for r in rows} == {16, 32}
    evals = {r["metric"]: r["value"] for r in rows if r["metric"].startswith("eval/")}
    assert {r["env_step"] for r in rows if r["metric"] == "eval/return"} == {32}  # run's end
    assert evals["eval/return"] == evals["eval/length"] >= 8  # greedy CartPole: the length
    assert (tmp_path / "cp" / "resume" / "step-0000000032.msgpack").is_file()
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "cp"), "--episodes", "2"]) == 0
    assert "over 2 episodes" in capsys.readouterr().out


@pytest.mark.slow
def test_ale_pong_run(tmp_path) -> None:
    pytest.importorskip("ale_py")
    args = [*TINY, "--env", "ale:Pong", "--no-health", "--eval-episodes", "1"]
    assert main(["train", *args, "--run-root", str(tmp_path), "--name", "pong"]) == 0
    rows = read_metrics_csv(tmp_path / "pong" / "metrics.csv")
    assert "train/q_mean" in {r["metric"] for r in rows}
    evals = {r["metric"]: r["value"] for r in rows if r["metric"].startswith("eval/")}
    assert -21 <= evals["eval/return"] <= 21 and evals["eval/length"] > 100  # whole game


def test_frames_need_a_torso(tmp_path, capsys) -> None:
    args = [*TINY, "--env", "CartPole-v1", "--preset", "minatar", "--run-root", str(tmp_path)]
    assert main(["train", *args]) == 2
    assert "--torso" in capsys.readouterr().err
