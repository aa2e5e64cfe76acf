"""Smoke test of every listed task of every installed suite, and of `scalerl envs`."""

from __future__ import annotations

import functools
import sys

import numpy as np
import pytest

from scalerl.envs import MYOSUITE, MYOSUITE_IDS, TASK_LISTS, make_env, suite_of
from scalerl.envs.listing import SUITES, EnvStatus, list_envs, main_envs, suite_import_error
from scalerl.errors import EnvError

TASKS = [(name, task) for name, suite in SUITES.items() for task in suite.tasks]
JAX_SUITES = ("gymnax", "craftax", "brax")  # JAX-native, no Gymnasium interface
GYM_TASKS = [
    (name, task) for name, task in TASKS if name not in (*JAX_SUITES, "ale")
]  # ale: tests/test_ale.py


@functools.cache
def _missing(suite: str) -> str | None:
    """Why the suite's packages do not import, or None."""
    return suite_import_error(SUITES[suite])


def _require_suite(suite: str) -> None:
    reason = _missing(suite)
    if reason is not None:
        pytest.skip(f"suite {suite} not installed ({reason}); {SUITES[suite].hint}")


@pytest.mark.parametrize(("suite", "env_id"), GYM_TASKS, ids=[task for _, task in GYM_TASKS])
def test_task_steps(suite: str, env_id: str) -> None:
    """make_env, reset, 3 random actions: finite float32 obs of the declared shape, finite reward"""
    _require_suite(suite)
    assert suite_of(env_id) == suite
    env = make_env(env_id, 0)
    obs, _ = env.reset()
    shape = env.observation_space.shape
    assert len(shape) == 1 and obs.shape == shape and obs.dtype == np.float32
    for _ in range(3):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert obs.shape == shape and obs.dtype == np.float32 and np.all(np.isfinite(obs))
        assert isinstance(reward, float) and np.isfinite(reward)
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()


def test_every_task_list_is_listed() -> None:
    listed = {task for _, task in TASKS}
    for name, tasks in TASK_LISTS.items():
        assert set(tasks) <= listed, name
    assert len(GYM_TASKS) == 28 + 10 + 10 + 14
    assert len([t for n, t in TASKS if n == "ale"]) == 57


@pytest.mark.parametrize("env_id", ["myo-reach", "myo-pen-twirl-hard"])
def test_myosuite_success_and_seeding(env_id: str) -> None:
    _require_suite("myosuite")
    env = make_env(env_id, 3)
    first, _ = env.reset()
    np.testing.assert_array_equal(first, make_env(env_id, 3).reset()[0])
    info = env.step(env.action_space.sample())[4]
    assert isinstance(info["success"], bool)
    assert env.unwrapped.spec.id == MYOSUITE_IDS[env_id]


def test_myosuite_ids_resolve() -> None:
    _require_suite("myosuite")
    ids = {task: make_env(task, 0).unwrapped.spec.id for task in MYOSUITE}
    assert ids["myo-pen-twirl-hard"] == "myoHandPenTwirlRandom-v0"
    assert ids["myo-obj-hold"] == "myoHandObjHoldFixed-v0"
    assert len(set(ids.values())) == 10


def test_myosuite_renders_hand_camera() -> None:
    _require_suite("myosuite")
    env = make_env("myo-key-turn", 0, render_mode="rgb_array", render_size=(24, 32))
    env.reset()
    frame = env.render()
    env.close()
    assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8 and frame.std() > 0


# --- list_envs / main_envs ----------------------------------------------------------------------


def test_list_envs_statuses() -> None:
    statuses = list_envs()
    assert [(s.suite, s.env_id) for s in statuses] == TASKS
    by_id = {s.env_id: s for s in statuses}
    assert by_id["dmc:walker-walk"] == EnvStatus("dmc", "dmc:walker-walk", True, "", ("dmc-easy",))
    assert by_id["Hopper-v4"].lists == ("mujoco-v4",) and "paper" in by_id["Hopper-v4"].note
    assert by_id["h1-walk-v0"].lists == ("hbench", "hbench-hard")
    for status in statuses:
        assert status.installed == (_missing(status.suite) is None), status


def test_list_envs_missing_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "myosuite", None)  # makes `import myosuite` fail
    statuses = list_envs("myosuite")
    assert len(statuses) == 10 and not any(s.installed for s in statuses)
    assert statuses[0].note.startswith("pip install myosuite==3.0.0")


def test_list_envs_check_builds_envs() -> None:
    statuses = list_envs("mujoco", check=True)
    assert all(s.installed and "built and stepped" in s.note for s in statuses)


def test_list_envs_unknown_suite() -> None:
    with pytest.raises(EnvError, match="unknown suite 'dm'; choose one of dmc, mujoco"):
        list_envs("dm")


def test_main_envs_prints_table(capsys: pytest.CaptureFixture[str]) -> None:
    main_envs([])
    out = capsys.readouterr().out
    assert "dmc: DeepMind Control Suite - 28/28 installed" in out
    assert "mujoco: Gymnasium MuJoCo - 10/10 installed" in out
    assert "  dmc:dog-run " in out and "  myo-reach " in out
    for name in TASK_LISTS:
        assert f"\n  {name} " in out
    if _missing("hbench") is not None:
        assert "hbench: HumanoidBench - 0/14 installed; HumanoidBench is not on PyPI" in out
        assert "hbench       14 tasks, 0 installed" in out


def test_main_envs_options(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "humanoid_bench", None)
    main_envs(["--suite", "hbench", "--installed-only"])
    out = capsys.readouterr().out
    assert "h1-walk-v0" not in out and "dmc:" not in out
    assert "no installed tasks" in out and "0/14 listed tasks installed" in out
    with pytest.raises(SystemExit):
        main_envs(["--suite", "nope"])


def test_ale_ids_have_a_suite_and_preset() -> None:
    from scalerl.envs import suite_preset

    assert suite_of("ale:Pong") == "ale" and suite_of("ale:Breakout") == "ale"
    preset = suite_preset("ale:Pong")
    assert (preset.action_repeat, preset.max_episode_steps, preset.episodic) == (4, 108_000, True)
    assert "ale:Pong" in SUITES["ale"].tasks and "ale:Breakout" in SUITES["ale"].tasks
