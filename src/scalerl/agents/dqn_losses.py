"""DQN targets and losses: (double) Q-learning, C51 distributional targets, Huber / MSE.

Every target takes an n-step batch as the replay buffer builds it (`scalerl.buffers.vec_replay`):
`reward` is the discounted sum of the chain's rewards, `discount` is gamma**m for a chain of m
steps, and `terminated` marks a chain that ended in a true termination (no bootstrap; a
truncation still bootstraps).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from scalerl.agents.losses import categorical_projection, support


def greedy_next_action(next_q_online: jax.Array, next_q_target: jax.Array, double: bool):
    """a* = argmax_a Q(s', a) of the online network (double DQN, van Hasselt et al. 2016 eq. 4)
    or of the target network (Mnih et al. 2015, Methods eq. 1)."""
    return jnp.argmax(next_q_online if double else next_q_target, axis=-1)


def q_target(
    reward: jax.Array,
    discount: jax.Array,
    terminated: jax.Array,
    next_q_target: jax.Array,
    next_q_online: jax.Array,
    double: bool,
) -> jax.Array:
    """y = r + gamma_n (1 - d) Q_target(s', a*) with a* from `greedy_next_action`.

    Args:
        reward, discount, terminated: (B,) n-step reward sum, gamma**m, termination flag.
        next_q_target, next_q_online: (B, A) Q values of the next observation.
        double: choose a* with the online network (double DQN).
    """
    action = greedy_next_action(next_q_online, next_q_target, double)
    next_v = jnp.take_along_axis(next_q_target, action[:, None], axis=-1)[:, 0]
    return jax.lax.stop_gradient(reward + discount * (1.0 - terminated) * next_v)


def c51_values(logits: jax.Array, v_max: float) -> jax.Array:
    """Expected values sum_k p_k z_k of C51 logits (..., A, K) on [-v_max, v_max]."""
    probs = jax.nn.softmax(logits, axis=-1)
    return jnp.sum(probs * support(logits.shape[-1], v_max), axis=-1)


def c51_target(
    reward: jax.Array,
    discount: jax.Array,
    terminated: jax.Array,
    next_logits_target: jax.Array,
    next_logits_online: jax.Array,
    double: bool,
    v_max: float,
) -> jax.Array:
    """Projected target distribution (Bellemare et al. 2017, Algorithm 1), shape (B, K).

    Atoms z_k = linspace(-v_max, v_max, K) of the target network's distribution at a* are moved
    to r + gamma_n (1 - d) z_k and projected back onto the support (scalerl's categorical
    projection, shared with SimbaV2's critic). a* maximises the expected value of the online
    (double) or target distribution.
    """
    v_target = c51_values(next_logits_target, v_max)
    v_online = c51_values(next_logits_online, v_max)
    action = greedy_next_action(v_online, v_target, double)
    logits = jnp.take_along_axis(next_logits_target, action[:, None, None], axis=1)[:, 0]
    z = support(logits.shape[-1], v_max)
    atoms = reward[:, None] + (discount * (1.0 - terminated))[:, None] * z[None, :]
    probs = jax.nn.softmax(logits, axis=-1)
    return jax.lax.stop_gradient(categorical_projection(atoms, probs, v_max))


def td_errors(q_sa: jax.Array, target: jax.Array, kind: str, delta: float = 1.0) -> jax.Array:
    """Per-sample Huber(q - y) (Mnih et al. 2015's error clipping, delta = 1) or 0.5 (q - y)^2."""
    err = q_sa - target
    return optax.huber_loss(err, delta=delta) if kind == "huber" else 0.5 * err**2


def td_loss(q_sa: jax.Array, target: jax.Array, kind: str, delta: float = 1.0) -> jax.Array:
    """Mean of `td_errors`."""
    return jnp.mean(td_errors(q_sa, target, kind, delta))


def c51_errors(logits_sa: jax.Array, target_probs: jax.Array) -> jax.Array:
    """Per-sample cross-entropy -sum_k m_k log p_k(s, a) (Bellemare et al. 2017, eq. 7)."""
    return -jnp.sum(target_probs * jax.nn.log_softmax(logits_sa, axis=-1), axis=-1)


def c51_loss(logits_sa: jax.Array, target_probs: jax.Array) -> jax.Array:
    """Mean of `c51_errors`."""
    return jnp.mean(c51_errors(logits_sa, target_probs))


def weighted_mean(losses: jax.Array, weight: jax.Array | None) -> jax.Array:
    """mean(w * losses), or the plain mean without weights."""
    return jnp.mean(losses if weight is None else weight * losses)


def select_action(values: jax.Array, action: jax.Array) -> jax.Array:
    """values[b, action[b]] for Q (B, A) or C51 logits (B, A, K)."""
    idx = action.reshape(action.shape[0], *([1] * (values.ndim - 1)))
    return jnp.take_along_axis(values, idx, axis=1)[:, 0]
