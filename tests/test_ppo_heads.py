"""Shapes and initial values of the policy, value and per-action Q heads."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.networks.heads import (
    CategoricalPolicyHead,
    GaussianPolicyHead,
    QHead,
    ScalarValueHead,
)
from scalerl.networks.layers import l2normalize

Z = l2normalize(jax.random.normal(jax.random.PRNGKey(0), (5, 16)))


def _out(head, z=Z):
    params = head.init(jax.random.PRNGKey(1), z)
    return params, head.apply(params, z)


@pytest.mark.parametrize("hyper", [False, True])
def test_gaussian_head_state_independent_std(hyper):
    params, (mean, log_std) = _out(GaussianPolicyHead(3, hyper, 16, False, -0.5))
    assert mean.shape == log_std.shape == (5, 3)
    np.testing.assert_allclose(log_std, -0.5)
    assert "log_std" in params["params"]


@pytest.mark.parametrize("hyper", [False, True])
def test_gaussian_head_state_dependent_std(hyper):
    _, (mean, log_std) = _out(GaussianPolicyHead(2, hyper, 16, True))
    assert mean.shape == log_std.shape == (5, 2)
    assert float(jnp.std(log_std[:, 0])) > 0  # varies with the input


def test_plain_policy_heads_start_near_uniform():
    _, logits = _out(CategoricalPolicyHead(4, False, 16))
    assert logits.shape == (5, 4)
    assert float(jnp.max(jnp.abs(logits))) < 0.05  # orthogonal init scale 0.01


@pytest.mark.parametrize("hyper", [False, True])
def test_value_and_q_head_shapes(hyper):
    assert _out(ScalarValueHead(hyper, 16))[1].shape == (5,)
    assert _out(QHead(6, hyper, 16))[1].shape == (5, 6)
    assert _out(CategoricalPolicyHead(4, hyper, 16))[1].shape == (5, 4)
