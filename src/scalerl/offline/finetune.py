"""Offline-to-online: start `scalerl train` from a saved run and/or a preloaded dataset."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from scalerl.agents.actor_critic import ActorCritic
from scalerl.agents.state import SACState, take_seed
from scalerl.buffers.replay import ReplayState, Transition, replay_add_batch
from scalerl.config import TrainConfig
from scalerl.datasets import Dataset, load_any, validate_dataset
from scalerl.errors import CheckpointError
from scalerl.offline.warmup import warm_seed_states
from scalerl.train.checkpoint import load_checkpoint
from scalerl.train.setup import CHECKPOINT_NAME


def load_preload(cfg: TrainConfig, obs_dim: int, action_dim: int) -> Dataset | None:
    """The run's --preload-dataset, checked against the environment's shapes (None if unset)."""
    if cfg.preload_dataset is None:
        return None
    dataset = load_any(cfg.preload_dataset)
    return validate_dataset(dataset, obs_dim, action_dim, name=str(cfg.preload_dataset))


def preload_rows(dataset: Dataset | None) -> int:
    """Number of replay rows a preloaded dataset fills (0 without one)."""
    return 0 if dataset is None else len(dataset.to_transitions()["reward"])


def preload_buffer(buffer: ReplayState, dataset: Dataset | None) -> ReplayState:
    """Write the dataset's transitions into an (unbatched) buffer, oldest first."""
    if dataset is None:
        return buffer
    rows = dataset.to_transitions()
    return replay_add_batch(buffer, Transition(**{k: np.asarray(v) for k, v in rows.items()}))


def initial_state(
    sac: ActorCritic, states: SACState, init_from: Path | None, preload: Dataset | None
) -> SACState:
    """Fresh stacked seed states, started from `init_from`'s checkpoint and/or warmed up.

    With `init_from`, every seed takes that run's networks, target critic, temperature and
    normaliser statistics, and keeps its own fresh optimizer state, RNG and update counter (so
    the online LR schedule starts from the beginning). Without it but with a preloaded dataset,
    the normalisers are warmed up on the dataset as offline training does.
    """
    if init_from is not None:
        saved = load_init(init_from, take_seed(states, 0))
        return jax.vmap(_merge, in_axes=(0, None))(states, saved)
    if preload is not None:
        return warm_seed_states(sac, states, preload)
    return states


def load_init(run_dir: Path, template: SACState) -> SACState:
    """The agent state saved in `run_dir`/checkpoint.msgpack (or in the checkpoint file
    `run_dir`), shaped like `template`.

    Raises:
        CheckpointError: no checkpoint, or networks that differ from this run's agent.
    """
    path = Path(run_dir)
    path = path / CHECKPOINT_NAME if path.is_dir() else path
    try:
        return load_checkpoint(path, template)[0]
    except CheckpointError as err:
        raise CheckpointError(
            f"--init-from {run_dir}: {err}; use that run's --agent and network sizes "
            "(they are the defaults when --init-from is given)"
        ) from None


def _merge(fresh: SACState, saved: SACState) -> SACState:
    """Saved networks, target, temperature and normalisers on a fresh optimizer/RNG state."""
    return fresh.replace(
        actor=fresh.actor.replace(params=saved.actor.params),
        critic=fresh.critic.replace(params=saved.critic.params),
        target_params=saved.target_params,
        temp=fresh.temp.replace(params=saved.temp.params),
        obs_stats=saved.obs_stats,
        reward_stats=saved.reward_stats,
    )
