"""TD3 and DDPG on the shared agent: delayed updates, target actor, smoothing, no temperature,
exploration noise (white and power-law), and coloured-noise statistics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ACT_DIM, OBS_DIM, small_sac
from scalerl.agents import deterministic as dpg
from scalerl.agents.noise import noise_init, noise_next, powerlaw_noise
from scalerl.buffers.replay import Batch
from scalerl.config import AgentConfig, PlasticityConfig, validate_agent
from scalerl.envs import suite_preset
from scalerl.errors import ConfigError
from scalerl.train.setup import auto_cdq


def _batch(key, size=16) -> Batch:
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return Batch(
        obs=jax.random.normal(k1, (size, OBS_DIM)),
        action=jax.random.uniform(k2, (size, ACT_DIM), minval=-1, maxval=1),
        reward=jax.random.normal(k3, (size,)),
        next_obs=jax.random.normal(k4, (size, OBS_DIM)),
        terminated=jnp.zeros(size),
        discount=jnp.full(size, 0.99),
    )


def _leaves_equal(a, b) -> bool:
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.mark.parametrize("agent", ["simbav2", "mlp"])
def test_td3_delays_actor_and_targets(agent):
    sac = small_sac(agent, use_cdq=True, algo="td3", policy_delay=2)
    state, update = sac.init(jax.random.PRNGKey(0)), jax.jit(sac.update)
    first, _ = update(state, _batch(jax.random.PRNGKey(1)))  # updates 0: policy update
    assert not _leaves_equal(first.actor.params, state.actor.params)
    expected = jax.tree.map(
        lambda t, a: 0.995 * t + 0.005 * a, state.extras["target_actor"], first.actor.params
    )
    target = first.extras["target_actor"]
    for x, y in zip(jax.tree.leaves(expected), jax.tree.leaves(target), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    second, info = update(first, _batch(jax.random.PRNGKey(2)))  # updates 1: critic only
    assert _leaves_equal(second.actor.params, first.actor.params)
    assert _leaves_equal(second.extras["target_actor"], first.extras["target_actor"])
    assert _leaves_equal(second.target_params, first.target_params)
    assert not _leaves_equal(second.critic.params, first.critic.params)
    assert "train/temperature" not in info and "train/critic_loss" in info


def test_ddpg_has_no_temperature_and_no_target_actor():
    sac = small_sac("mlp", algo="ddpg")
    state = sac.init(jax.random.PRNGKey(0))
    assert "target_actor" not in state.extras
    new, info = jax.jit(sac.update)(state, _batch(jax.random.PRNGKey(1)))
    assert _leaves_equal(new.temp.params, state.temp.params)
    assert not _leaves_equal(new.actor.params, state.actor.params)
    assert not _leaves_equal(new.target_params, state.target_params)  # Polyak every update
    assert set(info) >= {"train/actor_loss", "train/critic_loss", "train/q_mean"}


def test_td3_target_smoothing_noise_is_clipped():
    sac = small_sac("mlp", use_cdq=True, algo="td3", target_noise=5.0, target_noise_clip=0.1)
    state = sac.init(jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(3), (256, OBS_DIM))
    clean = dpg.policy(sac, state.extras["target_actor"], obs)
    noisy = sac.target_action(state, state.actor.params, obs, jax.random.PRNGKey(4))
    gap = np.abs(np.asarray(noisy - clean))
    assert gap.max() <= 0.1 + 1e-6 and gap.mean() > 0.05  # noise saturates at the clip


def test_exploration_is_deterministic_action_plus_noise():
    sac = small_sac("mlp", algo="ddpg", expl_noise=0.3)
    state = sac.init(jax.random.PRNGKey(0))
    obs = jnp.ones(OBS_DIM)
    clean = sac.act(state, obs, jax.random.PRNGKey(0), deterministic=True)
    keys = jax.random.split(jax.random.PRNGKey(5), 2000)
    actions = jax.vmap(lambda k: sac.explore(state, obs, k, jnp.float32(0))[1])(keys)
    assert np.all(np.abs(actions) <= 1.0)
    inside = np.abs(np.asarray(clean)) < 0.5  # away from the clip, the noise std shows
    std = np.asarray(actions).std(axis=0)
    np.testing.assert_allclose(std[inside], 0.3, rtol=0.1)


def test_coloured_exploration_advances_and_restarts_its_sequence():
    sac = small_sac("mlp", algo="ddpg", noise_color=2.0, noise_horizon=8)
    state = sac.init(jax.random.PRNGKey(0))
    seq = np.asarray(state.extras["noise"]["seq"])
    obs = jnp.zeros(OBS_DIM)
    clean = np.asarray(sac.act(state, obs, jax.random.PRNGKey(0), deterministic=True))
    s1, a1 = sac.explore(state, obs, jax.random.PRNGKey(1), jnp.float32(0))
    np.testing.assert_allclose(a1, np.clip(clean + 0.1 * seq[0], -1, 1), rtol=1e-5)
    s2, a2 = sac.explore(s1, obs, jax.random.PRNGKey(2), jnp.float32(0))
    np.testing.assert_allclose(a2, np.clip(clean + 0.1 * seq[1], -1, 1), rtol=1e-5)
    s3, _ = sac.explore(s2, obs, jax.random.PRNGKey(3), jnp.float32(1))  # episode ended
    assert int(s3.extras["noise"]["idx"]) == 1
    assert not np.array_equal(s3.extras["noise"]["seq"], seq)


def test_noise_sequence_redraws_when_used_up():
    noise = noise_init(jax.random.PRNGKey(0), 1.0, 4, 2)
    first = np.asarray(noise["seq"])
    for i in range(4):
        eps, noise = noise_next(noise, jax.random.PRNGKey(i), 1.0, jnp.bool_(False))
        np.testing.assert_array_equal(eps, first[i])
    eps, noise = noise_next(noise, jax.random.PRNGKey(9), 1.0, jnp.bool_(False))
    assert int(noise["idx"]) == 1 and not np.array_equal(noise["seq"], first)
    np.testing.assert_array_equal(eps, noise["seq"][0])


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_powerlaw_noise_has_unit_variance_and_its_spectral_slope(beta):
    x = np.asarray(powerlaw_noise(jax.random.PRNGKey(0), beta, 1024, 200))  # (T, dim)
    assert x.shape == (1024, 200)
    # Unit variance within a sequence (each sequence's own mean, the f = 0 term, removed).
    assert x.var(axis=0).mean() == pytest.approx(1.0, rel=0.1)
    psd = np.mean(np.abs(np.fft.rfft(x, axis=0)) ** 2, axis=1)[1:-1]
    freqs = np.fft.rfftfreq(1024)[1:-1]
    slope = np.polyfit(np.log(freqs), np.log(psd), 1)[0]
    assert slope == pytest.approx(-beta, abs=0.1)
    lag1 = np.mean(x[1:] * x[:-1]) / x.var()
    assert (lag1 < 0.05) if beta == 0 else (lag1 > 0.5)


def test_td3_defaults_to_clipped_double_q_and_validates():
    assert auto_cdq(suite_preset("dmc:cartpole-swingup").episodic, "td3")
    assert not auto_cdq(False, "ddpg")
    for bad in ({"algo": "ppo"}, {"expl_noise": -0.1}, {"policy_delay": 0}):
        with pytest.raises(ConfigError):
            validate_agent(AgentConfig(**bad))


def test_full_reset_redraws_the_td3_target_actor():
    plasticity = PlasticityConfig(reset="full", reset_every=10)
    sac = small_sac("mlp", use_cdq=True, algo="td3", plasticity=plasticity)
    state, fresh = sac.init(jax.random.PRNGKey(0)), sac.init(jax.random.PRNGKey(1))
    out = sac.reset(state, fresh)
    assert _leaves_equal(out.extras["target_actor"], fresh.extras["target_actor"])
    assert not _leaves_equal(out.extras["target_actor"], state.extras["target_actor"])
