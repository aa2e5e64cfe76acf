"""``make_discrete_env``: discrete-action environments (Gymnasium ids and ``ale:<Game>``).

`scalerl.envs.make.make_env` builds continuous-control environments and rescales their Box
actions to [-1, 1]; it rejects Discrete action spaces. Value-based agents (DQN, PQN) use this
module instead: Gymnasium ids with Discrete actions (``CartPole-v1``, ``Acrobot-v1``) get flat
float32 observations and scalerl's time limit, and ``ale:<Game>`` ids get the Atari
preprocessing of `scalerl.envs.ale`.
"""

from __future__ import annotations

import gymnasium as gym

from scalerl.envs.ale import ALE_PREFIX, AtariOptions, make_ale_env
from scalerl.envs.make import _make_registered
from scalerl.envs.suites import suite_preset
from scalerl.envs.wrappers import (
    FiniteCheck,
    FlattenFloat32Observation,
    SeedOnFirstReset,
    TimeLimit,
)
from scalerl.errors import EnvError

DISCRETE_GYM_IDS: tuple[str, ...] = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0")
"""Classic-control Gymnasium ids with Discrete actions, for quick checks of discrete agents."""


def _discrete_gym(
    env_id: str, seed: int, max_episode_steps: int | None, render_mode: str | None = None
) -> gym.Env:
    """A Gymnasium env with Discrete actions: flat float32 obs, time limit, finite check."""
    env = _make_registered(env_id, render_mode)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        kind = type(env.action_space).__name__
        env.close()
        raise EnvError(f"{env_id} has {kind} actions, not Discrete; use make_env for it")
    limit = (
        suite_preset(env_id).max_episode_steps if max_episode_steps is None else max_episode_steps
    )
    env = TimeLimit(FlattenFloat32Observation(env), limit)
    return SeedOnFirstReset(FiniteCheck(env, env_id), seed)


def make_discrete_env(
    env_id: str,
    seed: int,
    *,
    max_episode_steps: int | None = None,
    atari: AtariOptions | None = None,
    render_mode: str | None = None,
) -> gym.Env:
    """One seeded discrete-action environment.

    Args:
        env_id: ``ale:<Game>`` (e.g. ``ale:Pong``) or a registered Gymnasium id with Discrete
            actions (e.g. ``CartPole-v1``, ``Acrobot-v1``).
        seed: Seed of the first reset and of the action and observation spaces.
        max_episode_steps: Gymnasium ids only: step limit; ``None`` = the registry's value.
            (Atari episodes are capped in frames by ``AtariOptions.max_episode_frames``.)
        atari: Atari preprocessing for ``ale:`` ids; ``None`` = the training defaults.
        render_mode: Gymnasium render mode, e.g. ``"rgb_array"`` (Atari: the RGB screen).

    Returns:
        The env: ``Discrete(n)`` actions; flat float32 observations (Gymnasium) or uint8
        ``(84, 84, 4)`` frames (Atari).

    Raises:
        EnvError: Unknown id, missing ale-py or ROM, or a non-Discrete action space.
    """
    if env_id.startswith(ALE_PREFIX):
        return make_ale_env(env_id, seed, atari, render_mode)
    env = _discrete_gym(env_id, seed, max_episode_steps, render_mode)
    env.action_space.seed(seed)
    env.observation_space.seed(seed)
    return env


def num_actions(env: gym.Env) -> int:
    """Number of discrete actions of an env made by :func:`make_discrete_env`."""
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise EnvError(f"expected Discrete actions, got {env.action_space}; use make_discrete_env")
    return int(env.action_space.n)
