"""Evaluation videos: headless DMC rendering, MP4/GIF round trips, run recording, errors."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import jax
import numpy as np
import pytest

from scalerl.config import TrainConfig, agent_preset, replace
from scalerl.envs import make_env
from scalerl.errors import EnvError, ScalerlError
from scalerl.train.checkpoint import save_checkpoint
from scalerl.train.setup import CHECKPOINT_NAME, build_agent, resolve, write_config
from scalerl.train.video import (
    check_rendering,
    maybe_record,
    record_run,
    render_episodes,
    render_frame,
    seed_policy,
    video_path,
    write_video,
)

ENV = "dmc:cartpole-balance"
SIZE = (48, 64)


def swing(obs: np.ndarray) -> np.ndarray:
    """A policy that moves the cart, so consecutive frames differ."""
    return np.array([np.sign(np.sin(10.0 * obs[0]) + 0.5)], np.float32)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    env = make_env(ENV, 0, render_mode="rgb_array", render_size=SIZE)
    try:
        return render_episodes(env, swing, max_frames=10)
    finally:
        env.close()


def _distinct(frames: list[np.ndarray]) -> int:
    return len({frame.tobytes() for frame in frames})


def test_render_dmc_frames(frames: list[np.ndarray]) -> None:
    assert len(frames) == 10
    assert all(f.shape == (*SIZE, 3) and f.dtype == np.uint8 for f in frames)
    assert _distinct(frames) > 1
    assert all(f.mean() > 20 and f.std() > 5 for f in frames)  # not black, not flat


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_write_video_round_trip(frames: list[np.ndarray], tmp_path: Path, suffix: str) -> None:
    path = write_video(frames, tmp_path / "sub" / f"clip{suffix}", fps=20)
    assert path.is_file() and path.stat().st_size > 1000
    decoded = imageio.mimread(path, memtest=False)
    assert len(decoded) == len(frames)
    assert all(np.asarray(f).shape[:2] == SIZE for f in decoded)
    assert _distinct([np.asarray(f) for f in decoded]) > 1
    pairs = zip(decoded, frames, strict=True)
    diffs = [np.abs(np.asarray(d, float)[..., :3] - f).mean() for d, f in pairs]
    assert np.mean(diffs) < 12  # lossy H.264 and the GIF palette stay close to the frames


def test_mp4_pads_odd_sizes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    clip = [rng.integers(0, 255, (15, 21, 3), dtype=np.uint8) for _ in range(3)]
    decoded = imageio.mimread(write_video(clip, tmp_path / "odd.mp4"), memtest=False)
    assert len(decoded) == 3 and np.asarray(decoded[0]).shape == (16, 22, 3)


@pytest.mark.parametrize(
    ("name", "frames", "fps", "match"),
    [
        ("clip.avi", 1, 30, r"use a \.mp4 or \.gif file name"),
        ("clip.mp4", 0, 30, "need >= 1 frame"),
        ("clip.gif", 1, 0, "fps >= 1"),
    ],
)
def test_write_video_errors(tmp_path: Path, name: str, frames: int, fps: int, match: str) -> None:
    clip = [np.zeros((8, 8, 3), np.uint8)] * frames
    with pytest.raises(ScalerlError, match=match):
        write_video(clip, tmp_path / name, fps)


def test_episode_boundaries() -> None:
    """One frame per reset and per agent step; episodes end at the (raw-step) time limit."""
    env = make_env(ENV, 0, max_episode_steps=6, render_mode="rgb_array", render_size=(16, 16))
    clip = render_episodes(env, swing, episodes=2)
    env.close()
    assert len(clip) == 2 * (1 + 3)  # 6 raw steps = 3 agent steps at action repeat 2


class BrokenGL(gym.Env):
    """Fake env whose renderer fails like a missing EGL library."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def render(self):
        raise RuntimeError("No OpenGL rendering backend is available.")


def test_render_errors_are_one_line() -> None:
    with pytest.raises(EnvError, match=r"MUJOCO_GL=\w+ \(No OpenGL.*apt-get install libegl1") as e:
        render_frame(BrokenGL())
    assert "\n" not in str(e.value) and "libosmesa6" in str(e.value)
    with pytest.raises(EnvError, match="render_mode='rgb_array'"):
        render_frame(make_env(ENV, 0))


def test_check_rendering() -> None:
    check_rendering(ENV, size=(16, 16))


def test_maybe_record(tmp_path: Path) -> None:
    assert maybe_record(tmp_path, ENV, 0, swing, agent_step=3, every=5) is None
    assert maybe_record(tmp_path, ENV, 0, swing, agent_step=5, every=0) is None
    kwargs = {"max_episode_steps": 10, "size": (32, 32)}
    path = maybe_record(tmp_path, ENV, 0, swing, agent_step=10, every=5, **kwargs)
    assert path == video_path(tmp_path, 20) == tmp_path / "videos" / "eval-20.mp4"
    assert len(imageio.mimread(path, memtest=False)) == 1 + 5


