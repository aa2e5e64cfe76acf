"""Tests for scalerl.metrics: hand-computed values, invariants and jit compatibility."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.metrics import (
    all_ranks,
    angular_update,
    collect_features,
    count_weighted_norm,
    dead_fraction,
    distance,
    dormant_ratio,
    effective_rank,
    elr_grad_ratio,
    elr_theory,
    feature_norm,
    feature_rank,
    network_health,
    neuron_scores,
    pca_rank,
    per_leaf_norms,
    singular_values,
    srank,
    tree_norm,
    zero_fraction,
)
from scalerl.metrics.norms import max_abs, mean_abs
from scalerl.networks import Critic

RNG = np.random.default_rng(0)
SIGMAS = (4.0, 3.0, 2.0, 1.0)
"""Singular values of the hand-made diagonal feature matrix."""


def diag_phi(rows: int = 4) -> jax.Array:
    """`rows` x 4 matrix with diag(4, 3, 2, 1) on top and zero rows below."""
    return jnp.zeros((rows, 4)).at[jnp.arange(4), jnp.arange(4)].set(jnp.array(SIGMAS))


def rotation(theta: float) -> jax.Array:
    return jnp.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])


# ------------------------------------------------------------------------------------------
# activity (spec §5.1)
# ------------------------------------------------------------------------------------------

# E|h| = (2, 0, 2), layer mean 4/3 -> scores (1.5, 0, 1.5).
LAYER_A = jnp.array([[1.0, 0.0, 2.0], [3.0, 0.0, -2.0]])
# E|h| = (0.05, 1, 1, 1.95), layer mean 1 -> scores (0.05, 1, 1, 1.95).
LAYER_B = jnp.array([[0.05, 1.0, -1.0, 1.95], [-0.05, 1.0, 1.0, 1.95]])


def test_neuron_scores_by_hand() -> None:
    np.testing.assert_allclose(neuron_scores(LAYER_A), [1.5, 0.0, 1.5], rtol=1e-6)
    np.testing.assert_allclose(neuron_scores(LAYER_B), [0.05, 1.0, 1.0, 1.95], rtol=1e-6)


def test_dormant_ratio_pools_units_over_layers() -> None:
    layers = [LAYER_A, LAYER_B]  # 7 units: one dead (A1), one with score 0.05 (B0)
    assert float(dormant_ratio(layers, 0.0)) == pytest.approx(1 / 7)
    assert float(dormant_ratio(layers, 0.025)) == pytest.approx(1 / 7)
    assert float(dormant_ratio(layers, 0.1)) == pytest.approx(2 / 7)
    assert float(dormant_ratio(layers, 1.0)) == pytest.approx(4 / 7)  # B1, B2 score exactly 1
    assert float(dead_fraction(layers)) == pytest.approx(1 / 7)


def test_dead_fraction_one_zero_unit_is_one_over_h() -> None:
    h = jnp.asarray(np.maximum(RNG.normal(size=(64, 8)) + 3.0, 0.0)).at[:, 5].set(0.0)
    assert float(dead_fraction([h])) == pytest.approx(1 / 8)
    tiny = h.at[0, 5].set(1e-6)  # barely active is dormant but not dead
    assert float(dead_fraction([tiny])) == 0.0
    assert float(dormant_ratio([tiny], 0.025)) == pytest.approx(1 / 8)


def test_all_zero_layer_is_all_dead_not_nan() -> None:
    assert float(dead_fraction([jnp.zeros((4, 6))])) == 1.0


def test_scores_average_all_leading_axes() -> None:
    h = jnp.asarray(RNG.normal(size=(2, 3, 5, 7)))  # e.g. ensemble, batch, space, units
    np.testing.assert_allclose(neuron_scores(h), neuron_scores(h.reshape(-1, 7)), rtol=1e-6)


# ------------------------------------------------------------------------------------------
# rank (spec §5.2)
# ------------------------------------------------------------------------------------------


def test_singular_values_of_diagonal() -> None:
    np.testing.assert_allclose(singular_values(diag_phi(6)), SIGMAS, rtol=1e-6)


def test_all_ranks_from_one_svd_match_the_single_measures() -> None:
    phi = diag_phi(6)
    expected = {"srank": 4, "effective_rank": 3.59611, "pca_rank": 4, "feature_rank": 4}
    assert {k: float(v) for k, v in all_ranks(phi).items()} == pytest.approx(expected, 1e-5)


def test_srank_by_hand() -> None:
    # cumulative sums 4, 7, 9, 10 of a total 10
    phi = diag_phi()
    assert int(srank(phi)) == 4  # needs 9.9
    assert int(srank(phi, delta=0.15)) == 3  # needs 8.5
    assert int(srank(phi, delta=0.35)) == 2  # needs 6.5
    assert int(srank(phi, delta=0.65)) == 1  # needs 3.5


def test_effective_rank_by_hand() -> None:
    p = np.array(SIGMAS) / 10.0  # 0.4, 0.3, 0.2, 0.1
    expected = math.exp(-sum(pi * math.log(pi) for pi in p))
    assert expected == pytest.approx(3.59611, abs=1e-5)
    assert float(effective_rank(diag_phi(7))) == pytest.approx(expected, rel=1e-5)


def test_pca_rank_by_hand() -> None:
    # squared: 16, 9, 4, 1; cumulative 16, 25, 29, 30
    phi = diag_phi()
    assert int(pca_rank(phi)) == 4  # needs 29.7
    assert int(pca_rank(phi, threshold=0.9)) == 3  # needs 27
    assert int(pca_rank(phi, threshold=0.5)) == 1  # needs 15


def test_feature_rank_by_hand_counts_rows() -> None:
    assert int(feature_rank(diag_phi())) == 4
    assert int(feature_rank(diag_phi(), eps=0.75)) == 3  # sigma / sqrt(4) = 2, 1.5, 1, 0.5
    assert int(feature_rank(diag_phi(16), eps=0.6)) == 2  # sigma / sqrt(16) = 1, .75, .5, .25


def test_isotropic_features_have_full_rank() -> None:
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(64, 16)))
    phi = jnp.asarray(3.0 * q)  # 16 equal singular values
    assert float(effective_rank(phi)) == pytest.approx(16.0, rel=1e-4)
    assert int(srank(phi)) == 16
    assert int(pca_rank(phi)) == 16
    assert int(feature_rank(phi)) == 16


def test_rank_one_features() -> None:
    u, v = jnp.arange(1.0, 9.0), jnp.array([1.0, -2.0, 0.5])
    phi = jnp.outer(u, v)
    assert int(srank(phi)) == 1
    assert int(pca_rank(phi)) == 1
    assert int(feature_rank(phi)) == 1
    assert float(effective_rank(phi)) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_ranks_are_scale_invariant_but_feature_rank_is_not(scale: float) -> None:
    phi = jnp.asarray(RNG.normal(size=(32, 8)) * np.linspace(0.1, 2.0, 8), jnp.float32)
    assert int(srank(scale * phi)) == int(srank(phi))
    assert int(pca_rank(scale * phi)) == int(pca_rank(phi))
    assert float(effective_rank(scale * phi)) == pytest.approx(float(effective_rank(phi)), 1e-4)
    assert int(feature_rank(1e-6 * phi)) == 0


def test_zero_features_give_finite_ranks() -> None:
    phi = jnp.zeros((8, 4))
    assert (int(srank(phi)), float(effective_rank(phi)), int(feature_rank(phi))) == (1, 1.0, 0)


def test_ensemble_axis_is_flattened_into_rows() -> None:
    phi = jnp.asarray(RNG.normal(size=(2, 16, 6)), jnp.float32)
    np.testing.assert_allclose(singular_values(phi), singular_values(phi.reshape(32, 6)))
    assert int(feature_rank(phi, eps=0.5)) == int(feature_rank(phi.reshape(32, 6), eps=0.5))


# ------------------------------------------------------------------------------------------
# norms (spec §5.3-5.5)
# ------------------------------------------------------------------------------------------

TREE = {"a": jnp.array([3.0, 4.0]), "b": {"kernel": jnp.array([[12.0]])}}


def test_feature_norm_is_mean_of_example_norms() -> None:
    assert float(feature_norm(jnp.array([[3.0, 4.0], [6.0, 8.0]]))) == pytest.approx(7.5)


def test_tree_norms_by_hand() -> None:
    assert float(tree_norm(TREE)) == pytest.approx(13.0)
    # n=2 leaf of norm 5, n=1 leaf of norm 12: sqrt((2*25 + 144) / 3)
    assert float(count_weighted_norm(TREE)) == pytest.approx(math.sqrt(194 / 3), rel=1e-6)
    norms = per_leaf_norms({"layers": [TREE["a"]], **TREE})
    assert {k: float(v) for k, v in norms.items()} == {"a": 5.0, "b/kernel": 12.0, "layers/0": 5.0}


def test_zero_fraction_magnitudes_and_distance() -> None:
    grads = {"a": jnp.array([0.0, 1.0, 0.0, -2.0]), "b": jnp.zeros(1)}
    assert float(zero_fraction(grads)) == pytest.approx(3 / 5)
    assert float(mean_abs(grads)) == pytest.approx(3 / 5)
    assert float(max_abs(grads)) == 2.0
    other = {"a": jnp.array([3.0, 5.0, 0.0, -2.0]), "b": jnp.zeros(1)}
    assert float(distance(grads, other)) == pytest.approx(5.0)


# ------------------------------------------------------------------------------------------
# effective learning rates (spec §5.6)
# ------------------------------------------------------------------------------------------

# kernel norms 2 (4 entries) and 4 (2 entries); the bias has norm 0 and is left out.
PARAMS = {
    "l1": {"kernel": jnp.array([[2.0, 0.0], [0.0, 0.0]]), "bias": jnp.zeros(2)},
    "l2": {"kernel": jnp.array([[0.0, 4.0]])},
}


def test_elr_theory_adam_and_sgd_by_hand() -> None:
    # Adam: lr/||W|| = 0.05, 0.025 -> (4 * 0.05 + 2 * 0.025) / 6
    assert float(elr_theory(PARAMS, 0.1)) == pytest.approx(0.25 / 6)
    # SGD: lr/||W||^2 = 0.025, 0.00625 -> (4 * 0.025 + 2 * 0.00625) / 6
    assert float(elr_theory(PARAMS, 0.1, optimizer="sgd")) == pytest.approx(0.1125 / 6)


def test_elr_theory_masks() -> None:
    by_path = elr_theory(PARAMS, 0.1, mask=lambda path: path[0].key == "l2")
    by_tree = elr_theory(
        PARAMS, 0.1, mask={"l1": {"kernel": False, "bias": False}, "l2": {"kernel": True}}
    )
    assert float(by_path) == float(by_tree) == pytest.approx(0.025)
    assert math.isnan(float(elr_theory(PARAMS, 0.1, mask=lambda path: False)))
    with pytest.raises(ValueError, match="adam"):
        elr_theory(PARAMS, 0.1, optimizer="rmsprop")


def test_elr_grad_ratio_by_hand() -> None:
    grads = jax.tree_util.tree_map(jnp.ones_like, PARAMS)
    grads["l1"]["kernel"] = jnp.array([[0.0, 1.0], [0.0, 0.0]])  # ratio 1/2
    grads["l2"]["kernel"] = jnp.array([[1.0, 0.0]])  # ratio 1/4
    # (4 * 0.5 + 2 * 0.25) / 6; the zero bias (ratio undefined) is left out
    assert float(elr_grad_ratio(PARAMS, grads)) == pytest.approx(2.5 / 6)


def test_angular_update_of_a_rotation() -> None:
    theta = 0.3
    w = {"w": jnp.eye(2)}
    relative, angle = angular_update({"w": rotation(theta)}, w)
    # ||R - I||_F / ||I||_F = sqrt(2 (2 - 2 cos)) / sqrt(2) = 2 sin(theta / 2)
    assert float(relative) == pytest.approx(2 * math.sin(theta / 2), rel=1e-6)
    assert float(angle) == pytest.approx(theta, rel=1e-6)


def test_angular_update_small_angle_and_aggregation() -> None:
    _, small = angular_update({"w": rotation(1e-4)}, {"w": jnp.eye(2)})
    assert float(small) == pytest.approx(1e-4, rel=1e-2)  # arccos would round this to 0
    new = {"r": rotation(0.3), "s": jnp.array([2.0, 2.0])}
    old = {"r": jnp.eye(2), "s": jnp.array([1.0, 1.0])}  # pure rescale: step 1, angle 0
    relative, angle = angular_update(new, old)
    assert float(relative) == pytest.approx((4 * 2 * math.sin(0.15) + 2 * 1.0) / 6, rel=1e-6)
    assert float(angle) == pytest.approx(4 * 0.3 / 6, rel=1e-5)


# ------------------------------------------------------------------------------------------
# collect_features and network_health
# ------------------------------------------------------------------------------------------


@functools.cache
def small_critic(kind: str) -> tuple[Critic, dict, jax.Array, jax.Array]:
    critic = Critic(kind, 16, 2, 5)
    obs = jnp.asarray(RNG.normal(size=(8, 3)), jnp.float32)
    act = jnp.asarray(RNG.uniform(-1.0, 1.0, size=(8, 2)), jnp.float32)
    return critic, jax.jit(critic.init)(jax.random.key(6), obs, act), obs, act


def jit_health(*args, **kwargs) -> dict[str, jax.Array]:
    """network_health compiled once (much faster than eager op-by-op dispatch here)."""
    return jax.jit(functools.partial(network_health, **kwargs))(*args)


CONTRACT_KEYS = {
    "feature_norm",
    "param_norm",
    "grad_norm",
    "grad_zero_fraction",
    "elr_grad_ratio",
    "elr_angular",
    "elr_theory",
    "dormant_0",
    "dormant_0.025",
    "dormant_0.1",
    "dead_fraction",
    "srank",
    "effective_rank",
    "feature_rank",
}


def test_collect_features_and_network_health_jitted_on_simbav2_critic() -> None:
    critic, variables, obs, act = small_critic("simbav2")
    params = variables["params"]
    grads = jax.tree_util.tree_map(lambda x: x / 3, params)  # stand-in: ratio 1/3 everywhere
    prev = jax.tree_util.tree_map(lambda x: 0.99 * x, params)  # pure rescale, angle 0

    @jax.jit
    def health(params, grads, prev, obs, act):
        features = collect_features(critic, {"params": params}, obs, act)
        return features, network_health(params, grads, prev, features, 1e-4)

    features, out = health(params, grads, prev, obs, act)
    assert sorted(features) == ["encoder/block_0/features", "encoder/block_1/features"]
    assert all(f.shape == (8, 16) for f in features.values())
    per_layer = {"feature_norm/encoder/block_1/features", "dormant_0.1/encoder/block_0/features"}
    assert CONTRACT_KEYS | per_layer <= set(out)
    assert all(np.isfinite(float(v)) for v in out.values())
    # SimbaV2 block outputs are unit vectors: feature norm is 1 per layer, 2 in total
    assert float(out["feature_norm"]) == pytest.approx(2.0, rel=1e-5)
    assert float(out["param_norm"]) == pytest.approx(float(tree_norm(params)), rel=1e-5)
    assert float(out["elr_grad_ratio"]) == pytest.approx(1 / 3, rel=1e-5)
    assert float(out["elr_angular"]) == pytest.approx(1 / 0.99 - 1, rel=1e-4)
    assert float(out["elr_angle"]) == pytest.approx(0.0, abs=1e-3)


def test_collect_features_of_mlp_ensemble_and_health_on_stacked_params() -> None:
    critic, variables, obs, act = small_critic("mlp")
    stacked = jax.tree_util.tree_map(lambda x: jnp.stack([x, 2 * x]), variables["params"])
    members = jax.jit(jax.vmap(lambda p: collect_features(critic, {"params": p}, obs, act)))
    features = members(stacked)
    assert sorted(features) == ["encoder/features_0", "encoder/features_1"]
    assert features["encoder/features_0"].shape == (2, 8, 16)
    out = jit_health(stacked, stacked, stacked, features, 1e-4)
    norm = float(tree_norm(variables["params"]))
    assert float(out["param_norm"]) == pytest.approx(math.sqrt(5) * norm, rel=1e-5)
    assert float(out["dead_fraction"]) == float(dead_fraction(list(features.values())))


def test_network_health_hand_made_features_and_rank_layer() -> None:
    features = {"block_10": jnp.outer(jnp.arange(1.0, 9.0), jnp.ones(4)), "block_2": diag_phi()}
    out = jit_health(PARAMS, PARAMS, PARAMS, features, 1e-4, taus=(0.1,), per_leaf=True)
    assert int(out["srank"]) == 1  # the last layer in natural order is block_10 (rank one)
    assert float(out["feature_norm/block_2"]) == pytest.approx(2.5)  # (4 + 3 + 2 + 1) / 4
    assert float(out["dormant_0.1"]) == pytest.approx(0.0)
    assert "dormant_0" not in out
    assert float(out["param_norm/l2/kernel"]) == pytest.approx(4.0)
    assert float(out["elr_angular"]) == 0.0
    chosen = jit_health(PARAMS, PARAMS, PARAMS, features, 1e-4, rank_layer="block_2")
    assert int(chosen["srank"]) == 4
    assert "srank" not in jit_health(PARAMS, PARAMS, PARAMS, {}, 1e-4)
    with pytest.raises(ValueError, match="rank_layer"):
        network_health(PARAMS, PARAMS, PARAMS, features, 1e-4, rank_layer="block_3")


def test_network_health_stops_gradients() -> None:
    feats = {"h": jnp.ones((4, 3))}
    norm = jax.jit(jax.grad(lambda p: network_health(p, p, p, feats, 1e-4)["param_norm"]))
    assert float(tree_norm(norm(PARAMS))) == 0.0
