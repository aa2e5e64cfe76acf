"""Network, variants and fused training loops of the digits plasticity benchmark.

A run of protocol A is `jit(vmap over seeds(lax.scan over tasks(lax.scan over steps)))`: the whole
40-task sequence of every seed is one XLA program.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from scalerl.metrics.activity import dead_fraction, dormant_ratio
from scalerl.plasticity import hare_tortoise
from scalerl.plasticity.digits_data import NUM_CLASSES, NUM_FEATURES, random_labels
from scalerl.plasticity.hare_tortoise import hare_reset, tortoise_update
from scalerl.plasticity.nap import init_radii, nap_mask, project_to_radii
from scalerl.plasticity.resets import shrink_perturb
from scalerl.plasticity.roles import label_params

Params = Any
DORMANT_TAU = 0.1
"""Dormancy threshold logged at each task end."""


# --- variants -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Base:
    """`base`: plain ReLU MLP; optimiser state carries over, no task boundaries (§6.1)."""

    name: ClassVar[str] = "base"
    layer_norm: bool = False
    """LayerNorm (with affine) before each hidden ReLU."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class LN(Base):
    """`ln`: LayerNorm with affine before each hidden ReLU (§6.1, §4.4)."""

    name: ClassVar[str] = "ln"
    layer_norm: bool = True
    """LayerNorm (with affine) before each hidden ReLU."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class NaP(Base):
    """`nap`: LN, bias-free hidden layers projected to their initial norm (§1, eq. 1)."""

    name: ClassVar[str] = "nap"
    layer_norm: bool = True
    """Must stay True: the normalise step of NaP (§1.2)."""
    project_every: int = 1
    """Gradient steps between projections; projects after steps 0, k, 2k, … (§1.3)."""

    def __post_init__(self) -> None:
        if not self.layer_norm or self.project_every < 1:
            raise ValueError(f"NaP needs layer_norm=True and project_every >= 1, got {self}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reset(Base):
    """`reset`: fresh network and optimiser state at every task start (reference, §6.1)."""

    name: ClassVar[str] = "reset"


@dataclasses.dataclass(frozen=True, kw_only=True)
class HareTortoise(Base):
    """`hare_tortoise`: EMA tortoise, hare reset to it on a global-step clock (§2, eqs. 6-7).

    The tortoise is the evaluated network. Defaults are protocol A's pilot settings
    (docs/plasticity/benchmark.md).
    """

    name: ClassVar[str] = "hare_tortoise"
    momentum: float = 0.99
    """Tortoise EMA momentum m, applied after every gradient step (eq. 6)."""
    reset_every: int = 100
    """Global gradient steps between hare resets (eq. 7); <= 0 disables them."""

    def __post_init__(self) -> None:
        hare_tortoise.HareTortoise(momentum=self.momentum, reset_every=self.reset_every)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShrinkPerturb(Base):
    """`shrink_perturb`: θ ← λθ + σφ, φ a fresh initialisation, at every task end (§4.2)."""

    name: ClassVar[str] = "shrink_perturb"
    shrink: float = 0.4
    """λ, weight of the current parameters (eq. 8)."""
    perturb_scale: float = 0.1
    """σ, weight of the fresh initialisation φ (eq. 8)."""


Variant = Base
VARIANTS: dict[str, Variant] = {
    v.name: v for v in (Base(), LN(), NaP(), Reset(), HareTortoise(), ShrinkPerturb())
}
"""Default configuration of every named variant."""


def make_variant(name: str) -> Variant:
    """The default configuration of variant `name` (one of `VARIANTS`)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}")
    return VARIANTS[name]


# --- network --------------------------------------------------------------------------------


def he_normal(scale: float = 1.0) -> nn.initializers.Initializer:
    """Untruncated normal with std `scale`·√(2/fan_in) (He et al. 2015)."""
    return nn.initializers.variance_scaling(2.0 * scale**2, "fan_in", "normal")


class DigitsMLP(nn.Module):
    """MLP 64-W-…-W-10 with ReLU, He-normal kernels, head kernel × 0.5, zero biases (§6.1).

    With `nap`, the hidden dense layers are named `dense_{i}_pn` and have no bias, so their
    kernels carry the `hidden_kernel` role that NaP projects (§1.2). Returns the logits and
    the post-ReLU features of every hidden layer.
    """

    width: int = 128
    depth: int = 2
    layer_norm: bool = False
    nap: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        hidden = []
        for i in range(self.depth):
            name = f"dense_{i}_pn" if self.nap else f"dense_{i}"
            x = nn.Dense(self.width, use_bias=not self.nap, kernel_init=he_normal(), name=name)(x)
            if self.layer_norm or self.nap:
                x = nn.LayerNorm(name=f"layer_norm_{i}")(x)
            x = nn.relu(x)
            hidden.append(x)
        logits = nn.Dense(NUM_CLASSES, kernel_init=he_normal(0.5), name="head")(x)
        return logits, tuple(hidden)


