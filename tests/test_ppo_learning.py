"""PPO learning tests (slow): CartPole in the fused loop, Pendulum in the Gymnasium host loop."""

from __future__ import annotations

import jax
import pytest

from scalerl.agents.ppo import make_ppo
from scalerl.agents.ppo_net import ActionSpec
from scalerl.config_ppo import PPOConfig
from scalerl.envs.jax_envs import make_jax_env
from scalerl.train import ppo_fused

pytestmark = pytest.mark.slow


def test_ppo_mlp_solves_gymnax_cartpole():
    """CleanRL's PPO defaults, 400k steps: the last 50k steps' episodes average >= 475."""
    cfg = PPOConfig()
    env = make_jax_env("gymnax:CartPole-v1")
    iters = 400_000 // cfg.batch_size
    agent = make_ppo(cfg, env.obs_dim, ActionSpec(True, env.num_actions), iters)
    states, carries = ppo_fused.init_seeds(agent, env, [0])
    state = jax.tree_util.tree_map(lambda x: x[0], states)
    carry = jax.tree_util.tree_map(lambda x: x[0], carries)
    last = 50_000 // cfg.batch_size
    chunk = ppo_fused.make_chunk(agent, env, last)
    for _ in range(iters // last):
        state, carry, (metrics, _) = chunk(state, carry)
    summary = ppo_fused.summarize(metrics)
    assert summary["train/episodes"] >= 50
    assert summary["train/episode_return"] >= 475.0, summary


def test_ppo_improves_on_gymnasium_pendulum(tmp_path):
    """Host loop over 8 Gymnasium envs: from about -1200 to above -500 within 61k steps."""
    from scalerl.config_ppo import PPOTrainConfig
    from scalerl.train.logging import read_metrics_csv
    from scalerl.train.ppo_run import train_ppo

    agent = PPOConfig(
        num_envs=8, num_steps=256, num_minibatches=8, update_epochs=10, gamma=0.9, lr=1e-3,
        ent_coef=0.0, normalize_reward=True,
    )  # fmt: skip
    cfg = PPOTrainConfig(
        env="Pendulum-v1", env_steps=61_440, log_every=10_240, run_root=tmp_path,
        name="pendulum", tensorboard=False, progress=False, agent=agent,
    )  # fmt: skip
    (run_dir,) = train_ppo(cfg)
    rows = read_metrics_csv(run_dir / "metrics.csv")
    returns = [r["value"] for r in rows if r["metric"] == "train/episode_return"]
    assert len(returns) == 6
    assert returns[0] < -900.0
    assert returns[-1] > -500.0, returns
