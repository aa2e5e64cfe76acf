"""The agent state: one pytree holding everything an agent needs to act, learn and resume."""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from scalerl.normalizers import RewardScaleState, RunningStats


@flax.struct.dataclass
class NetState:
    """Parameters of one trainable network and its optimizer state."""

    params: Any
    opt_state: Any


@flax.struct.dataclass
class SACState:
    """Complete SAC agent state (jit/vmap/scan friendly).

    Attributes:
        actor: policy parameters and optimizer state.
        critic: critic (ensemble) parameters and optimizer state.
        target_params: Polyak-averaged critic parameters.
        temp: {"log_temp": ()} and its optimizer state.
        obs_stats: running observation statistics.
        reward_stats: running discounted-return statistics for the reward scale.
        rng: PRNG key, split on every use.
        updates: number of gradient updates done so far (int32).
        extras: state of plasticity interventions ({} when none is on): "init" (initial actor
            and critic parameters, for L2-init) and "tortoise" (Hare & Tortoise EMA networks).
    """

    actor: NetState
    critic: NetState
    target_params: Any
    temp: NetState
    obs_stats: RunningStats
    reward_stats: RewardScaleState
    rng: jax.Array
    updates: jax.Array
    extras: Any


def take_seed(tree: Any, i: int) -> Any:
    """Seed `i`'s slice (as host arrays) of a tree with a leading seed axis."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[i], tree)


def apply_gradients(
    tx: optax.GradientTransformation, net: NetState, grads: Any, project: Any = None
) -> NetState:
    """One optimizer step, then an optional parameter projection (e.g. onto the sphere)."""
    updates, opt_state = tx.update(grads, net.opt_state, net.params)
    params = optax.apply_updates(net.params, updates)
    if project is not None:
        params = project(params)
    return NetState(params, opt_state)


def polyak(target: Any, online: Any, tau: float) -> Any:
    """target <- tau * online + (1 - tau) * target, leaf by leaf."""
    return jax.tree_util.tree_map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


class SeededInit:
    """`init` and `init_many` of an agent whose method `_init(key)` builds one seed's state
    (PPO, DQN, PQN). Seeds are initialised one by one and stacked: vmapping orthogonal initialisers
    deadlocks XLA on CPU for some shapes."""

    def init(self, key: jax.Array) -> Any:
        """Fresh state of one seed (jitted)."""
        return self._jit_init(key)

    def init_many(self, keys: jax.Array) -> Any:
        """States of several seeds stacked on a leading axis."""
        states = [self.init(key) for key in keys]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)

    @functools.cached_property
    def _jit_init(self) -> Any:
        return jax.jit(self._init)
