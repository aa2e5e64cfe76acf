"""What the training machinery needs of an algorithm, as typing Protocols.

An algorithm is a frozen object holding its static parts (config, networks, optimizers) and
pure functions over one state pytree: `init` makes the state, `act` reads it, `update` maps it
to a new one. Every function must work under `jax.jit`, `jax.vmap` over seeds (the `--seeds`
axis) and `jax.lax.scan`, so the state holds everything that changes, including the PRNG key,
and the object holds nothing that does. Checkpoints and exact resume save the state pytree as it
is (`scalerl.train.checkpoint`), so its structure is part of the on-disk format.

`Agent` is the minimum every algorithm provides; `OffPolicyAgent` adds what the replay-based
loop (`scalerl.train.loop`, `scalerl.offline`) and its hooks (health diagnostics, resets, ReDo)
call. See docs/architecture.md for how to add an algorithm.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import jax

from scalerl.config import AgentConfig

Metrics = dict[str, jax.Array]
"""Scalar metrics of one step, keyed by namespaced names (`train/…`, `health/…`)."""

State = TypeVar("State")
Batch = Any


class Agent(Protocol[State]):
    """An algorithm: static parts plus pure init / act / update over its state pytree."""

    cfg: AgentConfig
    obs_dim: int
    action_dim: int

    def init(self, key: jax.Array) -> State:
        """A freshly initialised state from a PRNG key."""
        ...

    def init_many(self, keys: jax.Array) -> State:
        """States for several seeds stacked on a leading axis (for `jax.vmap` over seeds)."""
        ...

    def act(
        self, state: State, obs: jax.Array, key: jax.Array, deterministic: bool = False
    ) -> jax.Array:
        """The action for `obs`: the evaluation action if `deterministic`, else a sample."""
        ...

    def update(self, state: State, batch: Batch) -> tuple[State, Metrics]:
        """One learning step on a batch; pure and jittable."""
        ...


class OffPolicyAgent(Agent[State], Protocol):
    """An agent trained from a replay buffer by the off-policy loop."""

    @property
    def gamma(self) -> float:
        """Discount, used by the replay buffer's n-step returns."""
        ...

    def observe(self, state: State, obs: jax.Array, reward: jax.Array, done: jax.Array) -> State:
        """Per-agent-step statistics (observation and reward normalisers)."""
        ...

    def explore(
        self, state: State, obs: jax.Array, key: jax.Array, restart: jax.Array
    ) -> tuple[State, jax.Array]:
        """The data-collection action and the state with its exploration state advanced."""
        ...

    def update_many(self, state: State, batches: Batch) -> tuple[State, Metrics]:
        """`update` scanned over the leading axis of `batches`, metrics averaged."""
        ...

    def health(self, state: State, batch: Batch) -> Metrics:
        """`health/…` diagnostics on a probe batch; must not change training."""
        ...

    def reset(self, state: State, fresh: State) -> State:
        """The state after a periodic reset toward a freshly initialised `fresh`."""
        ...

    def redo(self, state: State, fresh: State, batch: Batch) -> tuple[State, Metrics]:
        """The state after recycling dormant units (ReDo) with weights from `fresh`."""
        ...
