"""L2, L2-init penalties and the decoupled weight-decay mask (plasticity spec §4.4)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scalerl.networks import Actor, Critic
from scalerl.plasticity.regularizers import decoupled_decay_mask, l2_init_penalty, l2_penalty
from scalerl.plasticity.roles import label_params, mask_for

PARAMS = {
    "dense": {"kernel": jnp.array([[1.0, 2.0], [3.0, 4.0]]), "bias": jnp.array([5.0, 6.0])},
    "LayerNorm_0": {"scale": jnp.array([2.0, 2.0]), "bias": jnp.array([1.0, 1.0])},
}
INIT = {
    "dense": {"kernel": jnp.array([[1.0, 0.0], [3.0, 2.0]]), "bias": jnp.zeros(2)},
    "LayerNorm_0": {"scale": jnp.ones(2), "bias": jnp.zeros(2)},
}
KERNELS = mask_for(label_params(PARAMS), "kernel")


def test_l2_penalty_hand_computed():
    assert float(l2_penalty(PARAMS, KERNELS)) == pytest.approx(30.0)
    all_leaves = jax.tree_util.tree_map(lambda _: True, PARAMS)
    assert float(l2_penalty(PARAMS, all_leaves)) == pytest.approx(30.0 + 61.0 + 8.0 + 2.0)


def test_l2_init_penalty_hand_computed():
    assert float(l2_init_penalty(PARAMS, INIT, KERNELS)) == pytest.approx(8.0)  # 2² + 2²
    unsquared = l2_init_penalty(PARAMS, INIT, KERNELS, squared=False)
    assert float(unsquared) == pytest.approx(math.sqrt(8.0))


def test_l2_init_gradients():
    grad = jax.grad(l2_init_penalty)(PARAMS, INIT, KERNELS)
    np.testing.assert_allclose(grad["dense"]["kernel"], [[0.0, 4.0], [0.0, 4.0]])
    np.testing.assert_array_equal(grad["dense"]["bias"], 0.0)
    at_init = jax.grad(lambda p: l2_init_penalty(p, INIT, KERNELS, squared=False))(INIT)
    for leaf in jax.tree_util.tree_leaves(at_init):
        np.testing.assert_array_equal(leaf, 0.0)  # finite (0), not NaN, at theta = theta0


def test_penalties_jit():
    fn = jax.jit(lambda p, p0: l2_penalty(p, KERNELS) + l2_init_penalty(p, p0, KERNELS))
    assert float(fn(PARAMS, INIT)) == pytest.approx(38.0)


def _decayed(params) -> set[str]:
    mask = decoupled_decay_mask(label_params(params))
    leaves = jax.tree_util.tree_flatten_with_path(mask)[0]
    return {jax.tree_util.keystr(path) for path, selected in leaves if selected}


def test_decay_mask_on_networks():
    obs, act = jnp.zeros((1, 3)), jnp.zeros((1, 2))
    simba = jax.eval_shape(Critic("simba", 8, 1, 1).init, jax.random.PRNGKey(0), obs, act)
    assert _decayed(simba) == {
        "['params']['encoder']['block_0']['Dense_0']['kernel']",
        "['params']['encoder']['block_0']['Dense_1']['kernel']",
        "['params']['encoder']['embedder']['kernel']",
        "['params']['head']['value']['kernel']",
    }
    simbav2 = jax.eval_shape(Actor("simbav2", 8, 1, 2).init, jax.random.PRNGKey(0), obs)
    assert _decayed(simbav2) == set()


def test_decay_mask_excludes_nap_kernels():
    tree = {"dense_pn": {"kernel": jnp.ones((2, 2))}, "dense": {"kernel": jnp.ones((2, 2))}}
    assert _decayed(tree) == {"['dense']['kernel']"}


def test_adamw_with_mask_decays_only_kernels():
    opt = optax.adamw(0.1, weight_decay=0.5, mask=decoupled_decay_mask(label_params(PARAMS)))
    zeros = jax.tree_util.tree_map(jnp.zeros_like, PARAMS)
    updates, _ = opt.update(zeros, opt.init(PARAMS), PARAMS)
    new = optax.apply_updates(PARAMS, updates)
    np.testing.assert_allclose(new["dense"]["kernel"], 0.95 * PARAMS["dense"]["kernel"], rtol=1e-6)
    for name, leaf in (("dense", "bias"), ("LayerNorm_0", "scale"), ("LayerNorm_0", "bias")):
        np.testing.assert_array_equal(new[name][leaf], PARAMS[name][leaf])
