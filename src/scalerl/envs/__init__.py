"""Environments: id parsing, the DMC adapter, wrappers, suite presets, task lists and scores."""

import os

from scalerl.envs.gl import default_gl_backend

# Headless rendering by default (no X display): EGL, else OSMesa; set MUJOCO_GL to override.
os.environ.setdefault("MUJOCO_GL", default_gl_backend())

# ruff: noqa: E402

from scalerl.envs.dmc import DMCEnv, parse_dmc_id
from scalerl.envs.make import env_info, env_seed, make_env, make_vector_env
from scalerl.envs.suites import (
    DMC_EASY_MEDIUM,
    DMC_HARD,
    HBENCH,
    HBENCH_HARD,
    HBENCH_SCORES,
    MUJOCO,
    MUJOCO_SCORES,
    MUJOCO_V4,
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
    CameraRender,
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
    "MUJOCO_V4",
    "MYOSUITE",
    "MYOSUITE_IDS",
    "TASK_LISTS",
    "ActionRepeat",
    "CameraRender",
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
    "make_vector_env",
    "env_seed",
    "normalize_task_name",
    "parse_dmc_id",
    "reference_scores",
    "suite_of",
    "suite_preset",
]
