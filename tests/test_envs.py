"""Tests for scalerl.envs: presets, task lists, wrappers, the DMC adapter and make_env."""

from __future__ import annotations

import sys
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from dm_control import suite

from scalerl.envs import (
    DMC_EASY_MEDIUM,
    DMC_HARD,
    HBENCH,
    HBENCH_HARD,
    MUJOCO,
    MUJOCO_V4,
    MYOSUITE,
    MYOSUITE_IDS,
    TASK_LISTS,
    ActionRepeat,
    CameraRender,
    FiniteCheck,
    RescaleAction,
    SuccessInfo,
    SuitePreset,
    TimeLimit,
    discount_heuristic,
    env_info,
    make_env,
    normalize_task_name,
    parse_dmc_id,
    reference_scores,
    suite_preset,
)
from scalerl.envs.gl import default_gl_backend
from scalerl.envs.suites import PAPER_LISTS
from scalerl.errors import EnvError


class CountingEnv(gym.Env):
    """Deterministic fake env: raw step t (1-based) gives obs [t], reward t, info {'t': t}.

    Terminates at raw step ``terminate_at``; reports ``success`` only at ``success_at``; emits a
    NaN observation at ``nan_at``. Records the last action it received.
    """

    def __init__(self, terminate_at: int = 0, success_at: int = 0, nan_at: int = 0) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float64)
        self.action_space = gym.spaces.Box(
            np.array([-2.0, 0.0]), np.array([2.0, 10.0]), dtype=np.float64
        )
        self.terminate_at, self.success_at, self.nan_at = terminate_at, success_at, nan_at
        self.t = 0
        self.last_action: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.t = 0
        return np.zeros(1), {}

    def step(self, action: np.ndarray):
        self.t += 1
        self.last_action = np.asarray(action)
        obs = np.array([np.nan if self.t == self.nan_at else float(self.t)])
        info: dict[str, Any] = {"t": self.t}
        if self.success_at:
            info["success"] = self.t == self.success_at
        return obs, float(self.t), self.t == self.terminate_at, False, info


def _episode(env: gym.Env, action: np.ndarray, limit: int = 2000) -> list[tuple[float, bool, bool]]:
    """Runs one episode with a constant action; returns (reward, terminated, truncated) rows."""
    env.reset()
    rows: list[tuple[float, bool, bool]] = []
    while not rows or not (rows[-1][1] or rows[-1][2]):
        assert len(rows) < limit, f"episode did not end within {limit} steps"
        _, reward, terminated, truncated, _ = env.step(action)
        rows.append((reward, terminated, truncated))
    return rows


# --- suites -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "repeat", "gamma"),
    [(1000, 2, 0.99), (1000, 1, 0.995), (100, 2, 0.95), (200, 1, 0.975), (10, 1, 0.95)],
)
def test_discount_heuristic(steps: int, repeat: int, gamma: float) -> None:
    assert discount_heuristic(steps, repeat) == pytest.approx(gamma, abs=1e-12)


def test_discount_heuristic_rejects_zero() -> None:
    with pytest.raises(EnvError, match="must be positive"):
        discount_heuristic(1000, 0)


@pytest.mark.parametrize(
    ("env_id", "expected"),
    [
        ("dmc:walker-walk", SuitePreset("dmc", 2, 1000, False)),
        ("Hopper-v5", SuitePreset("mujoco", 1, 1000, True)),
        ("Hopper-v4", SuitePreset("mujoco", 1, 1000, True)),
        ("Reacher-v5", SuitePreset("mujoco", 1, 50, True)),
        ("Pendulum-v1", SuitePreset("gym", 1, 200, True)),
        ("myo-reach", SuitePreset("myosuite", 2, 100, False)),
        ("h1-walk-v0", SuitePreset("hbench", 2, 1000, True)),
    ],
)
def test_suite_preset(env_id: str, expected: SuitePreset) -> None:
    preset = suite_preset(env_id)
    assert preset == expected
    assert (preset.eval_every, preset.eval_episodes) == (50_000, 10)


def test_preset_discounts() -> None:
    assert suite_preset("dmc:cheetah-run").discount == pytest.approx(0.99)
    assert suite_preset("Humanoid-v5").discount == pytest.approx(0.995)
    assert suite_preset("myo-pose").discount == pytest.approx(0.95)


