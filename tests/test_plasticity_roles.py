"""Role labels from parameter paths (plasticity spec §0) on scalerl networks and hand-made trees."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest
from flax.core import freeze

from scalerl.networks import Actor, Critic
from scalerl.plasticity.roles import ROLES, group_of, label_params, mask_for, path_names


def _shapes(module: nn.Module, *inputs: jax.Array) -> dict:
    """Parameter tree of `module` as ShapeDtypeStructs (labels depend on paths only)."""
    return jax.eval_shape(module.init, jax.random.PRNGKey(0), *inputs)


def _flat(labels) -> dict[str, str]:
    leaves = jax.tree_util.tree_flatten_with_path(labels)[0]
    return {"/".join(path_names(path)): label for path, label in leaves}


OBS, ACT = jnp.zeros((1, 3)), jnp.zeros((1, 2))


def test_mlp_critic_labels():
    labels = _flat(label_params(_shapes(Critic("mlp", 32, 2, 1), OBS, ACT)))
    assert labels == {
        "encoder/dense_0/bias": "bias",
        "encoder/dense_0/kernel": "kernel",
        "encoder/dense_1/bias": "bias",
        "encoder/dense_1/kernel": "kernel",
        "head/value/bias": "output_bias",
        "head/value/kernel": "output_kernel",
    }


def test_simbav2_actor_labels():
    labels = _flat(label_params(_shapes(Actor("simbav2", 32, 1, 2), OBS)))
    assert labels["encoder/embedder/w/hyper_dense/kernel"] == "sphere_kernel"
    assert labels["encoder/block_0/mlp/w2/hyper_dense/kernel"] == "sphere_kernel"
    assert labels["head/mean/w1/hyper_dense/kernel"] == "sphere_kernel"
    assert labels["encoder/block_0/alpha_scaler/scaler"] == "scaler"
    assert labels["head/std/scaler/scaler"] == "scaler"
    assert labels["head/mean/bias"] == "output_bias"
    assert set(labels.values()) == {"sphere_kernel", "scaler", "output_bias"}


def test_simba_critic_labels():
    labels = _flat(label_params(_shapes(Critic("simba", 32, 1, 1), OBS, ACT)))
    assert labels["encoder/block_0/LayerNorm_0/scale"] == "norm_scale"
    assert labels["encoder/block_0/LayerNorm_0/bias"] == "norm_offset"
    assert labels["encoder/final_norm/scale"] == "norm_scale"
    assert labels["encoder/final_norm/bias"] == "norm_offset"
    assert labels["encoder/block_0/Dense_0/kernel"] == "kernel"
    assert labels["encoder/embedder/bias"] == "bias"
    assert labels["head/value/kernel"] == "output_kernel"


class PreNormNet(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.Dense(4, name="dense_pn")(x)
        x = nn.relu(nn.LayerNorm()(x))
        x = nn.relu(nn.RMSNorm()(nn.Dense(4, use_bias=False, name="block_1_pn")(x)))
        return nn.Dense(1, name="head")(x)


def test_pre_norm_model_labels():
    labels = _flat(label_params(_shapes(PreNormNet(), OBS)))
    assert labels == {
        "dense_pn/kernel": "hidden_kernel",
        "dense_pn/bias": "hidden_bias",
        "LayerNorm_0/scale": "norm_scale",
        "LayerNorm_0/bias": "norm_offset",
        "block_1_pn/kernel": "hidden_kernel",
        "RMSNorm_0/scale": "norm_scale",
        "head/kernel": "output_kernel",
        "head/bias": "output_bias",
    }


def test_hand_made_tree_groups_and_ensemble_axis():
    tree = {
        "encoder": {"dense_pn": {"kernel": jnp.ones((2, 5, 4))}, "step": jnp.zeros((2,))},
        "head": {"dense_pn": {"kernel": jnp.ones((2, 4, 4))}, "out": {"kernel": jnp.ones((2, 4))}},
    }
    labels = label_params(tree)
    assert labels["encoder"]["dense_pn"]["kernel"] == "hidden_kernel"
    assert labels["head"]["dense_pn"]["kernel"] == "hidden_kernel"  # pre-norm beats head
    assert labels["head"]["out"]["kernel"] == "output_kernel"
    assert labels["encoder"]["step"] == "other"
    frozen = label_params(freeze(tree))
    assert frozen["encoder"]["dense_pn"]["kernel"] == "hidden_kernel"


def test_group_of():
    assert group_of(("params", "encoder", "dense_0", "kernel")) == "encoder"
    assert group_of(("head", "value", "bias")) == "head"
    assert group_of(("kernel",)) == ""
    path = jax.tree_util.tree_flatten_with_path({"params": {"trunk": {"kernel": 1.0}}})[0][0][0]
    assert group_of(path) == "trunk"


def test_mask_for():
    labels = {"a": "kernel", "b": "bias", "c": {"d": "hidden_kernel"}}
    assert mask_for(labels, "kernel", "hidden_kernel") == {"a": True, "b": False, "c": {"d": True}}
    assert mask_for(labels) == {"a": False, "b": False, "c": {"d": False}}
    with pytest.raises(ValueError, match="roles.ROLES"):
        mask_for(labels, "weights")
    assert len(set(ROLES)) == len(ROLES)
