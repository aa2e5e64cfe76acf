"""One call that computes every network-health diagnostic (docs/metrics.md) on a probe batch.

`collect_features` runs a flax module and gathers the features its layers sow into the
`intermediates` collection; `network_health` turns parameters, gradients, the previous
parameters and those features into a flat dict of scalars, jit friendly (the caller prefixes the
keys, e.g. `health/critic/`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from scalerl.metrics import activity, elr, norms, rank

DEFAULT_TAUS: tuple[float, ...] = (0.0, 0.025, 0.1)
"""Dormancy thresholds logged by default."""


def collect_features(module: nn.Module, variables: Any, *inputs: Any) -> dict[str, jax.Array]:
    """Applies `module` and returns its sown intermediate features keyed by '/'-joined path.

    SimbaV2 and SimBa blocks sow `features`, MLP encoders `features_{i}`, so a SimbaV2 critic
    gives e.g. `encoder/block_0/features`. A value sown several times in one call gets a
    `/<i>` suffix.

    Args:
        module: A flax linen module.
        variables: Its variables (at least `params`).
        *inputs: Positional inputs of the module's `__call__`.

    Returns:
        `{path: activations}`, in the module's call order.
    """
    _, state = module.apply(variables, *inputs, mutable=["intermediates"])
    flat, _ = jax.tree_util.tree_flatten_with_path(state.get("intermediates", {}))
    sown: dict[str, list[jax.Array]] = {}
    for path, value in flat:
        sown.setdefault(norms.path_name(path[:-1]), []).append(value)
    return {
        (name if len(values) == 1 else f"{name}/{i}"): v
        for name, values in sown.items()
        for i, v in enumerate(values)
    }


def _natural_key(name: str) -> list[Any]:
    """Sort key that orders `block_2` before `block_10`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _activity_metrics(
    features: Mapping[str, jax.Array], layers: list[str], taus: Sequence[float]
) -> dict[str, jax.Array]:
    """Feature norms and dormant ratios, pooled over layers and per layer."""
    per_layer = {name: norms.feature_norm(features[name]) for name in layers}
    out = {"feature_norm": sum(per_layer.values(), jnp.float32(0.0))}
    out.update({f"feature_norm/{name}": v for name, v in per_layer.items()})
    acts = [features[name] for name in layers]
    for tau in taus:
        out[f"dormant_{tau:g}"] = activity.dormant_ratio(acts, tau)
        for name in layers:
            out[f"dormant_{tau:g}/{name}"] = activity.dormant_ratio([features[name]], tau)
    out["dead_fraction"] = activity.dead_fraction(acts)
    return out


def _feature_metrics(
    features: Mapping[str, jax.Array], taus: Sequence[float], rank_layer: str | None
) -> dict[str, jax.Array]:
    """Activity metrics of every layer and ranks of `rank_layer` (default: the last layer)."""
    layers = sorted(features, key=_natural_key)
    rank_layer = layers[-1] if rank_layer is None else rank_layer
    if rank_layer not in features:
        raise ValueError(f"rank_layer {rank_layer!r} is not one of the features {layers}")
    return _activity_metrics(features, layers, taus) | rank.all_ranks(features[rank_layer])


def _param_metrics(
    params: Any, grads: Any, prev_params: Any, lr: Any, mask: elr.Mask, optimizer: str
) -> dict[str, jax.Array]:
    """Parameter and gradient norms and the three effective learning rates."""
    relative, angle = elr.angular_update(params, prev_params)
    return {
        "param_norm": norms.tree_norm(params),
        "param_norm_weighted": norms.count_weighted_norm(params),
        "param_mean_abs": norms.mean_abs(params),
        "param_max_abs": norms.max_abs(params),
        "update_norm": norms.distance(params, prev_params),
        "grad_norm": norms.tree_norm(grads),
        "grad_norm_weighted": norms.count_weighted_norm(grads),
        "grad_zero_fraction": norms.zero_fraction(grads),
        "elr_grad_ratio": elr.elr_grad_ratio(params, grads),
        "elr_angular": relative,
        "elr_angle": angle,
        "elr_theory": elr.elr_theory(params, lr, mask, optimizer),
    }


def network_health(
    params: Any,
    grads: Any,
    prev_params: Any,
    features: Mapping[str, jax.Array],
    lr: float | jax.Array,
    taus: Sequence[float] = DEFAULT_TAUS,
    *,
    elr_mask: elr.Mask = elr.is_kernel,
    optimizer: str = "adam",
    rank_layer: str | None = None,
    per_leaf: bool = False,
) -> dict[str, jax.Array]:
    """Every diagnostic of docs/metrics.md as a flat dict of scalars, without prefix.

    All inputs go through `stop_gradient`; everything is jnp, so the call can sit inside the
    jitted update. Keys: `feature_norm` (Σ over layers, SimbaV2's `featnorm_total`) and
    `feature_norm/<layer>`; `dormant_<τ>` and `dormant_<τ>/<layer>` (τ formatted with `:g`,
    e.g. `dormant_0.1`); `dead_fraction`; `srank`, `effective_rank`, `pca_rank`,
    `feature_rank` of the rank layer; `param_norm`, `param_norm_weighted`, `param_mean_abs`,
    `param_max_abs`, `update_norm`, `grad_norm`, `grad_norm_weighted`, `grad_zero_fraction`;
    `elr_grad_ratio`, `elr_angular`, `elr_angle`, `elr_theory`; with `per_leaf`, also
    `param_norm/<path>` and `grad_norm/<path>`.

    Args:
        params: Parameters after the update (W_t).
        grads: Gradients of the update (before clipping), same structure as `params`.
        prev_params: Parameters before the update (W_{t−1}).
        features: Hidden-layer activations on the probe batch (see `collect_features`);
            may be empty, in which case only the parameter metrics are returned.
        lr: Learning rate η_t of the update (for `elr_theory`).
        taus: Dormancy thresholds (static).
        elr_mask: Scale-invariant leaves for `elr_theory` (default: every `kernel`).
        optimizer: `"adam"` or `"sgd"`, for `elr_theory`.
        rank_layer: Layer whose features the ranks use; default the last one in natural order
            (the encoder output for SimbaV2 and MLP networks, the last residual block, before
            the final LayerNorm, for SimBa).
        per_leaf: Also return per-tensor parameter and gradient norms.

    Returns:
        `{key: scalar}`.

    Raises:
        ValueError: If `rank_layer` is not a key of `features`, or `optimizer` is unknown.
    """
    params, grads, prev_params, features, lr = jax.lax.stop_gradient(
        (params, grads, prev_params, dict(features), lr)
    )
    out = _feature_metrics(features, taus, rank_layer) if features else {}
    out.update(_param_metrics(params, grads, prev_params, lr, elr_mask, optimizer))
    if per_leaf:
        out.update({f"param_norm/{k}": v for k, v in norms.per_leaf_norms(params).items()})
        out.update({f"grad_norm/{k}": v for k, v in norms.per_leaf_norms(grads).items()})
    return out