def make_model(variant: Variant, width: int) -> DigitsMLP:
    """The network of `variant` at hidden width `width`."""
    return DigitsMLP(width, layer_norm=variant.layer_norm, nap=isinstance(variant, NaP))


def hidden_kernels(params: Params) -> list[jax.Array]:
    """Kernels of the hidden dense layers (every module named `dense_*`), in layer order."""
    inner = params["params"]
    return [inner[k]["kernel"] for k in sorted(inner) if k.startswith("dense_")]


# --- training state and one step ------------------------------------------------------------


class TrainState(struct.PyTreeNode):
    """Everything a run carries: trained (hare) params, Adam state, tortoise, NaP radii, step."""

    params: Params
    opt_state: optax.OptState
    tortoise: Params | None
    radii: Params | None
    step: jax.Array


@dataclasses.dataclass(frozen=True)
class Learner:
    """Static pieces of one run: variant, model, optimiser and its settings, input size."""

    variant: Variant
    model: DigitsMLP
    opt: optax.GradientTransformation
    lr: float
    batch_size: int
    input_dim: int = NUM_FEATURES

    def init_params(self, key: jax.Array) -> Params:
        """A fresh initialisation of the network."""
        return self.model.init(key, jnp.zeros((1, self.input_dim), jnp.float32))

    def projected(self, params: Params) -> Params:
        """Static mask of the leaves NaP projects: the `hidden_kernel` role (§1.3)."""
        return nap_mask(label_params(params))


def make_learner(variant: Variant, width: int, lr: float, batch_size: int) -> Learner:
    """Adam(lr, β=(0.9, 0.999), ε=1e-8) learner for `variant` on the digits images (§6)."""
    opt = optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)
    return Learner(variant, make_model(variant, width), opt, lr, batch_size)


def init_state(learner: Learner, key: jax.Array) -> TrainState:
    """Fresh parameters, Adam state, tortoise (H&T only) and radii (NaP only)."""
    params = learner.init_params(key)
    variant = learner.variant
    tortoise = params if isinstance(variant, HareTortoise) else None
    radii = init_radii(params, learner.projected(params)) if isinstance(variant, NaP) else None
    step = jnp.zeros((), jnp.int32)
    return TrainState(params, learner.opt.init(params), tortoise, radii, step)


