"""PQN's targets and loss: Q(λ) returns with max bootstrapping over a rollout window.

Gallici et al. 2025, "Simplifying Deep Temporal Difference Learning" (ICLR), §4 and Alg. 1:
the target of step t mixes the one-step bootstrap max_a Q(s_{t+1}, a) with the return of the
next step,

    G_t = r_t + γ [(1 − λ) max_a Q(s'_t, a) + λ G_{t+1}],

computed backwards over the T steps of a rollout; the last step bootstraps fully,
G_{T−1} = r_{T−1} + γ max_a Q(s'_{T−1}, a). A **terminated** step has no future
(G_t = r_t); a **truncated** step (time limit) bootstraps from its final observation,
G_t = r_t + γ max_a Q(s'_t, a), and its next row belongs to a new episode, so the λ-trace
stops there too. `s'_t` is the observation reached by action t before any automatic reset.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def q_lambda_returns(
    rewards: jax.Array,
    next_q_max: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: float,
    lam: float,
) -> jax.Array:
    """Q(λ) targets G (T, ...) of a time-major rollout (module docstring).

    Args:
        rewards: r_t, (T, ...).
        next_q_max: max_a Q(s'_t, a) of the observation each action reached (the final one
            when the episode ended), (T, ...).
        terminated: true end at t: no bootstrap.
        truncated: time limit at t: bootstrap from `next_q_max`, no trace across.
        gamma: discount γ.
        lam: λ; 0 gives one-step Q-learning targets, 1 Monte-Carlo returns up to the window
            end.
    """
    alive = 1.0 - terminated.astype(jnp.float32)
    cut = jnp.logical_or(terminated, truncated).astype(jnp.float32)

    def step(g_next: jax.Array, x: tuple[jax.Array, ...]) -> tuple[jax.Array, jax.Array]:
        r, q, a, c = x
        mix = (1.0 - lam) * q + lam * g_next
        g = r + gamma * a * (c * q + (1.0 - c) * mix)
        return g, g

    last = rewards[-1] + gamma * alive[-1] * next_q_max[-1]
    xs = (rewards[:-1], next_q_max[:-1], alive[:-1], cut[:-1])
    _, head = jax.lax.scan(step, last, xs, reverse=True)
    return jnp.concatenate([head, last[None]], axis=0)


def td_loss(q_taken: jax.Array, target: jax.Array) -> jax.Array:
    """½ E[(Q(s, a) − G)²], the target held fixed (PQN's regression loss)."""
    return 0.5 * jnp.mean(jnp.square(q_taken - jax.lax.stop_gradient(target)))
