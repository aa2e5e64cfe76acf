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
        state, carry, metrics = chunk(state, carry)
    summary = ppo_fused.summarize(metrics)
    assert summary["train/episodes"] >= 50
    assert summary["train/episode_return"] >= 475.0, summary
