"""Evaluation episodes of a JAX-native environment, played in parallel in one jitted loop.

Used by `scalerl evaluate` on runs of JAX-native ids and by the periodic evaluations of DQN,
SAC, TD3 and DDPG. Evaluation randomness derives from the run seed and the environment step only
(`eval_key`), never from the training state, so evaluating changes nothing in training and a
resumed run evaluates exactly as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from scalerl.envs.jax_envs import JaxEnv
from scalerl.train.evaluate import EvalResult

Act = Callable[[jax.Array, jax.Array], jax.Array]
"""(observations (E, D), key) -> actions (E, ...) of the E parallel episodes."""
EVAL_STREAM = 0x0E7A1
"""Folded into the seed's key so evaluation keys never coincide with training keys."""


def eval_key(seed: int, env_step: int) -> jax.Array:
    """PRNG key of the evaluation at `env_step` of seed `seed`."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), EVAL_STREAM), env_step)


def fused_eval_metrics(evaluate: Any, states: Any, seeds: list[int], env_step: int) -> list:
    """Per-seed eval/ metrics at `env_step`; `evaluate(states, keys) -> (returns, lengths)` is
    vmapped over the seeds of `states`."""
    keys = jnp.stack([eval_key(s, env_step) for s in seeds])
    returns, lengths = jax.device_get(evaluate(states, keys))
    return [
        EvalResult(np.asarray(r, np.float64), np.asarray(n), None).metrics()
        for r, n in zip(returns, lengths, strict=True)
    ]


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
