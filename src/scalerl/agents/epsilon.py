"""ε-greedy exploration with a linear schedule (Mnih et al. 2015, Methods "Training details")."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def linear_epsilon(step: jax.Array | int, start: float, end: float, decay_steps: int) -> jax.Array:
    """ε at `step`: `start` at 0, linear to `end` at `decay_steps`, then constant.

    Args:
        step: Environment (or agent) step count.
        start: Initial ε.
        end: Final ε.
        decay_steps: Steps of the linear decay; 0 means `end` from the start.
    """
    frac = jnp.clip(jnp.asarray(step, jnp.float32) / max(decay_steps, 1), 0.0, 1.0)
    frac = frac if decay_steps > 0 else jnp.ones_like(frac)
    return jnp.asarray(start + frac * (end - start), jnp.float32)


def epsilon_greedy(key: jax.Array, q: jax.Array, epsilon: jax.Array | float) -> jax.Array:
    """Greedy actions of `q` (..., A), each replaced by a uniform one with probability ε.

    Args:
        key: PRNG key.
        q: Action values, last axis = actions.
        epsilon: Probability of a uniformly random action (scalar or broadcastable to q[..., 0]).
    """
    explore_key, action_key = jax.random.split(key)
    greedy = jnp.argmax(q, axis=-1)
    random = jax.random.randint(action_key, greedy.shape, 0, q.shape[-1])
    explore = jax.random.uniform(explore_key, greedy.shape) < epsilon
    return jnp.where(explore, random, greedy).astype(jnp.int32)
