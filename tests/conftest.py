"""Shared fixtures: small agent configs resolved for a 5-dim observation, 2-dim action task."""

from __future__ import annotations

import csv
import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from scalerl.agents.sac import SAC, make_sac  # noqa: E402
from scalerl.config import agent_preset, replace  # noqa: E402

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
