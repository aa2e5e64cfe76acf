"""Evaluation episodes of a JAX-native environment, played in parallel in one jitted loop.

Used by `scalerl evaluate` on PPO, DQN and PQN runs and by DQN's periodic evaluation.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from scalerl.envs.jax_envs import JaxEnv

Act = Callable[[jax.Array, jax.Array], jax.Array]
"""(observations (E, D), key) -> actions (E, ...) of the E parallel episodes."""


def play_episodes(
    act: Act, env: JaxEnv, key: jax.Array, episodes: int
) -> tuple[jax.Array, jax.Array]:
    """(returns, lengths) of `episodes` episodes of `act`, one environment each; an environment
    counts its first episode only (every gymnax/Craftax episode has a time limit). Pure and
    jittable."""
    reset_key, key = jax.random.split(key)
    env_state, obs = jax.vmap(env.reset)(jax.random.split(reset_key, episodes))
    zeros = jnp.zeros((episodes,), jnp.float32)
    init = (env_state, obs, zeros, zeros, jnp.zeros((episodes,), bool), key)

    def body(c):
        env_state, obs, ret, length, done, key = c
        key, act_key, step_key = jax.random.split(key, 3)
        keys = jax.random.split(step_key, episodes)
        env_state, out = env.step_batch(keys, env_state, act(obs, act_key))
        live = (~done).astype(jnp.float32)
        ended = jnp.logical_or(out.terminated, out.truncated)
        return env_state, out.obs, ret + live * out.reward, length + live, done | ended, key

    out = jax.lax.while_loop(lambda c: ~jnp.all(c[4]), body, init)
    return out[2], out[3]
