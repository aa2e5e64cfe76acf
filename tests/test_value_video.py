"""`scalerl evaluate --video` on DQN and PQN runs: greedy episodes of gymnax, Gymnasium and
ale: ids."""

from __future__ import annotations

import imageio.v2 as imageio
import jax
import numpy as np
import pytest

from scalerl.cli import main
from scalerl.envs.discrete import make_discrete_env
from scalerl.envs.jax_envs import make_jax_env
from scalerl.train.jax_video import episode_states
from scalerl.train.video import record_run
from test_dqn_eval import TINY
from test_pqn_evaluate import _fused_run

pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")


def test_pqn_gymnax_video_is_the_greedy_episode(tmp_path, capsys):
    """A PQN CartPole run whose Q prefers 'push right': the video shows that episode, one
    frame per reset and per step, and ends with the cart pushed right."""
    run = _fused_run(tmp_path, push_right=True)
    out = tmp_path / "pqn.mp4"
    args = ["evaluate", str(run), "--episodes", "1", "--video", "--video-out", str(out)]
    assert main(args) == 0
    assert f"video written to {out}" in capsys.readouterr().out
    env = make_jax_env("gymnax:CartPole-v1")
    states = episode_states(env, lambda obs: 1, jax.random.PRNGKey(0), episodes=1)  # seed 0
    assert len(imageio.mimread(out, memtest=False)) == len(states) >= 6
    assert float(states[-1].x_dot) > 0.5  # pushed right all the way


def test_dqn_gymnasium_video_renders_the_run(tmp_path):
    args = [*TINY, "--env", "CartPole-v1", "--run-root", str(tmp_path), "--name", "d"]
    assert main(["train", *args]) == 0
    path = record_run(tmp_path / "d", max_frames=5)
    assert path == tmp_path / "d" / "videos" / "eval-64.mp4"
    frames = imageio.mimread(path, memtest=False)
    assert len(frames) == 5 and np.asarray(frames[0]).shape == (400, 600, 3)


def test_ale_env_renders_the_colour_screen():
    pytest.importorskip("ale_py")
    env = make_discrete_env("ale:Pong", 0, render_mode="rgb_array")
    obs, _ = env.reset()
    frame = env.render()
    assert obs.shape == (84, 84, 4) and frame.shape == (210, 160, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 2  # colour, not the grayscale obs
    env.close()
