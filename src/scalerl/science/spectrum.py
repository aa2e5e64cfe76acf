"""Fourier complexity of a function sampled on a 2-D grid (Teney et al., CVPR 2024, §3).

The complexity of f is the mean radial frequency of |FFT2(f)|, without the zero-frequency term,
divided by the largest radial frequency of the grid: a number in (0, 1], low for functions that
vary slowly over the grid. Everything here is pure jax.numpy (jit- and vmap-able).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def radial_bins(n: int) -> jax.Array:
    """Radial frequency bin round(√(kx² + ky²)) of every rfft2 coefficient of an n × n grid.

    Args:
        n: Grid points per axis (even).

    Returns:
        Integer array of shape (n, n // 2 + 1): kx is the signed row frequency (fftfreq · n),
        ky ≥ 0 the column frequency (rfftfreq · n), in cycles over the grid.
    """
    kx = jnp.fft.fftfreq(n) * n
    ky = jnp.fft.rfftfreq(n) * n
    radius = jnp.sqrt(kx[:, None] ** 2 + ky[None, :] ** 2)
    return jnp.round(radius).astype(jnp.int32)


def max_frequency(n: int) -> int:
    """Largest radial bin of an n × n grid: round(√2 · n / 2) (181 for n = 256)."""
    return round(math.sqrt(2.0) * (n // 2))


def hermitian_weights(n: int) -> jax.Array:
    """Weights 2 for the rfft2 columns 0 < ky < n/2 (their mirror −ky is omitted), else 1.

    With them, sums over the rfft2 coefficients equal sums over the full n × n spectrum, so a
    function and its transpose (f(y, x)) have the same complexity.
    """
    ky = jnp.arange(n // 2 + 1)
    return jnp.where((ky > 0) & (ky < n // 2), 2.0, 1.0)[None, :]


def radial_spectrum(values: jax.Array) -> jax.Array:
    """Normalised radial distribution of the Fourier magnitudes of an n × n sample grid.

    Steps 3 of the Neural Redshift measure: |rfft2|, zero-frequency term dropped, magnitudes
    summed per radial bin, then divided by their total.

    Args:
        values: Function values f(x_i, y_j), shape (n, n), n even.

    Returns:
        p of shape (max_frequency(n) + 1,): p[r] is the share of the spectrum's magnitude at
        radial frequency r (p[0] = 0). A constant function (no non-zero frequency) gives all
        zeros.
    """
    n = values.shape[0]
    magnitude = jnp.abs(jnp.fft.rfft2(values)) * hermitian_weights(n)
    magnitude = magnitude.at[0, 0].set(0.0)
    bins = radial_bins(n)
    sums = jnp.bincount(bins.ravel(), magnitude.ravel(), length=max_frequency(n) + 1)
    total = jnp.sum(sums)
    return sums / jnp.where(total > 0, total, 1.0)


def complexity(values: jax.Array) -> jax.Array:
    """Neural Redshift complexity: mean radial frequency / maximum frequency (Teney et al. §3).

    Invariant to the scale and offset of `values` (the spectrum is normalised and the zero
    frequency dropped). A sinusoid with exactly c periods over the grid scores c / r_max.

    Args:
        values: Function values on an n × n grid, shape (n, n).

    Returns:
        Scalar in [0, 1]: Σ_r r · p[r] / r_max with p from `radial_spectrum`.
    """
    p = radial_spectrum(values)
    r = jnp.arange(p.shape[0])
    return jnp.sum(r * p) / (p.shape[0] - 1)