def test_seed_policy() -> None:
    states = {"w": np.array([1.0, 2.0, 3.0], np.float32)}
    policy = seed_policy(lambda one, obs: one["w"][:, None] * obs, states, index=2)
    np.testing.assert_allclose(policy(np.ones(2, np.float32)), [3.0, 3.0])


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory with config.json and an untrained checkpoint (no training needed)."""
    run_dir = tmp_path_factory.mktemp("runs") / "fake"
    run_dir.mkdir()
    agent = replace(agent_preset("simbav2"), critic_width=16, actor_width=16)
    cfg = TrainConfig(env=ENV, max_episode_steps=12, agent=agent, env_steps=100, warmup_steps=10)
    cfg = resolve(cfg)
    write_config(run_dir, cfg)
    state = build_agent(cfg, 5, 1).init(jax.random.PRNGKey(0))
    save_checkpoint(run_dir / CHECKPOINT_NAME, state, {"agent_step": 7, "env_step": 14})
    return run_dir


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # JAX warns when imageio reads back
def test_record_run(fake_run: Path, tmp_path: Path) -> None:
    path = record_run(fake_run, episodes=2, seed=3, width=32, height=24)
    assert path == fake_run / "videos" / "eval-14.mp4"  # env_step of the checkpoint
    decoded = imageio.mimread(path, memtest=False)
    assert len(decoded) == 2 * (1 + 6) and np.asarray(decoded[0]).shape == (24, 32, 3)
    with pytest.raises(ScalerlError, match="not a scalerl run directory"):
        record_run(tmp_path / "missing")


PPO_ENV = "Pendulum-v1"


@pytest.fixture(scope="module")
def ppo_host_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PPO run directory on a Gymnasium id (host loop) with an untrained checkpoint."""
    from scalerl.agents.ppo import make_ppo
    from scalerl.agents.ppo_net import ActionSpec
    from scalerl.config_ppo import PPOConfig, PPOTrainConfig
    from scalerl.train.ppo_checkpoint import save_point
    from scalerl.train.ppo_run import write_ppo_config

    root = tmp_path_factory.mktemp("ppo")
    agent_cfg = PPOConfig(actor_width=8, value_width=8, num_envs=2, num_steps=8, num_minibatches=2)
    cfg = PPOTrainConfig(env=PPO_ENV, seed=1, max_episode_steps=9, run_root=root, agent=agent_cfg)
    run_dir = root / "ppo"
    run_dir.mkdir()
    write_ppo_config(run_dir, cfg)
    agent = make_ppo(agent_cfg, 3, ActionSpec(False, 1), num_iterations=1)
    save_point(run_dir, agent.init(jax.random.PRNGKey(1)), {}, {"iteration": 2, "env_step": 32})
    return run_dir


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_record_ppo_host_run(ppo_host_run: Path, capsys: pytest.CaptureFixture) -> None:
    """`scalerl evaluate RUN --video` on a PPO Gymnasium run: one frame per reset and step."""
    from scalerl.cli import main

    assert main(["evaluate", str(ppo_host_run), "--episodes", "1", "--video"]) == 0
    path = ppo_host_run / "videos" / "eval-32.mp4"  # env_step of the checkpoint
    assert f"video written to {path}" in capsys.readouterr().out
    decoded = [np.asarray(f) for f in imageio.mimread(path, memtest=False)]
    assert len(decoded) == 1 + 9 and _distinct(decoded) > 1  # the pendulum moves
    clip = record_run(ppo_host_run, ppo_host_run / "two.mp4", episodes=2, max_frames=15)
    assert len(imageio.mimread(clip, memtest=False)) == 15  # 10 of episode 1, 5 of episode 2


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_video_of_trained_ppo_host_run(tmp_path: Path) -> None:
    """Train PPO on Pendulum-v1 for 64 steps (host loop), then `scalerl evaluate --video`."""
    from scalerl.cli import main

    sizes = "--num-envs 2 --num-steps 16 --num-minibatches 2 --update-epochs 1".split()
    args = ["train", "--algo", "ppo", "--env", PPO_ENV, "--env-steps", "64", *sizes]
    args += ["--max-episode-steps", "12", "--actor-width", "8", "--value-width", "8"]
    args += ["--run-root", str(tmp_path), "--name", "pend", "--no-tensorboard", "--no-health"]
    assert main(args) == 0
    run = tmp_path / "pend"
    assert main(["evaluate", str(run), "--episodes", "1", "--video", "--video-episodes", "2"]) == 0
    decoded = imageio.mimread(run / "videos" / "eval-64.mp4", memtest=False)
    assert len(decoded) == 2 * (1 + 12)
