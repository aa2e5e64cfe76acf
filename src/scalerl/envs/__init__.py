"""Environments: id parsing, the DMC adapter, wrappers, suite presets, task lists and scores."""

import os

# Headless rendering by default (no X display); set MUJOCO_GL=osmesa or glfw to override.
os.environ.setdefault("MUJOCO_GL", "egl")

# ruff: noqa: E402

from scalerl.envs.dmc import DMCEnv, parse_dmc_id
from scalerl.envs.make import env_info, make_env
from scalerl.envs.suites import (
    DMC_EASY_MEDIUM,
    DMC_HARD,
    HBENCH,
    HBENCH_HARD,
    HBENCH_SCORES,
    MUJOCO,
    MUJOCO_SCORES,
    MYOSUITE,
    MYOSUITE_IDS,
    TASK_LISTS,
    SuitePreset,
    discount_heuristic,
    normalize_task_name,
    reference_scores,
    suite_of,
    suite_preset,
)
from scalerl.envs.wrappers import (
    ActionRepeat,
    FiniteCheck,
    FlattenFloat32Observation,
    RescaleAction,
    SeedOnFirstReset,
    SuccessInfo,
    TimeLimit,
)

__all__ = [
    "DMC_EASY_MEDIUM",
    "DMC_HARD",
    "HBENCH",
    "HBENCH_HARD",
    "HBENCH_SCORES",
    "MUJOCO",
    "MUJOCO_SCORES",
    "MYOSUITE",
    "MYOSUITE_IDS",
    "TASK_LISTS",
    "ActionRepeat",
    "DMCEnv",
    "FiniteCheck",
    "FlattenFloat32Observation",
    "RescaleAction",
    "SeedOnFirstReset",
    "SuccessInfo",
    "SuitePreset",
    "TimeLimit",
    "discount_heuristic",
    "env_info",
    "make_env",
    "normalize_task_name",
    "parse_dmc_id",
    "reference_scores",
    "suite_of",
    "suite_preset",
]
