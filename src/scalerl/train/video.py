"""Evaluation videos: run a policy in an env rendered headless, write MP4 or GIF (docs/video.md).

Rendering uses MuJoCo's offscreen OpenGL through ``MUJOCO_GL`` (EGL by default, OSMesa as the
fallback; both render in software without a GPU). MP4 goes through imageio-ffmpeg, whose wheel
ships its own ffmpeg binary; GIF through Pillow.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.envs import make_env, suite_preset
from scalerl.envs.gl import render_error
from scalerl.errors import ConfigError, EnvError, ScalerlError

Policy = Callable[[np.ndarray], np.ndarray]
"""A numpy policy: one observation -> one action in [-1, 1]."""

VIDEO_SUFFIXES = (".mp4", ".gif")
"""Supported output formats, chosen by the file suffix."""

DEFAULT_SIZE = (240, 320)
"""Default ``(height, width)`` of recorded frames."""

VIDEO_DIR = "videos"
"""Subdirectory of a run holding its videos."""


def _silence_sdl_audio() -> None:
    """pygame (classic-control rendering) would open an ALSA sound card and print errors on a
    headless machine; videos need no sound, so SDL gets its dummy audio driver unless set."""
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def _env_name(env: gym.Env) -> str:
    """The id an env made by ``make_env`` was created with (for error messages)."""
    try:
        return str(env.get_wrapper_attr("env_id"))
    except AttributeError:
        return type(env.unwrapped).__name__


def render_frame(env: gym.Env) -> np.ndarray:
    """Renders one RGB frame of ``env`` (made with ``render_mode='rgb_array'``).

    Returns:
        A ``(height, width, 3)`` uint8 array.

    Raises:
        EnvError: The env does not render RGB frames, or headless OpenGL is unavailable (the
            message names the ``MUJOCO_GL`` setting and the system packages to install).
    """
    try:
        frame = env.render()
    except EnvError:
        raise
    except Exception as err:  # EGL/OSMesa/GLFW failures surface as many exception types
        raise render_error(_env_name(env), err) from err
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise EnvError(
            f"{_env_name(env)} returned no RGB frame from render(); create it with "
            "make_env(..., render_mode='rgb_array')"
        )
    return np.ascontiguousarray(frame[..., :3], dtype=np.uint8)


def render_episodes(
    env: gym.Env, policy: Policy, episodes: int = 1, max_frames: int | None = None
) -> list[np.ndarray]:
    """Runs ``policy`` for whole episodes and renders a frame after every reset and step.

    Args:
        env: An env made by ``make_env(..., render_mode='rgb_array')``.
        policy: Maps one observation to one action.
        episodes: Number of episodes (each ends on termination or truncation).
        max_frames: Stop once this many frames are recorded in total; ``None`` = no limit.

    Returns:
        The frames, ``(height, width, 3)`` uint8 each; one per agent step plus one per reset.
    """
    frames: list[np.ndarray] = []
    for _ in range(episodes):
        obs, _ = env.reset()
        frames.append(render_frame(env))
        done = False
        while not done and (max_frames is None or len(frames) < max_frames):
            obs, _, terminated, truncated, _ = env.step(policy(obs))
            frames.append(render_frame(env))
            done = terminated or truncated
        if max_frames is not None and len(frames) >= max_frames:
            break
    return frames


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """Pads height and width to even sizes (H.264 in yuv420p needs them) by repeating edges."""
    pad = ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0))
    return np.pad(frame, pad, mode="edge") if any(p[1] for p in pad) else frame


def _write_mp4(frames: Sequence[np.ndarray], path: Path, fps: int) -> None:
    """Writes H.264 MP4 with imageio-ffmpeg's bundled ffmpeg."""
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (imageio's ffmpeg plugin needs it)
    except ImportError:
        raise ScalerlError(
            "writing MP4 needs imageio and imageio-ffmpeg; pip install imageio imageio-ffmpeg "
            "(or write a .gif)"
        ) from None
    options = {"fps": fps, "codec": "libx264", "macro_block_size": 1, "pixelformat": "yuv420p"}
    with warnings.catch_warnings():  # JAX warns on any fork; ffmpeg's fork+exec is safe
        warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
        with imageio.get_writer(path, format="FFMPEG", mode="I", **options) as writer:
            for frame in frames:
                writer.append_data(_pad_even(frame))


def _write_gif(frames: Sequence[np.ndarray], path: Path, fps: int) -> None:
    """Writes a looping GIF with Pillow (frame duration rounded to GIF's 10 ms steps)."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    duration = max(10, round(100 / fps) * 10)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)


def write_video(frames: Sequence[np.ndarray], path: Path | str, fps: int = 30) -> Path:
    """Writes frames to an MP4 or GIF file, chosen by the suffix of ``path``.

    Args:
        frames: ``(height, width, 3)`` uint8 frames, all the same size.
        path: Output file ending in ``.mp4`` or ``.gif``; parent directories are created.
        fps: Frames per second of playback.

    Returns:
        The written path.

    Raises:
        ScalerlError: Unsupported suffix, no frames, fps < 1, or MP4 support not installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ScalerlError(f"cannot write video {path}: use a .mp4 or .gif file name")
    if not frames or fps < 1:
        raise ScalerlError(f"cannot write video {path}: need >= 1 frame and fps >= 1 (fps={fps})")
    path.parent.mkdir(parents=True, exist_ok=True)
    (_write_mp4 if suffix == ".mp4" else _write_gif)(frames, path, fps)
    return path


def record_episodes(
    env_id: str,
    seed: int,
    policy: Policy,
    out: Path | str,
    *,
    episodes: int = 1,
    action_repeat: int | None = None,
    max_episode_steps: int | None = None,
    fps: int = 30,
    size: tuple[int, int] = DEFAULT_SIZE,
    max_frames: int | None = None,
) -> Path:
    """Builds a rendering env, records ``episodes`` episodes of ``policy`` and writes ``out``.

    Args:
        env_id: Environment id accepted by ``make_env``.
        seed: Environment seed.
        policy: Numpy policy, one observation -> one action.
        out: Output ``.mp4`` or ``.gif`` path.
        episodes: Episodes recorded back to back in one file.
        action_repeat: Raw steps per agent step (``None`` = suite preset); one frame per agent step.
        max_episode_steps: Episode limit in raw steps (``None`` = suite preset).
        fps: Playback frames per second.
        size: ``(height, width)`` of the frames.
        max_frames: Cap on the number of frames (``None`` = whole episodes).

    Returns:
        The written path.

    Raises:
        EnvError: Unknown env or rendering unavailable. ScalerlError: bad output path.
    """
    _silence_sdl_audio()
    env = make_env(
        env_id,
        seed,
        action_repeat=action_repeat,
        max_episode_steps=max_episode_steps,
        render_mode="rgb_array",
        render_size=size,
    )
    try:
        frames = render_episodes(env, policy, episodes, max_frames)
    finally:
        env.close()
    return write_video(frames, out, fps)


def check_rendering(env_id: str, size: tuple[int, int] = DEFAULT_SIZE) -> None:
    """Renders one frame of ``env_id``; call before training with periodic videos to fail early.

    Raises:
        EnvError: Unknown env or headless rendering unavailable (names the packages to install).
    """
    _silence_sdl_audio()
    env = make_env(env_id, 0, render_mode="rgb_array", render_size=size)
    try:
        env.reset()
        render_frame(env)
    finally:
        env.close()


def video_path(run_dir: Path | str, env_step: int, suffix: str = ".mp4") -> Path:
    """``<run>/videos/eval-<env_step>.mp4``: where a run's video at ``env_step`` frames goes."""
    return Path(run_dir) / VIDEO_DIR / f"eval-{env_step}{suffix}"


def maybe_record(
    run_dir: Path | str,
    env_id: str,
    seed: int,
    policy: Policy,
    agent_step: int,
    every: int,
    *,
    action_repeat: int | None = None,
    max_episode_steps: int | None = None,
    episodes: int = 1,
    fps: int = 30,
    size: tuple[int, int] = DEFAULT_SIZE,
) -> Path | None:
    """Periodic recording for a training loop: records if ``agent_step`` is a multiple of ``every``.

    Writes ``<run>/videos/eval-<env_step>.mp4`` with ``env_step = agent_step * action_repeat``
    (the x-axis of metrics.csv). Independent of the loop: it builds its own rendering env.

    Args:
        run_dir: The run directory.
        env_id: The run's environment id.
        seed: Environment seed of the recording.
        policy: Deterministic numpy policy of the current agent.
        agent_step: Current agent (interaction) step.
        every: Record every this many agent steps; ``<= 0`` disables recording.
        action_repeat: The run's action repeat (``None`` = suite preset).
        max_episode_steps: The run's episode limit in raw steps (``None`` = suite preset).
        episodes: Episodes per video.
        fps: Playback frames per second.
        size: ``(height, width)`` of the frames.

    Returns:
        The video path, or ``None`` if nothing was recorded at this step.
    """
    if every <= 0 or agent_step % every:
        return None
    repeat = action_repeat or suite_preset(env_id).action_repeat
    out = video_path(run_dir, agent_step * repeat)
    return record_episodes(
        env_id,
        seed,
        policy,
        out,
        episodes=episodes,
        action_repeat=repeat,
        max_episode_steps=max_episode_steps,
        fps=fps,
        size=size,
    )


def seed_policy(batched: Callable, states: Any, index: int = 0) -> Policy:
    """One seed's numpy policy from a policy over a leading seed axis.

    Args:
        batched: ``(states, obs_batch) -> actions``, e.g. ``evaluate.make_policy(sac)``.
        states: Agent states stacked along a leading seed axis.
        index: The seed's position on that axis.

    Returns:
        ``policy(obs) -> action`` for that seed, as numpy arrays.
    """
    import jax

    one = jax.tree_util.tree_map(lambda x: x[index : index + 1], states)
    return lambda obs: np.asarray(batched(one, np.asarray(obs)[None]))[0]


@dataclass(frozen=True)
class RunPlayback:
    """What recording a saved run needs: its deterministic policy and environment settings."""

    policy: Policy
    env: str
    seed: int
    action_repeat: int
    max_episode_steps: int | None
    env_step: int
    """Environment frames of the checkpoint (names the default video file)."""


def run_policy(run_dir: Path | str) -> tuple[Policy, dict]:
    """A saved off-policy run's deterministic policy as a numpy callable, and its checkpoint
    metadata."""
    import jax

    from scalerl.train.evaluate import load_run_agent, make_policy

    sac, state, meta = load_run_agent(Path(run_dir))
    states = jax.tree_util.tree_map(lambda x: x[None], state)
    return seed_policy(make_policy(sac), states), meta


def _off_policy_playback(run_dir: Path) -> RunPlayback:
    """`RunPlayback` of an off-policy (SAC-family) run."""
    from scalerl.train.setup import read_config

    cfg = read_config(run_dir)
    policy, meta = run_policy(run_dir)
    env_step = int(meta.get("env_step", meta.get("agent_step", 0) * cfg.action_repeat))
    return RunPlayback(
        policy, cfg.env, cfg.seed, cfg.action_repeat, cfg.max_episode_steps, env_step
    )


def _ppo_playback(run_dir: Path) -> RunPlayback:
    """`RunPlayback` of a PPO run on a Gymnasium/DMC/MuJoCo id (the host loop's environments)."""
    import jax

    from scalerl.train.ppo_evaluate import host_policy, load_ppo_checkpoint

    cfg, agent, state, meta = load_ppo_checkpoint(run_dir)
    states = jax.tree_util.tree_map(lambda x: x[None], state)
    policy = seed_policy(host_policy(agent), states)
    repeat = cfg.action_repeat or suite_preset(cfg.env).action_repeat
    env_step = int(meta.get("env_step", 0))
    return RunPlayback(policy, cfg.env, cfg.seed, repeat, cfg.max_episode_steps, env_step)


def _own_loop_run(run_dir: Path | str) -> tuple[str, str] | None:
    """(algorithm, env id) of a run that `_record_own_loop_run` records: any run on a
    JAX-native id (SAC, TD3 and DDPG as "sac"), DQN and PQN on any id; None for other runs."""
    from scalerl.envs.jax_envs import is_jax_env
    from scalerl.train.algo_run import config_fields

    fields = config_fields(Path(run_dir))
    algo, env = fields.get("algo"), str(fields.get("env", ""))
    if algo in ("dqn", "pqn") or is_jax_env(env):
        return algo or "sac", env
    return None


def check_recordable(run_dir: Path | str) -> None:
    """Fails early for runs whose environment scalerl cannot render.

    Raises:
        ConfigError: A run on a gymnax id without renderer (bandits, bsuite chains, ...); the
            message lists the ids that render.
    """
    from scalerl.envs.jax_envs import is_jax_env
    from scalerl.train.jax_video import check_renderable

    own = _own_loop_run(run_dir)
    if own is not None and is_jax_env(own[1]):
        check_renderable(own[1], run_dir)


def run_playback(run_dir: Path | str) -> RunPlayback:
    """A saved run's deterministic numpy policy and Gymnasium environment settings (off-policy
    runs, PPO runs on Gymnasium/DMC/MuJoCo ids).

    Raises:
        ScalerlError: Not a run directory, bad checkpoint, or a run `record_run` records
            otherwise (PPO on a JAX-native id, DQN, PQN).
    """
    from scalerl.train import ppo_run

    if _own_loop_run(run_dir) is not None:
        raise ConfigError(f"{run_dir} is not a SAC-family or Gymnasium PPO run; use record_run")
    run_dir = Path(run_dir)
    return _ppo_playback(run_dir) if ppo_run.is_run(run_dir) else _off_policy_playback(run_dir)


def _discrete_frames(
    env_id: str,
    policy: Policy,
    seed: int,
    episodes: int,
    max_frames: int | None,
    max_episode_steps: int | None,
) -> list[np.ndarray]:
    """Frames of a discrete-action Gymnasium or ale: env (Atari: the full-colour screen of the
    evaluation protocol, one frame per agent step)."""
    from scalerl.envs.ale import ALE_PREFIX, AtariOptions, evaluation_options
    from scalerl.envs.discrete import make_discrete_env

    atari = evaluation_options(AtariOptions()) if env_id.startswith(ALE_PREFIX) else None
    env = make_discrete_env(
        env_id, seed, max_episode_steps=max_episode_steps, atari=atari, render_mode="rgb_array"
    )
    try:
        return render_episodes(env, policy, episodes, max_frames)
    finally:
        env.close()


def _record_own_loop_run(
    run_dir: Path,
    algo: str,
    env_id: str,
    out: Path | str | None,
    seed: int | None,
    frames_args: tuple[int, int, tuple[int, int], int | None],
) -> Path:
    """`record_run` of a run on a JAX-native id or of a DQN/PQN run: JAX-native ids render
    through `jax_video`, the others through Gymnasium's or ALE's renderer."""
    import importlib

    from scalerl.envs.jax_envs import is_jax_env
    from scalerl.train.algo_run import config_fields
    from scalerl.train.evaluate import SEPARATE_EVALUATORS
    from scalerl.train.jax_video import jax_frames

    module = SEPARATE_EVALUATORS.get(algo, "scalerl.train.evaluate")
    act, env_step = importlib.import_module(module).video_policy(run_dir)

    def policy(obs: np.ndarray) -> np.ndarray:
        return np.asarray(act(np.asarray(obs)[None]))[0]

    fields = config_fields(run_dir)
    seed = int(fields["seed"]) if seed is None else seed
    episodes, fps, size, max_frames = frames_args
    if is_jax_env(env_id):
        frames = jax_frames(env_id, policy, seed, episodes, size, max_frames)
    else:
        limit = fields.get("max_episode_steps")
        frames = _discrete_frames(env_id, policy, seed, episodes, max_frames, limit)
    return write_video(frames, video_path(run_dir, env_step) if out is None else out, fps)


def record_run(
    run_dir: Path | str,
    out: Path | str | None = None,
    episodes: int = 1,
    seed: int | None = None,
    fps: int = 30,
    width: int = 320,
    height: int = 240,
    max_frames: int | None = None,
) -> Path:
    """Records deterministic-policy episodes of a saved run (``scalerl evaluate RUN --video``).

    Works for off-policy runs and PPO runs on Gymnasium/DMC/MuJoCo ids (rendered through
    ``make_env``); runs on Craftax-Classic and the gymnax ids with a renderer
    (``scalerl.train.jax_video``; other gymnax ids raise ``ConfigError``); DQN and PQN runs on
    ``ale:`` ids (the full-colour screen) and discrete Gymnasium ids. DQN and PQN play greedily.

    Args:
        run_dir: Run directory (``runs/<name>``) with config.json and its checkpoint.
        out: Output ``.mp4``/``.gif``; ``None`` = ``<run>/videos/eval-<env_step>.mp4``.
        episodes: Episodes recorded back to back.
        seed: Environment seed (default: the run's seed).
        fps: Playback frames per second.
        width: Frame width in pixels.
        height: Frame height in pixels.
        max_frames: Cap on the number of frames (``None`` = whole episodes).

    Returns:
        The written path.

    Raises:
        ScalerlError: Not a run directory, bad checkpoint, bad output path, rendering unavailable
            (or not implemented for the run's environment).
    """
    check_recordable(run_dir)
    own = _own_loop_run(run_dir)
    if own is not None:
        frames_args = (episodes, fps, (height, width), max_frames)
        return _record_own_loop_run(Path(run_dir), *own, out, seed, frames_args)
    run = run_playback(run_dir)
    return record_episodes(
        run.env,
        run.seed if seed is None else seed,
        run.policy,
        video_path(run_dir, run.env_step) if out is None else out,
        episodes=episodes,
        action_repeat=run.action_repeat,
        max_episode_steps=run.max_episode_steps,
        fps=fps,
        size=(height, width),
        max_frames=max_frames,
    )