def test_task_lists() -> None:
    sizes = {name: len(tasks) for name, tasks in TASK_LISTS.items()}
    assert sizes == {
        "dmc-easy": 21,
        "dmc-hard": 7,
        "mujoco": 5,
        "mujoco-v4": 5,
        "myosuite": 10,
        "hbench": 14,
        "hbench-hard": 5,
    }
    assert sum(sizes[name] for name in PAPER_LISTS) == 57
    assert MUJOCO_V4 == ("HalfCheetah-v4", "Hopper-v4", "Walker2d-v4", "Ant-v4", "Humanoid-v4")
    assert "dmc:ball_in_cup-catch" in DMC_EASY_MEDIUM
    assert set(HBENCH_HARD) <= set(HBENCH)
    assert MYOSUITE_IDS["myo-pen-twirl-hard"] == "myoHandPenTwirlRandom-v0"
    assert set(MYOSUITE) == set(MYOSUITE_IDS)


def test_task_lists_resolve() -> None:
    for env_id in DMC_EASY_MEDIUM + DMC_HARD:
        assert parse_dmc_id(env_id) in suite.ALL_TASKS
    assert parse_dmc_id("dmc:ball_in_cup-catch") == ("ball_in_cup", "catch")
    assert parse_dmc_id("dmc:finger-turn_easy") == ("finger", "turn_easy")
    for env_id in MUJOCO + MUJOCO_V4:
        assert suite_preset(env_id).suite == "mujoco"


def test_scores() -> None:
    assert normalize_task_name("ball_in_cup-catch") == "ball-in-cup-catch"
    assert normalize_task_name("h1_sit_hard_v0") == "h1-sit-hard-v0"
    assert reference_scores("Hopper-v4") == (18.791, 3226.0)
    assert reference_scores("HalfCheetah_v4") == (-289.415, 10574.0)
    assert reference_scores("h1-sit-hard-v0") == (2.448, 750.0)
    assert reference_scores("h1_balance_simple_v0") == (9.391, 800.0)
    assert reference_scores("cheetah-run") is None


# --- wrappers -----------------------------------------------------------------------------------


def test_rescale_action_maps_bounds() -> None:
    base = CountingEnv()
    env = RescaleAction(base)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    env.step(np.array([1.0, 1.0], np.float32))
    np.testing.assert_allclose(base.last_action, [2.0, 10.0])
    env.step(np.array([-1.0, -1.0]))
    np.testing.assert_allclose(base.last_action, [-2.0, 0.0])
    env.step(np.array([0.0, 0.5]))
    np.testing.assert_allclose(base.last_action, [0.0, 7.5])
    env.step(np.array([3.0, -7.0]))  # clipped to [1, -1] first
    np.testing.assert_allclose(base.last_action, [2.0, 0.0])


def test_time_limit_counts_raw_steps_below_repeat() -> None:
    env = ActionRepeat(TimeLimit(CountingEnv(), 5), 2)
    rows = _episode(env, np.zeros(2))
    assert rows == [(3.0, False, False), (7.0, False, False), (5.0, False, True)]
    assert _episode(env, np.zeros(2)) == rows  # reset restarts the count


def test_time_limit_does_not_truncate_a_terminal_step() -> None:
    env = TimeLimit(CountingEnv(terminate_at=4), 4)
    assert _episode(env, np.zeros(2))[-1] == (4.0, True, False)


def test_action_repeat_stops_early_on_termination() -> None:
    base = CountingEnv(terminate_at=3)
    env = ActionRepeat(base, 2)
    assert _episode(env, np.zeros(2)) == [(3.0, False, False), (3.0, True, False)]
    assert base.t == 3  # the 4th raw step never ran


def test_action_repeat_merges_infos() -> None:
    env = ActionRepeat(CountingEnv(success_at=1), 2)
    env.reset()
    _, _, _, _, info = env.step(np.zeros(2))
    assert info == {"t": 2, "success": True}  # later 't' wins; success OR-ed
    _, _, _, _, info = env.step(np.zeros(2))
    assert info == {"t": 4, "success": False}


class InfoEnv(CountingEnv):
    """Fake env returning a fixed info dict."""

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__()
        self.info = info

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, _ = super().step(action)
        return obs, reward, terminated, truncated, dict(self.info)


@pytest.mark.parametrize(
    ("info", "success"),
    [
        ({"solved": np.True_}, True),
        ({"is_success": 0.0}, False),
        ({"success": 1, "solved": False}, True),
        ({"other": 1}, None),
    ],
)
def test_success_info(info: dict[str, Any], success: bool | None) -> None:
    env = SuccessInfo(InfoEnv(info))
    env.reset()
    out = env.step(np.zeros(2))[4]
    assert out.get("success") is success


