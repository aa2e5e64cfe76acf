"""AgentConfig(agent=...) applies that agent's preset; full constructions stay as they were."""

from __future__ import annotations

import dataclasses

from scalerl.cli import parse_train
from scalerl.config import AgentConfig, OfflineConfig, agent_preset, offline_preset
from scalerl.train.setup import config_from_dict, config_to_dict

MLP = {  # SAC (Haarnoja et al. 2018, Table 1) as the mlp preset writes it, by hand
    "actor_width": 256,
    "critic_width": 256,
    "actor_depth": 2,
    "critic_head": "scalar",
    "use_cdq": True,
    "lr_init": 3e-4,
    "temp_init": 1.0,
    "normalize_obs": False,
    "project_weights": False,
}


def test_agent_name_applies_its_preset():
    mlp = AgentConfig(agent="mlp")
    assert {k: getattr(mlp, k) for k in MLP} == MLP
    simba = AgentConfig(agent="simba")
    assert (simba.optimizer, simba.weight_decay, simba.critic_head) == ("adamw", 1e-2, "scalar")
    msr = AgentConfig(agent="msr")
    assert dataclasses.replace(msr, agent="simba") == simba
    assert AgentConfig() == AgentConfig(agent="simbav2") == agent_preset("simbav2")
    assert AgentConfig("mlp") == agent_preset("mlp")


def test_passed_fields_win_over_the_preset():
    cfg = AgentConfig(agent="mlp", critic_width=64, algo="td3")
    assert (cfg.critic_width, cfg.algo, cfg.actor_width, cfg.lr_init) == (64, "td3", 256, 3e-4)


def test_full_constructions_behave_as_before():
    # dataclasses.replace passes every field: switching the name keeps the other values.
    mixed = dataclasses.replace(AgentConfig(), agent="mlp")
    assert (mixed.critic_width, mixed.critic_head) == (512, "categorical")
    data = config_to_dict(OfflineConfig(agent=mixed))
    assert config_from_dict(data, OfflineConfig).agent == mixed
    off = offline_preset("mlp")
    assert (off.bc_alpha, off.lr_end, off.critic_width, off.temp_init) == (0.1, 1e-5, 256, 1.0)


def test_the_cli_gives_the_preset_and_the_flags():
    assert parse_train(["--agent", "mlp"]).agent == agent_preset("mlp")
    cfg = parse_train(["--agent", "simba", "--critic-width", "64"]).agent
    assert cfg == dataclasses.replace(agent_preset("simba"), critic_width=64)


def test_use_cdq_is_auto_on_off_on_the_command_line():
    words = {"auto": None, "on": True, "off": False}
    for word, value in words.items():
        assert parse_train(["--use-cdq", word]).agent.use_cdq is value
    assert parse_train(["--agent", "mlp"]).agent.use_cdq is True  # the mlp preset's value
    from scalerl.sweep.grid import FIELDS

    assert FIELDS["use_cdq"][1] == bool | None  # the config keeps bool | None (None = auto)
