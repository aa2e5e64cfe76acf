"""ReDo: recycling dormant neurons (Sokar, Agarwal, Castro, Evci, ICML 2023).

A hidden unit is τ-dormant when its normalised mean absolute activation is at most τ. Recycling
re-initialises the unit's incoming weights, zeroes its bias and its outgoing weights (so the
network function is unchanged right after recycling) and zeroes the Adam moments of every
touched entry. Which parameters belong to which unit is described explicitly by `Link`s;
`mlp_links` builds them for scalerl's `MLPEncoder`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import traverse_util

from scalerl.metrics import activity
from scalerl.plasticity.resets import zero_adam_moments

PyTree = Any
ModulePath = tuple[str, ...]
"""Added to a layer's mean activity before dividing (as `scalerl.metrics.activity`)."""


@dataclasses.dataclass(frozen=True)
class Link:
    """The parameters attached to the units of one hidden layer.

    Attributes:
        activation: key of the layer's post-activation in the `activations` dict.
        incoming: module paths (e.g. `("encoder", "dense_0")`) whose `kernel` columns (last
            axis) are re-initialised and whose `bias` entries are zeroed for dormant units.
        outgoing: module paths whose `kernel` rows (second-to-last axis) are zeroed.
    """

    activation: str
    incoming: tuple[ModulePath, ...]
    outgoing: tuple[ModulePath, ...]


def neuron_scores(h: jax.Array, batch_dims: int = 0) -> jax.Array:
    """ReDo scores s_i = E|h_i| / ((1/H) Σ_k E|h_k|) (Sokar et al. 2023 Def. 3.1).

    Args:
        h: post-activations (*ensemble, *samples, H). The expectation runs over every axis
            between the ensemble axes and the unit axis (batch, and spatial axes for convs).
        batch_dims: number of leading ensemble axes (e.g. 1 for a `num_qs` critic ensemble)
            whose networks are scored independently.

    Returns:
        Scores (*ensemble, H): `metrics.activity.neuron_scores` per member, whose epsilon in
        the denominator (as in dopamine's ReDo) makes a silent layer score 0, not nan.
    """
    score = activity.neuron_scores
    for _ in range(batch_dims):
        score = jax.vmap(score)
    return score(h)


def dormant_mask(h: jax.Array, tau: float, batch_dims: int = 0) -> jax.Array:
    """Bool (*ensemble, H): unit is τ-dormant, s_i ≤ τ."""
    return neuron_scores(h, batch_dims) <= tau


def sown_features(intermediates: Mapping[str, Any], module: str = "encoder") -> dict[str, Any]:
    """`{name: value}` of what `module` sowed, from `apply(..., mutable=["intermediates"])`.

    `sow` stores a tuple per name; the last value is returned.
    """
    return {name: values[-1] for name, values in intermediates[module].items()}


def _head_kernels(params: Mapping[str, Any]) -> tuple[ModulePath, ...]:
    head = params.get("head", {})
    return tuple(("head", name) for name, sub in head.items() if "kernel" in sub)


def mlp_links(params: Mapping[str, Any]) -> tuple[Link, ...]:
    """Links of scalerl's MLP actor or critic (`networks/encoders.py:MLPEncoder`).

    Unit i of `encoder/dense_l` (activation `features_l`) feeds row i of `encoder/dense_{l+1}`,
    or of every head kernel after the last layer (`head/mean`, `head/std` of the actor;
    `head/value` of the critic). The head's own units are never recycled. Works unchanged for
    ensemble parameters with a leading `num_qs` axis.
    """
    encoder = params.get("encoder", {})
    depth = sum(1 for name in encoder if name.startswith("dense_"))
    if depth == 0 or "kernel" not in encoder.get("dense_0", {}):
        raise ValueError("mlp_links needs MLPEncoder params (encoder/dense_i); use --agent mlp")
    links = []
    for i in range(depth):
        last = i == depth - 1
        outgoing = _head_kernels(params) if last else (("encoder", f"dense_{i + 1}"),)
        links.append(Link(f"features_{i}", (("encoder", f"dense_{i}"),), outgoing))
    return tuple(links)


