"""Effective learning rate, three ways: theory, gradient ratio, angular update.

(a) `elr_theory`: η/‖W‖² (SGD) or η/‖W‖ (Adam) for scale-invariant weights.
(b) `elr_grad_ratio`: ‖∇_W L‖/‖W‖, what SimbaV2's released code logs as "effective_lr" (Lee et
    al., "Hyperspherical Normalization for Scalable Deep Reinforcement Learning", ICML 2025).
(c) `angular_update`: ‖W_t − W_{t−1}‖/‖W_{t−1}‖ and the angle between W_t and W_{t−1}, a
    library-defined measure of the step actually taken.

Each is computed per leaf and aggregated by a parameter-count-weighted mean Σ n_ℓ e_ℓ / Σ n_ℓ
over the leaves where it is defined (leaves of zero norm, e.g. zero-initialised biases, have no
ratio and are left out).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from scalerl.metrics.norms import leaf_norm

Mask = Any | Callable[[tuple[Any, ...]], bool] | None
"""A pytree of bools shaped like the params, a predicate on key paths, or None (all leaves)."""


def is_kernel(path: tuple[Any, ...]) -> bool:
    """True for a leaf named `kernel`: the weight matrices, the default ELR-theory group."""
    return bool(path) and getattr(path[-1], "key", None) == "kernel"


def _mask_leaves(params: Any, mask: Mask) -> list[Any]:
    """One bool (or bool array) per leaf of `params`, in leaf order."""
    if mask is None:
        return [True] * len(jax.tree_util.tree_leaves(params))
    if callable(mask):
        flat, _ = jax.tree_util.tree_flatten_with_path(params)
        return [mask(path) for path, _ in flat]
    return jax.tree_util.tree_leaves(mask)


def _weighted_mean(
    values: Sequence[jax.Array], counts: Sequence[int], keep: Sequence[Any]
) -> jax.Array:
    """Σ n_ℓ e_ℓ / Σ n_ℓ over the leaves with `keep`; nan when no leaf is kept."""
    num, den = jnp.float32(0.0), jnp.float32(0.0)
    for e, n, k in zip(values, counts, keep, strict=True):
        w = jnp.where(k, jnp.float32(n), 0.0)
        num, den = num + w * jnp.where(k, e, 0.0), den + w
    return num / den


def elr_theory(
    params: Any, lr: float | jax.Array, mask: Mask = None, optimizer: str = "adam"
) -> jax.Array:
    """Theoretical ELR of scale-invariant weights: η/‖W_ℓ‖ (Adam) or η/‖W_ℓ‖² (SGD) (§5.6a).

    Only meaningful for weights followed by a normalisation; select them with
    `mask`. For SimbaV2's projected kernels each fan-in vector has unit norm, so ‖W_ℓ‖ is
    √(fan-out) and the value only follows the learning-rate schedule.

    Args:
        params: Parameter pytree.
        lr: Current learning rate η_t.
        mask: Which leaves form the scale-invariant groups (see `Mask`).
        optimizer: `"adam"` (exponent 1) or `"sgd"` (exponent 2).

    Returns:
        Count-weighted mean over the selected leaves of non-zero norm (nan if there are none).
    """
    power = {"adam": 1, "sgd": 2}.get(optimizer)
    if power is None:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    leaves = jax.tree_util.tree_leaves(params)
    norms = [leaf_norm(x) for x in leaves]
    selected = _mask_leaves(params, mask)
    keep = [jnp.logical_and(m, n > 0) for m, n in zip(selected, norms, strict=True)]
    values = [lr / jnp.where(n > 0, n, 1.0) ** power for n in norms]
    return _weighted_mean(values, [x.size for x in leaves], keep)


def elr_grad_ratio(params: Any, grads: Any) -> jax.Array:
    """SimbaV2's logged ELR: count-weighted mean of ‖∇_{W_ℓ} L‖ / ‖W_ℓ‖.

    Args:
        params: Parameter pytree.
        grads: Gradients, same structure (before clipping).

    Returns:
        Float scalar (leaves with ‖W_ℓ‖ = 0 are left out).
    """
    leaves, g_leaves = jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(grads)
    norms = [leaf_norm(x) for x in leaves]
    values = [leaf_norm(g) / jnp.where(n > 0, n, 1.0) for g, n in zip(g_leaves, norms, strict=True)]
    return _weighted_mean(values, [x.size for x in leaves], [n > 0 for n in norms])


def _leaf_step(new: jax.Array, old: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Relative step, angle and whether defined (‖old‖ > 0) for one leaf.

    The angle is 2·arcsin(‖â − b̂‖/2): equal to arccos(⟨â, b̂⟩), but exact for small angles,
    where the arccos of a float32 cosine rounds to 0.
    """
    new, old = jnp.asarray(new, jnp.float32), jnp.asarray(old, jnp.float32)
    n_new, n_old = leaf_norm(new), leaf_norm(old)
    safe_old = jnp.maximum(n_old, 1e-30)
    chord = leaf_norm(new / jnp.maximum(n_new, 1e-30) - old / safe_old)
    angle = 2.0 * jnp.arcsin(jnp.minimum(chord / 2.0, 1.0))
    return leaf_norm(new - old) / safe_old, angle, n_old > 0


def angular_update(params: Any, prev_params: Any) -> tuple[jax.Array, jax.Array]:
    """Relative step ‖W_t − W_{t−1}‖/‖W_{t−1}‖ and angle ∠(W_t, W_{t−1}).

    Measured on the parameters actually used, i.e. after any projection. Both are
    count-weighted means over the leaves with ‖W_{t−1}‖ > 0.

    Args:
        params: Parameters after the update, W_t.
        prev_params: Parameters before it, W_{t−1} (same structure).

    Returns:
        `(relative_update, angle_in_radians)`.
    """
    old = jax.tree_util.tree_leaves(prev_params)
    pairs = zip(jax.tree_util.tree_leaves(params), old, strict=True)
    ratio, angle, keep = zip(*(_leaf_step(a, b) for a, b in pairs), strict=True)
    counts = [x.size for x in old]
    return _weighted_mean(ratio, counts, keep), _weighted_mean(angle, counts, keep)
