"""The fused, jitted training step: store transitions, run all UTD updates, act again.

One call per loop step does, on device and without host round trips:
replay_add -> [sample U batches in one gather -> lax.scan of U SAC updates] -> normaliser update
with the transition's reward and the observation to act on -> next action (policy or uniform).
With N environments per seed the step stores N transitions (one per environment), updates the
normalisers with all N and returns N actions. The replay buffer and agent state are donated, so
XLA updates them in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from scalerl.agents.actor_critic import ActorCritic
from scalerl.agents.state import SACState
from scalerl.buffers.replay import (
    ReplayState,
    Transition,
    replay_add,
    replay_add_batch,
    replay_sample_many,
)
from scalerl.seed_axis import vmap_seeds

StepFn = Callable[
    [SACState, ReplayState, Transition, jax.Array],
    tuple[SACState, ReplayState, jax.Array, dict[str, jax.Array]],
]


def make_train_step(
    sac: ActorCritic, num_updates: int, random_action: bool, num_envs: int = 1
) -> StepFn:
    """`train_step` jitted and vmapped over a leading seed axis; the state and the buffer are
    donated. Every argument and result carries the seed axis (S >= 1)."""
    return jax.jit(vmap_seeds(train_step(sac, num_updates, random_action, num_envs)),
                   donate_argnums=(0, 1))  # fmt: skip


def train_step(
    sac: ActorCritic, num_updates: int, random_action: bool, num_envs: int = 1
) -> StepFn:
    """One seed's loop step after the environments moved, for a fixed number of updates and
    action source (both static). Pure; the host loop vmaps and jits it (`make_train_step`) and
    the fused loop of JAX-native environments scans it (`train.ac_fused`).

    Args:
        sac: the agent.
        num_updates: gradient updates in this step (0 during warm-up).
        random_action: act uniformly at random in [-1, 1] instead of with the policy.
        num_envs: environments per seed; above 1, transitions, observations and actions carry an
            axis of that length (and the state N running returns, see
            `train.vector.with_env_axis`).

    Returns:
        step(state, buffer, transition, next_obs) -> (state, buffer, action, metrics). `next_obs`
        is the observation to act on (the reset observation after an episode end).
    """
    add = replay_add if num_envs == 1 else replay_add_batch
    action_shape = (sac.action_dim,) if num_envs == 1 else (num_envs, sac.action_dim)

    def step(
        state: SACState, buffer: ReplayState, transition: Transition, next_obs: jax.Array
    ) -> tuple[SACState, ReplayState, jax.Array, dict[str, Any]]:
        buffer = add(buffer, transition)
        rng, sample_key, act_key = jax.random.split(state.rng, 3)
        state = state.replace(rng=rng)
        metrics: dict[str, Any] = {}
        if num_updates > 0:
            c = sac.cfg
            batches = replay_sample_many(
                buffer, sample_key, num_updates, c.batch_size, c.n_step, sac.gamma, num_envs
            )
            state, metrics = sac.update_many(state, batches)
        done = jnp.maximum(transition.terminated, transition.truncated)
        state = sac.observe(state, next_obs, transition.reward, done)
        if random_action:
            action = jax.random.uniform(act_key, action_shape, minval=-1.0, maxval=1.0)
        else:
            state, action = sac.explore(state, next_obs, act_key, done)
        return state, buffer, action, metrics

    return step


class UpdateSchedule:
    """Number of updates per agent step for a fractional UTD ratio."""

    def __init__(self, utd: float) -> None:
        self.utd = utd
        self.counter = 0.0

    def next(self) -> int:
        """Updates to run at this agent step; over many steps the mean is `utd`."""
        self.counter += self.utd
        n = int(self.counter + 1e-9)
        self.counter -= n
        return n


class StepCache:
    """Compiled step functions keyed by (num_updates, random_action); at most a few variants."""

    def __init__(self, sac: ActorCritic, num_envs: int = 1) -> None:
        self.sac, self.num_envs = sac, num_envs
        self._fns: dict[tuple[int, bool], StepFn] = {}

    def get(self, num_updates: int, random_action: bool) -> StepFn:
        key = (num_updates, random_action)
        if key not in self._fns:
            envs = {} if self.num_envs == 1 else {"num_envs": self.num_envs}
            self._fns[key] = make_train_step(self.sac, num_updates, random_action, **envs)
        return self._fns[key]