def loss_fn(params: Params, model: DigitsMLP, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of the logits against integer labels."""
    logits, _ = model.apply(params, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def after_step(learner: Learner, state: TrainState) -> TrainState:
    """Per-step interventions: NaP projection (eq. 1); H&T EMA and hare reset (eqs. 6-7).

    `state.step` is the 0-based global index of the optimiser step just taken: NaP projects on
    steps 0, k, 2k, … and the hare is reset after steps R−1, 2R−1, … (never a per-task clock).
    """
    variant, params = learner.variant, state.params
    if isinstance(variant, NaP):
        projected = project_to_radii(params, state.radii, learner.projected(params))
        do = state.step % variant.project_every == 0
        params = jax.tree.map(lambda p, q: jnp.where(do, q, p), params, projected)
    if isinstance(variant, HareTortoise):
        tortoise = tortoise_update(state.tortoise, params, variant.momentum)
        params = hare_reset(params, tortoise, state.step, variant.reset_every)
        state = state.replace(tortoise=tortoise)
    return state.replace(params=params)


def train_step(
    learner: Learner,
    state: TrainState,
    x: jax.Array,
    y: jax.Array,
    key: jax.Array,
    n: jax.Array | int | None = None,
) -> TrainState:
    """One Adam step on a batch drawn with replacement from the first `n` (default: all)
    examples of (x, y), then `after_step`; `n` may be traced (warm-start subsets)."""
    high = x.shape[0] if n is None else n
    idx = jax.random.randint(key, (learner.batch_size,), 0, high)
    grads = jax.grad(loss_fn)(state.params, learner.model, x[idx], y[idx])
    updates, opt_state = learner.opt.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    state = after_step(learner, state.replace(params=params, opt_state=opt_state))
    return state.replace(step=state.step + 1)


def train_steps(
    learner: Learner,
    state: TrainState,
    x: jax.Array,
    y: jax.Array,
    key: jax.Array,
    n: int,
    subset: jax.Array | int | None = None,
) -> TrainState:
    """`n` fused `train_step`s (`lax.scan`), sampling from the first `subset` examples."""

    def body(s: TrainState, k: jax.Array) -> tuple[TrainState, None]:
        return train_step(learner, s, x, y, k, subset), None

    state, _ = jax.lax.scan(body, state, jax.random.split(key, n))
    return state


# --- task boundaries and probes -------------------------------------------------------------


def task_start(learner: Learner, state: TrainState, key: jax.Array) -> TrainState:
    """`reset`: fresh parameters and Adam state at each task start; other variants: no-op."""
    if not isinstance(learner.variant, Reset):
        return state
    params = learner.init_params(key)
    return state.replace(params=params, opt_state=learner.opt.init(params))


def task_end(learner: Learner, state: TrainState, key: jax.Array) -> TrainState:
    """`shrink_perturb`: θ ← λθ + σφ with a fresh φ (eq. 8); other variants: no-op."""
    variant = learner.variant
    if not isinstance(variant, ShrinkPerturb):
        return state
    fresh = learner.init_params(key)
    params = shrink_perturb(state.params, fresh, variant.shrink, variant.perturb_scale, True)
    return state.replace(params=params)


def eval_params(state: TrainState) -> Params:
    """The evaluated network: the tortoise under H&T (§2.1), otherwise the trained one."""
    return state.params if state.tortoise is None else state.tortoise


def accuracy(model: DigitsMLP, params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Fraction of examples whose arg-max logit equals the label."""
    logits, _ = model.apply(params, x)
    return jnp.mean((jnp.argmax(logits, axis=-1) == y).astype(jnp.float32))


def probe(learner: Learner, state: TrainState, x: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
    """Task-end metrics on the task's examples (all 1,797 images, task labels; §6.1, §5).

    Accuracy is of the evaluated network (`eval_params`); the health metrics are of the trained
    network. `health/elr` is the Adam effective learning rate η/‖W_l‖ averaged over the
    hidden kernels (§1.5, §5.6a); `health/hidden_kernel_norm` is their joint Frobenius norm.
    """
    _, hidden = learner.model.apply(state.params, x)
    norms = jnp.stack([jnp.linalg.norm(w) for w in hidden_kernels(state.params)])
    return {
        "eval/accuracy": accuracy(learner.model, eval_params(state), x, y),
        "health/dead_fraction": dead_fraction(hidden),
        "health/dormant_ratio": dormant_ratio(hidden, DORMANT_TAU),
        "health/hidden_kernel_norm": jnp.sqrt(jnp.sum(norms**2)),
        "health/elr": jnp.mean(learner.lr / norms),
    }


# --- protocol A -----------------------------------------------------------------------------

ProtocolARun = Callable[[jax.Array, jax.Array], tuple[dict[str, jax.Array], TrainState]]


def make_protocol_a(learner: Learner, num_tasks: int, steps_per_task: int) -> ProtocolARun:
    """Jitted protocol A over a batch of seed keys: random labels per task, task-end probes.

    Returns:
        `run(keys, x)` with keys of shape (seeds, 2) and the images `x` (n, 64); it returns the
        task-end metrics, each of shape (seeds, num_tasks), and every seed's final `TrainState`.
        The images are an argument, not a closure constant, which keeps compilation fast.
    """

    def run_seed(key: jax.Array, x: jax.Array) -> tuple[dict[str, jax.Array], TrainState]:
        def task(state: TrainState, inputs: tuple[jax.Array, jax.Array]) -> Any:
            y, k = inputs
            k_start, k_steps, k_end = jax.random.split(k, 3)
            state = task_start(learner, state, k_start)
            state = train_steps(learner, state, x, y, k_steps, steps_per_task)
            metrics = probe(learner, state, x, y)
            return task_end(learner, state, k_end), metrics

        k_init, k_labels, k_tasks = jax.random.split(key, 3)
        labels = random_labels(k_labels, num_tasks, x.shape[0])
        inputs = (labels, jax.random.split(k_tasks, num_tasks))
        state, metrics = jax.lax.scan(task, init_state(learner, k_init), inputs)
        return metrics, state

    return jax.jit(jax.vmap(run_seed, in_axes=(0, None)))
