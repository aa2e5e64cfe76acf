"""A thin Gymnasium adapter over the DeepMind Control Suite."""

from __future__ import annotations

import difflib
from typing import Any

import gymnasium as gym
import numpy as np
from dm_control import suite

from scalerl.envs.suites import DMC_PREFIX
from scalerl.errors import EnvError


def parse_dmc_id(env_id: str) -> tuple[str, str]:
    """Splits ``dmc:<domain>-<task>`` into ``(domain, task)`` and checks the task exists.

    The split is on the first '-' (domains use '_', e.g. ``ball_in_cup-catch``).

    Args:
        env_id: The id, with or without the ``dmc:`` prefix.

    Returns:
        The domain and task names accepted by ``dm_control.suite.load``.

    Raises:
        EnvError: If the task is not in ``dm_control.suite.ALL_TASKS``.
    """
    name = env_id.removeprefix(DMC_PREFIX)
    domain, _, task = name.partition("-")
    if (domain, task) not in suite.ALL_TASKS:
        known = [f"{d}-{t}" for d, t in suite.ALL_TASKS]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean dmc:{close[0]}? " if close else ""
        raise EnvError(
            f"unknown DMC task {env_id!r}; {hint}use dmc:<domain>-<task> (e.g. "
            "dmc:cartpole-swingup); dm_control.suite.ALL_TASKS lists the tasks"
        )
    return domain, task


def _flatten(observation: dict[str, Any]) -> np.ndarray:
    """Concatenates every entry of a dm_control observation dict, in the dict's order."""
    parts = [np.asarray(value, dtype=np.float32).ravel() for value in observation.values()]
    return np.concatenate(parts)


class DMCEnv(gym.Env[np.ndarray, np.ndarray]):
    """A DeepMind Control Suite task as a ``gymnasium.Env`` with flat float32 observations.

    The dm_control time limit is disabled (``time_limit=inf``), so episodes only end when the
    task terminates (``discount == 0`` -> ``terminated``) or when an outer ``TimeLimit`` truncates.

    Attributes:
        domain: dm_control domain name, e.g. ``ball_in_cup``.
        task: dm_control task name, e.g. ``catch``.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        domain: str,
        task: str,
        seed: int | None = None,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (480, 480),
        camera_id: int = 0,
    ) -> None:
        """Loads the task.

        Args:
            domain: dm_control domain name.
            task: dm_control task name.
            seed: Seed of the task's ``RandomState`` (initial states); ``None`` = nondeterministic.
            render_mode: ``None`` or ``'rgb_array'``.
            render_size: ``(height, width)`` of rendered frames.
            camera_id: MuJoCo camera used by :meth:`render`.

        Raises:
            EnvError: If ``render_mode`` is not ``None`` or ``'rgb_array'``.
        """
        if render_mode not in (None, "rgb_array"):
            raise EnvError(
                f"render_mode {render_mode!r} is not supported by DMC tasks; "
                "use 'rgb_array' or None"
            )
        self.domain, self.task = domain, task
        kwargs = {"random": seed, "time_limit": float("inf")}
        self._env = suite.load(domain, task, task_kwargs=kwargs)
        self.render_mode = render_mode
        self._render_size, self._camera_id = render_size, camera_id
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self._env.control_timestep())}
        self.observation_space = self._make_observation_space()
        self.action_space = self._make_action_space()

    def _make_observation_space(self) -> gym.spaces.Box:
        """An unbounded float32 Box with the flattened observation size."""
        size = sum(int(np.prod(spec.shape)) for spec in self._env.observation_spec().values())
        return gym.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)

    def _make_action_space(self) -> gym.spaces.Box:
        """A float32 Box with the bounds of the dm_control action spec."""
        spec = self._env.action_spec()
        low = np.broadcast_to(spec.minimum, spec.shape).astype(np.float32)
        high = np.broadcast_to(spec.maximum, spec.shape).astype(np.float32)
        return gym.spaces.Box(low, high, dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts an episode; a ``seed`` re-seeds the task's ``RandomState`` first."""
        super().reset(seed=seed)
        if seed is not None:
            self._env.task.random.seed(seed)
        return _flatten(self._env.reset().observation), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advances one control step.

        Args:
            action: An action within ``action_space``.

        Returns:
            ``(observation, reward, terminated, truncated, info)``; ``terminated`` iff the task
            ended with discount 0, ``truncated`` iff it ended otherwise (never with the default
            infinite time limit).
        """
        timestep = self._env.step(np.asarray(action, dtype=self._env.action_spec().dtype))
        reward = 0.0 if timestep.reward is None else float(timestep.reward)
        ended = timestep.last()
        terminated = bool(ended and timestep.discount == 0.0)
        return _flatten(timestep.observation), reward, terminated, ended and not terminated, {}

    def render(self) -> np.ndarray:
        """Renders an RGB frame of shape ``(height, width, 3)`` (needs a working OpenGL backend).

        Raises:
            EnvError: If the env was not created with ``render_mode='rgb_array'``.
        """
        if self.render_mode != "rgb_array":
            raise EnvError(
                f"render() needs render_mode='rgb_array' but dmc:{self.domain}-{self.task} was "
                f"created with {self.render_mode!r}; pass render_mode='rgb_array' to make_env"
            )
        height, width = self._render_size
        return self._env.physics.render(height, width, camera_id=self._camera_id)

    def close(self) -> None:
        """Releases the dm_control environment."""
        self._env.close()
