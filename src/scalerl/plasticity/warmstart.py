"""The warm-start experiment of the digits benchmark (`scalerl plasticity --protocol warmstart`).

The supervised setting of Hare & Tortoise (Lee et al., ICML 2024, §5.1) after Ash & Adams
(NeurIPS 2020): a network is first trained on p % of the training set with q % of those labels
moved to another class (phase 1), then on the full clean training set (phase 2); its final test
accuracy is compared with a network trained on phase 2 alone (from scratch). One XLA program per
method runs every (p, q) cell and every seed: `jit(vmap cells(vmap seeds(scan steps)))`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from scalerl.plasticity.digits_data import flip_labels, load_digits_data
from scalerl.plasticity.digits_train import (
    Base,
    HareTortoise,
    Learner,
    NaP,
    ShrinkPerturb,
    TrainState,
    Variant,
    accuracy,
    eval_params,
    init_state,
    task_end,
    train_steps,
)

NUM_TRAIN = 1200
"""Training images of the fixed split; the other 597 are the test set (as protocol B)."""


@dataclasses.dataclass(frozen=True)
class Method:
    """A warm-start method: the network variant, whether phase 1 runs, the boundary action."""

    variant: Variant
    warm: bool = True
    reset_head: bool = False
    """Re-initialise the output layer at the phase boundary (last-layer reset)."""


METHODS: dict[str, Method] = {
    "plain": Method(Base()),
    "reset": Method(Base(), reset_head=True),
    "shrink_perturb": Method(ShrinkPerturb(shrink=0.4, perturb_scale=0.1)),
    "hare_tortoise": Method(HareTortoise(momentum=0.999, reset_every=500)),
    "nap": Method(NaP()),
}
"""Warm-started methods of the experiment, by name."""
SCRATCH: dict[str, Method] = {
    "scratch": Method(Base(), warm=False),
    "nap_scratch": Method(NaP(), warm=False),
}
"""From-scratch references: the plain network (the baseline of every gap) and NaP's network."""


class WarmstartData(NamedTuple):
    """Every (p, q) cell's phase-1 labels over the shared split; leading axis = cells."""

    x_train: jax.Array
    y_train: jax.Array
    y_phase1: jax.Array
    """(cells, 1200): phase-1 labels (only the first `n_phase1` of a row are used)."""
    n_phase1: jax.Array
    """(cells,): size of the phase-1 subset, round(p · 1200)."""
    x_test: jax.Array
    y_test: jax.Array


def cells(fractions: Sequence[float], noise: Sequence[float]) -> list[tuple[float, float]]:
    """The (p, q) grid, p-major."""
    return list(itertools.product(fractions, noise))


def make_data(key: jax.Array, grid: list[tuple[float, float]]) -> WarmstartData:
    """The seeded 1,200 / 597 split and, per cell, the first round(p·1200) training images
    with exactly round(q·n) of their labels moved to another class (`flip_labels`)."""
    x, y = load_digits_data()
    k_perm, k_flip = jax.random.split(key)
    perm = jax.random.permutation(k_perm, x.shape[0])
    x, y = x[perm], y[perm]
    x_train, y_train = x[:NUM_TRAIN], y[:NUM_TRAIN]
    rows, sizes = [], []
    for i, (p, q) in enumerate(grid):
        n = int(round(p * NUM_TRAIN))
        noisy = flip_labels(jax.random.fold_in(k_flip, i), y_train[:n], q)
        rows.append(jnp.concatenate([noisy, y_train[n:]]))
        sizes.append(n)
    n_phase1 = jnp.asarray(sizes, jnp.int32)
    return WarmstartData(x_train, y_train, jnp.stack(rows), n_phase1, x[NUM_TRAIN:], y[NUM_TRAIN:])


def boundary(learner: Learner, method: Method, state: TrainState, key: jax.Array) -> TrainState:
    """Phase boundary: Shrink & Perturb or a head reset, then a fresh Adam state (as protocol B)."""
    state = task_end(learner, state, key)
    if method.reset_head:
        fresh = learner.init_params(key)["params"]["head"]
        state = state.replace(params={"params": {**state.params["params"], "head": fresh}})
    return state.replace(opt_state=learner.opt.init(state.params))


def final_accuracy(
    learner: Learner,
    method: Method,
    key: jax.Array,
    data: WarmstartData,
    cell: tuple[jax.Array, jax.Array],
    steps: int,
) -> jax.Array:
    """Test accuracy of one seed in one cell: phase 1 (if warm) on the noisy subset, phase 2."""
    y_phase1, n_phase1 = cell
    k_init, k1, k_boundary, k2 = jax.random.split(key, 4)
    state = init_state(learner, k_init)
    if method.warm:
        state = train_steps(learner, state, data.x_train, y_phase1, k1, steps, n_phase1)
        state = boundary(learner, method, state, k_boundary)
    state = train_steps(learner, state, data.x_train, data.y_train, k2, steps)
    return accuracy(learner.model, eval_params(state), data.x_test, data.y_test)


def run_method(
    learner: Learner, method: Method, keys: jax.Array, data: WarmstartData, steps: int
) -> np.ndarray:
    """Test accuracies of shape (cells, seeds) (from-scratch methods: (1, seeds))."""

    def seeds(cell: tuple[jax.Array, jax.Array], d: WarmstartData) -> jax.Array:
        one = lambda k: final_accuracy(learner, method, k, d, cell, steps)  # noqa: E731
        return jax.vmap(one)(keys)

    grid = (data.y_phase1, data.n_phase1)
    if not method.warm:
        grid = jax.tree.map(lambda a: a[:1], grid)
    return np.asarray(jax.jit(jax.vmap(seeds, in_axes=(0, None)))(grid, data))
