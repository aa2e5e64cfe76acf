"""`scalerl report` on PPO runs: return curves and the Craftax achievement section."""

from __future__ import annotations

import pandas as pd

from scalerl.analysis.report import write_report
from scalerl.config_ppo import PPOTrainConfig
from scalerl.train.logging import Logger
from scalerl.train.ppo_run import write_ppo_config

ENV = "craftax:Craftax-Classic-Symbolic-v1"


def _run(root, seed: int, wood: list[float]) -> None:
    """A PPO run directory as training writes it: config.json and metrics.csv."""
    run = root / f"ppo-s{seed}"
    run.mkdir(parents=True)
    write_ppo_config(run, PPOTrainConfig(env=ENV, seed=seed, env_steps=2000, name=run.name))
    with Logger(run, "ppo-mlp", ENV, seed, tensorboard=False) as logger:
        for i, value in enumerate(wood, start=1):
            metrics = {"train/episode_return": float(i), "eval/return": float(i)}
            metrics |= {"train/achievement/collect_wood": value, "train/achievement/eat_cow": 0.0}
            logger.log(metrics, 1000 * i)


def test_report_draws_return_and_achievement_curves_of_ppo_runs(tmp_path):
    _run(tmp_path / "runs", 0, [10.0, 50.0])
    _run(tmp_path / "runs", 1, [30.0, 100.0])
    path = write_report([tmp_path / "runs"], tmp_path / "report", reps=20)
    text = path.read_text()
    assert "## Craftax achievements" in text and "| collect_wood | 75.0 |" in text
    assert "| eat_cow | 0.0 |" in text
    for name in ("achievements.png", "achievements.svg", "learning_curves.png"):
        assert (tmp_path / "report" / name).is_file(), name
    table = pd.read_csv(tmp_path / "report" / "achievements.csv")
    assert len(table) == 2 * 2 * 2 and set(table["label"]) == {"ppo-mlp"}
    scores = pd.read_csv(tmp_path / "report" / "scores.csv")
    assert sorted(scores["return"]) == [2.0, 2.0]
