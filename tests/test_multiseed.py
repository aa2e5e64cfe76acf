"""Many seeds in one process: parsing, run layout, and equality with single-seed runs."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from conftest import eval_returns
from scalerl.config import AgentConfig, TrainConfig, replace, seed_list
from scalerl.errors import ConfigError
from scalerl.train.checkpoint import load_checkpoint
from scalerl.train.evaluate import load_run_agent
from scalerl.train.loop import train, train_seeds


def test_seed_list_parsing():
    assert seed_list(TrainConfig(seeds="0-3")) == [0, 1, 2, 3]
    assert seed_list(TrainConfig(seeds="0,3,5")) == [0, 3, 5]
    assert seed_list(TrainConfig(seeds="0-1,7")) == [0, 1, 7]
    assert seed_list(TrainConfig(seed=4, num_seeds=3)) == [4, 5, 6]
    for bad in ("3-1", "a", "1,1", ""):
        with pytest.raises(ConfigError, match="seeds"):
            seed_list(TrainConfig(seeds=bad))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cfg = TrainConfig(
        env="dmc:cartpole-swingup",
        env_steps=300,
        warmup_steps=100,
        utd=1.0,
        eval_every=150,
        eval_episodes=1,
        max_episode_steps=200,
        log_every=50,
        progress=False,
        tensorboard=False,
        run_root=root,
        agent=AgentConfig(critic_width=32, actor_width=16, batch_size=16),
    )
    many = train_seeds(replace(cfg, seeds="0-2", name="many"))
    single = train(replace(cfg, seed=2, name="single"))
    return many, single


def test_each_seed_gets_a_single_run_directory(runs):
    many, _ = runs
    assert [p.name for p in many] == ["many-s0", "many-s1", "many-s2"]
    for p in many:
        assert (p / "config.json").is_file() and (p / "checkpoint.msgpack").is_file()
    assert eval_returns(many[0]) != eval_returns(many[1])  # different seeds, different runs


def test_vmapped_seed_matches_the_single_run_with_that_seed(runs):
    many, single = runs
    np.testing.assert_allclose(eval_returns(many[2]), eval_returns(single), rtol=1e-3)
    sac, single_state, _ = load_run_agent(single)
    many_state, _ = load_checkpoint(many[2] / "checkpoint.msgpack", single_state)
    leaves = zip(
        jax.tree_util.tree_leaves(single_state.actor.params),
        jax.tree_util.tree_leaves(many_state.actor.params),
        strict=True,
    )
    for a, b in leaves:
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-3, atol=1e-4)
    assert int(many_state.updates) == int(single_state.updates) == 51
