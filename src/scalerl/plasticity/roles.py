"""Role labels for parameter leaves, read from their key paths.

Every plasticity method is specified in terms of *roles* (what a tensor does) and *groups* (the
top-level module it belongs to), so one path-based label function covers every network built
from flax linen modules. Naming conventions the rules rely on:

* a dense layer followed directly by a normalisation layer is named with the suffix ``_pn``
  ("pre-norm", e.g. ``dense_pn``); its kernel is the scale-invariant group NaP projects;
* normalisation modules carry "norm" in their name (``LayerNorm_0``, ``final_norm``);
* SimbaV2's hyperspherical kernels live under ``hyper_dense`` modules (projected elsewhere);
* the output layer(s) live under the top-level module ``head``.

Rules, first match wins: ``hyper_dense`` anywhere in the path -> ``sphere_kernel``; leaf
``scaler`` -> ``scaler``; ``kernel``/``bias`` of a ``*_pn`` module -> ``hidden_kernel``/
``hidden_bias``; ``scale``/``bias`` of a "norm" module -> ``norm_scale``/``norm_offset``; anything
under group ``head`` -> ``output_kernel`` (kernels) or ``output_bias`` (everything else); other
``kernel`` -> ``kernel``; other ``bias`` -> ``bias``; anything else -> ``other``.

Convolution kernels ``(kh, kw, c_in, c_out)`` (`scalerl.networks.cnn`) follow the same rules:
``kernel`` normally, ``hidden_kernel`` when their conv is named ``*_pn`` (followed by a norm).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

ROLES = (
    "sphere_kernel",
    "scaler",
    "hidden_kernel",
    "hidden_bias",
    "norm_scale",
    "norm_offset",
    "output_kernel",
    "output_bias",
    "kernel",
    "bias",
    "other",
)
"""Every label `label_params` can produce."""
COLLECTIONS = ("params", "batch_stats")
"""Flax variable collections skipped at the front of a path before reading the group."""
SPHERE_MODULE = "hyper_dense"
PRE_NORM_SUFFIX = "_pn"
HEAD_GROUP = "head"


def key_name(key: Any) -> str:
    """The name of one jax key-path entry (DictKey, GetAttrKey, SequenceKey or a plain str)."""
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def path_names(path: Sequence[Any]) -> tuple[str, ...]:
    """Key path -> tuple of names, with a leading flax collection name (``params``) dropped."""
    names = tuple(key_name(k) for k in path)
    if names and names[0] in COLLECTIONS:
        names = names[1:]
    return names


def group_of(path: Sequence[Any]) -> str:
    """Top-level module of a leaf (``encoder``, ``head``, ...); ``""`` for a bare leaf."""
    names = path_names(path)
    return names[0] if len(names) > 1 else ""


def _is_norm(module: str) -> bool:
    return "norm" in module.lower()


def role_of(path: Sequence[Any]) -> str:
    """Role label of the leaf at `path` (rules in the module docstring)."""
    names = path_names(path)
    leaf = names[-1] if names else ""
    module = names[-2] if len(names) > 1 else ""
    if SPHERE_MODULE in names:
        return "sphere_kernel"
    if leaf == "scaler":
        return "scaler"
    if module.endswith(PRE_NORM_SUFFIX) and leaf in ("kernel", "bias"):
        return "hidden_kernel" if leaf == "kernel" else "hidden_bias"
    if _is_norm(module) and leaf in ("scale", "bias"):
        return "norm_scale" if leaf == "scale" else "norm_offset"
    if group_of(path) == HEAD_GROUP:
        return "output_kernel" if leaf == "kernel" else "output_bias"
    if leaf in ("kernel", "bias"):
        return leaf
    return "other"


def label_params(params: Any) -> Any:
    """Pytree of role strings with the structure of `params`.

    Works on ``{"params": ...}`` variable dicts and on bare parameter dicts, and on critic
    ensembles (labels depend on paths only, not on the leading ``num_qs`` axis).
    """
    return jax.tree_util.tree_map_with_path(lambda path, _: role_of(path), params)


def mask_for(labels: Any, *roles: str) -> Any:
    """Static pytree of Python bools: True where the label is one of `roles`."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; use names from roles.ROLES")
    return jax.tree_util.tree_map(lambda label: label in roles, labels)
