"""Periodic resets and Shrink & Perturb (spec `plasticity.md` §4.1-§4.2).

Everything here is a pure function of pytrees. The reset decision is a traced boolean and the
parameters are selected with `jnp.where`, so `apply_reset` can run inside `jit`/`lax.scan` on
every gradient step and only changes the state on the steps where `should_reset` fires.

Masks are pytrees of booleans shaped like the parameters (or a prefix of them): a leaf may be a
Python bool, a scalar bool array or an entry-wise bool array broadcastable to the parameter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax

from scalerl.errors import ConfigError

PyTree = Any
ResetKind = Literal["none", "full", "last_layers", "shrink_perturb"]
RESET_KINDS: tuple[str, ...] = ("none", "full", "last_layers", "shrink_perturb")


class ResetConfigError(ConfigError, ValueError):
    """An invalid `ResetConfig` (a `ValueError`, and a `ConfigError` for the CLI)."""


def _masked_map(fn: Callable[..., jax.Array], mask: PyTree, *trees: PyTree) -> PyTree:
    """fn(m, *leaves) for every leaf under each mask leaf `m` (mask may be a tree prefix)."""

    def per_mask_leaf(m: Any, *subtrees: PyTree) -> PyTree:
        return jax.tree_util.tree_map(lambda *xs: fn(m, *xs), *subtrees)

    return jax.tree_util.tree_map(per_mask_leaf, mask, *trees)


def _zero_masked(mask: PyTree, tree: PyTree) -> PyTree:
    """Entries of `tree` selected by `mask` set to zero (dtype kept)."""
    return _masked_map(lambda m, x: jnp.where(m, jnp.zeros_like(x), x), mask, tree)


def zero_adam_moments(opt_state: PyTree, mask: PyTree) -> PyTree:
    """Zero Adam's first and second moments of the masked entries.

    Every `optax.ScaleByAdamState` found anywhere in `opt_state` (a bare state, a chain tuple,
    a named chain, `inject_hyperparams`, ...) gets `mu` and `nu` zeroed where `mask` is true.
    The step `count` is left untouched, so bias correction continues from the global count.

    Args:
        opt_state: optax state of an optimizer over parameters shaped like `mask`.
        mask: params-shaped bool pytree; leaves may be entry-wise bool arrays.

    Returns:
        The optimizer state with the selected moments zeroed.
    """

    def visit(node: Any) -> Any:
        if not isinstance(node, optax.ScaleByAdamState):
            return node
        return node._replace(mu=_zero_masked(mask, node.mu), nu=_zero_masked(mask, node.nu))

    is_adam = lambda node: isinstance(node, optax.ScaleByAdamState)  # noqa: E731
    return jax.tree_util.tree_map(visit, opt_state, is_leaf=is_adam)


def hard_reset(params: PyTree, fresh: PyTree, mask: PyTree) -> PyTree:
    """θ ← φ on the masked leaves, θ elsewhere.

    Args:
        params: current parameters θ.
        fresh: re-initialised parameters φ (a fresh draw, or the saved initial parameters for
            SR-SAC's same-seed behaviour), same structure as `params`.
        mask: bool pytree selecting what to reset.
    """
    return _masked_map(lambda m, p, f: jnp.where(m, f, p), mask, params, fresh)


def shrink_perturb(
    params: PyTree, perturb: PyTree, shrink: float, perturb_scale: float, mask: PyTree
) -> PyTree:
    """Shrink & Perturb, θ ← λθ + σφ on the masked leaves (Ash & Adams 2020).

    Args:
        params: current parameters θ.
        perturb: φ, a fresh draw of the initialiser or the initial parameters θ⁽⁰⁾ (the caller
            chooses: BBF/SR-SPR use a fresh draw, the Hare & Tortoise repo the initial weights).
        shrink: λ.
        perturb_scale: σ. The convex form used by BBF/SR-SPR is σ = 1 − λ.
        mask: bool pytree selecting the leaves to shrink and perturb.
    """

    def mix(m: Any, p: jax.Array, f: jax.Array) -> jax.Array:
        return jnp.where(m, (shrink * p + perturb_scale * f).astype(p.dtype), p)

    return _masked_map(mix, mask, params, perturb)


def path_mask(params: PyTree, prefixes: Sequence[Sequence[str]]) -> PyTree:
    """Bool pytree, True for leaves whose dict-key path starts with one of `prefixes`.

    `path_mask(params, [("head",)])` selects scalerl's output heads (the "last layers" of
    primacy-bias resets).
    """

    def selected(path: tuple[Any, ...], _: Any) -> bool:
        keys = tuple(getattr(k, "key", getattr(k, "name", k)) for k in path)
        return any(keys[: len(p)] == tuple(p) for p in prefixes)

    return jax.tree_util.tree_map_with_path(selected, params)


@dataclasses.dataclass(frozen=True)
class ResetConfig:
    """What to reset, how, and when. Hashable, so usable as a static arg."""

    kind: ResetKind = "none"
    """none | full (all parameters) | last_layers (masked leaves) | shrink_perturb (eq. 8)."""
    every: int = 0
    """Reset period in gradient updates (global count); <= 0 never resets."""
    shrink: float = 0.8
    """λ of Shrink & Perturb (only for kind='shrink_perturb')."""
    perturb: float = 0.2
    """σ of Shrink & Perturb (only for kind='shrink_perturb')."""
    reset_opt_state: bool = True
    """Zero the Adam moments (not the count) of every reset or perturbed leaf."""
    same_init: bool = False
    """Reset to the saved initial parameters instead of a fresh draw (SR-SAC code behaviour)."""
    stop_after: int | None = None
    """No reset after this many gradient updates (BBF: none after 100k); None = no limit."""

    def __post_init__(self) -> None:
        if self.kind not in RESET_KINDS:
            kinds = ", ".join(RESET_KINDS)
            raise ResetConfigError(f"unknown reset kind {self.kind!r}; choose one of {kinds}")
        if not isinstance(self.every, int) or isinstance(self.every, bool):
            raise ResetConfigError(f"reset every must be an int, got {self.every!r}")
        if self.shrink < 0 or self.perturb < 0:
            raise ResetConfigError("reset shrink and perturb must be >= 0; pass non-negative λ, σ")
        if self.stop_after is not None and self.stop_after < 0:
            raise ResetConfigError(f"stop_after must be >= 0 or None, got {self.stop_after}")


def should_reset(step: jax.Array | int, cfg: ResetConfig) -> jax.Array:
    """Traced bool: does a reset fire after the `step`-th gradient update?

    Fires when `step > 0`, `step % every == 0` and `step <= stop_after`; never for
    `kind='none'` or `every <= 0`. `step` is the *global* number of updates done so far (a
    per-task counter silently never fires when tasks are shorter than `every`).
    """
    step = jnp.asarray(step)
    if cfg.kind == "none" or cfg.every <= 0:
        return jnp.zeros(step.shape, bool)
    fire = (step > 0) & (step % cfg.every == 0)
    if cfg.stop_after is not None:
        fire = fire & (step <= cfg.stop_after)
    return fire


def fresh_params(
    cfg: ResetConfig, initial: PyTree, init_fn: Callable[[jax.Array], PyTree], key: jax.Array
) -> PyTree:
    """Reset target φ: the saved `initial` parameters if `cfg.same_init`, else `init_fn(key)`."""
    return initial if cfg.same_init else init_fn(key)


def _constant_mask(params: PyTree, value: bool) -> PyTree:
    return jax.tree_util.tree_map(lambda _: value, params)


def _and_mask(mask: PyTree, fire: jax.Array) -> PyTree:
    return jax.tree_util.tree_map(lambda m: jnp.logical_and(m, fire), mask)


def apply_reset(
    params: PyTree,
    opt_state: PyTree,
    fresh: PyTree,
    cfg: ResetConfig,
    mask_last_layers: PyTree | None,
    step: jax.Array | int,
) -> tuple[PyTree, PyTree, jax.Array]:
    """Apply `cfg`'s reset if `should_reset(step, cfg)`, else return the inputs unchanged.

    * `full`: θ ← φ everywhere (SR-SAC).
    * `last_layers`: θ ← φ on `mask_last_layers` (primacy-bias resets).
    * `shrink_perturb`: θ ← λθ + σφ (eq. 8) off the mask and θ ← φ on it (the BBF/SR-SPR
      recipe: perturb the encoder, hard-reset the head); pass `None` or an all-False mask
      for plain Shrink & Perturb of everything.

    With `reset_opt_state`, the Adam moments of every reset or perturbed leaf are zeroed, the
    count kept. Targets, temperature and other optimizers are the caller's: use the returned
    flag, e.g. `jnp.where(fired, new_critic, target)` to re-sync a target network.

    Args:
        params: current parameters.
        opt_state: optax state over `params`.
        fresh: φ from `fresh_params` (same structure as `params`).
        cfg: the reset configuration (static).
        mask_last_layers: bool pytree of the last layers (see `path_mask`), or None.
        step: global number of gradient updates done so far (traced).

    Returns:
        (params, opt_state, fired) where `fired` is the traced decision.
    """
    fire = should_reset(step, cfg)
    if cfg.kind == "none":
        return params, opt_state, fire
    if cfg.kind == "last_layers" and mask_last_layers is None:
        raise ResetConfigError("kind='last_layers' needs mask_last_layers; build it with path_mask")
    last = _constant_mask(params, False) if mask_last_layers is None else mask_last_layers
    hard = _constant_mask(params, True) if cfg.kind == "full" else last
    new = hard_reset(params, fresh, _and_mask(hard, fire))
    touched = hard
    if cfg.kind == "shrink_perturb":
        soft = jax.tree_util.tree_map(jnp.logical_not, last)
        new = shrink_perturb(new, fresh, cfg.shrink, cfg.perturb, _and_mask(soft, fire))
        touched = _constant_mask(params, True)
    if cfg.reset_opt_state:
        opt_state = zero_adam_moments(opt_state, _and_mask(touched, fire))
    return new, opt_state, fire
