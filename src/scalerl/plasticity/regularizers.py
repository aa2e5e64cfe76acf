"""L2, L2-init (regenerative) penalties and the weight-decay mask.

Coupled penalties return a scalar to add to the loss (multiplied by λ by the caller); decoupled
weight decay is `optax.adamw(..., weight_decay=λ, mask=decoupled_decay_mask(labels))`.
Masks are static pytrees of Python bools (see `scalerl.plasticity.roles.mask_for`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from scalerl.plasticity.roles import mask_for

DECAYED_ROLES = ("kernel", "output_kernel")
"""Roles decoupled weight decay applies to. Excluded: norm scale/offset and biases,
NaP-projected hidden kernels (decay is undone by the projection), SimbaV2 sphere
kernels (projected to unit norm) and scalers (gains, like a norm's scale)."""


def _masked_sum(fn: Any, mask: Any, *trees: Any) -> jax.Array:
    """Σ over masked leaves of fn(*leaves) (float32 scalar)."""

    def term(selected: bool, *leaves: jax.Array) -> jax.Array:
        return fn(*leaves) if selected else jnp.zeros((), jnp.float32)

    terms = jax.tree_util.tree_leaves(jax.tree_util.tree_map(term, mask, *trees))
    return sum(terms, jnp.zeros((), jnp.float32))


def _sq(x: jax.Array) -> jax.Array:
    return jnp.sum(jnp.square(x.astype(jnp.float32)))


def l2_penalty(params: Any, mask: Any) -> jax.Array:
    """Σ_l ‖W_l‖² over masked leaves; the loss adds λ times this."""
    return _masked_sum(_sq, mask, params)


def l2_init_penalty(params: Any, init_params: Any, mask: Any, squared: bool = True) -> jax.Array:
    """Distance to the initial weights over masked leaves.

    ``squared=True``: Σ_l ‖W_l − W_l^{(0)}‖² (Kumar, Marklund, Van Roy 2023, regenerative
    regularisation). ``squared=False``: ‖θ − θ^{(0)}‖, the unsquared global norm the H&T repo and
    Plasticine add; its gradient is defined as 0 at θ = θ^{(0)} (instead of NaN).
    """
    total = _masked_sum(lambda p, p0: _sq(p.astype(jnp.float32) - p0), mask, params, init_params)
    if squared:
        return total
    positive = total > 0.0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, total, 1.0)), 0.0)


def decoupled_decay_mask(labels: Any) -> Any:
    """Mask for `optax.adamw(mask=...)`: True on plain and output kernels only."""
    return mask_for(labels, *DECAYED_ROLES)
