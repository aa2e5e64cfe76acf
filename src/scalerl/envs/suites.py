"""Benchmark suites: per-suite presets, task lists and reference score constants.

Values follow the SimbaV2 configuration files; the discount heuristic is TD-MPC2's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import gymnasium as gym

from scalerl.errors import EnvError

DMC_PREFIX = "dmc:"
"""Prefix of DeepMind Control Suite ids: ``dmc:<domain>-<task>``."""
ALE_PREFIX = "ale:"
"""Prefix of Arcade Learning Environment ids: ``ale:<Game>`` (see `scalerl.envs.ale`)."""
JAX_PREFIXES = ("gymnax:", "craftax:", "brax:")
"""Prefixes of JAX-native ids, trained by their own loops (not Gymnasium ids)."""
JAX_ID_HINT = (
    "{env_id!r} is a JAX-native environment with discrete actions: use --algo ppo, dqn or pqn "
    "(SAC, TD3 and DDPG train the continuous gymnax ids: Pendulum-v1, "
    "MountainCarContinuous-v0, PointRobot-misc, Reacher-misc, Swimmer-misc, and brax:<env>)"
)
"""Message for a discrete JAX-native id given to a continuous-control agent (format with
env_id)."""
ATARI_FRAME_SKIP = 4
"""Emulator frames per agent step on Atari (Mnih et al. 2015)."""
ATARI_MAX_FRAMES = 108_000
"""Atari episode cap in emulator frames, 30 minutes at 60 Hz (Machado et al. 2018 §5)."""

MUJOCO_NAMES = frozenset(
    {
        "Hopper",
        "HalfCheetah",
        "Walker2d",
        "Ant",
        "Humanoid",
        "HumanoidStandup",
        "Swimmer",
        "Reacher",
        "Pusher",
        "InvertedPendulum",
        "InvertedDoublePendulum",
    }
)
"""Gymnasium MuJoCo environment names (without version) treated as the 'mujoco' suite."""

UNKNOWN_ID_HINT = (
    "use dmc:<domain>-<task> (e.g. dmc:cartpole-swingup), a registered Gymnasium id "
    "(e.g. Hopper-v5, Pendulum-v1), myo-<task>, h1-<task>-v0 or ale:<Game>"
)
"""Second half of the message raised for an environment id that cannot be parsed."""


def discount_heuristic(max_episode_steps: int, action_repeat: int) -> float:
    """Discount factor from the effective episode length (TD-MPC2 heuristic).

    ``L = max_episode_steps / action_repeat``; ``gamma = clip((L/5 - 1) / (L/5), 0.95, 0.995)``.

    Args:
        max_episode_steps: Episode length in raw environment steps.
        action_repeat: Number of raw steps per agent step.

    Returns:
        The discount, e.g. 0.99 for DMC (1000 / 2), 0.995 for MuJoCo (1000 / 1).

    Raises:
        EnvError: If either argument is not positive.
    """
    if max_episode_steps < 1 or action_repeat < 1:
        raise EnvError(
            f"max_episode_steps ({max_episode_steps}) and action_repeat ({action_repeat}) "
            "must be positive; pass values >= 1"
        )
    horizon = max_episode_steps / action_repeat / 5
    return float(min(max((horizon - 1) / horizon, 0.95), 0.995))


@dataclass(frozen=True)
class SuitePreset:
    """Per-suite environment settings."""

    suite: str
    """Suite name: 'dmc', 'mujoco', 'gym', 'myosuite', 'hbench', 'ale', 'gymnax' or 'brax'."""
    action_repeat: int
    """Raw environment steps per agent step."""
    max_episode_steps: int
    """Episode length limit in raw environment steps."""
    episodic: bool
    """Whether the suite terminates episodes (enables clipped double-Q in SimbaV2)."""
    eval_every: int = 50_000
    """Agent (interaction) steps between evaluations."""
    eval_episodes: int = 10
    """Episodes per evaluation."""

    @property
    def discount(self) -> float:
        """The discount given by :func:`discount_heuristic` for this preset."""
        return discount_heuristic(self.max_episode_steps, self.action_repeat)


def gym_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """Looks up a registered Gymnasium id.

    Args:
        env_id: A Gymnasium id such as ``Hopper-v5``.

    Returns:
        The registry entry.

    Raises:
        EnvError: If the id is not registered; includes Gymnasium's suggestion when it has one.
    """
    if env_id.startswith(JAX_PREFIXES):
        raise EnvError(JAX_ID_HINT.format(env_id=env_id))
    try:
        return gym.spec(env_id)
    except gym.error.Error as err:
        raise EnvError(f"unknown environment id {env_id!r} ({err}); {UNKNOWN_ID_HINT}") from None


def suite_of(env_id: str) -> str:
    """Classifies an environment id into its suite.

    Args:
        env_id: ``dmc:<domain>-<task>``, ``myo-<task>``, ``h1-<task>-v0``/``h1hand-<task>-v0``,
            ``ale:<Game>`` or a registered Gymnasium id.

    Returns:
        One of 'dmc', 'myosuite', 'hbench', 'ale', 'mujoco', 'gym'.

    Raises:
        EnvError: If the id matches none of the accepted forms.
    """
    if env_id.startswith(DMC_PREFIX):
        return "dmc"
    if env_id.startswith("myo"):
        return "myosuite"
    if env_id.startswith(("h1-", "h1hand-")):
        return "hbench"
    if env_id.startswith(ALE_PREFIX):
        return "ale"
    return "mujoco" if gym_spec(env_id).name in MUJOCO_NAMES else "gym"


def suite_preset(env_id: str) -> SuitePreset:
    """Returns the suite preset for an environment id.

    Args:
        env_id: Any id accepted by :func:`suite_of`.

    Returns:
        The preset; Gymnasium ids take ``max_episode_steps`` from the registry (1000 if unset).

    Raises:
        EnvError: If the id cannot be parsed.
    """
    if env_id.startswith(("gymnax:", "brax:")):  # continuous ones train SAC, TD3 and DDPG
        from scalerl.envs.jax_envs import episode_limit

        suite = env_id.split(":")[0]
        return SuitePreset(suite, action_repeat=1, max_episode_steps=episode_limit(env_id),
                           episodic=True)  # fmt: skip
    suite = suite_of(env_id)
    if suite == "dmc":
        return SuitePreset("dmc", action_repeat=2, max_episode_steps=1000, episodic=False)
    if suite == "myosuite":
        return SuitePreset("myosuite", action_repeat=2, max_episode_steps=100, episodic=False)
    if suite == "hbench":
        return SuitePreset("hbench", action_repeat=2, max_episode_steps=1000, episodic=True)
    if suite == "ale":
        return SuitePreset("ale", ATARI_FRAME_SKIP, ATARI_MAX_FRAMES, episodic=True)
    steps = gym_spec(env_id).max_episode_steps or 1000
    return SuitePreset(suite, action_repeat=1, max_episode_steps=steps, episodic=True)


DMC_EASY_MEDIUM: tuple[str, ...] = tuple(
    DMC_PREFIX + task
    for task in (
        "acrobot-swingup",
        "ball_in_cup-catch",
        "cartpole-balance",
        "cartpole-balance_sparse",
        "cartpole-swingup",
        "cartpole-swingup_sparse",
        "cheetah-run",
        "finger-spin",
        "finger-turn_easy",
        "finger-turn_hard",
        "fish-swim",
        "hopper-hop",
        "hopper-stand",
        "pendulum-swingup",
        "quadruped-walk",
        "quadruped-run",
        "reacher-easy",
        "reacher-hard",
        "walker-stand",
        "walker-walk",
        "walker-run",
    )
)
"""DMC easy/medium: 21 tasks (the official code comment says 20)."""

DMC_HARD: tuple[str, ...] = tuple(
    DMC_PREFIX + task
    for task in (
        "humanoid-stand",
        "humanoid-walk",
        "humanoid-run",
        "dog-stand",
        "dog-walk",
        "dog-run",
        "dog-trot",
    )
)
"""DMC-Hard: 7 tasks."""

MUJOCO: tuple[str, ...] = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5")
"""Gymnasium MuJoCo: 5 tasks. The paper used -v4 (also available); Gymnasium 1.2 recommends -v5."""

MUJOCO_V4: tuple[str, ...] = tuple(task.replace("-v5", "-v4") for task in MUJOCO)
"""The same 5 tasks in the -v4 version used by the SimbaV2 paper (Gymnasium warns it is old)."""

MYOSUITE_IDS: dict[str, str] = {
    "myo-reach": "myoHandReachFixed-v0",
    "myo-reach-hard": "myoHandReachRandom-v0",
    "myo-pose": "myoHandPoseFixed-v0",
    "myo-pose-hard": "myoHandPoseRandom-v0",
    "myo-obj-hold": "myoHandObjHoldFixed-v0",
    "myo-obj-hold-hard": "myoHandObjHoldRandom-v0",
    "myo-key-turn": "myoHandKeyTurnFixed-v0",
    "myo-key-turn-hard": "myoHandKeyTurnRandom-v0",
    "myo-pen-twirl": "myoHandPenTwirlFixed-v0",
    "myo-pen-twirl-hard": "myoHandPenTwirlRandom-v0",
}
"""MyoSuite short name -> registered MyoSuite id."""

MYOSUITE: tuple[str, ...] = tuple(MYOSUITE_IDS)
"""MyoSuite: 10 tasks (short names)."""

HBENCH: tuple[str, ...] = tuple(
    f"h1-{task}-v0"
    for task in (
        "walk",
        "stand",
        "run",
        "reach",
        "hurdle",
        "crawl",
        "maze",
        "sit_simple",
        "sit_hard",
        "balance_simple",
        "balance_hard",
        "stair",
        "slide",
        "pole",
    )
)
"""HumanoidBench locomotion without hands: 14 tasks."""

HBENCH_HARD: tuple[str, ...] = (
    "h1-walk-v0",
    "h1-run-v0",
    "h1-sit_hard-v0",
    "h1-balance_simple-v0",
    "h1-stair-v0",
)
"""HBench-Hard: 5 tasks (used in the scaling studies)."""

TASK_LISTS: dict[str, tuple[str, ...]] = {
    "dmc-easy": DMC_EASY_MEDIUM,
    "dmc-hard": DMC_HARD,
    "mujoco": MUJOCO,
    "mujoco-v4": MUJOCO_V4,
    "myosuite": MYOSUITE,
    "hbench": HBENCH,
    "hbench-hard": HBENCH_HARD,
}
"""Named task lists, usable as env names by sweeps. ``dmc-easy``, ``dmc-hard``, ``mujoco`` (or
``mujoco-v4``), ``myosuite`` and ``hbench`` are the 57 tasks of the SimbaV2 paper; ``hbench-hard``
is a subset of ``hbench``.
"""

PAPER_LISTS: tuple[str, ...] = ("dmc-easy", "dmc-hard", "mujoco", "myosuite", "hbench")
"""The task lists whose union is the SimbaV2 paper's 57 tasks (MuJoCo as -v5 here)."""

