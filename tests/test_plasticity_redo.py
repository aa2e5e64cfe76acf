"""ReDo (spec plasticity.md §4.3): scores, links of the MLP networks, recycling invariants."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scalerl.networks.actor_critic import Actor, Critic
from scalerl.plasticity.redo import (
    Link,
    dormant_mask,
    mlp_links,
    neuron_scores,
    recycle,
    sown_features,
)

OBS, ACT, N = 3, 1, 64
CRITIC = Critic("mlp", width=8, depth=2, num_bins=1)
DEAD0, DEAD1 = 3, 5  # unit of encoder/dense_0 and of encoder/dense_1 forced dead


def init_critic(key):
    return CRITIC.init(key, jnp.zeros((1, OBS)), jnp.zeros((1, ACT)))["params"]


def test_neuron_scores_hand_values():
    h = jnp.array([[1.0, 0.0, 2.0], [3.0, 0.0, -2.0]])  # E|h| = (2, 0, 2), layer mean 4/3
    np.testing.assert_allclose(neuron_scores(h), [1.5, 0.0, 1.5], rtol=1e-6)
    np.testing.assert_array_equal(dormant_mask(h, 0.0), [False, True, False])
    ens = jnp.stack([h, jnp.array([[1.0, 1.0, 0.1], [1.0, 1.0, 0.1]])])
    scores = neuron_scores(ens, batch_dims=1)  # member 1: E|h| = (1, 1, 0.1), mean 0.7
    np.testing.assert_allclose(scores[1], [1 / 0.7, 1 / 0.7, 0.1 / 0.7], rtol=1e-6)
    np.testing.assert_array_equal(dormant_mask(ens, 0.15, batch_dims=1)[1], [False, False, True])
    np.testing.assert_array_equal(neuron_scores(jnp.zeros((4, 3))), [0.0, 0.0, 0.0])


def test_mlp_links_actor_and_critic():
    obs = jnp.zeros((1, OBS))
    actor_init = Actor("mlp", width=8, depth=2, action_dim=2).init
    links = mlp_links(jax.eval_shape(actor_init, jax.random.PRNGKey(0), obs)["params"])
    assert links[0] == Link("features_0", (("encoder", "dense_0"),), (("encoder", "dense_1"),))
    assert links[1].incoming == (("encoder", "dense_1"),)
    assert set(links[1].outgoing) == {("head", "mean"), ("head", "std")}
    critic = jax.eval_shape(init_critic, jax.random.PRNGKey(0))
    assert mlp_links(critic)[1].outgoing == (("head", "value"),)
    with pytest.raises(ValueError, match="MLPEncoder"):
        mlp_links({"encoder": {"embedder": {}}})


def kill_units(params, member=None):
    """Zero the incoming weights and set a negative bias of DEAD0 and DEAD1 (ReLU => dead)."""
    idx = (...,) if member is None else (member,)
    enc = params["encoder"]
    for name, unit in (("dense_0", DEAD0), ("dense_1", DEAD1)):
        layer = enc[name]
        layer["kernel"] = layer["kernel"].at[idx + (slice(None), unit)].set(0.0)
        layer["bias"] = layer["bias"].at[idx + (unit,)].set(-1.0)
    return params


@functools.partial(jax.jit, static_argnums=3)
def forward(params, obs, act, ensemble: bool):
    def apply(p):
        out, state = CRITIC.apply({"params": p}, obs, act, mutable=["intermediates"])
        return out, sown_features(state["intermediates"])

    return jax.vmap(apply)(params) if ensemble else apply(params)


@functools.cache
def members():
    """Four independently initialised critics (computed once per test session)."""
    return [init_critic(k) for k in jax.random.split(jax.random.PRNGKey(0), 4)]


def setup(ensemble: bool):
    keys = jax.random.split(jax.random.PRNGKey(1), 5)
    m = members()
    if ensemble:
        params = jax.tree_util.tree_map(lambda *x: jnp.stack(x), m[0], m[1])
        fresh = jax.tree_util.tree_map(lambda *x: jnp.stack(x), m[2], m[3])
    else:  # fresh dict containers: kill_units edits them in place
        params, fresh = jax.tree_util.tree_map(lambda x: x, m[0]), m[2]
    obs = jax.random.normal(keys[4], (N, OBS))
    act = jnp.tanh(obs[:, :ACT])
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)
    grads = jax.tree_util.tree_map(lambda x: jnp.ones_like(x) * 0.3, params)
    _, opt_state = tx.update(grads, opt_state, params)
    return params, fresh, obs, act, opt_state


def touched_masks(params, member=None):
    """Entries recycling DEAD0 (layer 0) and DEAD1 (layer 1) may touch."""
    mask = jax.tree_util.tree_map(lambda x: np.zeros(x.shape, bool), params)
    idx = (...,) if member is None else (member,)
    mask["encoder"]["dense_0"]["kernel"][idx + (slice(None), DEAD0)] = True
    mask["encoder"]["dense_0"]["bias"][idx + (DEAD0,)] = True
    mask["encoder"]["dense_1"]["kernel"][idx + (DEAD0, slice(None))] = True
    mask["encoder"]["dense_1"]["kernel"][idx + (slice(None), DEAD1)] = True
    mask["encoder"]["dense_1"]["bias"][idx + (DEAD1,)] = True
    mask["head"]["value"]["kernel"][idx + (DEAD1, slice(None))] = True
    return mask


def check_untouched(new, old, mask):
    def check(n, o, m):
        np.testing.assert_array_equal(np.asarray(n)[~m], np.asarray(o)[~m])

    jax.tree_util.tree_map(check, new, old, mask)


@pytest.mark.parametrize("ensemble", [False, True], ids=["single", "ensemble"])
def test_recycle_dead_units(ensemble):
    params, fresh, obs, act, opt_state = setup(ensemble)
    member = 1 if ensemble else None
    params = kill_units(params, member)
    out_before, feats = forward(params, obs, act, ensemble)
    bd = int(ensemble)
    dead = {k: np.asarray(dormant_mask(v, 0.0, bd)) for k, v in feats.items()}
    assert dead["features_0"].sum() == 1 and dead["features_1"].sum() == 1  # only the killed

    run = jax.jit(recycle, static_argnames=("links", "tau", "batch_dims"))
    links = mlp_links(params)
    new, new_opt, count = run(params, opt_state, fresh, feats, links=links, tau=0.0, batch_dims=bd)
    assert int(count) == 2
    out_after, feats_after = forward(new, obs, act, ensemble)
    np.testing.assert_array_equal(out_after, out_before)  # outgoing weights zeroed

    mask = touched_masks(params, member)
    check_untouched(new, params, mask)  # live units' parameters bitwise unchanged
    i = (member,) if ensemble else ()
    enc, fenc = new["encoder"], fresh["encoder"]
    np.testing.assert_array_equal(
        enc["dense_0"]["kernel"][i + (slice(None), DEAD0)],
        fenc["dense_0"]["kernel"][i + (slice(None), DEAD0)],
    )
    assert float(enc["dense_0"]["bias"][i + (DEAD0,)]) == 0.0
    assert not np.any(np.asarray(enc["dense_1"]["kernel"][i + (DEAD0,)]))  # outgoing rows
    assert not np.any(np.asarray(new["head"]["value"]["kernel"][i + (DEAD1,)]))
    col = np.asarray(enc["dense_1"]["kernel"][i + (slice(None), DEAD1)])
    fcol = np.asarray(fenc["dense_1"]["kernel"][i + (slice(None), DEAD1)])
    np.testing.assert_array_equal(np.delete(col, DEAD0), np.delete(fcol, DEAD0))
    assert col[DEAD0] == 0.0  # zeroing the outgoing row wins over the re-initialised column
    assert float(neuron_scores(feats_after["features_0"], bd)[i + (DEAD0,)]) > 0  # alive again

    adam, old_adam = new_opt[0], opt_state[0]
    assert int(adam.count) == int(old_adam.count) == 1
    for moment in ("mu", "nu"):
        new_m, old_m = getattr(adam, moment), getattr(old_adam, moment)
        check_untouched(new_m, old_m, mask)
        touched = jax.tree_util.tree_map(lambda x, m: np.asarray(x)[m], new_m, mask)
        assert all(not np.any(x) for x in jax.tree_util.tree_leaves(touched))


def test_recycle_nothing_dormant_is_identity():
    params, fresh, obs, act, opt_state = setup(False)
    _, feats = forward(params, obs, act, False)
    new, new_opt, count = recycle(params, opt_state, fresh, feats, mlp_links(params), 0.0)
    assert int(count) == 0
    jax.tree_util.tree_map(np.testing.assert_array_equal, (new, new_opt), (params, opt_state))
