"""DDPG as in SimBa (Lee et al. 2025, appendix: DDPG configuration) on the shared base.

No target actor. The exploration std sigma also perturbs the action of the actor loss,
clip(pi(s) + sigma eps, -1, 1), whose value is the minimum over critics with clipped double-Q,
and the target action clip(pi_new(s') + sigma eps', -1, 1) (unclipped noise). Critic, actor
and target critic are updated on every update.
"""

from __future__ import annotations

from typing import Any

import jax

from scalerl.agents.deterministic import DeterministicActorCritic, perturb
from scalerl.agents.state import SACState


class DDPG(DeterministicActorCritic):
    """Deterministic policy gradient with noise inside the actor loss and the target."""

    def _loss_action(self, params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        return perturb(self.policy(params, obs), key, self.cfg.expl_noise)

    def _loss_q(self, q_all: jax.Array) -> jax.Array:
        return q_all.min(axis=0)

    def target_action(
        self, state: SACState, actor_params: Any, next_obs: jax.Array, key: jax.Array
    ) -> jax.Array:
        """The new actor's action with exploration noise."""
        return perturb(self.policy(actor_params, next_obs), key, self.cfg.expl_noise)
