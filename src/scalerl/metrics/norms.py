"""Feature, parameter and gradient norms.

`‖·‖` of a tensor is its Frobenius norm (flattened L2). Parameter trees are any JAX pytrees;
a critic ensemble's leading member axis simply makes each leaf's norm cover all members, as in
SimbaV2's metrics.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def leaf_norm(x: jax.Array) -> jax.Array:
    """Frobenius norm of one tensor, computed in float32."""
    return jnp.sqrt(jnp.sum(jnp.square(jnp.asarray(x, jnp.float32))))


def path_name(path: tuple[Any, ...]) -> str:
    """'/'-joined name of a pytree key path, e.g. `encoder/block_0/mlp/w1/hyper_dense/kernel`."""
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def feature_norm(phi: jax.Array) -> jax.Array:
    """E_x ‖φ(x)‖₂: mean over the batch of per-example L2 norms.

    SimbaV2 `get_feature_norm` (Lee et al., "Hyperspherical Normalization for Scalable Deep
    Reinforcement Learning", ICML 2025).

    Args:
        phi: Features `(..., d)`; the norm is over the last axis, the mean over the others.

    Returns:
        Float scalar.
    """
    phi = jnp.asarray(phi, jnp.float32)
    return jnp.mean(jnp.sqrt(jnp.sum(jnp.square(phi), axis=-1)))


def tree_norm(tree: Any) -> jax.Array:
    """Global L2 norm √(Σ_ℓ ‖θ_ℓ‖²) of a pytree."""
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.square(leaf_norm(x)) for x in leaves) + jnp.float32(0.0))


def per_leaf_norms(tree: Any) -> dict[str, jax.Array]:
    """Norm ‖θ_ℓ‖ of every leaf, keyed by its '/'-joined path.

    Args:
        tree: A pytree of arrays (e.g. flax `params`).

    Returns:
        `{path: norm}`, in the pytree's leaf order.
    """
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {path_name(path): leaf_norm(x) for path, x in flat}


def count_weighted_norm(tree: Any) -> jax.Array:
    """Parameter-count-weighted norm √(Σ_ℓ n_ℓ ‖θ_ℓ‖² / Σ_ℓ n_ℓ).

    SimbaV2's `effective_pnorm_total` (and `effective_gnorm_total` on gradients); n_ℓ is the
    number of elements of leaf ℓ.

    Args:
        tree: A pytree of arrays.

    Returns:
        Float scalar.
    """
    leaves = jax.tree_util.tree_leaves(tree)
    counts = [x.size for x in leaves]
    weighted = sum(n * jnp.square(leaf_norm(x)) for n, x in zip(counts, leaves, strict=True))
    return jnp.sqrt(weighted / max(1, sum(counts)) + jnp.float32(0.0))


def zero_fraction(tree: Any) -> jax.Array:
    """Fraction of exactly-zero entries over all leaves."""
    leaves = jax.tree_util.tree_leaves(tree)
    zeros = sum(jnp.sum(x == 0) for x in leaves) + jnp.int32(0)
    return zeros / max(1, sum(x.size for x in leaves))


def mean_abs(tree: Any) -> jax.Array:
    """Mean |w| over all entries of a pytree."""
    leaves = jax.tree_util.tree_leaves(tree)
    total = sum(jnp.sum(jnp.abs(jnp.asarray(x, jnp.float32))) for x in leaves)
    return (total + jnp.float32(0.0)) / max(1, sum(x.size for x in leaves))


def max_abs(tree: Any) -> jax.Array:
    """Largest |w| over all entries of a pytree."""
    leaves = jax.tree_util.tree_leaves(tree)
    maxima = [jnp.max(jnp.abs(x)).astype(jnp.float32) for x in leaves]
    return jnp.max(jnp.stack(maxima or [jnp.float32(0.0)]))


def distance(tree_a: Any, tree_b: Any) -> jax.Array:
    """‖θ_a − θ_b‖ over the whole pytree, e.g. distance from init."""
    diff = jax.tree_util.tree_map(
        lambda a, b: jnp.asarray(a, jnp.float32) - jnp.asarray(b, jnp.float32), tree_a, tree_b
    )
    return tree_norm(diff)
