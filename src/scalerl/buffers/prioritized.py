"""Proportional prioritised replay over `VecReplay` (Schaul et al. 2016, "Prioritized
Experience Replay", ICLR, §3.3 and eq. 1).

Each (row, environment) slot has a priority p_i; a chain starts at slot i with probability
P(i) = p_i^α / Σ_k p_k^α among slots that can start an n-step chain, and its loss is weighted
by w_i = (M P(i))^-β / max_j w_j over the batch (M = number of such slots). New transitions get
the largest priority seen so far; after an update the sampled slots get |δ| + ε (scalar heads)
or the cross-entropy + ε (C51, as in Rainbow, Hessel et al. 2018 §3). Sampling is a cumulative
sum over all slots and a binary search per draw: O(capacity) per batch, static shapes, so it
runs inside the jitted, vmapped loop.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from scalerl.buffers.vec_replay import (
    NStepBatch,
    VecReplay,
    check_n_step,
    start_mask,
    vec_replay_gather,
)


@flax.struct.dataclass
class Priorities:
    """p_i per slot (rows, N), 0 for slots never written, and the largest p seen."""

    value: jax.Array
    max_value: jax.Array


def priorities_init(rows: int, num_envs: int) -> Priorities:
    """All slots empty; the first transitions get priority 1."""
    return Priorities(jnp.zeros((rows, num_envs), jnp.float32), jnp.float32(1.0))


def priorities_write(pr: Priorities, row: jax.Array) -> Priorities:
    """Give the vector step written at `row` the largest priority seen so far."""
    fill = jnp.full(pr.value.shape[1:], pr.max_value)
    return pr.replace(value=jax.lax.dynamic_update_index_in_dim(pr.value, fill, row, 0))


def prioritized_sample(
    buf: VecReplay,
    pr: Priorities,
    key: jax.Array,
    batch_size: int,
    n_step: int,
    gamma: float,
    alpha: float,
    beta: jax.Array | float,
) -> tuple[NStepBatch, jax.Array, jax.Array]:
    """B chains drawn with P(i) ∝ p_i^α, their weights, and their (row, env) slots.

    Returns:
        (batch with `weight`, row (B,), env (B,)).
    """
    check_n_step(buf, n_step)
    num_envs = pr.value.shape[1]
    p = (pr.value**alpha) * start_mask(buf, n_step)[:, None]
    flat = p.reshape(-1)
    cdf = jnp.cumsum(flat)
    draws = jax.random.uniform(key, (batch_size,)) * cdf[-1]
    idx = jnp.minimum(jnp.searchsorted(cdf, draws, side="right"), flat.shape[0] - 1)
    prob = flat[idx] / jnp.maximum(cdf[-1], 1e-12)
    slots = jnp.sum(start_mask(buf, n_step)) * num_envs
    weight = (slots * jnp.maximum(prob, 1e-12)) ** (-jnp.asarray(beta, jnp.float32))
    row, env = idx // num_envs, idx % num_envs
    batch = vec_replay_gather(buf, row, env, n_step, gamma)
    return batch.replace(weight=weight / jnp.max(weight)), row, env


def priorities_update(
    pr: Priorities, row: jax.Array, env: jax.Array, errors: jax.Array, eps: float
) -> Priorities:
    """p_i <- errors + eps at the sampled slots; the running maximum follows."""
    new = jnp.abs(errors) + eps
    value = pr.value.at[row, env].set(new)
    return Priorities(value, jnp.maximum(pr.max_value, jnp.max(new)))
