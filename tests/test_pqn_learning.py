"""PQN learning tests (slow): CartPole and Breakout-MinAtar in the fused loop, presets."""

from __future__ import annotations

import dataclasses

import jax
import pytest

from scalerl.config_pqn import PQNTrainConfig, pqn_preset
from scalerl.envs.jax_envs import make_jax_env
from scalerl.train import ppo_fused
from scalerl.train.pqn_run import build

pytestmark = pytest.mark.slow


def _train(env_id: str, env_steps: int, window: int, **changes) -> list[dict[str, float]]:
    """Seed 0 with the env's preset; one summary per `window` environment steps."""
    agent_cfg = dataclasses.replace(pqn_preset(env_id), **changes)
    cfg = PQNTrainConfig(env=env_id, env_steps=env_steps, agent=agent_cfg)
    env = make_jax_env(env_id)
    agent = build(cfg, env)
    states, carries = ppo_fused.init_seeds(agent, env, [0])
    state = jax.tree_util.tree_map(lambda x: x[0], states)
    carry = jax.tree_util.tree_map(lambda x: x[0], carries)
    per = window // agent_cfg.batch_size
    chunk = ppo_fused.make_chunk(agent, env, per)
    out = []
    for _ in range(env_steps // window):
        state, carry, (metrics, _) = chunk(state, carry)
        out.append(ppo_fused.summarize(metrics))
    return out


def test_pqn_reaches_150_on_gymnax_cartpole():
    """CartPole preset, 200k steps: the last 40k steps' episodes (ε-greedy, ε = 0.2) average
    >= 150 (a random policy averages about 22)."""
    summaries = _train("gymnax:CartPole-v1", 204_800, 40_960)
    assert summaries[0]["train/episode_return"] < 100.0
    assert summaries[-1]["train/episode_return"] >= 150.0, summaries[-1]


def test_pqn_improves_clearly_on_breakout_minatar():
    """MinAtar preset with a 2 x 128 MLP on the flat frames (the conv torso is slow to train
    inside a CPU `lax.scan`): from about 1 in the first 41k steps to >= 3 after 164k."""
    summaries = _train(
        "gymnax:Breakout-MinAtar", 163_840, 40_960, torso="none", trunk="mlp", width=128, depth=2
    )
    assert summaries[0]["train/episode_return"] < 2.0
    assert summaries[-1]["train/episode_return"] >= 3.0, summaries[-1]
