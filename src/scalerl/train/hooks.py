"""Periodic work between training steps: health diagnostics, resets and ReDo.

Each hook is a pure jitted function of the stacked (seed-axis) states; the loop decides when to
call it from the update count. Fresh initialisations for resets and ReDo are drawn seed by seed
outside `vmap` (see `ActorCritic.init_many`).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from scalerl.agents import interventions
from scalerl.agents.actor_critic import ActorCritic
from scalerl.agents.state import SACState
from scalerl.buffers.replay import ReplayState, replay_sample
from scalerl.config import TrainConfig

HEALTH_SALT = 0x4EA17
"""Folded into a seed's key for the health probe batches (independent of training's RNG)."""


def crossed(every: int, before: int, after: int) -> bool:
    """Whether a positive multiple of `every` lies in (before, after]."""
    return every > 0 and after // every > before // every


class Hooks:
    """Health diagnostics every `health_every` agent steps; resets and ReDo by update count."""

    def __init__(self, cfg: TrainConfig, sac: ActorCritic, seeds: list[int]) -> None:
        self.cfg, self.sac, self.seeds = cfg, sac, seeds
        self.pc = cfg.agent.plasticity
        self.fresh_draws = 0
        self._health = jax.jit(jax.vmap(self._probe_health))
        self._reset = jax.jit(jax.vmap(sac.reset))
        self._redo = jax.jit(jax.vmap(self._probe_redo))

    def _probe_batch(self, buffer: ReplayState, key: jax.Array) -> Any:
        sac = self.sac
        cfg = self.cfg
        return replay_sample(buffer, key, cfg.health_batch, sac.cfg.n_step, sac.gamma, cfg.num_envs)

    def _probe_health(self, state: SACState, buffer: ReplayState, key: jax.Array) -> Any:
        return self.sac.health(state, self._probe_batch(buffer, key))

    def _probe_redo(self, state: SACState, fresh: SACState, buffer: ReplayState, key: jax.Array):
        return self.sac.redo(state, fresh, self._probe_batch(buffer, key))

    def _keys(self, salt: int, t: int) -> jax.Array:
        keys = [jax.random.fold_in(jax.random.PRNGKey(s), salt + t) for s in self.seeds]
        return np.stack(keys)

    def _fresh(self, same_init: bool) -> SACState:
        """Freshly initialised states, one per seed (the first key again for same_init)."""
        self.fresh_draws += 1
        keys = [jax.random.PRNGKey(s) for s in self.seeds]
        if not same_init:
            keys = [jax.random.fold_in(k, self.fresh_draws) for k in keys]
        return self.sac.init_many(np.stack(keys))

    def health(self, states: SACState, buffers: ReplayState, t: int) -> list[dict[str, float]]:
        """health/* metrics of every seed (lists index the seed axis)."""
        metrics = jax.device_get(self._health(states, buffers, self._keys(HEALTH_SALT, t)))
        return [{k: float(v[i]) for k, v in metrics.items()} for i in range(len(self.seeds))]

    def after_updates(
        self, states: SACState, buffers: ReplayState, before: int, after: int, t: int
    ) -> tuple[SACState, list[dict[str, float]]]:
        """Apply the resets and ReDo due in the update interval (before, after]."""
        info: list[dict[str, float]] = [{} for _ in self.seeds]
        if interventions.reset_due(self.pc, before, after):
            states = self._reset(states, self._fresh(self.pc.reset_same_init))
            info = [{"train/resets": float(after // self.pc.reset_every)} for _ in self.seeds]
        if crossed(self.pc.redo_every, before, after):
            keys = self._keys(HEALTH_SALT + 1, t)
            states, redo = self._redo(states, self._fresh(False), buffers, keys)
            redo = jax.device_get(redo)
            info = [d | {k: float(v[i]) for k, v in redo.items()} for i, d in enumerate(info)]
        return states, info
