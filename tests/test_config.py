"""Config: presets, resolution of auto values, validation, JSON round trip."""

from __future__ import annotations

import pytest

from scalerl.config import AgentConfig, TrainConfig, agent_preset, replace, validate_train
from scalerl.errors import ConfigError, EnvError
from scalerl.train.setup import agent_steps, config_from_dict, config_to_dict, resolve


@pytest.mark.parametrize(
    ("env", "repeat", "limit", "gamma", "cdq"),
    [
        ("dmc:walker-walk", 2, 1000, 0.99, False),
        ("Hopper-v5", 1, 1000, 0.995, True),
        ("Pendulum-v1", 1, 200, 0.975, True),
    ],
)
def test_resolve_applies_suite_presets(env, repeat, limit, gamma, cdq):
    cfg = resolve(TrainConfig(env=env))
    assert (cfg.action_repeat, cfg.max_episode_steps) == (repeat, limit)
    assert cfg.agent.gamma == pytest.approx(gamma)
    assert cfg.agent.use_cdq is cdq
    assert cfg.eval_every == 50_000


def test_overrides_win_over_presets_and_feed_the_heuristic():
    cfg = resolve(
        TrainConfig(env="dmc:walker-walk", action_repeat=4, agent=AgentConfig(use_cdq=True))
    )
    assert cfg.action_repeat == 4
    assert cfg.agent.gamma == pytest.approx(0.98)  # L = 1000/4 = 250 -> (50 - 1)/50
    assert cfg.agent.use_cdq is True
    assert agent_steps(replace(cfg, env_steps=1000)) == 250


def test_agent_presets_follow_the_papers():
    simba, mlp = agent_preset("simba"), agent_preset("mlp")
    assert (simba.optimizer, simba.weight_decay, simba.critic_head) == ("adamw", 1e-2, "scalar")
    assert simba.lr_init == simba.lr_end == 1e-4 and not simba.normalize_reward
    assert (mlp.critic_width, mlp.critic_depth, mlp.lr_init, mlp.temp_init) == (256, 2, 3e-4, 1.0)
    assert mlp.use_cdq is True and mlp.target_entropy_coef == -1.0 and not mlp.normalize_obs
    v2 = agent_preset("simbav2")
    assert (v2.critic_width, v2.actor_width, v2.num_bins, v2.g_max) == (512, 128, 101, 5.0)
    with pytest.raises(ConfigError, match="unknown agent"):
        agent_preset("ppo")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"utd": 0.0}, "utd must be positive"),
        ({"env_steps": -5}, "env_steps must be positive"),
        ({"agent": AgentConfig(critic_width=0)}, "critic_width must be positive"),
        ({"agent": AgentConfig(tau=1.5)}, "tau"),
        ({"agent": AgentConfig(weight_decay=0.1)}, "adamw"),
        ({"warmup_steps": 0}, "warmup_steps"),
        ({"eval_every": 0}, "eval_every must be positive"),
    ],
)
def test_invalid_values_raise_config_error(changes, message):
    with pytest.raises(ConfigError, match=message):
        validate_train(replace(TrainConfig(), **changes))


def test_unknown_env_raises_env_error_before_any_work():
    with pytest.raises(EnvError, match="dmc:cartpole-swingup"):
        resolve(TrainConfig(env="NoSuchEnv-v0"))


def test_config_json_round_trip():
    cfg = resolve(TrainConfig(env="dmc:cartpole-swingup", agent=agent_preset("simba")))
    assert config_from_dict(config_to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="does not match"):
        config_from_dict(config_to_dict(cfg) | {"bogus": 1})
