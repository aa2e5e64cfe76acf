"""``make_env``: one environment id -> a seeded, wrapped, single Gymnasium environment."""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import warnings
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from scalerl.envs.dmc import DMCEnv, parse_dmc_id
from scalerl.envs.suites import (
    ALE_PREFIX,
    JAX_ID_HINT,
    JAX_PREFIXES,
    MYOSUITE_IDS,
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
from scalerl.errors import EnvError

INSTALL_HINTS = {
    "myosuite": (
        'pip install myosuite==3.0.0 (or, in a scalerl checkout, pip install -e ".[myosuite]")'
    ),
    "humanoid_bench": (
        "HumanoidBench is not on PyPI: git clone https://github.com/carlosferrazza/humanoid-bench "
        "&& pip install --no-deps -e humanoid-bench && pip install torch (see docs/envs.md)"
    ),
}
"""How to install the optional suite packages, keyed by import name."""

DMC_RENDER_SIZE = (480, 480)
"""Default ``(height, width)`` of DMC frames."""

MYOSUITE_RENDER_SIZE = (480, 640)
"""Default ``(height, width)`` of MyoSuite frames (MyoSuite's own default)."""

MYOSUITE_CAMERA = "hand_top"
"""MyoSuite camera of videos: above the hand, in every hand task (the free camera is far away)."""


MYOSUITE_NOISE = "Attaching a spec with an empty prefix"
"""A harmless MuJoCo warning MyoSuite 3.0 triggers for every model it builds (hidden)."""


class _DropMessage(logging.Filter):
    """Drops log records containing a given text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


@contextlib.contextmanager
def _hide_warning(text: str) -> Iterator[None]:
    """Hides one known warning, raised as a Python warning and logged through absl."""
    drop, logger = _DropMessage(text), logging.getLogger("absl")
    logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=text)
            yield
    finally:
        logger.removeFilter(drop)


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


def _size_kwargs(render_size: tuple[int, int] | None) -> dict[str, int]:
    """``gymnasium.make`` options for the frame size of MuJoCo-based envs (none if unset)."""
    return {} if render_size is None else {"height": render_size[0], "width": render_size[1]}


def _make_myosuite(env_id: str, render_mode: str | None, size: tuple[int, int] | None) -> gym.Env:
    """A MyoSuite env by short name or id; renders from :data:`MYOSUITE_CAMERA`."""
    _require("myosuite", env_id)
    with _hide_warning(MYOSUITE_NOISE):
        env = _make_registered(MYOSUITE_IDS.get(env_id, env_id), render_mode)
    if render_mode != "rgb_array":
        return env
    return CameraRender(env, size or MYOSUITE_RENDER_SIZE, MYOSUITE_CAMERA)


def _make_base(
    env_id: str, suite: str, seed: int, render_mode: str | None, size: tuple[int, int] | None
) -> gym.Env:
    """Creates the unwrapped-by-us environment with flat float32 Box observations."""
    if suite == "dmc":
        domain, task = parse_dmc_id(env_id)
        return DMCEnv(domain, task, seed, render_mode, size or DMC_RENDER_SIZE)
    if suite == "myosuite":
        env = _make_myosuite(env_id, render_mode, size)
    elif suite == "hbench":
        _require("humanoid_bench", env_id)
        kwargs = {"policy_path": None} if env_id.startswith("h1hand-package") else {}
        env = _make_registered(env_id, render_mode, **kwargs, **_size_kwargs(size))
    elif suite == "mujoco":
        env = _make_registered(env_id, render_mode, **_size_kwargs(size))
    else:  # other Gymnasium envs (classic control) render at their own size
        env = _make_registered(env_id, render_mode)
    return FlattenFloat32Observation(env)


def check_continuous_id(env_id: str) -> None:
    """Raise EnvError naming the fix for ids scalerl's continuous-control agents cannot train:
    ale: ids and the discrete JAX-native ids (gymnax, Craftax)."""
    from scalerl.envs.jax_envs import is_continuous_jax_env

    if env_id.startswith(ALE_PREFIX):
        raise EnvError(f"{env_id}: ale: ids have discrete actions: use --algo dqn or --algo pqn")
    if env_id.startswith(JAX_PREFIXES) and not is_continuous_jax_env(env_id):
        raise EnvError(JAX_ID_HINT.format(env_id=env_id))


def make_env(
    env_id: str,
    seed: int,
    *,
    action_repeat: int | None = None,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    render_size: tuple[int, int] | None = None,
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
        render_size: ``(height, width)`` of rendered frames; ``None`` = the suite's default
            (DMC 480x480, MuJoCo and HumanoidBench their own, MyoSuite 480x640); ignored by
            non-MuJoCo Gymnasium envs.

    Returns:
        The environment: 1-D float32 observations, ``Box(-1, 1, (act_dim,), float32)`` actions.

    Raises:
        EnvError: Unknown id, missing optional suite package, or unsupported spaces.
    """
    check_continuous_id(env_id)
    if env_id.startswith(JAX_PREFIXES):
        raise EnvError(f"{env_id} is a JAX-native id without a Gymnasium interface; scalerl "
                       "steps it inside its jitted training and evaluation loops")  # fmt: skip
    preset = suite_preset(env_id)
    repeat = preset.action_repeat if action_repeat is None else action_repeat
    limit = preset.max_episode_steps if max_episode_steps is None else max_episode_steps
    env: gym.Env = _make_base(env_id, suite_of(env_id), seed, render_mode, render_size)
    env = TimeLimit(RescaleAction(SuccessInfo(env)), limit)
    env = SeedOnFirstReset(FiniteCheck(ActionRepeat(env, repeat), env_id), seed)
    env.action_space.seed(seed)
    env.observation_space.seed(seed)
    return env


def env_seed(seed: int, index: int) -> int:
    """Seed of environment `index` of a seed's vector of environments: `seed` itself for the
    first (so one environment is exactly the single-environment run), then independent streams
    derived with `numpy.random.SeedSequence`."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def make_vector_env(
    env_id: str,
    seed: int,
    num_envs: int,
    *,
    action_repeat: int | None = None,
    max_episode_steps: int | None = None,
    asynchronous: bool = False,
) -> VectorEnv:
    """`num_envs` environments of :func:`make_env` (seeds from :func:`env_seed`) as one
    Gymnasium vector env that resets an environment in the step that ends its episode.

    A step returns the reset observations; the true last observations of the environments whose
    episodes ended are in ``info["final_obs"]`` (rows where ``info["_final_obs"]`` is set).

    Args:
        env_id: Environment id (see :func:`make_env`).
        seed: Seed of the first environment.
        num_envs: Number of environments (>= 1).
        action_repeat: Raw steps per agent step; ``None`` = suite preset.
        max_episode_steps: Episode limit in raw steps; ``None`` = suite preset.
        asynchronous: Step the environments in worker processes (``AsyncVectorEnv``, spawned)
            instead of one after another in this process.

    Raises:
        EnvError: As :func:`make_env` (checked in this process first).
    """
    limits = {"action_repeat": action_repeat, "max_episode_steps": max_episode_steps}
    make_env(env_id, seed, **limits).close()  # a bad id fails here, with scalerl's message
    fns = [functools.partial(make_env, env_id, env_seed(seed, i), **limits)
           for i in range(num_envs)]  # fmt: skip
    if asynchronous:
        return AsyncVectorEnv(fns, context="spawn", autoreset_mode=AutoresetMode.SAME_STEP)
    return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)


def env_info(env: gym.Env) -> tuple[int, int]:
    """Returns ``(obs_dim, act_dim)`` of an environment made by :func:`make_env` (or of each
    environment of a :func:`make_vector_env`)."""
    obs_space = getattr(env, "single_observation_space", env.observation_space)
    action_space = getattr(env, "single_action_space", env.action_space)
    return int(obs_space.shape[0]), int(action_space.shape[0])
