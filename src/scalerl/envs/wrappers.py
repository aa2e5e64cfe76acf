"""Small Gymnasium wrappers composing scalerl's environment stack (see ``make_env``)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.errors import EnvError

StepResult = tuple[np.ndarray, float, bool, bool, dict[str, Any]]
"""``(observation, reward, terminated, truncated, info)``."""

SUCCESS_ALIASES = ("solved", "is_success")
"""Info keys copied to ``success`` when ``success`` itself is absent (MyoSuite uses 'solved')."""


def env_name(env: gym.Env) -> str:
    """The registered id of ``env`` if it has one, else the class name of the base env."""
    return env.spec.id if env.spec is not None else type(env.unwrapped).__name__


def _box(env: gym.Env, space: gym.Space, what: str) -> gym.spaces.Box:
    """Returns ``space`` if it is a Box, else raises an EnvError naming the env."""
    if not isinstance(space, gym.spaces.Box):
        raise EnvError(
            f"environment {env_name(env)} has a {type(space).__name__} {what} space; scalerl "
            "supports continuous Box spaces only, pick a continuous-control environment"
        )
    return space


class FlattenFloat32Observation(gym.ObservationWrapper):
    """Flattens a Box observation to 1-D float32."""

    def __init__(self, env: gym.Env) -> None:
        """Wraps ``env``.

        Args:
            env: An environment with a Box observation space.

        Raises:
            EnvError: If the observation space is not a Box.
        """
        super().__init__(env)
        space = _box(env, env.observation_space, "observation")
        low = space.low.ravel().astype(np.float32)
        high = space.high.ravel().astype(np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Returns the observation as a flat float32 array."""
        return np.asarray(observation, dtype=np.float32).ravel()


class RescaleAction(gym.ActionWrapper):
    """Exposes ``Box(-1, 1)`` actions and maps them affinely onto the env's bounds.

    Agent actions are clipped to [-1, 1] first, so -1 maps to ``low`` and 1 to ``high``. Own
    implementation (not ``gymnasium.wrappers.RescaleAction``) so the clip and the float32 agent
    space are explicit.
    """

    def __init__(self, env: gym.Env) -> None:
        """Wraps ``env``.

        Args:
            env: An environment with a bounded Box action space.

        Raises:
            EnvError: If the action space is not a Box or has infinite bounds.
        """
        super().__init__(env)
        space = _box(env, env.action_space, "action")
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise EnvError(
                f"environment {env_name(env)} has unbounded actions; RescaleAction needs finite "
                "bounds, wrap the env with explicit action limits first"
            )
        self._low = space.low.astype(np.float64)
        self._high = space.high.astype(np.float64)
        self._dtype = space.dtype
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=space.shape, dtype=np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        """Maps ``action`` in [-1, 1] onto ``[low, high]`` in the env's action dtype."""
        unit = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        scaled = self._low + 0.5 * (unit + 1.0) * (self._high - self._low)
        return np.clip(scaled, self._low, self._high).astype(self._dtype)


class TimeLimit(gym.Wrapper):
    """Truncates an episode after ``max_episode_steps`` steps of the wrapped env.

    Applied below :class:`ActionRepeat`, so it counts raw env steps. ``truncated`` is set only
    when the step did not also terminate.
    """

    def __init__(self, env: gym.Env, max_episode_steps: int) -> None:
        """Wraps ``env``.

        Args:
            env: The environment.
            max_episode_steps: Raw steps per episode (>= 1).

        Raises:
            EnvError: If ``max_episode_steps`` < 1.
        """
        if max_episode_steps < 1:
            raise EnvError(f"max_episode_steps must be >= 1, got {max_episode_steps}; pass >= 1")
        super().__init__(env)
        self.max_episode_steps = max_episode_steps
        self.elapsed_steps = 0

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Resets the env and the step counter."""
        self.elapsed_steps = 0
        return self.env.reset(**kwargs)

    def step(self, action: np.ndarray) -> StepResult:
        """Steps the env and sets ``truncated`` once the limit is reached."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.elapsed_steps += 1
        at_limit = self.elapsed_steps >= self.max_episode_steps
        return obs, reward, terminated, bool(truncated or (at_limit and not terminated)), info


