"""PQN's Q(λ) targets against hand-computed values; config presets and validation."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.agents.pqn_losses import q_lambda_returns, td_loss
from scalerl.config import PlasticityConfig
from scalerl.config_pqn import (
    PQNConfig,
    PQNTrainConfig,
    iterations_per_log,
    num_iterations,
    pqn_preset,
    resolve_torso,
    validate_pqn,
    validate_pqn_train,
)
from scalerl.errors import ConfigError

REWARDS = jnp.array([1.0, 2.0, 3.0, 4.0])
NEXT_Q = jnp.array([10.0, 20.0, 30.0, 40.0])


def _returns(terminated, truncated, gamma=0.5, lam=0.5):
    t = jnp.array(terminated, bool)[:, None]
    u = jnp.array(truncated, bool)[:, None]
    out = q_lambda_returns(REWARDS[:, None], NEXT_Q[:, None], t, u, gamma, lam)
    return np.asarray(out[:, 0])


def test_no_episode_end_mixes_bootstrap_and_next_return():
    # G3 = 4 + .5*40; G2 = 3 + .5(.5*30 + .5*24); G1 = 2 + .5(.5*20 + .5*16.5); G0 likewise
    expected = [6.28125, 11.125, 16.5, 24.0]
    np.testing.assert_allclose(_returns([0, 0, 0, 0], [0, 0, 0, 0]), expected)


def test_termination_and_truncation_inside_the_window():
    # t=2 truncated: 3 + .5*30 (final obs bootstrap, no trace); t=1 terminated: reward only;
    # t=0 mixes its bootstrap with G1 = 2.
    expected = [1 + 0.5 * (0.5 * 10 + 0.5 * 2), 2.0, 18.0, 24.0]
    np.testing.assert_allclose(_returns([0, 1, 0, 0], [0, 0, 1, 0]), expected)


def test_termination_at_the_window_end_does_not_bootstrap():
    got = _returns([0, 0, 0, 1], [0, 0, 0, 0])
    assert got[3] == 4.0 and got[2] == 3 + 0.5 * (0.5 * 30 + 0.5 * 4)
    truncated_last = _returns([0, 0, 0, 0], [0, 0, 0, 1])
    assert truncated_last[3] == 24.0  # truncation at the end bootstraps like no end


def test_lambda_zero_is_one_step_q_learning_and_one_is_monte_carlo():
    one_step = _returns([0, 1, 0, 0], [0, 0, 0, 0], gamma=0.9, lam=0.0)
    np.testing.assert_allclose(one_step, [1 + 9.0, 2.0, 3 + 27.0, 4 + 36.0], rtol=1e-6)
    mc = _returns([0, 0, 0, 0], [0, 0, 0, 0], gamma=0.5, lam=1.0)
    np.testing.assert_allclose(mc, [1 + 0.5 * 9.5, 2 + 0.5 * 15, 3 + 0.5 * 24, 24.0])


def test_columns_are_independent_environments():
    r = jnp.stack([REWARDS, 2 * REWARDS], axis=1)
    q = jnp.stack([NEXT_Q, NEXT_Q], axis=1)
    t = jnp.zeros((4, 2), bool).at[1, 1].set(True)
    out = np.asarray(q_lambda_returns(r, q, t, jnp.zeros((4, 2), bool), 0.5, 0.5))
    np.testing.assert_allclose(out[:, 0], _returns([0, 0, 0, 0], [0, 0, 0, 0]))
    assert out[1, 1] == 4.0 and out[3, 1] == 8 + 20


def test_td_loss_is_half_mean_square():
    assert float(td_loss(jnp.array([1.0, 3.0]), jnp.array([0.0, 0.0]))) == 2.5


def test_presets_follow_the_released_configs():
    minatar = pqn_preset("gymnax:Breakout-MinAtar")
    assert (minatar.num_envs, minatar.num_steps, minatar.num_minibatches) == (128, 32, 32)
    assert (minatar.q_lambda, minatar.lr, minatar.eps_end, minatar.trunk) == (
        0.65,
        5e-4,
        0.05,
        "none",
    )
    cartpole = pqn_preset("gymnax:CartPole-v1")
    assert (cartpole.q_lambda, cartpole.reward_scale, cartpole.optimizer) == (0.95, 0.1, "radam")
    assert not pqn_preset("ale:Pong").anneal_lr
    assert resolve_torso("auto", "gymnax:Breakout-MinAtar") == "minatar"
    assert resolve_torso("auto", "gymnax:CartPole-v1") == "none"
    cfg = PQNTrainConfig(env_steps=10_000, log_every=3000, agent=PQNConfig())
    assert num_iterations(cfg) == 4 and iterations_per_log(cfg) == 2  # 2048 per rollout


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_minibatches": 7}, "divisible"),
        ({"q_lambda": 1.5}, "q_lambda"),
        ({"weight_decay": 0.1}, "adamw"),
        ({"trunk": "none"}, "trunk none"),
        ({"plasticity": PlasticityConfig(redo_every=4)}, "ReDo on flat"),
        ({"trunk": "simbav2", "plasticity": PlasticityConfig(nap=True)}, "simbav2"),
    ],
)
def test_bad_agent_values_are_config_errors(changes, message):
    with pytest.raises(ConfigError, match=message):
        validate_pqn(PQNConfig(**changes), "gymnax:CartPole-v1")


def test_redo_is_allowed_on_conv_torsos_and_budget_is_checked():
    agent = PQNConfig(trunk="none", plasticity=PlasticityConfig(redo_every=4))
    validate_pqn(agent, "gymnax:Breakout-MinAtar")
    with pytest.raises(ConfigError, match="below one rollout"):
        validate_pqn_train(PQNTrainConfig(env_steps=100))
