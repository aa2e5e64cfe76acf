"""Weight projection onto the unit hypersphere (SimbaV2 §4.2)."""

from __future__ import annotations

from typing import Any

import jax

from scalerl.networks.layers import PROJECTED_MODULE, l2normalize


def is_projected_kernel(path: tuple[Any, ...]) -> bool:
    """True for a `kernel` leaf under a `hyper_dense` module."""
    names = [getattr(k, "key", None) for k in path]
    return bool(names) and names[-1] == "kernel" and PROJECTED_MODULE in names


def project_kernels(params: Any) -> Any:
    """Rescale every hyperspherical kernel so each output unit's fan-in vector has unit norm.

    Kernels are (in, out) or, for a vmapped critic ensemble, (num_qs, in, out): the norm is taken
    over the input axis (-2). Scalers, biases and all other parameters are left untouched.
    """

    def project(path: tuple[Any, ...], leaf: jax.Array) -> jax.Array:
        return l2normalize(leaf, axis=-2) if is_projected_kernel(path) else leaf

    return jax.tree_util.tree_map_with_path(project, params)
