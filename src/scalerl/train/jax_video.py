"""Videos of JAX-native environments (gymnax, Craftax-Classic): `scalerl evaluate RUN --video`.

The episodes are played step by step with the environment's own `step_env` (no automatic
reset, so the last frame shows the state the episode ended in); frames come from each
environment family's renderer:

- gymnax classic control (CartPole, Pendulum, Acrobot, MountainCar): Gymnasium's renderer,
  the gymnax state copied into one Gymnasium environment (gymnax's `vis_gym` helpers);
- gymnax MinAtar, Catch, Pong, PointRobot and the mazes: gymnax's matplotlib `Visualizer`
  drawn on an Agg canvas of the requested size;
- Craftax-Classic: its JAX pixel renderer (16-pixel blocks, 144 x 144 frames).

The other gymnax ids (bandits, bsuite chains, DeepSea, ...) have no renderer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from scalerl.envs.jax_envs import CRAFTAX_PREFIX, GYMNAX_PREFIX, JaxEnv, make_jax_env
from scalerl.errors import ConfigError

CLASSIC_IDS = ("CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0",
               "MountainCarContinuous-v0")  # fmt: skip
"""gymnax ids rendered by Gymnasium's classic-control renderer."""

VISUALIZER_IDS = ("Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "Seaquest-MinAtar",
                  "SpaceInvaders-MinAtar", "Catch-bsuite", "Pong-misc", "PointRobot-misc",
                  "MetaMaze-misc", "FourRooms-misc")  # fmt: skip
"""gymnax ids drawn by gymnax's matplotlib visualizer."""

CRAFTAX_BLOCK_PIXELS = 16
"""Pixels per map block of Craftax-Classic frames (one of the renderer's texture sizes)."""

Act = Callable[[jax.Array], jax.Array]
"""Deterministic policy: one flat observation -> one action (in the agent's action space)."""


def renderable(env_id: str) -> bool:
    """Whether scalerl can record videos of the JAX-native id `env_id`."""
    if env_id.startswith(CRAFTAX_PREFIX):
        return True
    return env_id.removeprefix(GYMNAX_PREFIX) in CLASSIC_IDS + VISUALIZER_IDS


def check_renderable(env_id: str, run_dir: Path | str) -> None:
    """Raises ConfigError (one line, naming what works) for a JAX-native id without renderer."""
    if not renderable(env_id):
        names = ", ".join(CLASSIC_IDS + VISUALIZER_IDS)
        raise ConfigError(
            f"cannot record a video of {run_dir}: {env_id} has no renderer; evaluate it "
            f"without --video (videos work for craftax:Craftax-Classic-Symbolic-v1, gymnax ids "
            f"{names}, and Gymnasium/DMC/MuJoCo ids)"
        )


def episode_states(
    env: JaxEnv, act: Act, key: jax.Array, episodes: int, max_frames: int | None = None
) -> list[Any]:
    """Environment states of `episodes` episodes of `act`: each reset state and the state after
    every step (one frame each), stopping early once `max_frames` states are collected."""
    step = jax.jit(env._advance)  # termination and the time limit (gymnax's is_truncated)
    reset = jax.jit(env.reset)
    states: list[Any] = []
    for _ in range(episodes):
        key, reset_key = jax.random.split(key)
        state, obs = reset(reset_key)
        states.append(state)
        done = False
        while not done and (max_frames is None or len(states) < max_frames):
            key, step_key = jax.random.split(key)
            state, out = step(step_key, state, act(obs.reshape(-1)))
            obs = out.obs
            states.append(state)
            done = bool(out.terminated | out.truncated)
        if max_frames is not None and len(states) >= max_frames:
            break
    return states


def _classic_frames(env: JaxEnv, states: list[Any]) -> list[np.ndarray]:
    """Gymnasium's rendering of gymnax classic-control states (its own frame size)."""
    import gymnasium as gym
    from gymnax.visualize import vis_gym

    name = env.env.name
    gym_env = gym.make(name, render_mode="rgb_array")
    try:
        gym_env.reset(seed=0)
        raw = gym_env.unwrapped
        vis_gym.set_gym_params(raw, name, env.params)
        frames = []
        for state in states:
            raw.state = vis_gym.get_gym_state(state, name)
            if name == "Pendulum-v1":
                raw.last_u = np.asarray(state.last_u, np.float64)
            frames.append(np.asarray(gym_env.render(), np.uint8))
        return frames
    finally:
        gym_env.close()


def _visualizer_frames(env: JaxEnv, states: list[Any], size: tuple[int, int]) -> list[np.ndarray]:
    """gymnax's matplotlib visualizer drawn on an Agg canvas of `size` = (height, width)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from gymnax.visualize.visualizer import Visualizer

    vis = Visualizer(env.env, env.params, states)
    try:
        dpi = size[0] / 5.0  # the visualizer's 5-inch-high layout, scaled to the frame height
        vis.fig.set_dpi(dpi)
        vis.fig.set_size_inches(size[1] / dpi, 5.0)
        vis.init()
        frames = []
        for i in range(len(states)):
            vis.update(i)
            vis.fig.canvas.draw()
            frames.append(np.array(vis.fig.canvas.buffer_rgba())[..., :3])
        return frames
    finally:
        plt.close(vis.fig)


def _craftax_frames(states: list[Any]) -> list[np.ndarray]:
    """Craftax-Classic's pixel renderer (jitted), as uint8 frames."""
    from craftax.craftax_classic.renderer import make_craftax_pixel_renderer

    render = jax.jit(make_craftax_pixel_renderer(CRAFTAX_BLOCK_PIXELS))
    return [np.asarray(render(s)).clip(0, 255).astype(np.uint8) for s in states]


def render_states(env: JaxEnv, states: list[Any], size: tuple[int, int]) -> list[np.ndarray]:
    """One `(height, width, 3)` uint8 frame per state (size: the visualizer ids only; classic
    control and Craftax frames keep their renderer's size)."""
    if env.env_id.startswith(CRAFTAX_PREFIX):
        return _craftax_frames(states)
    if env.env.name in CLASSIC_IDS:
        return _classic_frames(env, states)
    return _visualizer_frames(env, states, size)


def jax_frames(
    env_id: str,
    act: Act,
    seed: int,
    episodes: int = 1,
    size: tuple[int, int] = (240, 320),
    max_frames: int | None = None,
) -> list[np.ndarray]:
    """Frames of `episodes` deterministic episodes of `act` in the JAX-native env `env_id`.

    Raises:
        ConfigError: `env_id` has no renderer.
    """
    check_renderable(env_id, env_id)
    env = make_jax_env(env_id)
    states = episode_states(env, act, jax.random.PRNGKey(seed), episodes, max_frames)
    return render_states(env, states, size)
