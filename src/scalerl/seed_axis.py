"""The vmapped seeds axis of `--seeds` runs, named so that code inside it can agree across seeds.

Every trainer that runs several seeds in one process maps its step with `vmap_seeds`. Inside,
a transform whose random decision is the same for every seed (e.g. Kron's "refit the
preconditioner now?") can reduce it over `SEED_AXIS`: the reduced value is no longer batched, so
`lax.cond` stays a branch instead of becoming a select that computes both sides for every seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

SEED_AXIS = "seeds"


def vmap_seeds(fn: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
    """`jax.vmap(fn, **kwargs)` over the named seeds axis."""
    return jax.vmap(fn, axis_name=SEED_AXIS, **kwargs)
