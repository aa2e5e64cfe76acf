"""Running observation statistics and the SimbaV2 reward scale, as pure functions on pytrees.

The official code keeps these statistics in float64, which was reported essential to reproduce
its results. JAX runs in float32 by default, so the mean and the sum of squared deviations are
kept as compensated ("double-float") pairs: value = hi + lo, added with Knuth's TwoSum. This
gives float64-like accuracy over millions of updates without enabling `jax_enable_x64`.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

INIT_COUNT = 1e-4
"""Initial pseudo-count of the running statistics (mean 0, variance 1), as in the official code."""
VAR_EPS = 1e-8
"""Added to the variance before the square root."""


def _two_sum(hi: jax.Array, lo: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(hi + lo) + x as a new normalised pair, losing no low-order bits (Knuth's TwoSum)."""
    s = hi + x
    bp = s - hi
    err = (hi - (s - bp)) + (x - bp)
    lo = lo + err
    new_hi = s + lo
    return new_hi, lo - (new_hi - s)


@flax.struct.dataclass
class RunningStats:
    """Running mean and variance with compensated accumulation (Chan et al. parallel merge)."""

    mean_hi: jax.Array
    mean_lo: jax.Array
    m2_hi: jax.Array
    m2_lo: jax.Array
    count: jax.Array  # int32 number of real samples; the pseudo-count INIT_COUNT is added on top

    @property
    def mean(self) -> jax.Array:
        return self.mean_hi + self.mean_lo

    @property
    def var(self) -> jax.Array:
        return (self.m2_hi + self.m2_lo) / self.total

    @property
    def total(self) -> jax.Array:
        return self.count.astype(jnp.float32) + INIT_COUNT


def stats_init(shape: tuple[int, ...]) -> RunningStats:
    """Statistics with mean 0, variance 1 and pseudo-count 1e-4."""
    zeros = jnp.zeros(shape, jnp.float32)
    m2 = jnp.full(shape, INIT_COUNT, jnp.float32)  # variance 1 at the pseudo-count
    return RunningStats(zeros, zeros, m2, zeros, jnp.int32(0))


def stats_update(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """Merge a batch (leading axis = samples) into the statistics.

    delta = mu_b - mu; N = n + n_b; mu += delta n_b / N; M2 += M2_b + delta^2 n n_b / N.
    """
    n_b = batch.shape[0]
    batch_mean = jnp.mean(batch, axis=0)
    batch_m2 = jnp.sum(jnp.square(batch - batch_mean), axis=0)
    n = stats.total
    total = n + n_b
    delta = (batch_mean - stats.mean_hi) - stats.mean_lo
    mean_hi, mean_lo = _two_sum(stats.mean_hi, stats.mean_lo, delta * (n_b / total))
    m2_inc = batch_m2 + jnp.square(delta) * (n * n_b / total)
    m2_hi, m2_lo = _two_sum(stats.m2_hi, stats.m2_lo, m2_inc)
    return RunningStats(mean_hi, mean_lo, m2_hi, m2_lo, stats.count + n_b)


def normalize(stats: RunningStats, x: jax.Array) -> jax.Array:
    """(x - mean) / sqrt(var + 1e-8), no clipping."""
    return ((x - stats.mean_hi) - stats.mean_lo) / jnp.sqrt(stats.var + VAR_EPS)


@flax.struct.dataclass
class RewardScaleState:
    """Discounted running return G, its running statistics and the largest |G| seen."""

    ret: jax.Array
    stats: RunningStats
    ret_abs_max: jax.Array


def reward_scale_init() -> RewardScaleState:
    """G = 0, statistics of G at mean 0 / var 1, max |G| = 0."""
    return RewardScaleState(jnp.float32(0.0), stats_init(()), jnp.float32(0.0))


def reward_scale_update(
    state: RewardScaleState, reward: jax.Array, done: jax.Array, gamma: float
) -> RewardScaleState:
    """G <- gamma (1 - done) G + r; update the statistics of G and max |G|.

    `done` is terminated OR truncated of the same transition (gymnasium NormalizeReward rule).
    With one G per environment (shape (N,)), all N enter the statistics in one merge.
    """
    ret = gamma * (1.0 - done) * state.ret + reward
    if ret.ndim == 0:
        stats = stats_update(state.stats, ret[None])
        return RewardScaleState(ret, stats, jnp.maximum(state.ret_abs_max, jnp.abs(ret)))
    stats = stats_update(state.stats, ret)
    return RewardScaleState(ret, stats, jnp.maximum(state.ret_abs_max, jnp.max(jnp.abs(ret))))


def reward_scale(state: RewardScaleState, g_max: float) -> jax.Array:
    """max(sqrt(Var(G) + 1e-8), max|G| / g_max): dividing by it keeps |G| <= g_max."""
    return jnp.maximum(jnp.sqrt(state.stats.var + VAR_EPS), state.ret_abs_max / g_max)
