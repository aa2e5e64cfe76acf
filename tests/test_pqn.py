"""PQN agent: vmapped seeds equal single runs; plasticity interventions inside PQN on conv and
dense kernels."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.agents.ppo import Trajectory
from scalerl.agents.pqn import NET, make_pqn
from scalerl.config import PlasticityConfig
from scalerl.config_pqn import PQNConfig, replace
from scalerl.envs.jax_envs import make_jax_env
from scalerl.plasticity import nap, redo
from scalerl.train import ppo_fused

TINY = PQNConfig(width=16, depth=1, num_envs=2, num_steps=8, update_epochs=2, num_minibatches=2)
"""4 gradient steps per rollout."""
MINATAR_SHAPE = (10, 10, 4)


def _agent(cfg: PQNConfig, env_id: str = "gymnax:CartPole-v1", torso: str = "none"):
    """Agent and environment (built only for the fused-loop tests)."""
    env = make_jax_env(env_id)
    shape = MINATAR_SHAPE if torso != "none" else (env.obs_dim,)
    return make_pqn(cfg, shape, env.num_actions, 10, torso), env


def _bare_agent(cfg: PQNConfig, minatar: bool = False):
    """Agent for CartPole (4 inputs, 2 actions) or Breakout-MinAtar frames (3 actions)."""
    if minatar:
        return make_pqn(cfg, MINATAR_SHAPE, 3, 10, "minatar")
    return make_pqn(cfg, (4,), 2, 10)


def _run(cfg: PQNConfig, iters: int = 1, env_id="gymnax:CartPole-v1", torso="none", health=False):
    agent, env = _agent(cfg, env_id, torso)
    states, carries = ppo_fused.init_seeds(agent, env, [0])
    first = jax.tree_util.tree_map(lambda x: x[0], states)
    carry = jax.tree_util.tree_map(lambda x: x[0], carries)
    init = jax.tree_util.tree_map(jnp.copy, first)
    state, _, (metrics, diag) = ppo_fused.make_chunk(agent, env, iters, health)(first, carry)
    return agent, init, state, metrics | diag


def _trajectory(key, obs_dim: int, num_actions: int, t: int = 8, n: int = 2) -> Trajectory:
    """A random rollout (T, N) with a termination and a truncation inside (no env compile)."""
    k_obs, k_next, k_act, k_rew = jax.random.split(key, 4)
    obs = jax.random.bernoulli(k_obs, 0.3, (t, n, obs_dim)).astype(jnp.float32)
    next_obs = jax.random.bernoulli(k_next, 0.3, (t, n, obs_dim)).astype(jnp.float32)
    zeros = jnp.zeros((t, n))
    ends = jnp.zeros((t, n), bool)
    return Trajectory(
        obs, jax.random.randint(k_act, (t, n), 0, num_actions), zeros, zeros,
        jax.random.normal(k_rew, (t, n)), ends.at[2, 0].set(True), ends.at[5, 1].set(True),
        next_obs,
    )  # fmt: skip


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
    np.testing.assert_allclose(m_many["train/td_loss"][1], m_one["train/td_loss"], rtol=1e-4)
    assert float(m_one["train/epsilon"][0]) == 1.0 > float(m_one["train/epsilon"][1])
    diff = jax.tree_util.tree_map(lambda x: float(jnp.max(jnp.abs(x[0] - x[1]))), many.net.params)
    assert max(jax.tree_util.tree_leaves(diff)) > 0  # the two seeds differ


@pytest.mark.slow
def test_nap_keeps_conv_and_dense_kernel_norms_on_minatar_with_health():
    pc = PlasticityConfig(nap=True, l2_init=1e-3)
    agent = _bare_agent(replace(TINY, plasticity=pc), minatar=True)
    init = agent.init(jax.random.PRNGKey(0))
    traj = _trajectory(jax.random.PRNGKey(1), 400, agent.num_actions)
    state, metrics = jax.jit(agent.learn)(init, traj)
    mask = nap.nap_mask(agent.labels)
    assert mask[NET]["torso"]["conv_0_pn"]["kernel"]
    assert mask[NET]["encoder"]["dense_0_pn"]["dense_pn"]["kernel"]
    norms = lambda p: jax.tree_util.tree_map(  # noqa: E731
        lambda x, m: jnp.linalg.norm(x) if m else 0.0, p, mask
    )
    _close(norms(state.net.params), norms(init.net.params), rtol=1e-5)
    moved = state.net.params[NET]["torso"]["conv_0_pn"]["kernel"]
    assert not np.allclose(moved, init.net.params[NET]["torso"]["conv_0_pn"]["kernel"])
    assert int(state.updates) == TINY.steps_per_update and np.isfinite(float(metrics["train/loss"]))
    health = jax.jit(agent.health)(state, traj)
    assert 0.0 <= float(health["health/q/dormant_0"]) <= 1.0
    assert float(health["health/q/feature_norm/torso/features_conv_0"]) > 0


def test_hare_tortoise_reset_makes_hare_equal_tortoise():
    pc = PlasticityConfig(hare_tortoise=True, ht_momentum=0.9, ht_reset_every=4)
    agent = _bare_agent(replace(TINY, plasticity=pc))
    init = agent.init(jax.random.PRNGKey(0))
    state, _ = jax.jit(agent.learn)(init, _trajectory(jax.random.PRNGKey(1), 4, 2))
    _close(state.net.params, state.extras["tortoise"], rtol=0, atol=0)
    changed = jax.tree_util.tree_map(
        lambda a, b: bool(jnp.any(a != b)), state.net.params, init.net.params
    )
    assert any(jax.tree_util.tree_leaves(changed))


def test_redo_recycles_dormant_conv_channels():
    pc = PlasticityConfig(redo_every=1, redo_tau=0.9)
    cfg = replace(TINY, trunk="none", layer_norm=False, plasticity=pc)
    agent = _bare_agent(cfg, minatar=True)
    state = agent.init(jax.random.PRNGKey(0))
    obs = jax.random.bernoulli(jax.random.PRNGKey(1), 0.3, (32, 400)).astype(jnp.float32)
    new, count = jax.jit(agent.maybe_redo)(state.replace(updates=jnp.int32(1)), jnp.int32(0), obs)
    feats = jax.jit(agent.features)(state.net.params, obs)
    dead = np.asarray(redo.dormant_mask(feats["torso/features_conv_0"], 0.9))
    assert 0 < dead.sum() < dead.size and int(count) >= dead.sum()
    conv = new.net.params[NET]["torso"]["conv_0"]["kernel"]
    fresh = state.extras["fresh"].params[NET]["torso"]["conv_0"]["kernel"]
    np.testing.assert_array_equal(conv[..., dead], fresh[..., dead])
    np.testing.assert_array_equal(
        conv[..., ~dead], state.net.params[NET]["torso"]["conv_0"]["kernel"][..., ~dead]
    )
    rows = np.asarray(new.net.params[NET]["torso"]["dense"]["kernel"]).reshape(64, 16, -1)
    assert np.all(rows[:, dead] == 0) and np.any(rows[:, ~dead] != 0)  # 8x8 positions x 16 ch
    same, zero = jax.jit(agent.maybe_redo)(state, jnp.int32(0), obs)  # no multiple of 1 in (0, 0]
    assert int(zero) == 0
    _close(same.net.params, state.net.params, rtol=0, atol=0)


@pytest.mark.slow
def test_redo_and_shrink_perturb_run_in_the_fused_loop():
    pc = PlasticityConfig(
        redo_every=4, reset="shrink_perturb", reset_every=4, reset_shrink=0.0, reset_perturb=1.0
    )
    cfg = replace(TINY, trunk="mlp", layer_norm=False, plasticity=pc)
    _, init, state, metrics = _run(cfg, env_id="gymnax:Breakout-MinAtar", torso="minatar")
    assert int(metrics["train/redo_recycled"][0]) >= 0
    # S&P with shrink 0 lands on the fresh draw; ReDo then re-draws dormant units' incoming
    # weights from that same draw and zeroes their outgoing rows
    params, fresh = state.net.params[NET], init.extras["fresh"].params[NET]
    _close(params["torso"], fresh["torso"], rtol=0, atol=0)
    head = np.asarray(params["head"]["q"]["q"]["kernel"])
    fresh_head = fresh["head"]["q"]["q"]["kernel"]
    kept = np.all(head == fresh_head, axis=1)
    assert np.all(kept | np.all(head == 0, axis=1)) and kept.any()


@pytest.mark.slow
def test_last_layer_reset_msr_trunk_kron_on_minatar():
    pc = PlasticityConfig(reset="last_layers", reset_every=4)
    cfg = replace(TINY, trunk="msr", optimizer="kron", lr=1e-4, plasticity=pc)
    _, init, state, metrics = _run(cfg, env_id="gymnax:Breakout-MinAtar", torso="minatar")
    params, fresh = state.net.params[NET], init.extras["fresh"].params[NET]
    _close(params["head"], fresh["head"], rtol=0, atol=0)
    moved = jax.tree_util.tree_map(
        lambda a, b: bool(jnp.any(a != b)), params["torso"], init.net.params[NET]["torso"]
    )
    assert any(jax.tree_util.tree_leaves(moved))
    assert np.isfinite(float(metrics["train/loss"][0]))


def test_greedy_actions_and_labels():
    agent = _bare_agent(TINY)
    state = agent.init(jax.random.PRNGKey(0))
    obs = jnp.ones((3, 4))
    q = jax.jit(agent.q_values)(state.net.params, obs)
    np.testing.assert_array_equal(jax.jit(agent.act_deterministic)(state, obs), jnp.argmax(q, -1))
    action, _, log_prob, taken = jax.jit(agent.act)(state.replace(iterations=jnp.int32(100)), obs,
                                           jax.random.PRNGKey(2))  # fmt: skip
    assert action.shape == (3,) and float(jnp.max(jnp.abs(log_prob))) == 0.0
    np.testing.assert_allclose(taken, jnp.take_along_axis(q, action[:, None], -1)[:, 0])
    assert agent.labels[NET]["head"]["q"]["q"]["kernel"] == "output_kernel"


def test_make_optimizer_radam_is_clip_then_radam():
    import optax

    from scalerl.agents.ppo_plasticity import make_optimizer

    cfg = PQNConfig(max_grad_norm=0.5, lr=0.1)
    assert cfg.optimizer == "radam" and not cfg.plasticity.nap
    tx = make_optimizer(cfg, optax.constant_schedule(0.1), None)
    ref = optax.chain(optax.clip_by_global_norm(0.5), optax.radam(0.1, eps=cfg.adam_eps))
    params = {"w": jnp.array([1.0, -2.0])}
    s, r = tx.init(params), ref.init(params)
    for i in range(7):  # past RAdam's 5-step warm-up, where it switches to adaptive steps
        g = {"w": jnp.array([3.0, 0.1 * i])}
        (u, s), (v, r) = tx.update(g, s, params), ref.update(g, r, params)
        np.testing.assert_array_equal(u["w"], v["w"])
        assert float(u["w"][0]) != 0.0
