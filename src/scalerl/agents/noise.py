"""Exploration noise of deterministic policies (DDPG/TD3): white or power-law ("coloured").

Coloured noise follows the SimBa DDPG configs: per environment, a unit-variance
Gaussian sequence whose power spectral density falls as 1/f^beta (beta 0 white, 1 pink, 2 red),
drawn with the Timmer-Koenig (1995) frequency-domain method, consumed one vector per agent step,
redrawn when used up and at every episode end. Everything is a pure function of a small state
pytree, so acting stays inside the jitted, vmapped training step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def powerlaw_spectrum(length: int, beta: float) -> jax.Array:
    """Amplitude per rfft frequency: f^(-beta/2), with f = 0 given the lowest frequency 1/length.

    Args:
        length: Samples in the sequence (T >= 2).
        beta: Exponent of the power spectral density 1/f^beta.

    Returns:
        (T // 2 + 1,) amplitudes.
    """
    freqs = jnp.fft.rfftfreq(length)
    freqs = jnp.maximum(freqs, 1.0 / length)
    return freqs ** (-beta / 2.0)


def powerlaw_noise(key: jax.Array, beta: float, length: int, dim: int) -> jax.Array:
    """A (length, dim) Gaussian sequence with PSD proportional to 1/f^beta and unit variance.

    Random complex Fourier coefficients (real-valued at f = 0 and, for even T, at the Nyquist
    frequency) scaled by `powerlaw_spectrum` are transformed back with an inverse real FFT and
    divided by the sequence's theoretical standard deviation.
    """
    amp = powerlaw_spectrum(length, beta)
    re_key, im_key = jax.random.split(key)
    shape = (dim, amp.shape[0])
    real = jax.random.normal(re_key, shape) * amp
    imag = jax.random.normal(im_key, shape) * amp
    real_only = jnp.zeros(amp.shape[0], bool).at[0].set(True)
    if length % 2 == 0:
        real_only = real_only.at[-1].set(True)
    real = jnp.where(real_only, real * jnp.sqrt(2.0), real)
    imag = jnp.where(real_only, 0.0, imag)
    signal = jnp.fft.irfft(real + 1j * imag, n=length, axis=-1)
    return (signal / _theoretical_std(amp, length)).T.astype(jnp.float32)


def _theoretical_std(amp: jax.Array, length: int) -> jax.Array:
    """Standard deviation of the irfft output for these amplitudes (f = 0 excluded, Nyquist
    halved for even lengths)."""
    weights = amp[1:]
    if length % 2 == 0:
        weights = weights.at[-1].multiply(0.5)
    return 2.0 * jnp.sqrt(jnp.sum(jnp.square(weights))) / length


def noise_init(key: jax.Array, beta: float, length: int, dim: int) -> dict[str, Any]:
    """The noise state: a drawn sequence and the index of its next unused row."""
    return {"seq": powerlaw_noise(key, beta, length, dim), "idx": jnp.int32(0)}


def noise_next(
    noise: dict[str, Any], key: jax.Array, beta: float, restart: jax.Array
) -> tuple[jax.Array, dict[str, Any]]:
    """The next noise vector; a new sequence first if `restart` (episode end) or used up.

    Args:
        noise: State from `noise_init`.
        key: PRNG key for a possible redraw.
        beta: Spectrum exponent.
        restart: Boolean scalar: start a new sequence now.

    Returns:
        (noise vector (dim,), new state).
    """
    length, dim = noise["seq"].shape
    redraw = jnp.logical_or(restart, noise["idx"] >= length)
    seq = jax.lax.cond(redraw, lambda: powerlaw_noise(key, beta, length, dim), lambda: noise["seq"])
    idx = jnp.where(redraw, 0, noise["idx"])
    return seq[idx], {"seq": seq, "idx": idx + 1}
