"""Running statistics (float64-accurate in float32) and the SimbaV2 reward scale."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.normalizers import (
    INIT_COUNT,
    normalize,
    reward_scale,
    reward_scale_init,
    reward_scale_update,
    stats_init,
    stats_update,
)


def chan_reference(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean/var in float64 including the initial pseudo-count (mean 0, var 1, count 1e-4)."""
    n = INIT_COUNT + len(samples)
    mean = samples.sum(0) / n
    m2 = INIT_COUNT * 1.0 + INIT_COUNT * mean**2 + ((samples - mean) ** 2).sum(0)
    return mean, m2 / n


def test_running_stats_match_float64_over_many_single_updates():
    rng = np.random.default_rng(0)
    samples = rng.normal([1000.0, -3.0, 0.0], [0.5, 2.0, 1e-3], size=(50_000, 3))
    update = jax.jit(lambda s, x: stats_update(s, x[None]))
    stats = jax.lax.fori_loop(
        0,
        len(samples),
        lambda i, s: update(s, jnp.asarray(samples, jnp.float32)[i]),
        stats_init((3,)),
    )
    mean, var = chan_reference(samples.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(np.asarray(stats.mean, np.float64), mean, rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(np.asarray(stats.var, np.float64), var, rtol=2e-3)
    assert int(stats.count) == 50_000


def test_long_constant_stream_keeps_exact_mean_and_zero_variance():
    stats = jax.lax.fori_loop(
        0,
        200_000,
        lambda i, s: stats_update(s, jnp.full((1,), 1000.1, jnp.float32)),
        stats_init(()),
    )
    assert float(stats.mean) == pytest.approx(1000.1 * 200_000 / (200_000 + INIT_COUNT), rel=1e-7)
    assert float(stats.var) < 1e-3


def test_batch_update_equals_chan_merge():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    stats = stats_update(stats_init((2,)), jnp.asarray(x))
    mean, var = chan_reference(x.astype(np.float64))
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(stats.var, var, rtol=1e-6)


def test_normalize_uses_mean_and_var_with_epsilon():
    stats = stats_update(stats_init((1,)), jnp.array([[2.0], [4.0]]))
    expected = (5.0 - float(stats.mean[0])) / math.sqrt(float(stats.var[0]) + 1e-8)
    assert float(normalize(stats, jnp.array([5.0]))[0]) == pytest.approx(expected, rel=1e-6)


def test_reward_scale_recurrence_on_hand_made_sequence():
    gamma = 0.5
    rewards = [1.0, 2.0, 3.0, 4.0]
    dones = [0.0, 0.0, 1.0, 0.0]
    state = reward_scale_init()
    returns = []
    for r, d in zip(rewards, dones, strict=True):
        state = reward_scale_update(state, jnp.float32(r), jnp.float32(d), gamma)
        returns.append(float(state.ret))
    # G1 = 1; G2 = 0.5*1 + 2; G3 = 3 (done resets before adding); G4 = 0.5*3 + 4
    assert returns == pytest.approx([1.0, 2.5, 3.0, 5.5])
    assert float(state.ret_abs_max) == pytest.approx(5.5)
    _, var = chan_reference(np.array(returns))
    assert float(state.stats.var) == pytest.approx(var, rel=1e-5)
    expected = max(math.sqrt(var + 1e-8), 5.5 / 5.0)
    assert float(reward_scale(state, 5.0)) == pytest.approx(expected, rel=1e-5)


def test_reward_scale_bound_keeps_scaled_return_within_g_max():
    state = reward_scale_init()
    for _ in range(300):  # constant reward 1 with gamma 0.99: G -> ~95, tiny variance late on
        state = reward_scale_update(state, jnp.float32(1.0), jnp.float32(0.0), 0.99)
    scale = float(reward_scale(state, 5.0))
    assert float(state.ret) / scale <= 5.0 + 1e-5