def test_finite_check_names_env_and_step() -> None:
    env = FiniteCheck(ActionRepeat(CountingEnv(nan_at=6), 2), "Fake-v0")
    env.reset()
    env.step(np.zeros(2))
    env.step(np.zeros(2))
    with pytest.raises(
        EnvError, match=r"environment Fake-v0 returned a non-finite observation at step 3"
    ):
        env.step(np.zeros(2))


# --- DMC ----------------------------------------------------------------------------------------


def test_dmc_spaces_and_episode_length() -> None:
    env = make_env("dmc:cartpole-swingup", 0)
    obs, _ = env.reset()
    assert obs.dtype == np.float32 and obs.shape == (5,)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    assert env_info(env) == (5, 1)
    rows = _episode(env, np.array([0.3], np.float32))
    assert len(rows) == 500
    assert not any(terminated for _, terminated, _ in rows)
    assert rows[-1][2] and not any(truncated for _, _, truncated in rows[:-1])


def test_dmc_matches_raw_dm_control() -> None:
    """Flattening order, seeding and action-repeat reward sums against dm_control itself."""
    env = make_env("dmc:cartpole-swingup", 7)
    raw = suite.load("cartpole", "swingup", task_kwargs={"random": 7})
    obs, _ = env.reset()
    expected = raw.reset().observation
    flat = np.concatenate([expected["position"], expected["velocity"]]).astype(np.float32)
    np.testing.assert_array_equal(obs, flat)
    for action in np.linspace(-1.0, 1.0, 10):
        _, reward, _, _, _ = env.step(np.array([action], np.float32))
        raw_rewards = [raw.step(np.array([action])).reward for _ in range(2)]
        assert reward == pytest.approx(sum(raw_rewards), rel=1e-6)


def test_dmc_time_limit_is_ours() -> None:
    """dm_control's own 1000-step limit is disabled: our TimeLimit governs episode length."""
    env = make_env("dmc:cartpole-balance", 0, action_repeat=1, max_episode_steps=1200)
    assert len(_episode(env, np.zeros(1, np.float32))) == 1200


def test_dmc_observation_is_flat_dict_order() -> None:
    env = make_env("dmc:walker-walk", 0)
    obs, _ = env.reset()
    assert obs.shape == (24,)  # orientations 14, height 1, velocity 9
    height = env.unwrapped._env.physics.torso_height()
    assert obs[14] == pytest.approx(height, abs=1e-6)


def _rollout(env_id: str, seed: int, steps: int = 5) -> tuple[np.ndarray, list[float]]:
    env = make_env(env_id, seed)
    obs, _ = env.reset()
    actions = np.linspace(-0.9, 0.9, steps * env_info(env)[1]).reshape(steps, -1)
    rewards = [env.step(a.astype(np.float32))[1] for a in actions]
    return obs, rewards


@pytest.mark.parametrize("env_id", ["dmc:cartpole-swingup", "Hopper-v5"])
def test_seeding(env_id: str) -> None:
    obs0, rewards0 = _rollout(env_id, 3)
    obs1, rewards1 = _rollout(env_id, 3)
    np.testing.assert_array_equal(obs0, obs1)
    assert rewards0 == rewards1
    assert not np.array_equal(obs0, _rollout(env_id, 4)[0])


@pytest.mark.parametrize("env_id", ["dmc:cartpole-swingup", "Hopper-v5"])
def test_explicit_reset_seed(env_id: str) -> None:
    env = make_env(env_id, 0)
    first, _ = env.reset()
    second, _ = env.reset()  # later resets continue the RNG stream
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(env.reset(seed=0)[0], first)
    np.testing.assert_array_equal(env.reset(seed=5)[0], make_env(env_id, 5).reset()[0])


# --- Gymnasium ids and errors -------------------------------------------------------------------


def test_hopper_terminates_and_truncates() -> None:
    env = make_env("Hopper-v5", 0)
    assert env.observation_space.dtype == np.float32 and env.action_space.shape == (3,)
    env.reset()
    ends = [env.step(env.action_space.sample())[2:4] for _ in range(1000)]
    first_end = next(i for i, (te, tr) in enumerate(ends) if te or tr)
    assert ends[first_end] == (True, False)
    short = make_env("Hopper-v5", 0, max_episode_steps=20)
    rows = _episode(short, np.zeros(3, np.float32))
    assert len(rows) == 20 and rows[-1][1:] == (False, True)