TRUNK_ENTRIES: tuple[ModulePath, ...] = (
    ("encoder", "dense_0"),
    ("encoder", "dense_0_pn", "dense_pn"),
    ("encoder", "embedder"),
    ("encoder", "embed", "dense_pn"),
)
"""First layer of the dense trunks of `networks/encoders.py` ReDo supports (MLP, SimBa, MSR)."""


def _has_kernel(params: Mapping[str, Any], path: ModulePath) -> bool:
    node: Any = params
    for name in path:
        if not isinstance(node, Mapping) or name not in node:
            return False
        node = node[name]
    return isinstance(node, Mapping) and "kernel" in node


def _consumers(params: Mapping[str, Any]) -> tuple[ModulePath, ...]:
    """What reads the torso's output: the dense trunk's first layer, else the head kernels."""
    entries = tuple(path for path in TRUNK_ENTRIES if _has_kernel(params, path))
    return entries[:1] or _head_kernels(params)


def _torso_module(torso: Mapping[str, Any], base: str) -> ModulePath | None:
    """``("torso", base)`` or its LayerNorm variant ``base_pn``; None if absent."""
    for name in (base, f"{base}_pn"):
        if name in torso:
            return ("torso", name)
    return None


def conv_links(params: Mapping[str, Any]) -> tuple[Link, ...]:
    """Links of a conv torso (`networks/cnn.py`) and what follows it (Sokar et al. 2023 §3).

    Nature-DQN and MinAtar: channel c of ``torso/conv_i`` (activation ``features_conv_i``)
    feeds input channel c of ``conv_{i+1}``, and the last conv feeds the rows of the torso's
    ``dense`` (or of the dense trunk's first layer when the torso ends at the flatten) that
    read channel c at every spatial position. IMPALA: inside each residual block, channel c
    of ``s{i}_b{j}_conv_0`` (``features_block_s{i}_b{j}``) feeds ``s{i}_b{j}_conv_1``; units on the
    residual stream are not recycled (a skip connection bypasses their outgoing weights). The
    torso's ``dense`` units (``features_dense``) feed the trunk's first layer or the heads.
    Combine with `mlp_links` for an MLP trunk. The SimbaV2 trunk (hyperspherical, with an
    appended shift input) is not supported.
    """
    torso = params.get("torso", {})
    if not torso:
        raise ValueError("conv_links needs conv torso params (torso/...); see networks/cnn.py")
    if _has_kernel(params, ("encoder", "embedder", "w", "hyper_dense")):
        raise ValueError("ReDo does not support the simbav2 trunk; use mlp, simba or msr")
    after = _torso_module(torso, "dense")
    after = (after,) if after else _consumers(params)
    convs = sorted(int(n.split("_")[1]) for n in torso if n.startswith("conv_") and "norm" not in n)
    links = []
    for i in convs:
        nxt = _torso_module(torso, f"conv_{i + 1}")
        outgoing = (nxt,) if nxt else after
        links.append(Link(f"features_conv_{i}", (_torso_module(torso, f"conv_{i}"),), outgoing))
    blocks = sorted({n.rsplit("_conv_", 1)[0] for n in torso if "_b" in n and "norm" not in n})
    for block in blocks:
        first, second = (_torso_module(torso, f"{block}_conv_{k}") for k in (0, 1))
        links.append(Link(f"features_block_{block}", (first,), (second,)))
    dense = _torso_module(torso, "dense")
    if dense:
        links.append(Link("features_dense", (dense,), _consumers(params)))
    return tuple(links)


def _unit_columns(dead: jax.Array, ndim: int) -> jax.Array:
    """Dormant mask (*ensemble, C) shaped for the output axis of a rank-`ndim` kernel.

    Dense (d_in, C) -> (1, C); conv (kh, kw, c_in, C) -> (1, 1, 1, C): a channel's whole
    incoming filter. Leading ensemble axes are kept.
    """
    lead = dead.shape[:-1]
    return dead.reshape(lead + (1,) * (ndim - len(lead) - 1) + dead.shape[-1:])


