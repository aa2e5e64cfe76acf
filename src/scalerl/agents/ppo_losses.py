"""PPO building blocks as pure functions: policy distributions, GAE(lambda), clipped losses.

References: Schulman et al., "Proximal Policy Optimization Algorithms" (2017), eq. 7 (clipped
surrogate) and eq. 11-12 (truncated GAE); Schulman et al., "High-Dimensional Continuous Control
Using Generalized Advantage Estimation" (2016), eq. 16; the clipped value loss follows the
PPO2 baselines code as documented in Huang et al., "The 37 Implementation Details of PPO"
(ICLR blog track 2022), details 1.7-1.9.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

LOG_2PI = math.log(2.0 * math.pi)


# ------------------------------------------------------------------ distributions


def categorical_log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    """log pi(a|s) of integer actions (...,) under logits (..., A)."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(log_p, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """-sum_a p(a) log p(a) per row of logits (..., A)."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, x: jax.Array) -> jax.Array:
    """log N(x; mean, diag(exp(log_std))^2), summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * jnp.square(z) - log_std - 0.5 * LOG_2PI, axis=-1)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """Entropy of a diagonal Gaussian: sum_i (log_std_i + 0.5 log(2 pi e))."""
    return jnp.sum(log_std + 0.5 * (LOG_2PI + 1.0), axis=-1)


def tanh_log_det(u: jax.Array) -> jax.Array:
    """sum_i log(1 - tanh(u_i)^2), in the stable form 2 (log 2 - u - softplus(-2u))."""
    return jnp.sum(2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)


def tanh_gaussian_log_prob(mean: jax.Array, log_std: jax.Array, u: jax.Array) -> jax.Array:
    """log-density of a = tanh(u), u ~ N(mean, std^2), given the pre-squash sample u
    (Haarnoja et al. 2018, SAC appendix C eq. 21)."""
    return gaussian_log_prob(mean, log_std, u) - tanh_log_det(u)


# ------------------------------------------------------------------ advantages and returns


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: float,
    lam: float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimates and lambda-returns of a rollout (GAE paper eq. 16).

    delta_t = r_t + gamma (1 - terminated_t) V(s'_t) - V(s_t) and
    A_t = delta_t + gamma lambda (1 - done_t) A_{t+1}. `next_values[t]` is the value of the
    true next observation s'_t (the final observation on truncation), so a truncated episode
    bootstraps from V(s'_t) while a terminated one does not; `done` (terminated or truncated)
    stops the recursion at every episode end. All inputs are (T, ...) time-major.

    Returns:
        (advantages, returns) with returns = advantages + values (the lambda-returns).
    """
    not_term = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - done.astype(jnp.float32)
    deltas = rewards + gamma * not_term * next_values - values

    def step(carry: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, cont = x
        adv = delta + gamma * lam * cont * carry
        return adv, adv

    _, adv = jax.lax.scan(step, jnp.zeros_like(values[0]), (deltas, not_done), reverse=True)
    return adv, adv + values


def lambda_returns(
    rewards: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: float,
    lam: float,
) -> jax.Array:
    """Recursive lambda-returns (Sutton & Barto 2018 eq. 12.18 with episode ends):
    G_t = r_t + gamma (1 - terminated_t) [(1 - lambda') V(s'_t) + lambda' G_{t+1}], where
    lambda' = lambda inside an episode and 0 at its end (and after the rollout's last step)."""
    not_term = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - done.astype(jnp.float32)
    last = jnp.zeros_like(rewards).at[-1].set(1.0)

    def step(carry: jax.Array, x: tuple[jax.Array, ...]) -> tuple[jax.Array, jax.Array]:
        r, v, nt, nd, is_last = x
        lam_t = lam * nd * (1.0 - is_last)
        g = r + gamma * nt * ((1.0 - lam_t) * v + lam_t * carry)
        return g, g

    xs = (rewards, next_values, not_term, not_done, last)
    _, out = jax.lax.scan(step, jnp.zeros_like(rewards[0]), xs, reverse=True)
    return out


def normalize_advantages(adv: jax.Array, eps: float = 1e-8) -> jax.Array:
    """(A - mean) / (std + eps) over a minibatch (37 details, 1.7)."""
    return (adv - jnp.mean(adv)) / (jnp.std(adv) + eps)


# ------------------------------------------------------------------ losses


def clipped_surrogate(
    log_prob: jax.Array, old_log_prob: jax.Array, adv: jax.Array, clip: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO's clipped policy loss -E[min(r A, clip(r, 1-eps, 1+eps) A)] (PPO paper eq. 7).

    Returns the loss and diagnostics: the fraction of clipped ratios and the approximate KL
    E[(r - 1) - log r] (Schulman's low-variance estimator, 37 details 1.11).
    """
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * adv
    clipped = jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * adv
    loss = -jnp.mean(jnp.minimum(unclipped, clipped))
    info = {
        "train/clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > clip).astype(jnp.float32)),
        "train/approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
    }
    return loss, info


def value_loss(
    value: jax.Array, old_value: jax.Array, returns: jax.Array, clip: float, clipped: bool
) -> jax.Array:
    """0.5 E[(V - R)^2], or with clipping 0.5 E[max((V - R)^2, (V_old + clip(V - V_old) - R)^2)]
    (PPO2 baselines; 37 details 1.9)."""
    unclipped = jnp.square(value - returns)
    if not clipped:
        return 0.5 * jnp.mean(unclipped)
    v_clip = old_value + jnp.clip(value - old_value, -clip, clip)
    return 0.5 * jnp.mean(jnp.maximum(unclipped, jnp.square(v_clip - returns)))
