"""The algorithm-agnostic core: one module per algorithm, one dispatch on `algo`, the Agent
protocol, and state pytrees whose structure does not depend on the module split."""

from __future__ import annotations

import re
from pathlib import Path

import jax
import pytest

from conftest import ACT_DIM, OBS_DIM, small_sac
from scalerl.agents import base
from scalerl.agents.ddpg import DDPG
from scalerl.agents.registry import ALGORITHMS, make_agent
from scalerl.agents.sac import SAC
from scalerl.agents.state import SACState
from scalerl.agents.td3 import TD3
from scalerl.config import agent_preset, replace
from scalerl.errors import ConfigError

AGENTS_DIR = Path(base.__file__).parent


@pytest.fixture(scope="module")
def built():
    """algo -> (agent built by conftest's make_sac, the shapes of its initial state)."""
    agents = {algo: small_sac("mlp", use_cdq=True, algo=algo) for algo in ALGORITHMS}
    return {algo: (a, jax.eval_shape(a.init, jax.random.PRNGKey(0))) for algo, a in agents.items()}


@pytest.mark.parametrize("algo, cls", [("sac", SAC), ("td3", TD3), ("ddpg", DDPG)])
def test_make_agent_and_make_sac_build_the_named_algorithm(built, algo, cls):
    agent, state = built[algo]
    assert type(agent) is cls and ALGORITHMS[algo] is cls
    assert isinstance(state, SACState)
    protocol_methods = ("init", "init_many", "act", "explore", "observe", "update", "health")
    assert all(callable(getattr(agent, name)) for name in protocol_methods)


def test_make_agent_rejects_unresolved_and_unknown_configs():
    cfg = replace(agent_preset("mlp"), gamma=0.99, use_cdq=True)
    with pytest.raises(ValueError, match="resolve gamma"):
        make_agent(replace(cfg, gamma=None), OBS_DIM, ACT_DIM)
    with pytest.raises(ConfigError, match="unknown algo 'ppo'"):
        make_agent(replace(cfg, algo="ppo"), OBS_DIM, ACT_DIM)


def test_only_the_registry_dispatches_on_the_algorithm():
    """No agent module branches on `cfg.algo`: each algorithm lives in its own class."""
    offenders = [
        f"{path.name}:{i}"
        for path in sorted(AGENTS_DIR.glob("*.py"))
        if path.name != "registry.py"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\.algo\b", line)
    ]
    assert offenders == []


def test_state_structure_is_the_same_for_every_algorithm_but_its_extras(built):
    """Checkpoints keep one layout: SAC, TD3 and DDPG states differ only in `extras`."""
    trees = {algo: state for algo, (_, state) in built.items()}
    core = {a: jax.tree.structure(s.replace(extras={})) for a, s in trees.items()}
    assert core["sac"] == core["td3"] == core["ddpg"]
    assert set(trees["td3"].extras) == {"target_actor"} and trees["ddpg"].extras == {}