class ActionRepeat(gym.Wrapper):
    """Repeats each action ``repeat`` times and sums the rewards.

    Stops early when a raw step terminates or truncates. Infos are merged with later steps'
    keys winning, except ``success`` which is OR-ed over the repeated steps.
    """

    def __init__(self, env: gym.Env, repeat: int) -> None:
        """Wraps ``env``.

        Args:
            env: The environment.
            repeat: Raw steps per agent step (>= 1).

        Raises:
            EnvError: If ``repeat`` < 1.
        """
        if repeat < 1:
            raise EnvError(f"action_repeat must be >= 1, got {repeat}; pass >= 1")
        super().__init__(env)
        self.repeat = repeat

    def step(self, action: np.ndarray) -> StepResult:
        """Steps the env up to ``repeat`` times with the same action."""
        total = 0.0
        merged: dict[str, Any] = {}
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            success = bool(merged.get("success", False) or info.get("success", False))
            merged.update(info)
            if "success" in merged:
                merged["success"] = success
            if terminated or truncated:
                break
        return obs, total, bool(terminated), bool(truncated), merged


class SuccessInfo(gym.Wrapper):
    """Normalises success flags: ``info['success']`` becomes a bool.

    If ``success`` is absent it is copied from ``solved`` (MyoSuite) or ``is_success``; infos
    without any of these keys are left unchanged.
    """

    def step(self, action: np.ndarray) -> StepResult:
        """Steps the env and normalises the success flag of its info."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        source = next((k for k in ("success", *SUCCESS_ALIASES) if k in info), None)
        if source is not None:
            info = {**info, "success": bool(np.any(info[source]))}
        return obs, reward, terminated, truncated, info


class CameraRender(gym.Wrapper):
    """Renders with a fixed frame size and camera by passing them to the base env's ``render``.

    For envs whose ``render(width=, height=, camera_id=)`` takes these as arguments (MyoSuite,
    whose default free camera sees the hand from far away) instead of constructor options.
    """

    def __init__(self, env: gym.Env, size: tuple[int, int], camera: int | str = -1) -> None:
        """Wraps ``env``.

        Args:
            env: An env created with ``render_mode='rgb_array'``.
            size: ``(height, width)`` of rendered frames.
            camera: Model camera name or id to render from (-1 = free camera).
        """
        super().__init__(env)
        self.size, self.camera = size, camera

    def render(self) -> np.ndarray:
        """An RGB frame of shape ``(height, width, 3)`` from the chosen camera."""
        height, width = self.size
        key = "camera_name" if isinstance(self.camera, str) else "camera_id"
        return self.env.unwrapped.render(width=width, height=height, **{key: self.camera})


class FiniteCheck(gym.Wrapper):
    """Raises :class:`EnvError` when an observation or reward is NaN or infinite.

    Also converts rewards to Python floats. ``total_steps`` counts steps since construction.
    """

    def __init__(self, env: gym.Env, env_id: str) -> None:
        """Wraps ``env``.

        Args:
            env: The environment.
            env_id: Id named in error messages.
        """
        super().__init__(env)
        self.env_id = env_id
        self.total_steps = 0

    def _check(self, value: Any, what: str) -> None:
        """Raises if ``value`` contains a non-finite number."""
        if not np.all(np.isfinite(value)):
            raise EnvError(
                f"environment {self.env_id} returned a non-finite {what} at step "
                f"{self.total_steps}; check the environment or its inputs"
            )

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Resets the env and checks the first observation."""
        obs, info = self.env.reset(**kwargs)
        self._check(obs, "observation")
        return obs, info

    def step(self, action: np.ndarray) -> StepResult:
        """Steps the env and checks observation and reward."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.total_steps += 1
        self._check(obs, "observation")
        self._check(reward, "reward")
        return obs, float(reward), bool(terminated), bool(truncated), info


class SeedOnFirstReset(gym.Wrapper):
    """Seeds the first ``reset()`` with a stored seed; later resets continue the RNG stream."""

    def __init__(self, env: gym.Env, seed: int) -> None:
        """Wraps ``env``.

        Args:
            env: The environment.
            seed: Seed passed to the first reset that does not give its own.
        """
        super().__init__(env)
        self.first_seed = seed
        self._seeded = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Resets the env, using the stored seed if this is the first reset."""
        if seed is None and not self._seeded:
            seed = self.first_seed
        self._seeded = True
        return self.env.reset(seed=seed, options=options)
