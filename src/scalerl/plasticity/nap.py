"""Normalize-and-Project (NaP): keep normalised layers' weight norms fixed.

Lyle, Zheng, Khetarpal, Martens, van Hasselt, Pascanu, Dabney, "Normalization and effective
learning rates in reinforcement learning", NeurIPS 2024 (arXiv:2407.01800). Each kernel that feeds
a normalisation layer (role ``hidden_kernel``, see `scalerl.plasticity.roles`) is projected back to
its initial Frobenius norm after the optimiser step (eq. 1), so its effective learning rate stays
constant (§1.5) and any decay must come from an explicit schedule (eq. 5).

Masks are static pytrees of Python bools (from `roles.mask_for`). `batch_dims` counts leading
axes that index independent tensors, e.g. 1 for a critic ensemble whose leaves carry a leading
``num_qs`` axis: each member then gets its own radius.

Convolution kernels ``(kh, kw, c_in, c_out)`` are projected like dense kernels: one Frobenius
norm over the whole kernel, back to its initial value (the default, ``per_channel=False``). A
LayerNorm over the channels of every position (scalerl's conv torsos) is invariant to scaling
the whole kernel, not one output channel, so the whole kernel is the scale-invariant group;
this is also what published NaP code does on Atari's conv layers (per weight tensor).
``per_channel=True`` instead keeps each output channel's ``(kh, kw, c_in)`` slice (each column
of a dense kernel) at its own initial norm: the exact symmetry under per-channel normalisation
(BatchNorm, GroupNorm with one channel per group), where each channel is scale-invariant.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import traverse_util
from flax.core import FrozenDict, freeze

from scalerl.plasticity.roles import mask_for

EPS = 1e-12
"""Floor on a tensor norm in the projection."""
NORM_MODES = ("free", "joint_project", "decay_to_init")
"""Treatments of normalisation scale/offset parameters."""


def nap_mask(labels: Any, project_output: bool = False) -> Any:
    """Leaves NaP projects: hidden kernels, plus output kernels if `project_output`."""
    roles = ("hidden_kernel", "output_kernel") if project_output else ("hidden_kernel",)
    return mask_for(labels, *roles)


def tensor_norm(x: jax.Array, batch_dims: int = 0, per_channel: bool = False) -> jax.Array:
    """Frobenius norm over all but the first `batch_dims` axes, in float32.

    With `per_channel`, the last (output-channel) axis is kept too: one norm per output
    channel of a conv kernel or per column of a dense kernel, shape
    ``x.shape[:batch_dims] + x.shape[-1:]``.
    """
    axes = tuple(range(batch_dims, x.ndim - (1 if per_channel else 0)))
    return jnp.sqrt(jnp.sum(jnp.square(x.astype(jnp.float32)), axis=axes))


def _expand(r: jax.Array, ndim: int) -> jax.Array:
    """Append singleton axes so a per-tensor value broadcasts against a rank-`ndim` leaf."""
    r = jnp.asarray(r, jnp.float32)
    return r.reshape(r.shape + (1,) * (ndim - r.ndim))


def _broadcastable(r: jax.Array, ndim: int, per_channel: bool) -> jax.Array:
    """A radius or norm shaped for a rank-`ndim` leaf (per channel: singletons before c_out)."""
    if not per_channel:
        return _expand(r, ndim)
    r = jnp.asarray(r, jnp.float32)
    return r.reshape(r.shape[:-1] + (1,) * (ndim - r.ndim) + r.shape[-1:])


def init_radii(params: Any, mask: Any, batch_dims: int = 0, per_channel: bool = False) -> Any:
    """Radius ρ = ‖W^{(0)}‖ per masked tensor (or output channel), zeros elsewhere.

    Returns a pytree shaped like `params` whose leaves are float32 arrays of shape
    ``leaf.shape[:batch_dims]`` (scalars when `batch_dims` is 0), with the output-channel axis
    ``leaf.shape[-1:]`` appended when `per_channel`.
    """

    def radius(leaf: jax.Array, selected: bool) -> jax.Array:
        if selected:
            return tensor_norm(leaf, batch_dims, per_channel)
        channels = leaf.shape[-1:] if per_channel else ()
        return jnp.zeros(leaf.shape[:batch_dims] + channels, jnp.float32)

    return jax.tree_util.tree_map(radius, params, mask)


def project_to_radii(
    params: Any, radii: Any, mask: Any, batch_dims: int = 0, per_channel: bool = False
) -> Any:
    """W ← ρ · W / max(‖W‖, 1e-12) on masked leaves, identity elsewhere.

    With `per_channel`, the norm and radius are those of each output channel (last axis).
    """

    def project(leaf: jax.Array, radius: jax.Array, selected: bool) -> jax.Array:
        if not selected:
            return leaf
        norm = jnp.maximum(tensor_norm(leaf, batch_dims, per_channel), EPS)
        factor = _broadcastable(radius / norm, leaf.ndim, per_channel)
        return (leaf.astype(jnp.float32) * factor).astype(leaf.dtype)

    return jax.tree_util.tree_map(project, params, radii, mask)


def _joint_project(
    scale: jax.Array, offset: jax.Array | None, batch_dims: int
) -> tuple[jax.Array, jax.Array | None]:
    """Rescale [γ; β] jointly to norm √d, d = number of units."""
    parts = [scale] if offset is None else [scale, offset]
    sq = sum(jnp.square(tensor_norm(p, batch_dims)) for p in parts)
    d = math.prod(scale.shape[batch_dims:])
    factor = _expand(math.sqrt(d) / jnp.maximum(jnp.sqrt(sq), EPS), scale.ndim)
    new = [(p.astype(jnp.float32) * factor).astype(p.dtype) for p in parts]
    return new[0], (new[1] if offset is not None else None)


def project_norm_params(params: Any, labels: Any, mode: str, batch_dims: int = 0) -> Any:
    """Apply a scale/offset mode to every normalisation layer.

    ``"free"`` and ``"decay_to_init"`` leave the parameters unchanged (the latter acts through
    `decay_to_init_penalty`); ``"joint_project"`` projects each layer's ``[γ; β]`` to norm √d.
    A layer without an offset (RMSNorm) projects γ alone; offset-only layers are left alone.
    """
    if mode not in NORM_MODES:
        raise ValueError(f"unknown norm mode {mode!r}; use one of {NORM_MODES}")
    if mode != "joint_project":
        return params
    flat, flat_labels = traverse_util.flatten_dict(params), traverse_util.flatten_dict(labels)
    out = dict(flat)
    for key, label in flat_labels.items():
        if label != "norm_scale":
            continue
        bias_key = (*key[:-1], "bias")
        has_offset = flat_labels.get(bias_key) == "norm_offset"
        offset = flat[bias_key] if has_offset else None
        scale, offset = _joint_project(flat[key], offset, batch_dims)
        out[key] = scale
        if offset is not None:
            out[bias_key] = offset
    tree = traverse_util.unflatten_dict(out)
    return freeze(tree) if isinstance(params, FrozenDict) else tree


def decay_to_init_penalty(params: Any, labels: Any, coef: float) -> jax.Array:
    """λ Σ_l (‖γ_l − 1‖² + ‖β_l‖²) over normalisation layers; add to the loss."""

    def term(leaf: jax.Array, label: str) -> jax.Array:
        if label == "norm_scale":
            return jnp.sum(jnp.square(leaf.astype(jnp.float32) - 1.0))
        if label == "norm_offset":
            return jnp.sum(jnp.square(leaf.astype(jnp.float32)))
        return jnp.zeros((), jnp.float32)

    terms = jax.tree_util.tree_leaves(jax.tree_util.tree_map(term, params, labels))
    return coef * sum(terms, jnp.zeros((), jnp.float32))


class NaPState(NamedTuple):
    """State of `nap_transform`: updates seen so far and the per-tensor radii."""

    count: jax.Array
    radii: Any


def _touched(mask: Any, norm_labels: Any | None) -> Any:
    """Leaves the projection may change: masked kernels plus norm γ/β under joint projection."""
    if norm_labels is None:
        return mask
    norms = mask_for(norm_labels, "norm_scale", "norm_offset")
    return jax.tree_util.tree_map(lambda a, b: a or b, mask, norms)


def nap_transform(
    radii: Any | None,
    mask: Any,
    every: int = 1,
    batch_dims: int = 0,
    norm_labels: Any | None = None,
    per_channel: bool = False,
) -> optax.GradientTransformation:
    """Projection as the last optax transform: u' = P(θ + u) − θ when count % every == 0.

    On other steps, and always for unmasked leaves, the updates pass through unchanged, so
    `optax.apply_updates` yields P(θ + u) on projection steps. Chain it *after* the
    optimiser and its learning-rate scaling. Optimiser moments are not touched.

    Args:
      radii: output of `init_radii`, or None to record ‖W‖ of the params given to `init`
        (use None when the optimiser state is initialised per seed under `vmap`).
      mask: static pytree of bools selecting the projected kernels (see `nap_mask`).
      every: project on updates 0, every, 2·every, ...;
        ``every <= 0`` turns projection off (the transform is then the identity).
      batch_dims: leading axes indexing independent tensors (1 for a critic ensemble).
      norm_labels: role labels of the params; if given, normalisation layers' ``[γ; β]`` are
        also projected to √d on the same steps (mode ``joint_project``).
      per_channel: one radius per output channel instead of per tensor (module docstring).
    """
    touched = _touched(mask, norm_labels)

    def init_fn(params: Any) -> NaPState:
        r = init_radii(params, mask, batch_dims, per_channel) if radii is None else radii
        return NaPState(count=jnp.zeros((), jnp.int32), radii=r)

    def update_fn(updates: Any, state: NaPState, params: Any = None) -> tuple[Any, NaPState]:
        if params is None:
            raise ValueError("nap_transform needs params: call update(updates, state, params)")
        new_state = NaPState(optax.safe_int32_increment(state.count), state.radii)
        if every <= 0:
            return updates, new_state
        stepped = optax.apply_updates(params, updates)
        target = project_to_radii(stepped, state.radii, mask, batch_dims, per_channel)
        if norm_labels is not None:
            target = project_norm_params(target, norm_labels, "joint_project", batch_dims)
        due = state.count % every == 0

        def pick(u: jax.Array, t: jax.Array, p: jax.Array, selected: bool) -> jax.Array:
            return jnp.where(due, (t - p).astype(u.dtype), u) if selected else u

        return jax.tree_util.tree_map(pick, updates, target, params, touched), new_state

    return optax.GradientTransformation(init_fn, update_fn)


def warmup_cosine_schedule(
    init: float, peak: float, end: float, warmup_steps: int, period: int
) -> optax.Schedule:
    """Linear warm-up then cosine decay, restarted every `period` steps.

    With t = count mod period, T = period and T_w = warmup_steps:
    η = init + (peak − init)·t/T_w for t < T_w, else
    η = end + ½(peak − end)(1 + cos(π (t − T_w)/(T − T_w))). The restart stands in for a task
    change when task boundaries are unknown. Spec values (sequential ALE, [2nd]): init 1e-8,
    peak 6.25e-4, warm-up 1,000 steps, end 1e-6.
    """
    if period <= 0 or not 0 <= warmup_steps < period:
        raise ValueError(f"need 0 <= warmup_steps < period, got {warmup_steps=} and {period=}")

    def schedule(count: jax.Array | int) -> jax.Array:
        t = (jnp.asarray(count) % period).astype(jnp.float32)
        warm = init + (peak - init) * t / max(warmup_steps, 1)
        frac = (t - warmup_steps) / (period - warmup_steps)
        cosine = end + 0.5 * (peak - end) * (1.0 + jnp.cos(jnp.pi * frac))
        return jnp.where(t < warmup_steps, warm, cosine)

    return schedule
