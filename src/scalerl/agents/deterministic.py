"""TD3 and DDPG pieces of the shared actor-critic agent (`agents.sac.SAC` with `algo` td3/ddpg).

Both use the same networks as SAC: the policy is the deterministic tanh(mean) of the actor
network (its log-std head is unused), the critics and their losses are SAC's (categorical for
SimbaV2, MSE for SimBa/MLP) with no entropy term.

* TD3 (Fujimoto et al. 2018, sections 5.1-5.3): a Polyak-averaged target actor; the target
  action is clip(pi_target(s') + clip(eps, -c, c), -1, 1), eps ~ N(0, target_noise^2); the
  target value is the minimum of two target critics; the actor loss is -Q_1(s, pi(s)); actor
  and target networks are updated every `policy_delay` critic updates.
* DDPG as in SimBa (spec 5.3): no target actor; the exploration std sigma also perturbs the
  actor-loss action clip(pi(s) + sigma eps, -1, 1) (minimum over critics with CDQ) and the target
  action clip(pi_new(s') + sigma eps', -1, 1) (unclipped noise).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from scalerl.agents.state import SACState


def policy(sac: Any, params: Any, obs: jax.Array) -> jax.Array:
    """The deterministic action tanh(mean) of normalised observations."""
    mean, _ = sac.actor.apply({"params": params}, obs)
    return jnp.tanh(mean)


def perturb(action: jax.Array, key: jax.Array, std: float, clip: float | None = None) -> jax.Array:
    """clip(action + noise, -1, 1) with Gaussian noise of `std`, itself clipped to [-clip, clip]
    when `clip` is given."""
    noise = std * jax.random.normal(key, action.shape)
    if clip is not None:
        noise = jnp.clip(noise, -clip, clip)
    return jnp.clip(action + noise, -1.0, 1.0)


def actor_loss(
    sac: Any, state: SACState, params: Any, obs: jax.Array, data_action: jax.Array, key: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """-Q(s, a) (+ plasticity penalties, + BC offline) for a = pi(s) (TD3) or its perturbed
    version (DDPG); TD3 uses the first critic, DDPG the minimum over critics."""
    action = policy(sac, params, obs)
    if sac.cfg.algo == "ddpg":
        action = perturb(action, key, sac.cfg.expl_noise)
    q_all = sac._q_values(sac._critic_out(state.critic.params, obs, action))
    q = q_all[0] if sac.cfg.algo == "td3" else q_all.min(axis=0)
    loss = -jnp.mean(q) + sac._penalty("actor", params, state)
    if sac.cfg.bc_alpha > 0:
        bc = jnp.mean(jnp.square(action - data_action))
        loss += sac.cfg.bc_alpha * jax.lax.stop_gradient(jnp.mean(jnp.abs(q))) * bc
    return loss, {"train/actor_loss": loss, "train/mean_action": jnp.mean(action)}


def target_action(
    sac: Any, state: SACState, actor_params: Any, next_obs: jax.Array, key: jax.Array
) -> jax.Array:
    """The action the target critic is evaluated at (TD3 smoothing or DDPG noise)."""
    cfg = sac.cfg
    if cfg.algo == "td3":
        clean = policy(sac, state.extras["target_actor"], next_obs)
        return perturb(clean, key, cfg.target_noise, cfg.target_noise_clip)
    return perturb(policy(sac, actor_params, next_obs), key, cfg.expl_noise)


def delayed(do: jax.Array, new: Any, old: Any) -> Any:
    """`new` where `do` else `old`, leaf by leaf (TD3's delayed updates inside lax.scan)."""
    return jax.tree_util.tree_map(lambda n, o: jnp.where(do, n, o), new, old)
