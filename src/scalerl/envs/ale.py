"""The Arcade Learning Environment (ale-py) with the standard Atari preprocessing.

Ids are ``ale:<Game>`` (``ale:Pong``, ``ale:Breakout``, ``ale:MontezumaRevenge``); the ROMs ship
in the ale-py wheel. Every step of the protocol is one field of :class:`AtariOptions`; the
defaults follow Machado et al. 2018 ("Revisiting the Arcade Learning Environment", §5: sticky
actions 0.25, episodes capped at 108,000 frames = 30 minutes, full episodes without life-loss
terminals) with the frame processing of Mnih et al. 2015 (Methods "Preprocessing": max over the
last two of every 4 frames, 84x84 luminance, 4 stacked frames; "Training details": rewards
clipped to [-1, 1], up to 30 no-op actions at the start of an episode).

The emulator runs with frame skip 1 and ALE's own sticky actions, so the 0.25 repeat chance
applies at every emulator frame, as in Machado et al. 2018 §5.2. Observations are uint8
``(84, 84, 4)`` channels-last (what `scalerl.networks.cnn.ConvTorso` takes). The reward is
clipped to its sign only when ``clip_rewards``; ``info["raw_reward"]`` always holds the
unclipped sum over the skipped frames, so evaluation can report game scores.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.envs.wrappers import SeedOnFirstReset
from scalerl.errors import EnvError

ALE_PREFIX = "ale:"
ALE_GAMES: tuple[str, ...] = (
    "Alien", "Amidar", "Assault", "Asterix", "Asteroids", "Atlantis", "BankHeist", "BattleZone",
    "BeamRider", "Berzerk", "Bowling", "Boxing", "Breakout", "Centipede", "ChopperCommand",
    "CrazyClimber", "Defender", "DemonAttack", "DoubleDunk", "Enduro", "FishingDerby", "Freeway",
    "Frostbite", "Gopher", "Gravitar", "Hero", "IceHockey", "Jamesbond", "Kangaroo", "Krull",
    "KungFuMaster", "MontezumaRevenge", "MsPacman", "NameThisGame", "Phoenix", "Pitfall", "Pong",
    "PrivateEye", "Qbert", "Riverraid", "RoadRunner", "Robotank", "Seaquest", "Skiing",
    "Solaris", "SpaceInvaders", "StarGunner", "Surround", "Tennis", "TimePilot", "Tutankham",
    "UpNDown", "Venture", "VideoPinball", "WizardOfWor", "YarsRevenge", "Zaxxon",
)  # fmt: skip
"""The 57 games of the Atari-57 benchmark (Badia et al. 2020, "Agent57", App. H)."""
ALE_IDS: tuple[str, ...] = tuple(ALE_PREFIX + game for game in ALE_GAMES)
"""``ale:<Game>`` ids of the Atari-57 games, listed by ``scalerl envs``."""
ATARI_SCREEN = (210, 160)
"""(height, width) of an Atari 2600 frame."""


@dataclasses.dataclass(frozen=True)
class AtariOptions:
    """Atari preprocessing; defaults: Machado et al. 2018 §5 with Mnih et al. 2015's frames."""

    noop_max: int = 30
    """Start each episode with 1..noop_max random no-ops (Mnih et al. 2015); 0 disables."""
    frame_skip: int = 4
    """Emulator frames per agent step, the action repeated (Mnih et al. 2015)."""
    max_pool: bool = True
    """Observe the pixel-wise max of the last two skipped frames (removes Atari flicker)."""
    screen_size: int = 84
    """Side of the square frame after area-averaging resize (84 in Mnih et al. 2015)."""
    frame_stack: int = 4
    """Stack this many processed frames along the channel axis (last axis)."""
    sticky_actions: float = 0.25
    """Probability the emulator repeats the previous action each frame (Machado et al. 2018)."""
    max_episode_frames: int = 108_000
    """Truncate episodes after this many emulator frames (30 min at 60 Hz); 0 = no cap."""
    clip_rewards: bool = True
    """Clip rewards to their sign for training; info['raw_reward'] keeps the game score."""
    terminal_on_life_loss: bool = False
    """Signal termination on every life lost (Mnih et al. 2015); the game continues on reset."""
    full_action_space: bool = False
    """Use all 18 actions instead of the game's minimal action set."""

    def __post_init__(self) -> None:
        checks = {
            "frame_skip >= 1": self.frame_skip >= 1,
            "frame_stack >= 1": self.frame_stack >= 1,
            "screen_size >= 1": self.screen_size >= 1,
            "noop_max >= 0": self.noop_max >= 0,
            "max_episode_frames >= 0": self.max_episode_frames >= 0,
            "0 <= sticky_actions <= 1": 0.0 <= self.sticky_actions <= 1.0,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise EnvError(f"invalid Atari options: need {', '.join(failed)}; fix the values")


def evaluation_options(options: AtariOptions) -> AtariOptions:
    """The same protocol for evaluation: unclipped rewards, episodes end only at game over."""
    return dataclasses.replace(options, clip_rewards=False, terminal_on_life_loss=False)


def rom_name(game: str) -> str:
    """CamelCase game name -> ale-py ROM id (``MontezumaRevenge`` -> ``montezuma_revenge``)."""
    if game == "UpNDown":
        return "up_n_down"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", game).lower()


def parse_ale_id(env_id: str) -> str:
    """``ale:Pong`` -> ``pong`` (the ROM id), checking the ROM ships with ale-py.

    Raises:
        EnvError: If the id is malformed, ale-py is missing or has no such ROM.
    """
    if not env_id.startswith(ALE_PREFIX) or len(env_id) == len(ALE_PREFIX):
        raise EnvError(f"bad ALE id {env_id!r}; use ale:<Game>, e.g. ale:Pong")
    try:
        from ale_py import roms
    except ImportError:
        raise EnvError(f"{env_id} needs ale-py; pip install 'scalerl[ale]'") from None
    name = rom_name(env_id[len(ALE_PREFIX) :])
    if name not in roms.get_all_rom_ids():
        raise EnvError(f"ale-py has no ROM {name!r} for {env_id}; see `scalerl envs --suite ale`")
    return name


def max_pool_frames(previous: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Pixel-wise max of two consecutive frames (Mnih et al. 2015, "Preprocessing")."""
    return np.maximum(previous, last)


@functools.lru_cache(maxsize=16)
def area_weights(source: int, target: int) -> np.ndarray:
    """(target, source) matrix averaging source pixels by overlapped area (OpenCV INTER_AREA).

    Output pixel i covers source interval [i·s/t, (i+1)·s/t); each source pixel contributes
    the length of its overlap with that interval, divided by s/t.
    """
    edges = np.arange(target + 1) * (source / target)
    left, right = edges[:-1, None], edges[1:, None]
    pixels = np.arange(source)[None, :]
    overlap = np.clip(np.minimum(right, pixels + 1) - np.maximum(left, pixels), 0.0, None)
    return overlap / (source / target)


@functools.lru_cache(maxsize=16)
def _sparse_weights(source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """`area_weights` as (target, K) source indices and float32 weights (K nonzeros per row)."""
    dense = area_weights(source, target)
    k = int(np.max(np.sum(dense > 0, axis=1)))
    index = np.argsort(dense <= 0, axis=1, kind="stable")[:, :k]
    return index, np.take_along_axis(dense, index, axis=1).astype(np.float32)


def resize_area(frame: np.ndarray, size: int) -> np.ndarray:
    """Resize a 2-D uint8 frame to (size, size) by area averaging, rounded to uint8.

    Same result as ``area_weights(H, size) @ frame @ area_weights(W, size).T``, computed with
    a few gathers instead of dense matrix products (far cheaper on a shared CPU).
    """
    rows, row_w = _sparse_weights(frame.shape[0], size)
    cols, col_w = _sparse_weights(frame.shape[1], size)
    x = frame.astype(np.float32)
    x = np.einsum("tk,tkw->tw", row_w, x[rows])
    x = np.einsum("tk,htk->ht", col_w, x[:, cols])
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


class FrameStack:
    """The last `depth` frames along a trailing channel axis, oldest first."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.frames: deque[np.ndarray] = deque(maxlen=depth)

    def reset(self, frame: np.ndarray) -> np.ndarray:
        """Fill the stack with copies of the first frame of an episode."""
        self.frames.extend([frame] * self.depth)
        return self.observation()

    def push(self, frame: np.ndarray) -> np.ndarray:
        """Append a frame (dropping the oldest) and return the stacked observation."""
        self.frames.append(frame)
        return self.observation()

    def observation(self) -> np.ndarray:
        """(H, W, depth) uint8 array."""
        return np.stack(self.frames, axis=-1)


def clip_reward(reward: float) -> float:
    """Sign of the reward, in {-1, 0, 1} (Mnih et al. 2015, "Training details")."""
    return float(np.sign(reward))


class AtariPreprocessing(gym.Wrapper):
    """No-op starts, frame skip with max-pool, resize, frame stack, reward clipping, life loss.

    Wraps an ale-py ``AtariEnv`` created with ``frameskip=1`` and ``obs_type="grayscale"``.
    ``info`` gains ``raw_reward`` (unclipped sum over the skipped frames) and ``life_loss``.
    """

    def __init__(self, env: gym.Env, options: AtariOptions) -> None:
        super().__init__(env)
        self.options = options
        self.stack = FrameStack(options.frame_stack)
        size = options.screen_size
        shape = (size, size, options.frame_stack)
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.lives = 0
        self.game_over = True
        self.rng = np.random.default_rng()

    @property
    def ale(self) -> Any:
        """The ALEInterface of the wrapped env."""
        return self.env.unwrapped.ale

    def _frame(self, frames: list[np.ndarray]) -> np.ndarray:
        pooled = max_pool_frames(frames[-2], frames[-1]) if len(frames) > 1 else frames[-1]
        return resize_area(pooled, self.options.screen_size)

    def _skip(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Repeat `action` for frame_skip frames; returns the processed frame and the sum."""
        keep = 2 if self.options.max_pool else 1
        frames: deque[np.ndarray] = deque(maxlen=keep)
        total, terminated, truncated, info = 0.0, False, False, {}
        for _ in range(self.options.frame_skip):
            obs, reward, terminated, truncated, info = self.env.step(action)
            frames.append(obs)
            total += float(reward)
            if terminated or truncated:
                break
        return self._frame(list(frames)), total, terminated, truncated, info

    def _noops(self, obs: np.ndarray, info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        """Take 1..noop_max no-op frames (resetting again if the game ends meanwhile)."""
        if self.options.noop_max == 0:
            return obs, info
        for _ in range(int(self.rng.integers(1, self.options.noop_max + 1))):
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset()
        return obs, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """New game (or, after a life-loss terminal, continue the game with one no-op step)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
            self.game_over = True
        if self.game_over:
            obs, info = self.env.reset(seed=seed, options=options)
            obs, info = self._noops(obs, info)
            frame = resize_area(obs, self.options.screen_size)
        else:
            frame, _, _, _, info = self._skip(0)
        self.game_over = False
        self.lives = self.ale.lives()
        return self.stack.reset(frame), dict(info, raw_reward=0.0, life_loss=False)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One agent step = frame_skip emulator frames."""
        frame, raw, terminated, truncated, info = self._skip(int(action))
        self.game_over = terminated or truncated
        lives = self.ale.lives()
        life_loss = lives < self.lives
        self.lives = lives
        if self.options.terminal_on_life_loss and life_loss:
            terminated = True
        reward = clip_reward(raw) if self.options.clip_rewards else raw
        info = dict(info, raw_reward=raw, life_loss=life_loss)
        return self.stack.push(frame), reward, terminated, truncated, info


def make_ale_env(
    env_id: str, seed: int, options: AtariOptions | None = None, render_mode: str | None = None
) -> gym.Env:
    """One preprocessed Atari environment for ``ale:<Game>``.

    Args:
        env_id: ``ale:<Game>``, e.g. ``ale:Pong`` (see :data:`ALE_IDS`).
        seed: Seeds the emulator (on the first reset), the no-op draws and the action space.
        options: Preprocessing; ``None`` = :class:`AtariOptions` defaults (training protocol).
        render_mode: ale-py's render mode (``"rgb_array"``: ``render()`` gives the RGB screen).

    Returns:
        An env with uint8 ``(84, 84, 4)`` observations and ``Discrete`` actions.

    Raises:
        EnvError: Unknown game or missing ale-py.
    """
    options = options or AtariOptions()
    name = parse_ale_id(env_id)
    from ale_py.env import AtariEnv

    base = AtariEnv(
        name,
        obs_type="grayscale",
        frameskip=1,
        repeat_action_probability=options.sticky_actions,
        full_action_space=options.full_action_space,
        max_num_frames_per_episode=options.max_episode_frames,
        render_mode=render_mode,
    )
    env = SeedOnFirstReset(AtariPreprocessing(base, options), seed)
    env.action_space.seed(seed)
    return env


def make_ale_vector_env(game: str, num_envs: int, options: AtariOptions | None = None) -> Any:
    """ale-py's C++ ``AtariVectorEnv`` configured with the same options (for PQN).

    Observations are uint8 ``(num_envs, frame_stack, 84, 84)``: channels FIRST, unlike
    :func:`make_ale_env` (transpose to channels-last before `ConvTorso`). Rewards are returned
    unclipped (ale-py's clipping would hide the game score): clip with :func:`clip_reward`.
    ale-py resizes with OpenCV-equivalent code in C++; frames can differ by a grey level from
    :func:`resize_area`. Fire-reset is off to match :func:`make_ale_env`.
    """
    options = options or AtariOptions()
    name = parse_ale_id(game if game.startswith(ALE_PREFIX) else ALE_PREFIX + game)
    from ale_py.vector_env import AtariVectorEnv

    return AtariVectorEnv(
        name,
        num_envs,
        max_num_frames_per_episode=options.max_episode_frames,
        repeat_action_probability=options.sticky_actions,
        full_action_space=options.full_action_space,
        img_height=options.screen_size,
        img_width=options.screen_size,
        stack_num=options.frame_stack,
        frameskip=options.frame_skip,
        maxpool=options.max_pool,
        noop_max=options.noop_max,
        episodic_life=options.terminal_on_life_loss,
        reward_clipping=False,
        use_fire_reset=False,
    )