def _unit_rows(dead: jax.Array, kernel_shape: tuple[int, ...]) -> jax.Array:
    """Dormant mask (*ensemble, C) shaped for the input axis (second-to-last) of a kernel.

    A conv kernel (kh, kw, C, c_out) gets (1, 1, C, 1): every tap of the channel. A dense
    kernel fed by flattened (H, W, C) conv features has H·W·C rows, channel fastest (flatten of
    a channels-last map), so the mask is repeated H·W times: row r belongs to channel r mod C
    (as dopamine's ReDo repeats the mask over spatial positions).
    """
    lead, units, rows = dead.shape[:-1], dead.shape[-1], kernel_shape[-2]
    if rows % units:
        raise ValueError(f"kernel with {rows} input rows cannot follow a layer of {units} units")
    if rows != units:
        dead = jnp.tile(dead, (1,) * len(lead) + (rows // units,))
    ones = (1,) * (len(kernel_shape) - len(lead) - 2)
    return dead.reshape(lead + ones + (rows, 1))


def _reinit_incoming(
    flat: dict, fresh: dict, touched: dict, path: ModulePath, dead: jax.Array
) -> None:
    """Kernel columns of dormant units from `fresh`, their bias entries zeroed (in place)."""
    kernel = path + ("kernel",)
    cols = _unit_columns(dead, flat[kernel].ndim)
    flat[kernel] = jnp.where(cols, fresh[kernel], flat[kernel])
    touched[kernel] = touched[kernel] | cols
    bias = path + ("bias",)
    if bias in flat:
        flat[bias] = jnp.where(dead, jnp.zeros_like(flat[bias]), flat[bias])
        touched[bias] = touched[bias] | dead


def _zero_outgoing(flat: dict, touched: dict, path: ModulePath, dead: jax.Array) -> None:
    """Kernel rows of dormant units set to zero (in place)."""
    kernel = path + ("kernel",)
    rows = _unit_rows(dead, flat[kernel].shape)
    flat[kernel] = jnp.where(rows, jnp.zeros_like(flat[kernel]), flat[kernel])
    touched[kernel] = touched[kernel] | rows


def recycle(
    params: PyTree,
    opt_state: PyTree,
    fresh_params: PyTree,
    activations: Mapping[str, jax.Array],
    links: Sequence[Link],
    tau: float,
    batch_dims: int = 0,
) -> tuple[PyTree, PyTree, jax.Array]:
    """Recycle the τ-dormant units of every linked layer (Sokar et al. 2023 Alg. 1).

    All incoming re-initialisations are applied before all outgoing zeroings, so the outgoing
    weights of a recycled unit are exactly zero even when the next layer is recycled too.
    Adam moments (`mu`, `nu`) of every touched entry are zeroed; the count is untouched.

    Args:
        params: nested-dict parameters (leading `batch_dims` ensemble axes on every leaf).
        opt_state: optax state over `params` (Adam/AdamW found anywhere inside).
        fresh_params: a fresh initialisation, same structure; source of new incoming weights.
        activations: post-activations by link name, shaped (*ensemble, *samples, H); compute
            them on a replay batch (dopamine uses 256 states) with `sown_features`.
        links: the layer descriptions, e.g. `mlp_links(params)`.
        tau: dormancy threshold τ (0.025 at default replay ratio, 0.1 otherwise, [2nd]).
        batch_dims: number of leading ensemble axes on params and activations.

    Returns:
        (params, opt_state, number of recycled units summed over layers and members).
    """
    flat = dict(traverse_util.flatten_dict(params))
    fresh = traverse_util.flatten_dict(fresh_params)
    touched = {k: jnp.zeros(v.shape, bool) for k, v in flat.items()}
    dead = {k.activation: dormant_mask(activations[k.activation], tau, batch_dims) for k in links}
    for link in links:
        for path in link.incoming:
            _reinit_incoming(flat, fresh, touched, path, dead[link.activation])
    for link in links:
        for path in link.outgoing:
            _zero_outgoing(flat, touched, path, dead[link.activation])
    new_opt_state = zero_adam_moments(opt_state, traverse_util.unflatten_dict(touched))
    count = sum(jnp.sum(d, dtype=jnp.int32) for d in dead.values())
    return traverse_util.unflatten_dict(flat), new_opt_state, jnp.asarray(count, jnp.int32)
