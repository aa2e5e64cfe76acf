"""Data for the digits plasticity benchmark (spec plasticity.md §6).

The 1,797 8×8 images of `sklearn.datasets.load_digits` ship inside the scikit-learn wheel, so
the benchmark runs offline. Protocol A replaces the labels by i.i.d. uniform random labels per
task (§6.1); protocol B uses a fixed 1,200 / 597 split with a noisy phase-1 subset (§6.2).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

NUM_CLASSES = 10
NUM_FEATURES = 64


class ProtocolBData(NamedTuple):
    """The protocol-B split (§6.2): noisy phase-1 subset, clean training set, test set."""

    x_phase1: jax.Array
    y_phase1: jax.Array
    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array


def standardise(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Per-feature standardisation; zero-variance features (always-blank pixels) become 0.

    Args:
        x: Features, shape (n, d).
        eps: Standard deviations at or below this are treated as zero variance.

    Returns:
        Features with mean 0 and, where the variance is non-zero, standard deviation 1.
    """
    mean, std = x.mean(axis=0), x.std(axis=0)
    safe_std = np.where(std > eps, std, 1.0)
    return np.where(std > eps, (x - mean) / safe_std, 0.0)


def load_digits_data() -> tuple[jax.Array, jax.Array]:
    """The digits images (x/16, then standardised per feature) and their true labels (§6).

    Returns:
        `x` float32 of shape (1797, 64) and `y` int32 of shape (1797,).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = standardise(np.asarray(bunch.data, np.float64) / 16.0)
    return jnp.asarray(x, jnp.float32), jnp.asarray(bunch.target, jnp.int32)


def random_labels(key: jax.Array, num_tasks: int, num_examples: int) -> jax.Array:
    """I.i.d. uniform labels in {0..9}, one row per task (protocol A, §6.1); shape (K, n)."""
    return jax.random.randint(key, (num_tasks, num_examples), 0, NUM_CLASSES, jnp.int32)


def flip_labels(key: jax.Array, y: jax.Array, fraction: float) -> jax.Array:
    """Move a random `fraction` of the labels to a uniformly drawn *other* class (§2.2, §6.2)."""
    k_pick, k_shift = jax.random.split(key)
    num_flip = int(round(fraction * y.shape[0]))
    picked = jax.random.permutation(k_pick, y.shape[0])[:num_flip]
    flip = jnp.zeros(y.shape, bool).at[picked].set(True)
    shift = jax.random.randint(k_shift, y.shape, 1, NUM_CLASSES, jnp.int32)
    return jnp.where(flip, (y + shift) % NUM_CLASSES, y)


def protocol_b_split(
    key: jax.Array,
    num_train: int = 1200,
    phase1_size: int = 120,
    noise: float = 0.5,
) -> ProtocolBData:
    """The fixed protocol-B split (§6.2): train/test by a seeded permutation, noisy subset.

    Args:
        key: Fixes the permutation and the flipped labels (use the same key for every method).
        num_train: Training-set size; the remaining images form the test set.
        phase1_size: Size of the phase-1 subset (the first images of the training set).
        noise: Fraction of phase-1 labels flipped to another class.

    Returns:
        The split as a `ProtocolBData`.
    """
    x, y = load_digits_data()
    k_perm, k_flip = jax.random.split(key)
    perm = jax.random.permutation(k_perm, x.shape[0])
    x, y = x[perm], y[perm]
    y1 = flip_labels(k_flip, y[:phase1_size], noise)
    return ProtocolBData(
        x[:phase1_size], y1, x[:num_train], y[:num_train], x[num_train:], y[num_train:]
    )
