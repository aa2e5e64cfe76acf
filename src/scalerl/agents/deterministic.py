"""The deterministic-policy actor-critic shared by TD3 and DDPG.

Both use the same networks as SAC: the policy is the deterministic tanh(mean) of the actor
network (its log-std head is unused), the critics and their losses are the base's (categorical
for SimbaV2, MSE for SimBa/MLP) with no entropy term and no temperature step. Exploration adds
Gaussian noise to the policy's action: white, or power-law ("coloured") noise whose state lives
in `extras["noise"]` (`scalerl.agents.noise`).

Subclasses (`scalerl.agents.td3`, `scalerl.agents.ddpg`) choose the action the actor loss
evaluates, which critic(s) it maximises, and the action of the TD target.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp

from scalerl.agents import noise
from scalerl.agents.actor_critic import ActorCritic, bc_term
from scalerl.agents.base import Metrics
from scalerl.agents.state import SACState


def policy(agent: Any, params: Any, obs: jax.Array) -> jax.Array:
    """The deterministic action tanh(mean) of normalised observations."""
    mean, _ = agent.actor.apply({"params": params}, obs)
    return jnp.tanh(mean)


def perturb(action: jax.Array, key: jax.Array, std: float, clip: float | None = None) -> jax.Array:
    """clip(action + noise, -1, 1) with Gaussian noise of `std`, itself clipped to [-clip, clip]
    when `clip` is given."""
    noise = std * jax.random.normal(key, action.shape)
    if clip is not None:
        noise = jnp.clip(noise, -clip, clip)
    return jnp.clip(action + noise, -1.0, 1.0)


def delayed(do: jax.Array, new: Any, old: Any) -> Any:
    """`new` where `do` else `old`, leaf by leaf (delayed updates inside lax.scan)."""
    return jax.tree_util.tree_map(lambda n, o: jnp.where(do, n, o), new, old)


class DeterministicActorCritic(ActorCritic):
    """Deterministic policy, exploration noise, actor loss -Q (+ BC offline); no entropy."""

    # ------------------------------------------------------------------ subclass hooks

    @abc.abstractmethod
    def _loss_action(self, params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        """The action the actor loss evaluates the critic at."""

    @abc.abstractmethod
    def _loss_q(self, q_all: jax.Array) -> jax.Array:
        """The Q value (B,) the actor maximises, from every critic's (num_qs, B)."""

    # ------------------------------------------------------------------ shared parts

    @property
    def _coloured(self) -> bool:
        return self.cfg.noise_color > 0

    def _init_algo_extras(self, key: jax.Array, actor_params: Any) -> dict[str, Any]:
        """The coloured-noise state, when used."""
        if not self._coloured:
            return {}
        noise_key = jax.random.fold_in(key, 1)  # the network init's key streams stay unchanged
        cfg = self.cfg
        seq = noise.noise_init(noise_key, cfg.noise_color, cfg.noise_horizon, self.action_dim)
        return {"noise": seq}

    def policy(self, params: Any, obs: jax.Array) -> jax.Array:
        """The deterministic action tanh(mean) of normalised observations."""
        return policy(self, params, obs)

    def act(
        self, state: SACState, obs: jax.Array, key: jax.Array, deterministic: bool = False
    ) -> jax.Array:
        """tanh(mean) if deterministic (evaluation), else with white Gaussian noise."""
        params = self.eval_actor_params(state) if deterministic else self._acting_params(state)
        action = self.policy(params, self.normalize_obs(state, obs))
        if deterministic:
            return action
        return perturb(action, key, self.cfg.expl_noise)

    def explore(
        self, state: SACState, obs: jax.Array, key: jax.Array, restart: jax.Array
    ) -> tuple[SACState, jax.Array]:
        """The deterministic action plus exploration noise: white, or power-law noise whose
        sequence restarts when `restart` (an episode ended; with N environments, (N,) flags and
        one sequence each)."""
        if not self._coloured:
            return state, self.act(state, obs, key)
        beta, current = self.cfg.noise_color, state.extras["noise"]
        if current["seq"].ndim == 3:  # one sequence per environment (train.vector.with_env_axis)
            keys = jax.random.split(key, current["seq"].shape[0])
            step = jax.vmap(noise.noise_next, in_axes=(0, 0, None, 0))
            eps, new_noise = step(current, keys, beta, restart > 0)
        else:
            eps, new_noise = noise.noise_next(current, key, beta, restart > 0)
        clean = self.policy(self._acting_params(state), self.normalize_obs(state, obs))
        action = jnp.clip(clean + self.cfg.expl_noise * eps, -1.0, 1.0)
        return state.replace(extras=state.extras | {"noise": new_noise}), action

    def _actor_loss(
        self, state: SACState, params: Any, obs: jax.Array, data_action: jax.Array, key
    ) -> tuple[jax.Array, Metrics]:
        """-Q(s, a) (+ plasticity penalties, + BC offline) at the subclass's loss action."""
        action = self._loss_action(params, obs, key)
        q = self._loss_q(self._q_values(self._critic_out(state.critic.params, obs, action)))
        loss = -jnp.mean(q) + self._penalty("actor", params, state)
        if self.cfg.bc_alpha > 0:
            loss += bc_term(self.cfg, q, action, data_action)
        return loss, {"train/actor_loss": loss, "train/mean_action": jnp.mean(action)}

    def _actor_grads(
        self, state: SACState, obs: jax.Array, data_action: jax.Array, key: jax.Array
    ) -> tuple[Any, Metrics]:
        return jax.grad(lambda p: self._actor_loss(state, p, obs, data_action, key), has_aux=True)(
            state.actor.params
        )

    def _next_action(
        self, state: SACState, actor_params: Any, alpha: jax.Array, next_obs: jax.Array, key
    ) -> tuple[jax.Array, jax.Array]:
        """The subclass's target action and no entropy term."""
        del alpha
        action = self.target_action(state, actor_params, next_obs, key)
        return action, jnp.zeros(next_obs.shape[:-1], jnp.float32)

    @abc.abstractmethod
    def target_action(
        self, state: SACState, actor_params: Any, next_obs: jax.Array, key: jax.Array
    ) -> jax.Array:
        """The action the target critic is evaluated at."""
