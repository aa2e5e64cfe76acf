"""DQN agent: target updates, heads, and plasticity interventions on conv Q networks."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from scalerl.agents.dqn import DQN, make_dqn
from scalerl.buffers.vec_replay import NStepBatch
from scalerl.config import PlasticityConfig
from scalerl.config_dqn import DQNConfig, dqn_preset, validate_dqn
from scalerl.errors import ConfigError
from scalerl.plasticity import nap

FRAMES = (6, 6, 2)
CONV = DQNConfig(torso="minatar", kind="none", batch_size=8, lr=1e-2)


@functools.cache
def _agent(cfg: DQNConfig = CONV, shape: tuple[int, ...] = FRAMES) -> DQN:
    return make_dqn(cfg, shape, 3)


@functools.cache
def _learn(agent: DQN):
    return jax.jit(agent.learn)


def _batches(agent: DQN, num: int, key: int = 0) -> NStepBatch:
    """Random batches (num, B, ...) built with numpy (no per-op compiles)."""
    rng = np.random.default_rng(key)
    b, shape = agent.cfg.batch_size, (num, agent.cfg.batch_size, *agent.obs_shape)
    return NStepBatch(
        obs=jnp.asarray(rng.uniform(size=shape), jnp.float32),
        action=jnp.asarray(rng.integers(0, 3, (num, b)), jnp.int32),
        reward=jnp.asarray(rng.normal(size=(num, b)), jnp.float32),
        next_obs=jnp.asarray(rng.uniform(size=shape), jnp.float32),
        terminated=jnp.zeros((num, b)),
        discount=jnp.full((num, b), 0.99),
    )


def _flat(tree) -> dict:
    return {"/".join(k): v for k, v in traverse_util.flatten_dict(tree).items()}


def test_hard_target_copy_every_k_updates() -> None:
    agent = _agent(dataclasses.replace(CONV, target_every=2))
    state = agent.init(jax.random.key(0))
    init = state.net.params
    one, _ = _learn(agent)(state, _batches(agent, 1))
    for t, p in zip(jax.tree.leaves(one.target), jax.tree.leaves(init), strict=True):
        np.testing.assert_array_equal(t, p)
    two, _ = _learn(agent)(one, _batches(agent, 1, key=1))
    for t, p in zip(jax.tree.leaves(two.target), jax.tree.leaves(two.net.params), strict=True):
        np.testing.assert_array_equal(t, p)
    assert int(two.updates) == 2


def test_polyak_target() -> None:
    agent = _agent(dataclasses.replace(CONV, target_update="polyak", tau=0.25))
    state = agent.init(jax.random.key(0))
    new, _ = _learn(agent)(state, _batches(agent, 1))
    leaves = zip(
        jax.tree.leaves(new.target), jax.tree.leaves(state.target),
        jax.tree.leaves(new.net.params), strict=True,
    )  # fmt: skip
    for t, old, p in leaves:
        np.testing.assert_allclose(t, 0.75 * old + 0.25 * p, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "cfg",
    [
        DQNConfig(width=8, depth=1, batch_size=8, dueling=True, num_atoms=11, double=True),
        DQNConfig(width=8, depth=1, batch_size=8, dueling=True, loss="huber"),
    ],
)
def test_heads_learn_finite(cfg: DQNConfig) -> None:
    shape = FRAMES if cfg.torso else (5,)
    agent = _agent(cfg, shape)
    state, info = _learn(agent)(agent.init(jax.random.key(0)), _batches(agent, 2))
    assert agent.q_values(state.net.params, jnp.zeros((4, *shape))).shape == (4, 3)
    assert all(np.isfinite(float(v)) for v in info.values())
    assert int(state.updates) == 2


def test_nap_keeps_conv_and_dense_kernel_norms() -> None:
    cfg = dataclasses.replace(CONV, plasticity=PlasticityConfig(nap=True))
    agent = _agent(cfg)
    state = agent.init(jax.random.key(0))
    new, _ = _learn(agent)(state, _batches(agent, 4))
    before, after = _flat(state.net.params), _flat(new.net.params)
    kernels = [k for k in before if k.endswith("_pn/kernel")]
    assert {"q/torso/conv_0_pn/kernel", "q/torso/dense_pn/kernel"} <= set(kernels)
    for k in kernels:
        assert not np.allclose(before[k], after[k])
        np.testing.assert_allclose(nap.tensor_norm(after[k]), nap.tensor_norm(before[k]), 1e-5)


def test_hare_tortoise_resets_the_hare_every_r_updates() -> None:
    pc = PlasticityConfig(hare_tortoise=True, ht_momentum=0.5, ht_reset_every=2)
    agent = _agent(dataclasses.replace(CONV, plasticity=pc))
    state = agent.init(jax.random.key(0))
    one, _ = _learn(agent)(state, _batches(agent, 1))
    hare, tortoise = _flat(one.net.params), _flat(one.extras["tortoise"])
    assert any(not np.allclose(hare[k], tortoise[k]) for k in hare)
    two, _ = _learn(agent)(one, _batches(agent, 1, key=1))
    for k, v in _flat(two.net.params).items():
        np.testing.assert_array_equal(v, _flat(two.extras["tortoise"])[k])
        np.testing.assert_array_equal(v, _flat(two.target)[k])


def test_redo_recycles_a_dead_conv_channel() -> None:
    pc = PlasticityConfig(redo_every=1000, redo_tau=0.0)
    agent = _agent(dataclasses.replace(CONV, plasticity=pc))
    state, _ = _learn(agent)(agent.init(jax.random.key(0)), _batches(agent, 1))
    params = _flat(state.net.params)
    params["q/torso/conv_0/kernel"] = params["q/torso/conv_0/kernel"].at[..., 0].set(0.0)
    params["q/torso/conv_0/bias"] = params["q/torso/conv_0/bias"].at[0].set(-1.0)
    dead = traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in params.items()})
    state = state.replace(net=state.net.replace(params=dead))
    new, info = jax.jit(agent.redo)(state, _batches(agent, 1).obs[0])
    assert int(info["train/redo_recycled"]) >= 1
    out, fresh = _flat(new.net.params), _flat(state.extras["fresh"].params)
    np.testing.assert_array_equal(
        out["q/torso/conv_0/kernel"][..., 0], fresh["q/torso/conv_0/kernel"][..., 0]
    )
    assert float(out["q/torso/conv_0/bias"][0]) == 0.0
    dense = out["q/torso/dense/kernel"]  # rows of channel 0: every 16th (channels-last flatten)
    others = np.arange(dense.shape[0]) % 16 != 0
    assert np.all(dense[0::16] == 0.0) and np.any(dense[others] != 0.0)
    mu = _flat(new.net.opt_state[1][0].mu)["q/torso/dense/kernel"]
    assert np.all(mu[0::16] == 0.0) and np.any(mu[others] != 0.0)


def test_redo_links_cover_conv_torso_and_mlp_trunk() -> None:
    cfg = dataclasses.replace(CONV, kind="mlp", width=8, depth=2)
    links = {lk.activation: lk for lk in _agent(cfg).redo_links()}
    assert links["features_conv_0"].outgoing == (("q", "encoder", "dense_0"),)
    assert links["features_1"].outgoing == (("q", "head", "q", "q"),)


def test_presets_and_validation() -> None:
    assert dqn_preset("minatar").torso == "minatar" and dqn_preset("atari").torso == "nature"
    assert dqn_preset("atari").target_every == 10_000
    with pytest.raises(ConfigError, match="num_atoms"):
        validate_dqn(DQNConfig(num_atoms=2))
    with pytest.raises(ConfigError, match="kind"):
        validate_dqn(DQNConfig(kind="none"))
    with pytest.raises(ConfigError, match="n_step"):
        validate_dqn(DQNConfig(buffer_capacity=4, n_step=5))
    with pytest.raises(ConfigError, match="conv_impl 'cudnn'; choose one of auto, xla, patches"):
        validate_dqn(DQNConfig(conv_impl="cudnn"))


def test_full_reset_and_health_on_conv() -> None:
    pc = PlasticityConfig(reset="full", reset_every=2)
    agent = _agent(dataclasses.replace(CONV, plasticity=pc))
    state = agent.init(jax.random.key(0))
    new, _ = _learn(agent)(state, _batches(agent, 2))
    for p, f in zip(
        jax.tree.leaves(new.net.params), jax.tree.leaves(state.extras["fresh"].params), strict=True
    ):
        np.testing.assert_array_equal(p, f)
    batch = jax.tree.map(lambda x: x[0], _batches(agent, 1))
    health = jax.jit(agent.health)(new, batch)
    assert "health/q/dormant_0.1/torso/features_conv_0" in health
    assert np.isfinite(float(health["health/q/srank"]))


def test_kron_l2_init_and_shrink_perturb_run() -> None:
    pc = PlasticityConfig(l2_init=1e-2, reset="shrink_perturb", reset_every=1)
    cfg = DQNConfig(width=8, depth=1, batch_size=8, optimizer="kron", plasticity=pc)
    agent = _agent(cfg, (5,))
    new, info = _learn(agent)(agent.init(jax.random.key(0)), _batches(agent, 2))
    assert all(np.isfinite(float(v)) for v in info.values())
    assert int(new.updates) == 2 and "init" in new.extras
    moved = jax.tree.map(lambda p: p + 1.0, new.net.params)  # the L2-init term: 1e-2 per weight
    batch = jax.tree.map(lambda x: x[0], _batches(agent, 1))
    total, parts = agent.loss(moved, new, batch)
    assert float(total - parts["train/td_loss"]) > 0.0
