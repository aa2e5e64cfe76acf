"""TD3 (Fujimoto et al. 2018, sections 5.1-5.3) on the shared actor-critic base.

A Polyak-averaged target actor; the target action is clip(pi_target(s') + clip(eps, -c, c),
-1, 1) with eps ~ N(0, target_noise^2) (target policy smoothing); the target value is the
minimum of the target critics (clipped double-Q); the actor loss is -Q_1(s, pi(s)); the actor
and the target networks are updated every `policy_delay` critic updates.
"""

from __future__ import annotations

from typing import Any

import jax

from scalerl.agents import interventions
from scalerl.agents.deterministic import DeterministicActorCritic, delayed, perturb
from scalerl.agents.state import NetState, SACState, polyak
from scalerl.config import PlasticityConfig


class TD3(DeterministicActorCritic):
    """Twin Delayed DDPG: target actor, target smoothing, delayed actor and targets."""

    def _init_algo_extras(self, key: jax.Array, actor_params: Any) -> dict[str, Any]:
        """The target actor (= actor at init) and any coloured-noise state."""
        return super()._init_algo_extras(key, actor_params) | {"target_actor": actor_params}

    def _loss_action(self, params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        return self.policy(params, obs)

    def _loss_q(self, q_all: jax.Array) -> jax.Array:
        return q_all[0]

    def target_action(
        self, state: SACState, actor_params: Any, next_obs: jax.Array, key: jax.Array
    ) -> jax.Array:
        """The smoothed target actor's action (section 5.3)."""
        cfg = self.cfg
        clean = self.policy(state.extras["target_actor"], next_obs)
        return perturb(clean, key, cfg.target_noise, cfg.target_noise_clip)

    def _delay(
        self, state: SACState, actor: NetState, target_params: Any
    ) -> tuple[NetState, Any, dict[str, Any]]:
        """Keep the actor and target networks unless this update is a policy update (every
        `policy_delay` updates); Polyak-average the target actor when it is."""
        do = state.updates % self.cfg.policy_delay == 0
        actor = delayed(do, actor, state.actor)
        target_params = delayed(do, target_params, state.target_params)
        old = state.extras["target_actor"]
        new = polyak(old, actor.params, self.cfg.tau)
        return actor, target_params, state.extras | {"target_actor": delayed(do, new, old)}

    def _reset_extras(self, pc: PlasticityConfig, extras: dict, fresh_extras: dict) -> dict:
        """The target actor is re-drawn like the target critic."""
        old = extras["target_actor"]
        new = interventions.reset_target(pc, old, fresh_extras["target_actor"])
        return extras | {"target_actor": new}
