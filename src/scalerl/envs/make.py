"""``make_env``: one environment id -> a seeded, wrapped, single Gymnasium environment."""

from __future__ import annotations

import importlib

import gymnasium as gym

from scalerl.envs.dmc import DMCEnv, parse_dmc_id
from scalerl.envs.suites import MYOSUITE_IDS, suite_of, suite_preset
from scalerl.envs.wrappers import (
    ActionRepeat,
    FiniteCheck,
    FlattenFloat32Observation,
    RescaleAction,
    SeedOnFirstReset,
    SuccessInfo,
    TimeLimit,
)
from scalerl.errors import EnvError

INSTALL_HINTS = {
    "myosuite": 'pip install "scalerl[myosuite]"',
    "humanoid_bench": (
        "install HumanoidBench from its repository (git clone "
        "https://github.com/carlosferrazza/humanoid-bench && pip install -e humanoid-bench)"
    ),
}
"""How to install the optional suite packages, keyed by import name."""


def _require(module: str, env_id: str) -> None:
    """Imports an optional suite package (which registers its envs) or raises EnvError."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise EnvError(
            f"environment {env_id!r} needs the '{module}' package, which is not installed; "
            f"{INSTALL_HINTS[module]}"
        ) from None


def _make_registered(env_id: str, render_mode: str | None, **kwargs: object) -> gym.Env:
    """``gymnasium.make`` without Gymnasium's own TimeLimit and env checker."""
    options = {"max_episode_steps": -1, "disable_env_checker": True, **kwargs}
    try:
        return gym.make(env_id, render_mode=render_mode, **options)
    except (gym.error.Error, ImportError) as err:
        message = f"cannot create {env_id!r}: {err}; check the id and its dependencies"
        raise EnvError(message) from None


def _make_base(env_id: str, suite: str, seed: int, render_mode: str | None) -> gym.Env:
    """Creates the unwrapped-by-us environment with flat float32 Box observations."""
    if suite == "dmc":
        domain, task = parse_dmc_id(env_id)
        return DMCEnv(domain, task, seed=seed, render_mode=render_mode)
    if suite == "myosuite":
        _require("myosuite", env_id)
        env = _make_registered(MYOSUITE_IDS.get(env_id, env_id), render_mode)
    elif suite == "hbench":
        _require("humanoid_bench", env_id)
        kwargs = {"policy_path": None} if env_id.startswith("h1hand-package") else {}
        env = _make_registered(env_id, render_mode, **kwargs)
    else:
        env = _make_registered(env_id, render_mode)
    return FlattenFloat32Observation(env)


def make_env(
    env_id: str,
    seed: int,
    *,
    action_repeat: int | None = None,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
) -> gym.Env:
    """Creates one environment with scalerl's wrapper stack.

    Stack (inner to outer): base env -> SuccessInfo -> RescaleAction(-1, 1) -> TimeLimit (raw
    steps) -> ActionRepeat -> FiniteCheck -> SeedOnFirstReset. The first ``reset()`` without a
    seed uses ``seed``; action and observation spaces are seeded with ``seed`` too.

    Args:
        env_id: ``dmc:<domain>-<task>``, a registered Gymnasium id, ``myo-<task>`` or
            ``h1-<task>-v0``.
        seed: Seed for the environment's RNG and its spaces.
        action_repeat: Raw steps per agent step; ``None`` = suite preset.
        max_episode_steps: Episode limit in raw steps; ``None`` = suite preset.
        render_mode: Passed to the base env (e.g. ``'rgb_array'``).

    Returns:
        The environment: 1-D float32 observations, ``Box(-1, 1, (act_dim,), float32)`` actions.

    Raises:
        EnvError: Unknown id, missing optional suite package, or unsupported spaces.
    """
    preset = suite_preset(env_id)
    repeat = preset.action_repeat if action_repeat is None else action_repeat
    limit = preset.max_episode_steps if max_episode_steps is None else max_episode_steps
    env: gym.Env = _make_base(env_id, suite_of(env_id), seed, render_mode)
    env = TimeLimit(RescaleAction(SuccessInfo(env)), limit)
    env = SeedOnFirstReset(FiniteCheck(ActionRepeat(env, repeat), env_id), seed)
    env.action_space.seed(seed)
    env.observation_space.seed(seed)
    return env


def env_info(env: gym.Env) -> tuple[int, int]:
    """Returns ``(obs_dim, act_dim)`` of an environment made by :func:`make_env`."""
    return int(env.observation_space.shape[0]), int(env.action_space.shape[0])
