"""Neuron activity: ReDo scores, the dormant-unit ratio and the dead-unit fraction.

Definitions follow Sokar, Agarwal, Castro and
Evci, "The Dormant Neuron Phenomenon in Deep Reinforcement Learning" (ICML 2023).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

SCORE_EPS = 1e-9
"""Added to the layer's mean activity before dividing, as in ReDo and SimbaV2."""


def mean_activity(h: jax.Array) -> jax.Array:
    """Mean absolute activation of every unit, E|h_i|, over all leading (batch) axes.

    Args:
        h: Activations `(..., H)`; every axis but the last is averaged (batch, ensemble,
            spatial positions of a channels-last conv layer).

    Returns:
        `(H,)` mean absolute activation per unit (float32).
    """
    h = jnp.abs(jnp.asarray(h, jnp.float32))
    return jnp.mean(h.reshape(-1, h.shape[-1]), axis=0)


def neuron_scores(h: jax.Array) -> jax.Array:
    """ReDo score s_i = E|h_i| / ((1/H) Σ_k E|h_k|) of every unit of one layer.

    The denominator gets `SCORE_EPS` added, so an all-zero layer scores 0 everywhere (all its
    units are dead) instead of nan.

    Args:
        h: Post-activation features `(..., H)` of one hidden layer on a probe batch.

    Returns:
        `(H,)` scores; a layer of uniformly active units scores 1 everywhere.
    """
    m = mean_activity(h)
    return m / (jnp.mean(m) + SCORE_EPS)


def dormant_ratio(activations: Sequence[jax.Array], tau: float) -> jax.Array:
    """Fraction of τ-dormant units pooled over layers, Σ_l #{i : s_i^l ≤ τ} / Σ_l H_l.

    Args:
        activations: Post-activation features of each hidden layer (not the output), each
            `(..., H_l)`.
        tau: Dormancy threshold on the score; `0` counts units with exactly zero activity.

    Returns:
        Scalar in [0, 1] (SimbaV2 logs the same quantity in percent).
    """
    scores = jnp.concatenate([neuron_scores(h) for h in activations])
    return jnp.mean((scores <= tau).astype(jnp.float32))


def dead_fraction(activations: Sequence[jax.Array]) -> jax.Array:
    """Fraction of units whose activity is exactly zero on the whole batch (β_0).

    Args:
        activations: Post-activation features of each hidden layer, each `(..., H_l)`.

    Returns:
        Scalar in [0, 1]: the dead-ReLU fraction for ReLU layers.
    """
    return dormant_ratio(activations, 0.0)
