"""Loss pieces: C51 projection, TD targets, tanh-Gaussian log-probabilities."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.agents import losses


def test_projection_conserves_mass_for_random_targets():
    key1, key2 = jax.random.split(jax.random.PRNGKey(0))
    atoms = jax.random.uniform(key1, (64, 101), minval=-7, maxval=7)
    probs = jax.nn.softmax(jax.random.normal(key2, (64, 101)))
    m = losses.categorical_projection(atoms, probs, 5.0)
    np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-5)
    assert float(m.min()) >= 0.0


def test_projection_of_atom_exactly_on_a_bin_puts_all_mass_there():
    # support [-2, -1, 0, 1, 2]; atom at exactly 1.0 (bin 3) and at -2 (bin 0)
    atoms = jnp.array([[1.0, -2.0, 0.0, 0.0, 0.0]])
    probs = jnp.array([[0.5, 0.25, 0.25, 0.0, 0.0]])
    m = losses.categorical_projection(atoms, probs, 2.0)
    np.testing.assert_allclose(m, [[0.25, 0.0, 0.25, 0.5, 0.0]], atol=1e-7)
    np.testing.assert_allclose(m.sum(), 1.0, atol=1e-7)


def test_projection_matches_hand_computed_split_and_clipping():
    # support [-2, -1, 0, 1, 2]; atom 0.25 -> 0.75 to bin 2 (0), 0.25 to bin 3 (1);
    # atom -1.5 -> half to bins 0 and 1; atom 9 is clipped to 2 -> bin 4
    atoms = jnp.array([[0.25, -1.5, 9.0, 0.0, 0.0]])
    probs = jnp.array([[0.4, 0.4, 0.2, 0.0, 0.0]])
    m = losses.categorical_projection(atoms, probs, 2.0)
    np.testing.assert_allclose(m, [[0.2, 0.2, 0.3, 0.1, 0.2]], atol=1e-6)


def test_categorical_td_target_shifts_atoms_by_reward_and_discount():
    # K=5 on [-2, 2]; all mass on z=1; r = 0.5, gamma = 0.5, entropy term 0 -> atom 1.0 -> bin 3
    probs = jnp.array([[0.0, 0.0, 0.0, 1.0, 0.0]])
    m = losses.categorical_td_target(
        jnp.array([0.5]), jnp.array([0.5]), jnp.array([0.0]), probs, jnp.array([0.0]), 2.0
    )
    np.testing.assert_allclose(m, [[0, 0, 0, 1.0, 0]], atol=1e-6)
    # terminated: every atom collapses onto r = 0.5 -> half to bins 2 and 3
    m_term = losses.categorical_td_target(
        jnp.array([0.5]), jnp.array([0.5]), jnp.array([1.0]), probs, jnp.array([0.0]), 2.0
    )
    np.testing.assert_allclose(m_term, [[0, 0, 0.5, 0.5, 0]], atol=1e-6)
    # entropy term alpha*log pi = 1 moves the atom z=1 to r + 0.5 * (1 - 1) = 0.5
    m_ent = losses.categorical_td_target(
        jnp.array([0.5]), jnp.array([0.5]), jnp.array([0.0]), probs, jnp.array([1.0]), 2.0
    )
    np.testing.assert_allclose(m_ent, [[0, 0, 0.5, 0.5, 0]], atol=1e-6)


def test_scalar_td_target_hand_values():
    y = losses.scalar_td_target(
        jnp.array([1.0, 1.0]),
        jnp.array([0.9, 0.9]),
        jnp.array([0.0, 1.0]),
        jnp.array([10.0, 10.0]),
        jnp.array([2.0, 2.0]),
    )
    np.testing.assert_allclose(y, [1.0 + 0.9 * 8.0, 1.0], rtol=1e-6)


def test_categorical_value_is_expectation_over_support():
    logits = jnp.log(jnp.array([[0.1, 0.2, 0.3, 0.4]]))
    z = np.linspace(-3, 3, 4)
    assert float(losses.categorical_value(logits, 3.0)[0]) == pytest.approx(
        float(np.dot([0.1, 0.2, 0.3, 0.4], z)), abs=1e-6
    )


def test_tanh_gaussian_log_prob_matches_change_of_variables_in_float64():
    mean = jnp.array([[0.3, -1.2]])
    log_std = jnp.array([[-0.5, 0.4]])
    key = jax.random.PRNGKey(3)
    action, log_prob = losses.tanh_gaussian_sample(key, mean, log_std)
    a = np.asarray(action, np.float64)[0]
    u = np.arctanh(a)
    mu, sigma = np.asarray(mean, np.float64)[0], np.exp(np.asarray(log_std, np.float64)[0])
    normal = -0.5 * ((u - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * math.log(2 * math.pi)
    expected = np.sum(normal - np.log(1 - np.tanh(u) ** 2))
    assert float(log_prob[0]) == pytest.approx(expected, abs=2e-4)


def test_tanh_gaussian_density_integrates_to_one():
    # Density of a = tanh(u) in 1-D, evaluated through the stable log-det, integrated on a grid.
    mu, log_sigma = 0.4, -0.3
    a = np.linspace(-1 + 1e-6, 1 - 1e-6, 400_001)
    u = np.arctanh(a)
    log_det = np.asarray(losses.tanh_log_det(jnp.asarray(u, jnp.float32)), np.float64)
    sigma = math.exp(log_sigma)
    log_normal = -0.5 * ((u - mu) / sigma) ** 2 - log_sigma - 0.5 * math.log(2 * math.pi)
    density = np.exp(log_normal - log_det)
    assert np.trapezoid(density, a) == pytest.approx(1.0, abs=1e-3)


def test_stable_log_det_equals_naive_form_where_the_naive_form_is_accurate():
    u = jnp.linspace(-3, 3, 13)
    naive = jnp.log(1 - jnp.tanh(u) ** 2)
    np.testing.assert_allclose(losses.tanh_log_det(u), naive, atol=1e-4)
    assert np.isfinite(float(losses.tanh_log_det(jnp.array(30.0))))


def test_cross_entropy_hand_value():
    target = jnp.array([[0.5, 0.5]])
    logits = jnp.log(jnp.array([[0.25, 0.75]]))
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert float(losses.cross_entropy(target, logits)[0]) == pytest.approx(expected, rel=1e-6)
