"""Hare & Tortoise: a fast trained network reset periodically to its slow EMA.

Lee, Cho, Kim, Kim, Min, Choo, Lyle, "Slow and Steady Wins the Race: Maintaining Plasticity with
Hare and Tortoise Networks", ICML 2024 (arXiv:2406.02596). The hare θ_H is trained by the
optimiser; the tortoise θ_T follows it by an exponential moving average after every optimiser
step (eq. 6) and every R steps the hare is set to the tortoise (eq. 7). The optimiser state is
not reset, and the tortoise is the network evaluated.

All functions are pure and use `jnp.where` on a *global* step counter, so they run inside `jit`
and `lax.scan` (a per-task counter never fires when tasks are shorter than R).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jax
import jax.numpy as jnp

EVAL_NETS = ("tortoise", "hare")


def tortoise_update(tortoise: Any, hare: Any, momentum: float | jax.Array) -> Any:
    """θ_T ← m·θ_T + (1 − m)·θ_H on every leaf.

    Apply it to the parameters *and* to non-trainable buffers such as BatchNorm statistics
    (official code). Non-float leaves (counters) are copied from the hare.
    """

    def ema(t: jax.Array, h: jax.Array) -> jax.Array:
        if not jnp.issubdtype(jnp.result_type(t), jnp.inexact):
            return h
        return (momentum * t + (1.0 - momentum) * h).astype(jnp.result_type(t))

    return jax.tree_util.tree_map(ema, tortoise, hare)


def reset_due(step: int | jax.Array, every: int | jax.Array) -> jax.Array:
    """True after optimiser steps every−1, 2·every−1, ... (0-based global `step`); never if
    ``every <= 0`` (reset when ``(step + 1) % R == 0``)."""
    every = jnp.asarray(every)
    return (every > 0) & ((jnp.asarray(step) + 1) % jnp.maximum(every, 1) == 0)


def hare_reset(hare: Any, tortoise: Any, step: int | jax.Array, every: int | jax.Array) -> Any:
    """θ_H ← θ_T when `reset_due(step, every)`, else θ_H unchanged.

    Args:
      hare: the trained parameters (and buffers).
      tortoise: the EMA parameters, already updated for this step (eq. 6 runs first).
      step: 0-based global index of the optimiser step just taken (never a per-task counter).
      every: reset interval R in optimiser steps; ``<= 0`` disables resets (EMA only).
    """
    due = reset_due(step, every)
    return jax.tree_util.tree_map(lambda h, t: jnp.where(due, t, h), hare, tortoise)


@dataclasses.dataclass(frozen=True)
class HareTortoise:
    """Hare & Tortoise settings; the step unit is the optimiser (gradient) step."""

    momentum: float = 0.999
    """EMA coefficient m of eq. (6); the only value in the official scripts."""
    reset_every: int = 2_000
    """Reset interval R in gradient steps (<= 0: EMA only); RL value unverified."""
    eval_net: Literal["tortoise", "hare"] = "tortoise"
    """Network to evaluate; the tortoise is the one reported."""

    def __post_init__(self) -> None:
        m = self.momentum
        if isinstance(m, bool) or not isinstance(m, int | float) or not 0.0 <= m <= 1.0:
            raise ValueError(f"momentum={self.momentum!r} must be in [0, 1]; use e.g. 0.999")
        if isinstance(self.reset_every, bool) or not isinstance(self.reset_every, int):
            raise ValueError(f"reset_every={self.reset_every!r} must be an int (<= 0 disables)")
        if self.eval_net not in EVAL_NETS:
            raise ValueError(f"eval_net={self.eval_net!r} is unknown; use one of {EVAL_NETS}")

    def after_update(self, hare: Any, tortoise: Any, step: int | jax.Array) -> tuple[Any, Any]:
        """Eq. (6) then eq. (7) after the optimiser step `step`; returns (hare, tortoise)."""
        tortoise = tortoise_update(tortoise, hare, self.momentum)
        return hare_reset(hare, tortoise, step, self.reset_every), tortoise

    def eval_params(self, hare: Any, tortoise: Any) -> Any:
        """The parameters to evaluate with, chosen by `eval_net`."""
        return tortoise if self.eval_net == "tortoise" else hare
