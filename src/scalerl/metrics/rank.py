"""Rank of a feature matrix Φ ∈ R^{n×d}: srank, effective rank, PCA rank and feature rank.

Definitions follow the rank measures of the plasticity literature (and SimbaV2's `get_rank`). Every
measure is computed from the singular values
σ_1 ≥ … ≥ σ_min(n,d) of Φ; features with extra leading axes (e.g. an ensemble axis) are
flattened to rows first.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

TINY = 1e-30
"""Floor on a spectrum's sum, so an all-zero Φ gives finite ranks."""


def singular_values(phi: jax.Array) -> jax.Array:
    """Singular values of Φ in descending order (float32).

    Args:
        phi: Features `(..., d)`; all leading axes are flattened into the n rows.

    Returns:
        `(min(n, d),)` singular values, largest first.
    """
    phi = jnp.asarray(phi, jnp.float32)
    return jnp.linalg.svd(phi.reshape(-1, phi.shape[-1]), compute_uv=False)


def _first_reaching(values: jax.Array, fraction: float) -> jax.Array:
    """Smallest k with Σ_{i≤k} v_i ≥ fraction · Σ_i v_i, for non-negative v (1-based)."""
    cumulative = jnp.cumsum(values)
    below = cumulative < fraction * cumulative[-1]
    return 1 + jnp.sum(below.astype(jnp.int32))


def _num_rows(phi: jax.Array) -> int:
    """Number of rows n of Φ once its leading axes are flattened."""
    return max(1, math.prod(jnp.shape(phi)[:-1]))


def srank_of(s: jax.Array, delta: float = 0.01) -> jax.Array:
    """srank from singular values `s` (see `srank`)."""
    return _first_reaching(s, 1.0 - delta)


def effective_rank_of(s: jax.Array) -> jax.Array:
    """Effective rank from singular values `s` (see `effective_rank`)."""
    p = s / jnp.maximum(jnp.sum(s), TINY)
    return jnp.exp(-jnp.sum(xlogy(p, p)))


def pca_rank_of(s: jax.Array, threshold: float = 0.99) -> jax.Array:
    """PCA rank from singular values `s` (see `pca_rank`)."""
    return _first_reaching(jnp.square(s), threshold)


def feature_rank_of(s: jax.Array, n: int, eps: float = 0.01) -> jax.Array:
    """Feature rank from the singular values `s` of a matrix with `n` rows (see `feature_rank`)."""
    return jnp.sum((s / jnp.sqrt(float(n)) > eps).astype(jnp.int32))


def all_ranks(phi: jax.Array) -> dict[str, jax.Array]:
    """The four ranks of §5.2 with default parameters from a single SVD of Φ.

    Args:
        phi: Features `(..., d)`.

    Returns:
        `{"srank", "effective_rank", "pca_rank", "feature_rank"}` scalars.
    """
    s = singular_values(phi)
    return {
        "srank": srank_of(s),
        "effective_rank": effective_rank_of(s),
        "pca_rank": pca_rank_of(s),
        "feature_rank": feature_rank_of(s, _num_rows(phi)),
    }


def srank(phi: jax.Array, delta: float = 0.01) -> jax.Array:
    """srank_δ(Φ) = min{k : Σ_{i≤k} σ_i / Σ_i σ_i ≥ 1 − δ}.

    Kumar, Agarwal, Ghosh and Levine, "Implicit Under-Parameterization Inhibits Data-Efficient
    Deep Reinforcement Learning" (ICLR 2021).

    Args:
        phi: Features `(..., d)`.
        delta: Fraction of the nuclear norm allowed to be left out.

    Returns:
        Integer scalar in [1, min(n, d)] (1 for an all-zero Φ).
    """
    return srank_of(singular_values(phi), delta)


def effective_rank(phi: jax.Array) -> jax.Array:
    """Effective rank exp(−Σ_i p_i log p_i), p_i = σ_i / Σ_j σ_j.

    Roy and Vetterli, "The effective rank: a measure of effective dimensionality" (EUSIPCO
    2007). Zero singular values contribute 0 (0 log 0 = 0).

    Args:
        phi: Features `(..., d)`.

    Returns:
        Float scalar in [1, min(n, d)]; equals d for an isotropic Φ (all σ_i equal).
    """
    return effective_rank_of(singular_values(phi))


def pca_rank(phi: jax.Array, threshold: float = 0.99) -> jax.Array:
    """Smallest k with Σ_{i≤k} σ_i² ≥ threshold · Σ_i σ_i² (explained variance).

    Args:
        phi: Features `(..., d)` (not centred, as in SimbaV2's `get_rank`).
        threshold: Fraction of the squared Frobenius norm to explain.

    Returns:
        Integer scalar in [1, min(n, d)].
    """
    return pca_rank_of(singular_values(phi), threshold)


def feature_rank(phi: jax.Array, eps: float = 0.01) -> jax.Array:
    """Feature rank #{i : σ_i / √n > ε}.

    Lyle, Rowland and Dabney, "Understanding and Preventing Capacity Loss in Reinforcement
    Learning" (ICLR 2022). Unlike the other ranks it depends on the scale of Φ.

    Args:
        phi: Features `(..., d)`; n is the number of rows after flattening the leading axes.
        eps: Threshold on the normalised singular values.

    Returns:
        Integer scalar in [0, min(n, d)].
    """
    return feature_rank_of(singular_values(phi), _num_rows(phi), eps)
