"""Resets and Shrink & Perturb (spec plasticity.md §4.1-§4.2): hand values and invariants."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scalerl.networks.actor_critic import Critic
from scalerl.plasticity.resets import (
    ResetConfig,
    apply_reset,
    fresh_params,
    hard_reset,
    path_mask,
    should_reset,
    shrink_perturb,
    zero_adam_moments,
)


def toy_params():
    return {
        "encoder": {"kernel": jnp.array([[1.0, 2.0], [3.0, 4.0]]), "bias": jnp.array([0.5, -0.5])},
        "head": {"kernel": jnp.array([[1.0], [-1.0]]), "bias": jnp.array([2.0])},
    }


def toy_fresh():
    return jax.tree_util.tree_map(lambda x: jnp.full_like(x, 10.0), toy_params())


def stepped_adam(tx, params):
    """Optimizer state after two updates with non-zero gradients (non-zero moments)."""
    state = tx.init(params)
    for scale in (1.0, -0.5):
        grads = jax.tree_util.tree_map(lambda x, s=scale: s * (x + 1.0), params)
        _, state = tx.update(grads, state, params)
    return state


def adam_states(state):
    is_adam = lambda n: isinstance(n, optax.ScaleByAdamState)  # noqa: E731
    leaves = jax.tree_util.tree_leaves(state, is_leaf=is_adam)
    return [n for n in leaves if is_adam(n)]


HEAD_ONLY = {"encoder": False, "head": True}


@pytest.mark.parametrize(
    "tx",
    [
        optax.adam(1e-3),
        optax.adamw(1e-3, weight_decay=0.1),
        optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3)),
        optax.named_chain(("clip", optax.clip(1.0)), ("adam", optax.adam(1e-3))),
        optax.inject_hyperparams(optax.adam)(learning_rate=1e-3),
    ],
    ids=["adam", "adamw", "chain", "named_chain", "inject_hyperparams"],
)
def test_zero_adam_moments_only_masked_and_keeps_count(tx):
    params = toy_params()
    state = stepped_adam(tx, params)
    new = zero_adam_moments(state, HEAD_ONLY)
    (before,), (after,) = adam_states(state), adam_states(new)
    assert int(after.count) == int(before.count) == 2
    for moment in ("mu", "nu"):
        old, cur = getattr(before, moment), getattr(after, moment)
        assert all(np.all(np.asarray(x) == 0) for x in jax.tree_util.tree_leaves(cur["head"]))
        assert all(np.any(np.asarray(x) != 0) for x in jax.tree_util.tree_leaves(old["head"]))
        jax.tree_util.tree_map(np.testing.assert_array_equal, cur["encoder"], old["encoder"])


def test_zero_adam_moments_entrywise_mask():
    params = toy_params()
    state = stepped_adam(optax.adam(1e-3), params)
    mask = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, bool), params)
    mask["encoder"]["kernel"] = jnp.array([[True, False], [False, False]])
    (before,), (after,) = adam_states(state), adam_states(zero_adam_moments(state, mask))
    mu_old, mu_new = np.asarray(before.mu["encoder"]["kernel"]), after.mu["encoder"]["kernel"]
    assert float(mu_new[0, 0]) == 0.0
    np.testing.assert_array_equal(np.asarray(mu_new).ravel()[1:], mu_old.ravel()[1:])


def test_hard_reset_selects_masked_leaves():
    out = hard_reset(toy_params(), toy_fresh(), HEAD_ONLY)
    np.testing.assert_array_equal(out["head"]["kernel"], [[10.0], [10.0]])
    np.testing.assert_array_equal(out["encoder"]["kernel"], [[1.0, 2.0], [3.0, 4.0]])


def test_shrink_perturb_identity_and_hand_values():
    params, phi = toy_params(), toy_fresh()
    same = shrink_perturb(params, phi, 1.0, 0.0, True)
    jax.tree_util.tree_map(np.testing.assert_array_equal, same, params)
    out = shrink_perturb(params, phi, 0.5, 0.1, HEAD_ONLY)
    # head: 0.5 * theta + 0.1 * 10
    np.testing.assert_allclose(out["head"]["kernel"], [[1.5], [0.5]])
    np.testing.assert_allclose(out["head"]["bias"], [2.0])
    np.testing.assert_array_equal(out["encoder"]["bias"], [0.5, -0.5])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "soft"}, "choose one of"),
        ({"kind": "full", "shrink": -0.1}, ">= 0"),
        ({"kind": "full", "stop_after": -1}, "stop_after"),
        ({"kind": "full", "every": 2.5}, "must be an int"),
    ],
)
def test_reset_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ResetConfig(**kwargs)


def fired_steps(cfg: ResetConfig, n: int) -> list[int]:
    steps = jnp.arange(1, n + 1)
    _, fired = jax.lax.scan(lambda c, s: (c, should_reset(s, cfg)), None, steps)
    return [int(s) for s in np.asarray(steps)[np.asarray(fired)]]


def test_should_reset_global_steps_and_stop_after():
    assert fired_steps(ResetConfig("full", every=3), 10) == [3, 6, 9]
    assert fired_steps(ResetConfig("full", every=3, stop_after=7), 20) == [3, 6]
    assert fired_steps(ResetConfig("full", every=0), 10) == []
    assert fired_steps(ResetConfig("none", every=3), 10) == []
    assert not bool(should_reset(0, ResetConfig("full", every=3)))


def test_apply_reset_inside_scan_fires_at_right_steps():
    """params count the updates since the last reset; a full reset sets them back to 0."""
    cfg = ResetConfig("full", every=4, stop_after=9)
    params = {"w": jnp.zeros(())}
    tx = optax.adam(1.0)

    def body(carry, step):
        p, s = carry
        _, s = tx.update({"w": jnp.ones(())}, s, p)
        p, s, fired = apply_reset({"w": p["w"] + 1.0}, s, {"w": jnp.zeros(())}, cfg, None, step)
        return (p, s), (p["w"], fired, s[0].mu["w"], s[0].count)

    run = jax.jit(lambda: jax.lax.scan(body, (params, tx.init(params)), jnp.arange(1, 13)))
    _, (w, fired, mu, count) = run()
    np.testing.assert_array_equal(w, [1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(np.flatnonzero(fired) + 1, [4, 8])
    assert float(mu[3]) == 0.0 and float(mu[7]) == 0.0 and float(mu[2]) != 0.0
    np.testing.assert_array_equal(count, np.arange(1, 13))


def test_apply_reset_last_layers_and_shrink_perturb():
    params, phi = toy_params(), toy_fresh()
    state = stepped_adam(optax.adam(1e-3), params)
    mask = path_mask(params, [("head",)])
    expected = {"bias": False, "kernel": False}, {"bias": True, "kernel": True}
    assert mask == dict(zip(("encoder", "head"), expected, strict=True))
    cfg = ResetConfig("last_layers", every=5)
    out, st, fired = apply_reset(params, state, phi, cfg, mask, 5)
    assert bool(fired)
    np.testing.assert_array_equal(out["head"]["bias"], [10.0])
    np.testing.assert_array_equal(out["encoder"]["bias"], [0.5, -0.5])
    assert float(jnp.abs(st[0].mu["head"]["kernel"]).sum()) == 0.0
    assert float(jnp.abs(st[0].mu["encoder"]["kernel"]).sum()) > 0.0
    cfg = ResetConfig("shrink_perturb", every=5, shrink=0.5, perturb=0.1)
    out, st, _ = apply_reset(params, state, phi, cfg, mask, 10)
    np.testing.assert_allclose(out["encoder"]["bias"], [1.25, 0.75])  # 0.5 θ + 0.1·10
    np.testing.assert_array_equal(out["head"]["kernel"], [[10.0], [10.0]])
    assert all(float(jnp.abs(x).sum()) == 0 for x in jax.tree_util.tree_leaves(st[0].nu))
    same, st_same, fired = apply_reset(params, state, phi, cfg, mask, 7)
    assert not bool(fired)
    jax.tree_util.tree_map(np.testing.assert_array_equal, (same, st_same), (params, state))


def test_apply_reset_last_layers_needs_mask():
    with pytest.raises(ValueError, match="mask_last_layers"):
        apply_reset(toy_params(), None, toy_fresh(), ResetConfig("last_layers", every=1), None, 1)


def critic_ensemble(key):
    """Parameters of a two-member MLP critic ensemble (leading num_qs axis, as in SAC)."""
    critic = Critic("mlp", width=8, depth=2, num_bins=1)
    obs, act = jnp.zeros((1, 3)), jnp.zeros((1, 1))
    members = [critic.init(k, obs, act)["params"] for k in jax.random.split(key, 2)]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *members)


def test_fresh_params_same_init_and_critic_ensemble():
    """Head reset of an MLP critic ensemble (num_qs axis, Adam) to its initial parameters."""
    initial = critic_ensemble(jax.random.PRNGKey(0))
    drifted = jax.tree_util.tree_map(lambda x: x + 1.0, initial)
    cfg = ResetConfig("last_layers", every=1, same_init=True)
    phi = fresh_params(cfg, initial, critic_ensemble, jax.random.PRNGKey(1))
    opt_state = stepped_adam(optax.adam(1e-3), drifted)
    mask = path_mask(drifted, [("head",)])
    out, st, _ = jax.jit(apply_reset, static_argnums=3)(drifted, opt_state, phi, cfg, mask, 1)
    head_k = out["head"]["value"]["kernel"]
    assert head_k.shape == (2, 8, 1)
    np.testing.assert_array_equal(head_k, initial["head"]["value"]["kernel"])
    enc_k = out["encoder"]["dense_0"]["kernel"]
    np.testing.assert_array_equal(enc_k, initial["encoder"]["dense_0"]["kernel"] + 1.0)
    assert float(jnp.abs(st[0].nu["head"]["value"]["kernel"]).sum()) == 0.0
    assert float(jnp.abs(st[0].nu["encoder"]["dense_1"]["kernel"]).sum()) > 0.0
