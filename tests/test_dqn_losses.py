"""DQN targets by hand: double / plain Q-learning, n-step chains cut at episode ends, C51."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.agents import dqn_losses as dl
from scalerl.buffers.vec_replay import (
    Step,
    nstep_chain,
    vec_replay_add,
    vec_replay_init,
    vec_replay_sample,
)

REWARD = jnp.array([1.0, 0.5])
DISCOUNT = jnp.array([0.9, 0.81])
TERMINATED = jnp.array([0.0, 1.0])
NEXT_TARGET = jnp.array([[1.0, 3.0], [2.0, 0.0]])
NEXT_ONLINE = jnp.array([[5.0, 0.0], [0.0, 4.0]])


def test_double_dqn_target_uses_online_argmax_and_target_value() -> None:
    # a* = argmax online = (0, 1); Q_target(s', a*) = (1, 0); second row terminated.
    y = dl.q_target(REWARD, DISCOUNT, TERMINATED, NEXT_TARGET, NEXT_ONLINE, double=True)
    np.testing.assert_allclose(y, [1.0 + 0.9 * 1.0, 0.5], rtol=1e-6)


def test_plain_dqn_target_maximises_the_target_network() -> None:
    y = dl.q_target(REWARD, DISCOUNT, TERMINATED, NEXT_TARGET, NEXT_ONLINE, double=False)
    np.testing.assert_allclose(y, [1.0 + 0.9 * 3.0, 0.5], rtol=1e-6)


def test_td_losses() -> None:
    q, y = jnp.array([0.0, 0.0]), jnp.array([0.5, 3.0])
    assert float(dl.td_loss(q, y, "mse")) == pytest.approx((0.125 + 4.5) / 2)
    assert float(dl.td_loss(q, y, "huber")) == pytest.approx((0.125 + 2.5) / 2)


def test_nstep_chain_stops_at_the_first_episode_end() -> None:
    reward = jnp.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    term = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    trunc = jnp.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    ret, discount, last = nstep_chain(reward, term, trunc, 0.5)
    np.testing.assert_allclose(ret, [1 + 0.5 * 2, 1 + 0.5 * 2 + 0.25 * 4, 1.0])
    np.testing.assert_allclose(discount, [0.25, 0.125, 0.5])
    np.testing.assert_array_equal(last, [1, 2, 0])


def _filled_buffer():
    """2 envs x 4 steps; obs = 10 t + env; env 0 terminates at t=1, env 1 truncates at t=2."""
    example = Step(
        jnp.zeros((2, 1)), jnp.zeros((2,), jnp.int32), jnp.zeros((2,)), jnp.zeros((2,)),
        jnp.zeros((2,)), jnp.zeros((2, 1)),
    )  # fmt: skip
    buf, add = vec_replay_init(8, example), jax.jit(vec_replay_add)
    for t in range(4):
        obs = jnp.array([[10.0 * t], [10.0 * t + 1]])
        term = jnp.array([float(t == 1), 0.0])
        trunc = jnp.array([0.0, float(t == 2)])
        reward = jnp.array([t + 1.0, 10.0 * (t + 1)])
        step = Step(obs, jnp.array([t, t]), reward, term, trunc, obs + 100.0)
        buf = add(buf, step)
    return buf


def test_replay_nstep_never_crosses_an_episode_end() -> None:
    """n = 3, gamma = 0.5: starts t in {0, 1} (two written successors) and both envs."""
    sample = jax.jit(vec_replay_sample, static_argnums=(2, 3, 4))
    batch = sample(_filled_buffer(), jax.random.key(0), 256, 3, 0.5)
    expected = {  # start obs -> (reward, discount, next obs, terminated)
        0.0: (1 + 0.5 * 2, 0.25, 110.0, 1.0),  # env 0: ends by termination at t=1
        10.0: (2.0, 0.5, 110.0, 1.0),
        1.0: (10 + 0.5 * 20 + 0.25 * 30, 0.125, 121.0, 0.0),  # env 1: truncation at t=2
        11.0: (20 + 0.5 * 30, 0.25, 121.0, 0.0),
    }
    seen = set()
    for i, obs in enumerate(np.asarray(batch.obs[:, 0])):
        r, g, nxt, d = expected[float(obs)]
        seen.add(float(obs))
        assert float(batch.reward[i]) == pytest.approx(r)
        assert float(batch.discount[i]) == pytest.approx(g)
        assert float(batch.next_obs[i, 0]) == nxt and float(batch.terminated[i]) == d
    assert seen == set(expected)


def _logits(probs: list[list[float]]) -> jax.Array:
    return jnp.log(jnp.array(probs))[None]


C51_TARGET = jax.jit(dl.c51_target, static_argnums=(5, 6))


def test_c51_projection_by_hand() -> None:
    """Support (-1, 0, 1); atoms r + g z = (0, 0.5, 1): the middle one splits 0.15 / 0.15."""
    logits = _logits([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]])
    half = jnp.array([0.5])
    target = C51_TARGET(half, half, jnp.array([0.0]), logits, logits, False, 1.0)
    np.testing.assert_allclose(target, [[0.0, 0.35, 0.65]], atol=1e-6)
    ended = C51_TARGET(half, half, jnp.array([1.0]), logits, logits, False, 1.0)
    np.testing.assert_allclose(ended, [[0.0, 0.5, 0.5]], atol=1e-6)


def test_c51_double_picks_the_online_action() -> None:
    """Target net prefers action 1 (mean 0.6 vs -0.6); the online net prefers action 0."""
    target = _logits([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    online = _logits([[0.1, 0.2, 0.7], [0.7, 0.2, 0.1]])
    args = (jnp.array([0.0]), jnp.array([1.0]), jnp.array([0.0]), target, online)
    np.testing.assert_allclose(C51_TARGET(*args, True, 1.0), [[0.7, 0.2, 0.1]], atol=1e-6)
    np.testing.assert_allclose(C51_TARGET(*args, False, 1.0), [[0.1, 0.2, 0.7]], atol=1e-6)


@pytest.mark.slow
def test_minatar_replay_stores_bool_frames() -> None:
    from scalerl.agents.dqn import make_dqn
    from scalerl.config_dqn import DQNConfig
    from scalerl.envs.jax_envs import make_jax_env
    from scalerl.train.dqn_fused import frame_shape, loop_init

    env = make_jax_env("gymnax:Breakout-MinAtar")
    cfg = DQNConfig(torso="minatar", kind="none", buffer_capacity=8)
    agent = make_dqn(cfg, frame_shape(env), env.num_actions)
    carry = loop_init(agent, env, jax.random.key(0))
    assert frame_shape(env) == (10, 10, 4) and carry.buffer.data.obs.dtype == jnp.bool_
    obs = carry.env.obs.astype(jnp.bool_)
    q = agent.q_values(agent.init(jax.random.key(1)).net.params, obs)
    assert q.shape == (1, env.num_actions) and bool(jnp.all(jnp.isfinite(q)))
