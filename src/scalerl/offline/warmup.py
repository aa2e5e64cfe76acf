"""Normaliser warm-up from a dataset before offline training."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from scalerl.agents.actor_critic import ActorCritic
from scalerl.agents.state import SACState, take_seed
from scalerl.datasets import Dataset
from scalerl.normalizers import reward_scale_update, stats_update


def warm_normalizers(
    sac: ActorCritic,
    state: SACState,
    observations: np.ndarray,
    rewards: np.ndarray,
    dones: np.ndarray,
) -> SACState:
    """Build the observation and reward-scale statistics from a whole dataset.

    Observation statistics merge every dataset observation at once (Chan's update). The reward
    scale runs the discounted-return recursion G <- gamma (1 - done) G + r along the dataset in
    order, as one stream. The official code instead feeds the dataset in chunks of 256
    rows treated as 256 parallel streams; one stream is what the data is.

    Args:
        sac: The agent (its config says which normalisers are on).
        state: A single (not vmapped) agent state.
        observations: (N, d_o) dataset observations.
        rewards: (N,) raw rewards, in dataset order.
        dones: (N,) 1.0 where an episode ended (terminal or timeout) at that row.

    Returns:
        The state with warmed-up `obs_stats` and `reward_stats`.
    """
    if sac.cfg.normalize_obs:
        state = state.replace(obs_stats=stats_update(state.obs_stats, jnp.asarray(observations)))
    if sac.cfg.normalize_reward:
        stats = _reward_stats(state.reward_stats, rewards, dones, sac.gamma)
        state = state.replace(reward_stats=stats)
    return state


@jax.jit
def _scan_returns(stats, rewards: jax.Array, dones: jax.Array, gamma: jax.Array):
    def step(carry, row):
        return reward_scale_update(carry, row[0], row[1], gamma), None

    rows = jnp.stack([rewards, dones], axis=1)
    return jax.lax.scan(step, stats, rows)[0]


def _reward_stats(stats, rewards: np.ndarray, dones: np.ndarray, gamma: float):
    """The reward-scale state after streaming the dataset's rewards through it."""
    r = jnp.asarray(rewards, jnp.float32)
    d = jnp.asarray(dones, jnp.float32)
    return _scan_returns(stats, r, d, jnp.float32(gamma))


def warm_seed_states(sac: ActorCritic, states: SACState, dataset: Dataset) -> SACState:
    """Stacked seed states whose normalisers are warmed up on `dataset` (same for every seed).

    Episode ends for the return recursion are the dataset's terminal or timeout rows.
    """
    one = take_seed(states, 0)
    dones = np.logical_or(dataset.terminals, dataset.timeouts).astype(np.float32)
    warm = warm_normalizers(sac, one, dataset.observations, dataset.rewards, dones)

    def merge(state: SACState) -> SACState:
        return state.replace(obs_stats=warm.obs_stats, reward_stats=warm.reward_stats)

    return jax.vmap(merge)(states)
