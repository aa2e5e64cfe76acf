"""PSGD-Kron: a Kronecker-factored whitening preconditioner as an optax transformation.

Implements the algorithm of spec `plasticity.md` §3.3 (the optimizer of Castanyer et al.,
"Stable Gradients for Stable Learning at Scale in Deep RL", NeurIPS 2025, §4.2; PSGD by
Xi-Lin Li). Written for scalerl because `psgd-jax` 0.2.9 and `distributed-kron` 2.0.0 do not
import with the pinned optax 0.2.8 / jax 0.10.2.

Per tensor `G` with modes 1..k the state holds one factor `Q_i` per mode: an upper-triangular
(n_i, n_i) matrix, or a diagonal vector (n_i,) when n_i > `max_size_triangular` or the tensor
has fewer than two dimensions. The preconditioned direction is P(M) = (each mode by Q_iᵀQ_i)(M).

Leaves with more than two dimensions (e.g. a critic ensemble's (num_qs, d_in, d_out) kernels, or
a conv kernel) are treated as a batch of matrices over their last two axes: the leading axes are
flattened and every matrix gets its own factors (`vmap`). Leaves with at most two dimensions are
one tensor each (a (num_qs, H) ensemble bias gets a (num_qs, num_qs) and an (H, H) factor).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.scipy.linalg import solve_triangular

from scalerl.seed_axis import SEED_AXIS

PyTree = Any
Factors = tuple[jax.Array, ...]
_TINY = float(jnp.finfo(jnp.float32).tiny)


class ScaleByKronState(NamedTuple):
    """State of `scale_by_kron`.

    Attributes:
        count: number of updates done (int32); drives the update-probability schedule.
        key: PRNG key for the update decision, the probe vectors and the rebalancing.
        mu: momentum M, shaped like the parameters (no bias correction).
        qs: per parameter leaf, a tuple of float32 factors, one per tensor mode; leaves with
            ndim > 2 carry a leading (prod(leading axes),) batch axis on every factor.
    """

    count: jax.Array
    key: jax.Array
    mu: optax.Updates
    qs: PyTree


def precond_update_prob_schedule(
    max_prob: float = 1.0, min_prob: float = 0.03, decay: float = 0.001, flat_start: int = 200
) -> Callable[[jax.Array], jax.Array]:
    """p(t) = clip(max_prob · exp(−decay (t − flat_start)), min_prob, max_prob)."""

    def schedule(count: jax.Array) -> jax.Array:
        p = max_prob * jnp.exp(-decay * (jnp.asarray(count, jnp.float32) - flat_start))
        return jnp.clip(p, min_prob, max_prob)

    return schedule


# ----------------------------------------------------------------------------- one tensor


def _init_factors(shape: tuple[int, ...], max_size: int, scale: float) -> Factors:
    """Q_i = s^(1/k) I (triangular) or s^(1/k) 1 (diagonal) for every mode."""
    s = scale ** (1.0 / len(shape))
    diag = len(shape) < 2
    return tuple(
        jnp.full((n,), s, jnp.float32) if diag or n > max_size else s * jnp.eye(n) for n in shape
    )


def _unfold(x: jax.Array, i: int) -> jax.Array:
    """Mode-i unfolding, shape (n_i, prod(other dims))."""
    return jnp.moveaxis(x, i, 0).reshape(x.shape[i], -1)


def _mode_map(x: jax.Array, i: int, fn: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """Apply a linear map `fn` to mode i of `x` (fn acts on the mode-i unfolding)."""
    moved = jnp.moveaxis(x, i, 0)
    return jnp.moveaxis(fn(_unfold(x, i)).reshape(moved.shape), 0, i)


def _mul_q(q: jax.Array, m: jax.Array) -> jax.Array:
    return q @ m if q.ndim == 2 else q[:, None] * m


def _mul_qt(q: jax.Array, m: jax.Array) -> jax.Array:
    return q.T @ m if q.ndim == 2 else q[:, None] * m


def _solve_qt(q: jax.Array, m: jax.Array) -> jax.Array:
    """Q^{-T} m by a triangular solve (Q upper triangular)."""
    return solve_triangular(q, m, trans=1, lower=False) if q.ndim == 2 else m / q[:, None]


def _each_mode(x: jax.Array, qs: Factors, op: Callable[..., jax.Array]) -> jax.Array:
    for i, q in enumerate(qs):
        x = _mode_map(x, i, lambda m, q=q: op(q, m))
    return x


def _precondition(qs: Factors, m: jax.Array) -> jax.Array:
    """P(M) = Qᵀ(Q(M)), each mode multiplied by Q_iᵀQ_i."""
    return _each_mode(_each_mode(m, qs, _mul_q), qs, _mul_qt)


def _norm_lower_bound(t: jax.Array) -> jax.Array:
    """Cheap lower bound of ‖T‖₂ for symmetric PSD T: two power steps from its largest row."""
    x = t[jnp.argmax(jnp.sum(t * t, axis=1))]
    for _ in range(2):
        x = t @ (x / jnp.maximum(jnp.linalg.norm(x), _TINY))
    return jnp.linalg.norm(x)


def _update_factor(q: jax.Array, a: jax.Array, b: jax.Array, lr: float) -> jax.Array:
    """Q ← Q − lr/‖T1+T2‖ · triu(T1 − T2) Q with T1 = AAᵀ, T2 = BBᵀ."""
    if q.ndim == 1:
        t1, t2 = jnp.sum(a * a, axis=1), jnp.sum(b * b, axis=1)
        return q - lr / jnp.maximum(jnp.max(t1 + t2), _TINY) * (t1 - t2) * q
    t1, t2 = a @ a.T, b @ b.T
    return q - lr / jnp.maximum(_norm_lower_bound(t1 + t2), _TINY) * jnp.triu(t1 - t2) @ q


def _update_factors(qs: Factors, m: jax.Array, v: jax.Array, lr: float) -> Factors:
    """One preconditioner step from A = Q(M) and B = Q^{-T}(V), V ~ N(0, I)."""
    a = _each_mode(m, qs, _mul_q)
    b = _each_mode(v, qs, _solve_qt)
    return tuple(_update_factor(q, _unfold(a, i), _unfold(b, i), lr) for i, q in enumerate(qs))


def _balance(qs: Factors) -> Factors:
    """Rescale the factors to the geometric mean of their max-abs values (P unchanged)."""
    if len(qs) < 2:
        return qs
    norms = jnp.stack([jnp.max(jnp.abs(q)) for q in qs])
    gmean = jnp.exp(jnp.mean(jnp.log(norms)))
    return tuple(q * (gmean / n) for q, n in zip(qs, norms, strict=True))


# ----------------------------------------------------------------------------- one leaf


def _as_tensors(x: jax.Array) -> jax.Array:
    """A leaf as one tensor (ndim <= 2; scalars become (1,)) or a batch of matrices."""
    if x.ndim > 2:
        return x.reshape((-1, *x.shape[-2:]))
    return x.reshape(x.shape or (1,))


def _per_tensor(fn: Callable[..., Any], leaf_ndim: int) -> Callable[..., Any]:
    return jax.vmap(fn) if leaf_ndim > 2 else fn


def _init_leaf(p: jax.Array, max_size: int, scale: float) -> Factors:
    x = _as_tensors(p)
    factors = _init_factors(x.shape[1:] if p.ndim > 2 else x.shape, max_size, scale)
    if p.ndim > 2:
        return tuple(jnp.tile(f, (x.shape[0],) + (1,) * f.ndim) for f in factors)
    return factors


def _leaf_update(
    qs: Factors, m: jax.Array, key: jax.Array, lr: float, balance: jax.Array
) -> Factors:
    x = _as_tensors(m).astype(jnp.float32)
    v = jax.random.normal(key, x.shape, jnp.float32)

    def step(q: Factors, xx: jax.Array, vv: jax.Array) -> Factors:
        new = _update_factors(q, xx, vv, lr)
        return jax.tree_util.tree_map(lambda b, n: jnp.where(balance, b, n), _balance(new), new)

    return _per_tensor(step, m.ndim)(qs, x, v)


def _leaf_precondition(m: jax.Array, qs: Factors) -> jax.Array:
    x = _as_tensors(m).astype(jnp.float32)
    return _per_tensor(_precondition, m.ndim)(qs, x).reshape(m.shape).astype(m.dtype)


# ----------------------------------------------------------------------------- whole tree


def _trust_region(dirs: optax.Updates) -> optax.Updates:
    """Clip the global norm to √(#params), then every entry to [−1, 1]."""
    size = sum(x.size for x in jax.tree_util.tree_leaves(dirs))
    scale = jnp.minimum(1.0, math.sqrt(size) / jnp.maximum(optax.global_norm(dirs), _TINY))
    return jax.tree_util.tree_map(lambda d: jnp.clip(d * scale, -1.0, 1.0).astype(d.dtype), dirs)


def _update_all(
    qs: PyTree, src: optax.Updates, key: jax.Array, lr: float, balance: jax.Array
) -> PyTree:
    """Refit every leaf's factors, each with its own probe key."""
    leaves, treedef = jax.tree_util.tree_flatten(src)
    keys = treedef.unflatten(list(jax.random.split(key, len(leaves))))
    update = lambda m, q, k: _leaf_update(q, m, k, lr, balance)  # noqa: E731
    return jax.tree_util.tree_map(update, src, qs, keys)


def _decide(
    prob: float | Callable[[jax.Array], jax.Array], count: jax.Array, key: jax.Array
) -> jax.Array | bool:
    """Traced "update the preconditioner now?"; a Python bool for constant 0 or 1 (no cond)."""
    if not callable(prob) and (prob <= 0 or prob >= 1):
        return bool(prob >= 1)
    p = prob(count) if callable(prob) else prob
    return _across_seeds(jax.random.uniform(key) < p)


def _across_seeds(flag: jax.Array) -> jax.Array:
    """Under `vmap_seeds`, one decision for all seeds: true if any seed's is.

    Every seed's state starts from the same key and count, so the seeds' decisions agree and the
    reduction changes no result; it makes the predicate unbatched, so `lax.cond` runs the refit
    only when taken instead of (as a batched select) at every step for every seed. Outside the
    seeds axis the flag is returned as is.
    """
    try:
        return jax.lax.pmax(flag.astype(jnp.int32), SEED_AXIS) > 0
    except NameError:  # not inside vmap_seeds
        return flag


def scale_by_kron(
    b1: float = 0.9,
    max_size_triangular: int = 8192,
    precond_update_prob: float | Callable[[jax.Array], jax.Array] | None = None,
    precond_lr: float = 0.1,
    precond_init_scale: float = 1.0,
    momentum_into_precond_update: bool = True,
    balance_prob: float = 0.01,
    seed: int = 0,
) -> optax.GradientTransformation:
    """PSGD-Kron direction: momentum, Kronecker whitening, trust region.

    Per step: M ← b1·M + (1−b1)·G (no bias correction); with probability p(count) update the
    factors from M (or G) and a Gaussian probe, rebalancing them with probability
    `balance_prob`; return clip(P(M)) (global norm √(#params), then [−1, 1] per entry). The
    random decisions use a key carried in the state and `lax.cond`, so the transform is
    jit/scan friendly. Under `vmap_seeds` the decision is shared by all seeds and stays a
    branch; under a plain `vmap` the cond becomes a select that runs both branches.

    Args:
        b1: momentum coefficient β₁.
        max_size_triangular: modes longer than this get a diagonal factor.
        precond_update_prob: constant or schedule of the update count; None is
            `precond_update_prob_schedule()`, clip(exp(−0.001(t−200)), 0.03, 1).
        precond_lr: step size of the factor update (0.1).
        precond_init_scale: s, factors start at s^(1/k)·I.
        momentum_into_precond_update: fit the preconditioner to M (True) or to G.
        balance_prob: probability of rebalancing the factors' scales on an update step.
        seed: seed of the state's PRNG key (every replica of a vmapped init gets the same).
    """
    prob = precond_update_prob_schedule() if precond_update_prob is None else precond_update_prob

    def init_fn(params: optax.Params) -> ScaleByKronState:
        mu = jax.tree_util.tree_map(jnp.zeros_like, params)
        qs = jax.tree_util.tree_map(
            lambda p: _init_leaf(p, max_size_triangular, precond_init_scale), params
        )
        return ScaleByKronState(jnp.zeros([], jnp.int32), jax.random.PRNGKey(seed), mu, qs)

    def update_fn(
        updates: optax.Updates, state: ScaleByKronState, params: Any = None
    ) -> tuple[optax.Updates, ScaleByKronState]:
        del params
        mu = jax.tree_util.tree_map(
            lambda m, g: (b1 * m + (1.0 - b1) * g).astype(m.dtype), state.mu, updates
        )
        key, k_do, k_bal, k_probe = jax.random.split(state.key, 4)
        balance = jax.random.uniform(k_bal) < balance_prob
        src = mu if momentum_into_precond_update else updates
        refit = lambda q: _update_all(q, src, k_probe, precond_lr, balance)  # noqa: E731
        do_update = _decide(prob, state.count, k_do)
        if isinstance(do_update, bool):
            qs = refit(state.qs) if do_update else state.qs
        else:
            qs = jax.lax.cond(do_update, refit, lambda q: q, state.qs)
        dirs = _trust_region(jax.tree_util.tree_map(_leaf_precondition, mu, qs))
        count = optax.safe_int32_increment(state.count)
        return dirs, ScaleByKronState(count, key, mu, qs)

    return optax.GradientTransformation(init_fn, update_fn)


def kron(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    weight_decay: float = 0.0,
    weight_decay_mask: Any = None,
    precond_update_prob: float | Callable[[jax.Array], jax.Array] | None = None,
    max_size_triangular: int = 8192,
    **kwargs: Any,
) -> optax.GradientTransformation:
    """PSGD-Kron optimizer: `scale_by_kron`, decoupled weight decay, then −lr.

    The Stable-Gradients paper runs Kron at a third of the baseline Adam learning rate.

    Args:
        learning_rate: constant or schedule.
        b1: momentum coefficient.
        weight_decay: decoupled weight decay λ (θ ← θ − lr(u + λθ)); 0 disables it.
        weight_decay_mask: optax mask (pytree of bools or callable); None decays every leaf.
        precond_update_prob: see `scale_by_kron`.
        max_size_triangular: see `scale_by_kron`.
        **kwargs: further `scale_by_kron` options.
    """
    parts = [scale_by_kron(b1, max_size_triangular, precond_update_prob, **kwargs)]
    if weight_decay > 0:
        parts.append(optax.add_decayed_weights(weight_decay, weight_decay_mask))
    parts.append(optax.scale_by_learning_rate(learning_rate))
    return optax.chain(*parts)
