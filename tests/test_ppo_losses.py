"""PPO losses, GAE and distributions against hand-computed values and closed forms."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.agents import ppo_losses as pl

# A 4-step trajectory: step 1 ends by truncation (bootstrap from the final observation's
# value 10), step 3 by termination (no bootstrap). gamma 0.9, lambda 0.5.
REWARDS = jnp.array([1.0, 2.0, 3.0, 4.0])
VALUES = jnp.array([0.5, 1.0, 1.5, 2.0])
NEXT_VALUES = jnp.array([1.0, 10.0, 2.0, 3.0])
TERMINATED = jnp.array([0.0, 0.0, 0.0, 1.0])
DONE = jnp.array([0.0, 1.0, 0.0, 1.0])


def test_gae_hand_computed_with_truncation_and_termination():
    # deltas: 1+.9*1-.5=1.4; 2+.9*10-1=10; 3+.9*2-1.5=3.3; 4-2=2
    # A3=2; A2=3.3+.45*2=4.2; A1=10 (episode end); A0=1.4+.45*10=5.9
    adv, ret = pl.gae(REWARDS, VALUES, NEXT_VALUES, TERMINATED, DONE, 0.9, 0.5)
    np.testing.assert_allclose(adv, [5.9, 10.0, 4.2, 2.0], rtol=1e-6)
    np.testing.assert_allclose(ret, [6.4, 11.0, 5.7, 4.0], rtol=1e-6)


def test_truncation_is_not_a_termination():
    """Treating the truncation as a termination would drop gamma V(final) = 9 from A1."""
    adv, _ = pl.gae(REWARDS, VALUES, NEXT_VALUES, DONE, DONE, 0.9, 0.5)
    assert float(adv[1]) == pytest.approx(1.0)


def test_lambda_returns_match_hand_values_and_gae():
    ret = pl.lambda_returns(REWARDS, NEXT_VALUES, TERMINATED, DONE, 0.9, 0.5)
    np.testing.assert_allclose(ret, [6.4, 11.0, 5.7, 4.0], rtol=1e-6)


def test_gae_batched_over_envs_and_lambda_one_is_monte_carlo():
    rewards = jnp.stack([REWARDS, REWARDS[::-1]], axis=1)
    values = jnp.zeros_like(rewards)
    ends = jnp.array([0.0, 0.0, 0.0, 1.0])
    ends2 = jnp.stack([ends, ends], axis=1)
    adv, _ = pl.gae(rewards, values, values, ends2, ends2, 0.5, 1.0)
    np.testing.assert_allclose(adv[:, 0], [1 + 1 + 0.75 + 0.5, 2 + 1.5 + 1, 3 + 2, 4], rtol=1e-6)
    np.testing.assert_allclose(adv[0, 1], 4 + 1.5 + 0.5 + 0.125, rtol=1e-6)


def test_clipped_surrogate_hand_values():
    ratio = jnp.array([1.5, 0.5, 1.1, 0.7])
    adv = jnp.array([1.0, 1.0, -1.0, -1.0])
    loss, info = pl.clipped_surrogate(jnp.log(ratio), jnp.zeros(4), adv, 0.2)
    # min(r A, clip(r) A) = 1.2, 0.5, -1.1, -0.8 -> mean -0.05
    assert float(loss) == pytest.approx(0.05, abs=1e-6)
    assert float(info["train/clip_fraction"]) == pytest.approx(0.75)
    kl = np.mean((np.asarray(ratio) - 1) - np.log(ratio))
    assert float(info["train/approx_kl"]) == pytest.approx(kl, rel=1e-5)


def test_value_loss_clipped_and_unclipped():
    v, v_old, ret = jnp.array([2.0, 0.95]), jnp.array([1.0, 1.0]), jnp.array([3.0, 0.0])
    # clipped: max((2-3)^2, (1.2-3)^2)=3.24 and 0.9025 -> 0.5 * mean = 1.035625
    assert float(pl.value_loss(v, v_old, ret, 0.2, True)) == pytest.approx(1.035625, rel=1e-6)
    assert float(pl.value_loss(v, v_old, ret, 0.2, False)) == pytest.approx(0.475625, rel=1e-6)


def test_categorical_log_prob_and_entropy():
    logits = jnp.log(jnp.array([[1.0, 2.0, 3.0]])) + 7.0  # p = 1/6, 2/6, 3/6
    assert float(pl.categorical_log_prob(logits, jnp.array([2]))[0]) == pytest.approx(
        math.log(0.5), rel=1e-6
    )
    p = np.array([1, 2, 3]) / 6
    assert float(pl.categorical_entropy(logits)[0]) == pytest.approx(-np.sum(p * np.log(p)))


def test_gaussian_log_prob_and_entropy():
    mean, log_std, x = jnp.array([0.0, 1.0]), jnp.array([0.0, math.log(2.0)]), jnp.ones(2)
    expected = -0.5 - math.log(2.0) - math.log(2 * math.pi) - 0.5 * 0.0
    assert float(pl.gaussian_log_prob(mean, log_std, x)) == pytest.approx(expected, rel=1e-6)
    h = math.log(2 * math.pi * math.e) + math.log(2.0)
    assert float(pl.gaussian_entropy(log_std)) == pytest.approx(h, rel=1e-6)


def test_tanh_gaussian_log_prob_change_of_variables():
    mean, log_std, u = jnp.array([0.3]), jnp.array([-0.5]), jnp.array([0.8])
    naive = pl.gaussian_log_prob(mean, log_std, u) - jnp.log(1 - jnp.tanh(u) ** 2).sum()
    assert float(pl.tanh_gaussian_log_prob(mean, log_std, u)) == pytest.approx(
        float(naive), rel=1e-5
    )
    # the density of a = tanh(u) integrates to 1 over (-1, 1)
    a = np.linspace(-0.9999, 0.9999, 200_001)
    us = jnp.arctanh(jnp.asarray(a))[:, None]
    dens = np.exp(np.asarray(pl.tanh_gaussian_log_prob(mean, log_std, us)))
    assert np.trapezoid(dens, a) == pytest.approx(1.0, abs=1e-3)


def test_normalize_advantages():
    out = pl.normalize_advantages(jnp.array([1.0, 2.0, 3.0, 6.0]))
    assert float(jnp.mean(out)) == pytest.approx(0.0, abs=1e-6)
    assert float(jnp.std(out)) == pytest.approx(1.0, abs=1e-5)
