"""ALE adapter: preprocessing on synthetic frames (hand-computed), ROMs, shapes, reward clipping."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from scalerl.envs.ale import (
    ALE_IDS,
    AtariOptions,
    AtariPreprocessing,
    FrameStack,
    area_weights,
    evaluation_options,
    make_ale_env,
    max_pool_frames,
    parse_ale_id,
    resize_area,
    rom_name,
)
from scalerl.envs.discrete import make_discrete_env, num_actions
from scalerl.errors import EnvError

# --- pure pieces ----------------------------------------------------------------------------------


def test_max_pool_hand_computed() -> None:
    a = np.array([[1, 9], [3, 0]], np.uint8)
    b = np.array([[2, 4], [3, 7]], np.uint8)
    np.testing.assert_array_equal(max_pool_frames(a, b), [[2, 9], [3, 7]])


def test_resize_area_hand_computed() -> None:
    # 4 -> 2: plain 2x2 block means.
    frame = np.arange(16, dtype=np.uint8).reshape(4, 4)
    np.testing.assert_array_equal(resize_area(frame, 2), [[2, 4], [10, 12]])  # 2.5 rounds to even
    # 5 -> 2 (ratio 2.5, as 210 -> 84): rows 0,1 + half of 2, then half of 2 + rows 3,4.
    np.testing.assert_allclose(area_weights(5, 2)[0], [0.4, 0.4, 0.2, 0.0, 0.0])
    ramp = np.repeat(np.array([[0], [10], [20], [30], [40]], np.uint8), 5, axis=1)
    np.testing.assert_array_equal(resize_area(ramp, 2), [[8, 8], [32, 32]])
    assert resize_area(np.zeros((210, 160), np.uint8), 84).shape == (84, 84)


def test_frame_stack_order() -> None:
    stack = FrameStack(3)
    first = stack.reset(np.full((2, 2), 1, np.uint8))
    assert first.shape == (2, 2, 3) and (first == 1).all()
    stack.push(np.full((2, 2), 2, np.uint8))
    obs = stack.push(np.full((2, 2), 3, np.uint8))
    np.testing.assert_array_equal(obs[0, 0], [1, 2, 3])  # oldest first, newest last


def test_options_validation_and_evaluation_protocol() -> None:
    with pytest.raises(EnvError, match="frame_skip >= 1"):
        AtariOptions(frame_skip=0)
    with pytest.raises(EnvError, match="sticky_actions"):
        AtariOptions(sticky_actions=1.5)
    ev = evaluation_options(AtariOptions(terminal_on_life_loss=True))
    assert not ev.clip_rewards and not ev.terminal_on_life_loss and ev.sticky_actions == 0.25


def test_ale_ids() -> None:
    assert len(ALE_IDS) == 57 and "ale:Pong" in ALE_IDS
    assert (
        rom_name("MontezumaRevenge") == "montezuma_revenge" and rom_name("UpNDown") == "up_n_down"
    )
    assert [parse_ale_id(i) for i in ALE_IDS][:2] == ["alien", "amidar"]  # every ROM ships
    for bad in ("ale:", "Pong", "ale:NotAGame"):
        with pytest.raises(EnvError, match="ale"):
            parse_ale_id(bad)


# --- the wrapper on a scripted fake emulator ------------------------------------------------------


class _Lives:
    def __init__(self) -> None:
        self.value = 3

    def lives(self) -> int:
        return self.value


class FakeAtari(gym.Env):
    """Frame k is a constant 4x4 image of value 10·k; rewards and life losses are scripted."""

    observation_space = gym.spaces.Box(0, 255, (4, 4), np.uint8)
    action_space = gym.spaces.Discrete(3)

    def __init__(self, rewards: dict[int, float], life_lost_at: int = -1) -> None:
        self.ale, self.rewards, self.life_lost_at = _Lives(), rewards, life_lost_at
        self.frame, self.resets = 0, 0

    def _obs(self) -> np.ndarray:
        return np.full((4, 4), 10 * self.frame, np.uint8)

    def reset(self, *, seed=None, options=None):
        self.frame, self.resets = 0, self.resets + 1
        return self._obs(), {}

    def step(self, action):
        self.frame += 1
        if self.frame == self.life_lost_at:
            self.ale.value -= 1
        return self._obs(), self.rewards.get(self.frame, 0.0), False, False, {}


def _wrap(env: FakeAtari, **kwargs) -> AtariPreprocessing:
    opts = AtariOptions(noop_max=0, screen_size=2, frame_stack=2, **kwargs)
    return AtariPreprocessing(env, opts)


def test_frame_skip_max_pool_and_stack_on_synthetic_frames() -> None:
    env = _wrap(FakeAtari({}))
    obs, _ = env.reset()
    assert obs.shape == (2, 2, 2) and obs.dtype == np.uint8 and (obs == 0).all()
    obs, *_ = env.step(0)  # frames 1..4; max of frames 3 and 4 = 40
    np.testing.assert_array_equal(obs[0, 0], [0, 40])
    obs, *_ = env.step(0)  # frames 5..8 -> 80
    np.testing.assert_array_equal(obs[0, 0], [40, 80])
    no_pool = _wrap(FakeAtari({}), max_pool=False, frame_skip=3)
    no_pool.reset()
    np.testing.assert_array_equal(no_pool.step(0)[0][0, 0], [0, 30])


def test_max_pool_takes_pixelwise_max_of_last_two_frames() -> None:
    class Flicker(FakeAtari):
        def _obs(self) -> np.ndarray:  # sprite visible on odd frames only (Atari flicker)
            frame = np.zeros((4, 4), np.uint8)
            frame[:2, :2] = 200 if self.frame % 2 else 0
            return frame

    env = _wrap(Flicker({}))
    env.reset()
    obs = env.step(0)[0][..., -1]  # frames 3 (sprite) and 4 (none) -> sprite kept
    np.testing.assert_array_equal(obs, [[200, 0], [0, 0]])


def test_reward_clipping_for_training_raw_reward_in_info() -> None:
    rewards = {1: 3.0, 3: 4.0, 6: -0.5}
    env = _wrap(FakeAtari(rewards))
    env.reset()
    _, reward, _, _, info = env.step(0)
    assert reward == 1.0 and info["raw_reward"] == 7.0
    _, reward, _, _, info = env.step(0)
    assert reward == -1.0 and info["raw_reward"] == -0.5
    raw_env = _wrap(FakeAtari(rewards), clip_rewards=False)
    raw_env.reset()
    assert raw_env.step(0)[1] == 7.0


@pytest.mark.parametrize("terminal", [False, True])
def test_life_loss_terminal_and_continue_on_reset(terminal: bool) -> None:
    fake = FakeAtari({}, life_lost_at=6)
    env = _wrap(fake, terminal_on_life_loss=terminal)
    env.reset()
    assert not env.step(0)[4]["life_loss"]
    _, _, terminated, _, info = env.step(0)
    assert info["life_loss"] and terminated == terminal
    env.reset()  # after a life-loss terminal the game goes on: no emulator reset
    assert fake.resets == 1 and fake.frame == 12


# --- the real emulator ----------------------------------------------------------------------------


def test_roms_present_for_pong_and_breakout() -> None:
    from ale_py import roms

    for game in ("pong", "breakout"):
        path = roms.get_rom_path(game)
        assert path is not None and path.exists() and path.stat().st_size > 0


def test_pong_reset_step_shapes_dtypes_and_raw_reward() -> None:
    env = make_discrete_env("ale:Pong", 0, atari=AtariOptions(noop_max=2))
    obs, info = env.reset()
    assert obs.shape == (84, 84, 4) and obs.dtype == np.uint8 and obs in env.observation_space
    assert num_actions(env) == 6 and info["raw_reward"] == 0.0
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs.shape == (84, 84, 4) and obs.dtype == np.uint8 and obs.std() > 0
        assert reward in (-1.0, 0.0, 1.0) and isinstance(info["raw_reward"], float)
    assert info["episode_frame_number"] == 2 + 3 * 4
    again = make_ale_env("ale:Pong", 0, AtariOptions(noop_max=2)).reset()[0]
    np.testing.assert_array_equal(again, env.reset(seed=0)[0])
    full = dataclasses.replace(AtariOptions(), full_action_space=True)
    assert make_ale_env("ale:Breakout", 1, full).action_space.n == 18


@pytest.mark.parametrize(
    ("env_id", "obs_dim", "actions"), [("CartPole-v1", 4, 2), ("Acrobot-v1", 6, 3)]
)
def test_discrete_gymnasium_envs(env_id: str, obs_dim: int, actions: int) -> None:
    env = make_discrete_env(env_id, 0)
    obs, _ = env.reset()
    assert obs.shape == (obs_dim,) and obs.dtype == np.float32 and num_actions(env) == actions
    assert isinstance(env.step(0)[1], float)
    with pytest.raises(EnvError, match="not Discrete"):
        make_discrete_env("Pendulum-v1", 0)


def test_ale_vector_env_shapes() -> None:
    from scalerl.envs.ale import make_ale_vector_env

    env = make_ale_vector_env("ale:Pong", 2, AtariOptions(noop_max=2))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8  # channels first
    obs, reward, terminated, truncated, info = env.step(np.zeros(2, np.int64))
    assert obs.shape == (2, 4, 84, 84) and reward.shape == (2,) and terminated.shape == (2,)
    env.close()


def test_episode_frame_cap_truncates() -> None:
    env = make_ale_env("ale:Pong", 0, AtariOptions(noop_max=0, max_episode_frames=40))
    env.reset()
    flags = [env.step(0)[2:4] for _ in range(10)]  # 10 agent steps = 40 frames
    assert flags[-1] == (False, True) and not any(any(f) for f in flags[:-1])
