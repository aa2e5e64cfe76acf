"""Shared fixtures: small agent configs resolved for a 5-dim observation, 2-dim action task."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
# One persistent compilation cache for the whole test session (every xdist worker, fast and slow
# tiers, subprocesses): tests build the same programs many times, and a cache hit skips the
# compile. JAX stores every program (no minimum compile time), keyed by its HLO, jax version and
# flags, so a hit is the program a compile would give. Set before jax is imported.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "scalerl-tests-jax-cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

from scalerl.agents.sac import SAC, make_sac  # noqa: E402
from scalerl.config import AgentConfig, TrainConfig, agent_preset, replace  # noqa: E402
from scalerl.train.loop import train  # noqa: E402

OBS_DIM, ACT_DIM = 5, 2


def small_sac(agent: str = "simbav2", use_cdq: bool = False, **overrides) -> SAC:
    """A small, fully resolved SAC agent for unit tests."""
    cfg = agent_preset(agent)
    sizes = {"actor_width": 32, "critic_width": 64, "batch_size": 16}
    cfg = replace(cfg, **({"gamma": 0.99, "use_cdq": use_cdq} | sizes | overrides))
    return make_sac(cfg, OBS_DIM, ACT_DIM, decay_steps=100)


@pytest.fixture
def sac_factory():
    return small_sac


def eval_returns(run_dir) -> list[float]:
    """The eval/return values of a run's metrics.csv, in order."""
    with open(run_dir / "metrics.csv") as f:
        return [float(r["value"]) for r in csv.DictReader(f) if r["metric"] == "eval/return"]


PENDULUM_SIZES = {
    "simbav2": {"critic_width": 128, "critic_depth": 1, "actor_width": 64},
    "simba": {"critic_width": 128, "critic_depth": 1, "actor_width": 64},
    "mlp": {"critic_width": 128, "actor_width": 128},
}
"""Small networks that solve Pendulum-v1 in 7,000 steps (the slow learning tests)."""


def pendulum_run(root: Path, name: str, agent: AgentConfig) -> Path:
    """A 7,000-step Pendulum-v1 run (1,000 random steps, UTD 1, 5 eval episodes every 1,000)."""
    cfg = TrainConfig(
        env="Pendulum-v1", seed=0, env_steps=7_000, warmup_steps=1_000, utd=1.0,
        eval_every=1_000, eval_episodes=5, progress=False, tensorboard=False, run_root=root,
        name=name, agent=agent,
    )  # fmt: skip
    return train(cfg)


@pytest.fixture(scope="session")
def pendulum_simbav2_run(tmp_path_factory) -> Path:
    """Small SimbaV2 trained once per session on Pendulum-v1: a learning test and an expert.

    Tests using it carry ``@pytest.mark.xdist_group("pendulum_simbav2")`` so that, with
    ``pytest -n 2 --dist loadgroup``, they share one worker and one training run.
    """
    agent = replace(agent_preset("simbav2"), **PENDULUM_SIZES["simbav2"])
    return pendulum_run(tmp_path_factory.mktemp("pendulum"), "simbav2", agent)
