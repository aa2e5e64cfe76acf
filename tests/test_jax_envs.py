"""JAX-native environment adapters: termination vs truncation, auto-reset, listing."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.envs.jax_envs import GYMNAX_IDS, make_jax_env
from scalerl.envs.listing import list_envs
from scalerl.envs.make import make_env
from scalerl.errors import EnvError


def _run(env, steps: int, action):
    def body(carry, key):
        state, _ = carry
        state, out = env.step(key, state, action)
        return (state, out.obs), out

    state, obs = env.reset(jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(1), steps)
    return jax.lax.scan(body, (state, obs), keys)[1]


def test_cartpole_terminates_and_resets():
    env = make_jax_env("gymnax:CartPole-v1")
    assert (env.obs_dim, env.discrete, env.num_actions) == (4, True, 2)
    out = jax.jit(lambda: _run(env, 60, jnp.int32(1)))()  # always push right: falls over
    end = int(np.argmax(np.asarray(out.terminated)))
    assert out.terminated[end] and not np.any(out.truncated)
    # the final observation is the fallen pole, the next observation a fresh episode
    assert np.max(np.abs(out.final_obs[end])) > 0.2
    assert np.max(np.abs(out.obs[end])) < 0.05 + 1e-6


def test_time_limit_is_a_truncation_with_final_obs():
    env = make_jax_env("gymnax:Pendulum-v1")
    env = dataclasses.replace(env, params=env.params.replace(max_steps_in_episode=5))
    out = jax.jit(lambda: _run(env, 12, jnp.zeros(1)))()
    np.testing.assert_array_equal(np.flatnonzero(out.truncated), [4, 9])
    assert not np.any(out.terminated)
    assert not np.allclose(out.final_obs[4], out.obs[4])
    np.testing.assert_allclose(out.final_obs[3], out.obs[3])
    assert (float(env.low[0]), float(env.high[0])) == (-2.0, 2.0)


def test_minatar_obs_is_flat():
    env = make_jax_env("gymnax:Breakout-MinAtar")
    assert env.obs_dim == 400 and env.num_actions == 3


def test_unknown_ids_and_gymnasium_make_are_clear():
    with pytest.raises(EnvError, match="unknown gymnax id"):
        make_jax_env("gymnax:NoSuch-v0")
    with pytest.raises(EnvError, match="--algo ppo"):
        make_env("gymnax:CartPole-v1", 0)


def test_gymnax_ids_listed_and_registered():
    import gymnax

    assert set(GYMNAX_IDS) == set(gymnax.registered_envs)
    ids = {s.env_id for s in list_envs("gymnax")}
    assert "gymnax:Breakout-MinAtar" in ids and len(ids) == len(GYMNAX_IDS)
    assert [s.env_id for s in list_envs("craftax")] == ["craftax:Craftax-Classic-Symbolic-v1"]


def _pushed_right(env, n: int, steps: int):
    """States of `n` CartPoles after `steps` right pushes, started from different keys."""
    state, _ = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(3), n))
    for t in range(steps):
        keys = jax.random.split(jax.random.PRNGKey(t), n)
        state, _ = jax.vmap(env.step)(keys, state, jnp.ones(n, jnp.int32))
    return state


def test_optimistic_resets_share_few_new_episodes():
    """reset_ratio 3 on 6 envs: 2 new episodes per step; the j-th env to finish takes new
    episode j mod 2 (reset with its key's second half); running envs step as with `step`."""
    exact = make_jax_env("gymnax:CartPole-v1")
    env = dataclasses.replace(exact, reset_ratio=3)
    state = _pushed_right(exact, 6, 9)
    actions = jnp.ones(6, jnp.int32)
    keys = jax.random.split(jax.random.PRNGKey(9), 6)
    _, ref = jax.jit(exact.step_batch)(keys, state, actions)
    _, out = jax.jit(env.step_batch)(keys, state, actions)
    end = np.asarray(ref.terminated | ref.truncated)
    assert 3 <= end.sum() < 6, "the test needs several but not all envs to finish"
    np.testing.assert_array_equal(out.final_obs, ref.final_obs)
    np.testing.assert_array_equal(out.obs[~end], ref.obs[~end])
    fresh = [jax.jit(exact.reset)(jax.random.split(keys[i])[1])[1] for i in range(2)]
    for j, i in enumerate(np.flatnonzero(end)):
        np.testing.assert_array_equal(out.obs[i], fresh[j % 2])


def test_craftax_generates_one_world_per_16_envs():
    pytest.importorskip("craftax")
    assert make_jax_env("craftax:Craftax-Classic-Symbolic-v1").reset_ratio == 16