def test_pendulum_preset_limit() -> None:
    env = make_env("Pendulum-v1", 0)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    assert len(_episode(env, np.ones(1, np.float32))) == 200


def test_gymnasium_time_limit_replaced() -> None:
    """Gymnasium's registry limit (200) must not cut an episode we allow to run 300 steps."""
    env = make_env("Pendulum-v1", 0, max_episode_steps=300)
    assert len(_episode(env, np.ones(1, np.float32))) == 300


@pytest.mark.parametrize("env_id", ["foo", "dmc", "Hopper"])
def test_unknown_id(env_id: str) -> None:
    with pytest.raises(EnvError, match="dmc:cartpole-swingup") as err:
        make_env(env_id, 0)
    assert "\n" not in str(err.value)


def test_typo_suggestions() -> None:
    with pytest.raises(EnvError, match="Did you mean: `Hopper`"):
        make_env("Hoper-v5", 0)
    with pytest.raises(EnvError, match="did you mean dmc:cartpole-swingup"):
        make_env("dmc:cartpol-swingup", 0)
    with pytest.raises(EnvError, match="unknown DMC task 'dmc:cartpole-nope'"):
        make_env("dmc:cartpole-nope", 0)


def test_discrete_action_space_rejected() -> None:
    with pytest.raises(EnvError, match="CartPole-v1 has a Discrete action space"):
        make_env("CartPole-v1", 0)


def test_missing_optional_suites(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "myosuite", None)  # makes `import myosuite` fail
    monkeypatch.setitem(sys.modules, "humanoid_bench", None)
    with pytest.raises(EnvError, match=r'pip install myosuite==3.0.0 \(or.*-e "\.\[myosuite'):
        make_env("myo-reach", 0)
    with pytest.raises(EnvError, match="HumanoidBench"):
        make_env("h1-walk-v0", 0)


# --- rendering ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "size"), [("dmc:cartpole-swingup", (24, 40)), ("Hopper-v5", (30, 20))]
)
def test_render_size(env_id: str, size: tuple[int, int]) -> None:
    env = make_env(env_id, 0, render_mode="rgb_array", render_size=size)
    env.reset()
    frame = env.render()
    env.close()
    assert frame.shape == (*size, 3) and frame.dtype == np.uint8 and frame.std() > 0


def test_classic_control_ignores_render_size() -> None:
    """Pendulum's constructor takes no width/height; rendering it would need pygame."""
    env = make_env("Pendulum-v1", 0, render_mode="rgb_array", render_size=(24, 40))
    assert env.unwrapped.render_mode == "rgb_array"


class RenderArgsEnv(CountingEnv):
    """Fake env whose render takes its size and camera as arguments (like MyoSuite)."""

    def render(self, width: int = 640, height: int = 480, camera_id: int = -1, camera_name=None):
        return np.full((height, width, 3), len(camera_name or "") + camera_id + 1, np.uint8)


def test_camera_render_passes_size_and_camera() -> None:
    env = TimeLimit(CameraRender(RenderArgsEnv(), (6, 4), camera=2), 10)
    frame = env.render()
    assert frame.shape == (6, 4, 3) and frame[0, 0, 0] == 3
    assert CameraRender(RenderArgsEnv(), (2, 2), camera="top").render()[0, 0, 0] == 3


def test_default_gl_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    found: set[str] = set()

    def fake_cdll(name: str) -> None:
        if not any(name.startswith(f"lib{lib}.so") for lib in found):
            raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr("scalerl.envs.gl.sys.platform", "linux")
    monkeypatch.setattr("scalerl.envs.gl.ctypes.CDLL", fake_cdll)
    assert default_gl_backend() == "disable"
    found.add("OSMesa")
    assert default_gl_backend() == "osmesa"
    found.add("EGL")
    assert default_gl_backend() == "egl"
    monkeypatch.setattr("scalerl.envs.gl.sys.platform", "darwin")
    assert default_gl_backend() == "glfw"


@pytest.mark.parametrize(
    ("env_id", "fix"),
    [
        ("ale:Pong", "use --algo dqn or --algo pqn"),
        ("gymnax:CartPole-v1", "--algo ppo, dqn or pqn"),
    ],
)
def test_discrete_ids_for_sac_name_the_algo(env_id: str, fix: str, tmp_path, capsys) -> None:
    with pytest.raises(EnvError, match=fix):
        make_env(env_id, 0)
    from scalerl.cli import main

    args = ["train", "--env", env_id, "--env-steps", "100000", "--run-root", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert fix in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
