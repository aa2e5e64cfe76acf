"""PPO agent: vmapped seeds equal single runs; every plasticity intervention runs inside PPO."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.agents.ppo import make_ppo
from scalerl.agents.ppo_net import ActionSpec
from scalerl.config import PlasticityConfig
from scalerl.config_ppo import PPOConfig, replace
from scalerl.envs.jax_envs import make_jax_env
from scalerl.plasticity import nap
from scalerl.plasticity.roles import mask_for
from scalerl.train import ppo_fused

TINY = PPOConfig(
    actor_width=16, actor_depth=1, value_width=16, value_depth=1,
    num_envs=2, num_steps=8, update_epochs=2, num_minibatches=2,
)  # fmt: skip
"""4 gradient steps per rollout."""


def _agent(cfg: PPOConfig, env_id: str = "gymnax:CartPole-v1"):
    env = make_jax_env(env_id)
    agent = make_ppo(cfg, env.obs_dim, ActionSpec(env.discrete, env.num_actions), 10)
    return agent, env


def _run(cfg: PPOConfig, iters: int = 1, env_id: str = "gymnax:CartPole-v1", health=False):
    agent, env = _agent(cfg, env_id)
    states, carries = ppo_fused.init_seeds(agent, env, [0])
    first = jax.tree_util.tree_map(lambda x: x[0], states)
    carry = jax.tree_util.tree_map(lambda x: x[0], carries)
    init = jax.tree_util.tree_map(jnp.copy, first)
    state, _, (metrics, diag) = ppo_fused.make_chunk(agent, env, iters, health)(first, carry)
    return agent, init, state, metrics | diag


def _close(a, b, **kw):
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, **kw), a, b)


def test_vmapped_seed_equals_single_run():
    agent, env = _agent(TINY)
    states, carries = ppo_fused.init_seeds(agent, env, [3, 5])
    many, _, (m_many, _) = ppo_fused.make_chunk_many(agent, env, 2)(states, carries)
    one_state, one_carry = ppo_fused.init_seeds(agent, env, [5])
    single = jax.tree_util.tree_map(lambda x: x[0], one_state)
    carry = jax.tree_util.tree_map(lambda x: x[0], one_carry)
    one, _, (m_one, _) = ppo_fused.make_chunk(agent, env, 2)(single, carry)
    seed5 = jax.tree_util.tree_map(lambda x: x[1], many)
    _close(seed5.net.params, one.net.params, rtol=1e-4, atol=1e-5)
    assert int(seed5.updates) == 2 * TINY.steps_per_update == int(one.updates)
    np.testing.assert_allclose(m_many["train/loss"][1], m_one["train/loss"], rtol=1e-4)
    diff = jax.tree_util.tree_map(lambda x: float(jnp.max(jnp.abs(x[0] - x[1]))), many.net.params)
    assert max(jax.tree_util.tree_leaves(diff)) > 0  # the two seeds differ


def test_nap_keeps_hidden_kernel_norms_and_normalisers_run():
    pc = PlasticityConfig(nap=True, l2_init=1e-3)
    cfg = replace(TINY, plasticity=pc, normalize_obs=True, normalize_reward=True)
    agent, init, state, metrics = _run(cfg, health=True)
    assert np.isfinite(float(metrics["health/actor/dormant_0"]))
    assert float(metrics["health/value/param_norm"]) > 0
    mask = nap.nap_mask(agent.labels)
    assert any(jax.tree_util.tree_leaves(mask))
    norms = lambda p: jax.tree_util.tree_map(  # noqa: E731
        lambda x, m: jnp.linalg.norm(x) if m else 0.0, p, mask
    )
    _close(norms(state.net.params), norms(init.net.params), rtol=1e-5)
    assert int(state.obs_stats.count) == TINY.batch_size
    assert np.isfinite(float(metrics["train/loss"][0]))


def test_hare_tortoise_reset_makes_hare_equal_tortoise():
    pc = PlasticityConfig(hare_tortoise=True, ht_momentum=0.9, ht_reset_every=4)
    agent, init, state, _ = _run(replace(TINY, plasticity=pc))
    _close(state.net.params, state.extras["tortoise"], rtol=0, atol=0)
    changed = jax.tree_util.tree_map(
        lambda a, b: bool(jnp.any(a != b)), state.net.params, init.net.params
    )
    assert any(jax.tree_util.tree_leaves(changed))


def test_full_reset_returns_to_the_fresh_draw_continuous_simbav2():
    pc = PlasticityConfig(reset="full", reset_every=4)
    cfg = replace(
        TINY, agent="simbav2", project_weights=True, squash="tanh", state_dependent_std=True,
        plasticity=pc,
    )  # fmt: skip
    _, init, state, metrics = _run(cfg, env_id="gymnax:Pendulum-v1")
    _close(state.net.params, init.extras["fresh"].params, rtol=0, atol=0)
    assert np.isfinite(float(metrics["train/loss"][0]))


@pytest.mark.slow
def test_last_layer_reset_msr_shared_trunk_kron():
    pc = PlasticityConfig(reset="last_layers", reset_every=4)
    cfg = replace(TINY, agent="msr", shared_trunk=True, optimizer="kron", lr=1e-4, plasticity=pc)
    _, init, state, _ = _run(cfg)
    params, fresh = state.net.params["shared"], init.extras["fresh"].params["shared"]
    _close(params["head"], fresh["head"], rtol=0, atol=0)
    moved = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), params["encoder"],
                                   init.net.params["shared"]["encoder"])  # fmt: skip
    assert any(jax.tree_util.tree_leaves(moved))


@pytest.mark.slow
def test_shrink_perturb_mixes_toward_fresh():
    pc = PlasticityConfig(
        reset="shrink_perturb", reset_every=4, reset_shrink=0.0, reset_perturb=1.0
    )
    _, init, state, _ = _run(replace(TINY, plasticity=pc, optimizer="adamw", weight_decay=1e-4))
    _close(state.net.params, init.extras["fresh"].params, rtol=1e-6, atol=1e-6)


def test_labels_find_heads_per_network():
    agent, _ = _agent(TINY)
    heads = mask_for(agent.labels, "output_kernel")
    assert any(jax.tree_util.tree_leaves(heads["actor"]["head"]))
    assert not any(jax.tree_util.tree_leaves(heads["value"]["encoder"]))