MUJOCO_SCORES: dict[str, tuple[float, float]] = {
    "HalfCheetah": (-289.415, 10574.0),
    "Hopper": (18.791, 3226.0),
    "Walker2d": (2.791, 3946.0),
    "Ant": (-70.288, 3942.0),
    "Humanoid": (120.423, 5165.0),
}
"""MuJoCo (random return, TD3 return); score = (R - random) / (td3 - random)."""

HBENCH_SCORES: dict[str, tuple[float, float]] = {
    "h1-walk": (2.377, 700.0),
    "h1-stand": (10.545, 800.0),
    "h1-run": (2.02, 700.0),
    "h1-reach": (260.302, 12000.0),
    "h1-hurdle": (2.214, 700.0),
    "h1-crawl": (272.658, 700.0),
    "h1-maze": (106.441, 1200.0),
    "h1-sit_simple": (9.393, 750.0),
    "h1-sit_hard": (2.448, 750.0),
    "h1-balance_simple": (9.391, 800.0),
    "h1-balance_hard": (9.044, 800.0),
    "h1-stair": (3.112, 700.0),
    "h1-slide": (3.191, 700.0),
    "h1-pole": (20.09, 700.0),
}
"""HumanoidBench (random return, success threshold); score = (R - random) / (success - random)."""

_VERSION_SUFFIX = re.compile(r"-v\d+$")


def normalize_task_name(name: str) -> str:
    """Canonical spelling for matching task names across reference CSVs.

    Args:
        name: A task name such as ``ball_in_cup-catch`` or ``h1_sit_hard_v0``.

    Returns:
        The name lower-cased with every '_' replaced by '-', e.g. ``ball-in-cup-catch``.
    """
    return name.replace("_", "-").lower()


def reference_scores(task: str) -> tuple[float, float] | None:
    """Looks up the (low, high) normalisation constants of a MuJoCo or HumanoidBench task.

    Args:
        task: Any spelling of the task, with or without version (``Hopper-v4``, ``h1_walk_v0``).

    Returns:
        ``(random, td3)`` for MuJoCo, ``(random, success)`` for HumanoidBench, else ``None``.
    """
    key = _VERSION_SUFFIX.sub("", normalize_task_name(task))
    table = {**MUJOCO_SCORES, **HBENCH_SCORES}
    return next((v for k, v in table.items() if normalize_task_name(k) == key), None)
