"""Frames of JAX-native environments (gymnax visualizer ids, Craftax-Classic) for videos."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.errors import ConfigError
from scalerl.train.jax_video import jax_frames, renderable


def test_renderable_ids() -> None:
    assert renderable("gymnax:CartPole-v1") and renderable("gymnax:Breakout-MinAtar")
    assert renderable("craftax:Craftax-Classic-Symbolic-v1")
    assert not renderable("gymnax:SimpleBandit-bsuite")
    with pytest.raises(ConfigError, match="SimpleBandit-bsuite has no renderer"):
        jax_frames("gymnax:SimpleBandit-bsuite", lambda obs: jnp.int32(0), 0)


@pytest.mark.slow  # 8 s: compiles Breakout's step and draws with matplotlib
def test_minatar_frames_have_the_asked_size_and_move() -> None:
    frames = jax_frames("gymnax:Breakout-MinAtar", lambda obs: jnp.int32(0), 0, 2, (48, 64), 5)
    assert len(frames) == 5  # capped: reset + 4 steps of the first episode
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert len({f.tobytes() for f in frames}) > 1  # the ball moves


def test_an_episode_ends_at_the_time_limit() -> None:
    # gymnax 1.0.1 reports Pendulum's 200-step limit through is_truncated only, not `done`
    from scalerl.envs.jax_envs import make_jax_env
    from scalerl.train.jax_video import episode_states

    env = make_jax_env("gymnax:Pendulum-v1")
    states = episode_states(env, lambda obs: jnp.zeros((1,)), jax.random.PRNGKey(0), 2)
    assert len(states) == 2 * 201  # each episode: its reset state and 200 steps
