"""Soft Actor-Critic (Haarnoja et al. 2018) on the shared actor-critic base.

A tanh-squashed Gaussian policy, an entropy term in the actor loss and the TD target, and an
automatically tuned temperature (Haarnoja et al. 2018b, section 5): the actor minimises
E[alpha log pi(a|s) - min_j Q_j(s, a)], the temperature minimises alpha (H - H_target) with
respect to log alpha, and the critic target uses the new actor and the new temperature. The
networks (SimbaV2, SimBa, MLP), critic losses, normalisers and interventions are the base's
(`scalerl.agents.actor_critic`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from scalerl.agents import losses
from scalerl.agents.actor_critic import ActorCritic, bc_term, make_schedule
from scalerl.agents.base import Metrics
from scalerl.agents.state import NetState, SACState, apply_gradients
from scalerl.config import AgentConfig

__all__ = ["SAC", "make_sac", "make_schedule"]


class SAC(ActorCritic):
    """Soft Actor-Critic: stochastic tanh-Gaussian policy with a tuned entropy temperature."""

    @property
    def target_entropy(self) -> float:
        return self.cfg.target_entropy_coef * self.action_dim

    def act(
        self, state: SACState, obs: jax.Array, key: jax.Array, deterministic: bool = False
    ) -> jax.Array:
        """Action for `obs` ((d_o,) or (B, d_o)): tanh(mean) if deterministic, else a sample.

        With Hare & Tortoise on, deterministic actions (evaluation) use the network `ht_eval`
        names and samples (data collection) the one `ht_act` names.
        """
        params = self.eval_actor_params(state) if deterministic else self._acting_params(state)
        mean, log_std = self.actor.apply({"params": params}, self.normalize_obs(state, obs))
        if deterministic:
            return jnp.tanh(mean)
        return losses.tanh_gaussian_sample(key, mean, log_std)[0]

    def _actor_grads(
        self, state: SACState, obs: jax.Array, data_action: jax.Array, key: jax.Array
    ) -> tuple[Any, Metrics]:
        """Gradient of E[alpha log pi(a|s) - min_j Q_j(s, a)] (+ BC term offline)."""
        alpha = jnp.exp(state.temp.params["log_temp"])

        def loss_fn(params: Any) -> tuple[jax.Array, Metrics]:
            mean, log_std = self.actor.apply({"params": params}, obs)
            action, log_prob = losses.tanh_gaussian_sample(key, mean, log_std)
            q = self._q_values(self._critic_out(state.critic.params, obs, action)).min(axis=0)
            loss = jnp.mean(alpha * log_prob - q) + self._penalty("actor", params, state)
            if self.cfg.bc_alpha > 0:
                loss += bc_term(self.cfg, q, action, data_action)
            info = {"train/actor_loss": loss, "train/entropy": -jnp.mean(log_prob)}
            return loss, info | {"train/mean_action": jnp.mean(action)}

        return jax.grad(loss_fn, has_aux=True)(state.actor.params)

    def _alpha(self, temp: NetState) -> jax.Array:
        return jnp.exp(temp.params["log_temp"])

    def _temperature_step(self, temp: NetState, entropy: jax.Array) -> tuple[NetState, Metrics]:
        """Minimise alpha (H - H_target) with respect to log alpha."""

        def loss_fn(params: Any) -> jax.Array:
            return jnp.exp(params["log_temp"]) * (entropy - self.target_entropy)

        loss, grads = jax.value_and_grad(loss_fn)(temp.params)
        alpha = jnp.exp(temp.params["log_temp"])  # logged before the step, as the official code
        temp = apply_gradients(self.temp_tx, temp, grads)
        return temp, {"train/temperature": alpha, "train/temperature_loss": loss}

    def _temperature_update(
        self, temp: NetState, actor_info: Metrics
    ) -> tuple[NetState, Metrics, jax.Array]:
        temp, info = self._temperature_step(temp, actor_info["train/entropy"])
        return temp, info, self._alpha(temp)

    def _next_action(
        self, state: SACState, actor_params: Any, alpha: jax.Array, next_obs: jax.Array, key
    ) -> tuple[jax.Array, jax.Array]:
        """A sample of the new policy and the entropy term alpha log pi(a'|s')."""
        mean, log_std = self.actor.apply({"params": actor_params}, next_obs)
        next_action, next_log_prob = losses.tanh_gaussian_sample(key, mean, log_std)
        return next_action, alpha * next_log_prob


def make_sac(cfg: AgentConfig, obs_dim: int, action_dim: int, decay_steps: int = 1) -> ActorCritic:
    """The agent (SAC, TD3 or DDPG) the config names; kept as an alias of
    `scalerl.agents.registry.make_agent`."""
    from scalerl.agents.registry import make_agent  # registry imports this module

    return make_agent(cfg, obs_dim, action_dim, decay_steps)
