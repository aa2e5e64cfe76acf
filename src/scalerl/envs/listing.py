"""``scalerl envs``: benchmark suites, their tasks, which are installed, and the task lists."""

from __future__ import annotations

import contextlib
import importlib
import io
import time
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import tyro

from scalerl.envs.ale import ALE_IDS, ALE_PREFIX, parse_ale_id
from scalerl.envs.brax_env import BRAX_ENVS, BRAX_PREFIX
from scalerl.envs.jax_envs import (
    CRAFTAX_IDS,
    CRAFTAX_PREFIX,
    GYMNAX_IDS,
    GYMNAX_PREFIX,
    INSTALL,
    check_jax_env,
    is_jax_env,
)
from scalerl.envs.make import INSTALL_HINTS, make_env
from scalerl.envs.suites import (
    DMC_EASY_MEDIUM,
    DMC_HARD,
    HBENCH,
    MUJOCO,
    MUJOCO_V4,
    MYOSUITE,
    MYOSUITE_IDS,
    TASK_LISTS,
)
from scalerl.errors import EnvError

SuiteName = Literal["dmc", "mujoco", "myosuite", "hbench", "ale", "gymnax", "craftax", "brax"]


@dataclass(frozen=True)
class Suite:
    """A benchmark suite: the packages it needs and its listed tasks."""

    name: str
    """Suite name, as returned by ``suite_of``."""
    title: str
    """Human-readable name."""
    modules: tuple[str, ...]
    """Modules that must import (importing them registers the suite's Gymnasium ids)."""
    tasks: tuple[str, ...]
    """Listed task ids."""
    hint: str
    """How to install the suite."""


_CORE_HINT = 'part of scalerl\'s dependencies: reinstall scalerl (pip install -e ".[dev]")'

SUITES: dict[str, Suite] = {
    "dmc": Suite(
        "dmc", "DeepMind Control Suite", ("dm_control.suite",), DMC_EASY_MEDIUM + DMC_HARD,
        _CORE_HINT,
    ),
    "mujoco": Suite(
        "mujoco", "Gymnasium MuJoCo", ("mujoco", "gymnasium.envs.mujoco"), MUJOCO + MUJOCO_V4,
        _CORE_HINT,
    ),
    "myosuite": Suite(
        "myosuite", "MyoSuite", ("myosuite",), MYOSUITE, INSTALL_HINTS["myosuite"]
    ),
    "hbench": Suite(
        "hbench", "HumanoidBench", ("humanoid_bench",), HBENCH, INSTALL_HINTS["humanoid_bench"]
    ),
    "ale": Suite(
        "ale", "Arcade Learning Environment (Atari-57, discrete actions)", ("ale_py",), ALE_IDS,
        'pip install -e ".[ale]" in a checkout (ale-py ships the ROMs)',
    ),
    "gymnax": Suite(
        "gymnax", "gymnax (JAX-native, scalerl train --algo ppo)", ("gymnax",),
        tuple(GYMNAX_PREFIX + t for t in GYMNAX_IDS), INSTALL["gymnax"],
    ),
    "craftax": Suite(
        "craftax", "Craftax-Classic (JAX-native, scalerl train --algo ppo)",
        ("craftax.craftax_env",), tuple(CRAFTAX_PREFIX + t for t in CRAFTAX_IDS),
        INSTALL["craftax"],
    ),
    "brax": Suite(
        "brax", "Brax (JAX-native physics, brax:<env>[-<backend>]; SAC/TD3/DDPG/PPO)", ("brax",),
        tuple(BRAX_PREFIX + t for t in BRAX_ENVS), INSTALL["brax"],
    ),
}  # fmt: skip
"""The suites listed by ``scalerl envs``, in display order."""


@dataclass(frozen=True)
class EnvStatus:
    """One listed task."""

    suite: str
    """Suite name (a key of ``SUITES``)."""
    env_id: str
    """The id accepted by ``make_env``."""
    installed: bool
    """Whether the suite's packages import (with ``check``: whether the env built and stepped)."""
    note: str = ""
    """Registered id, version remark, install hint or the construction error."""
    lists: tuple[str, ...] = ()
    """Named task lists (``TASK_LISTS``) containing the task."""


def _one_line(err: BaseException) -> str:
    """An exception as a short single line."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def suite_import_error(suite: Suite) -> str | None:
    """Imports the suite's modules; returns ``None`` if all import, else why one did not."""
    for module in suite.modules:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # mujoco.mjx prints a missing warp
                importlib.import_module(module)
        except Exception as err:  # a broken install can raise anything at import time
            return f"{module}: {_one_line(err)}"
    return None


def _task_note(env_id: str) -> tuple[bool, str]:
    """Whether an installed suite registers ``env_id``, and a remark about the id."""
    if env_id.startswith("myo"):
        registered = MYOSUITE_IDS[env_id]
        return registered in gym.registry, f"-> {registered}"
    if env_id.startswith("dmc:") or is_jax_env(env_id):
        return True, ""
    if env_id.startswith(ALE_PREFIX):
        return _rom_note(env_id)
    note = "paper's version; Gymnasium warns it is out of date" if env_id in MUJOCO_V4 else ""
    if env_id not in gym.registry:
        return False, f"{env_id} is not registered by the installed package"
    return True, note


def _rom_note(env_id: str) -> tuple[bool, str]:
    """Whether ale-py ships the ROM of ``ale:<Game>`` (and the ROM id as a note)."""
    try:
        return True, f"-> {parse_ale_id(env_id)}"
    except EnvError as err:
        return False, str(err)


def check_env(env_id: str) -> str | None:
    """Builds ``env_id``, resets it and takes one random step; returns an error or ``None``."""
    try:
        if is_jax_env(env_id):
            check_jax_env(env_id)
            return None
        if env_id.startswith(ALE_PREFIX):
            from scalerl.envs.discrete import make_discrete_env

            env = make_discrete_env(env_id, 0)
        else:
            env = make_env(env_id, 0)
        env.reset()
        env.step(env.action_space.sample())
        env.close()
    except Exception as err:  # report any failure of any suite as a note
        return _one_line(err)
    return None


def _lists_of(env_id: str) -> tuple[str, ...]:
    """Names of the task lists containing ``env_id``."""
    return tuple(name for name, tasks in TASK_LISTS.items() if env_id in tasks)


def _status(suite: Suite, env_id: str, missing: str | None, check: bool) -> EnvStatus:
    """The status of one task of ``suite`` (``missing``: why the suite does not import)."""
    if missing is not None:
        return EnvStatus(suite.name, env_id, False, suite.hint, _lists_of(env_id))
    installed, note = _task_note(env_id)
    if check and installed:
        start = time.perf_counter()
        error = check_env(env_id)
        installed = error is None
        timing = f"built and stepped in {time.perf_counter() - start:.1f} s"
        note = "; ".join(part for part in (note, error or timing) if part)
    return EnvStatus(suite.name, env_id, installed, note, _lists_of(env_id))


def list_envs(suite: str | None = None, check: bool = False) -> list[EnvStatus]:
    """Lists the tasks of every suite (or one) and whether each is installed.

    Without ``check`` only the suites' packages are imported (fast); with ``check`` every task
    of an installed suite is built, reset and stepped once (a few seconds for all suites here).

    Args:
        suite: ``dmc``, ``mujoco``, ``myosuite``, ``hbench`` or ``ale``; ``None`` = all.
        check: Build every task instead of only importing its suite's packages.

    Returns:
        One status per task, grouped by suite in :data:`SUITES` order.

    Raises:
        EnvError: If ``suite`` is not a known suite name.
    """
    if suite is not None and suite not in SUITES:
        raise EnvError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    chosen = [SUITES[suite]] if suite else list(SUITES.values())
    statuses = []
    for entry in chosen:
        missing = suite_import_error(entry)
        statuses += [_status(entry, task, missing, check) for task in entry.tasks]
    return statuses


def _suite_header(suite: Suite, rows: list[EnvStatus]) -> str:
    """``name: title - k/n installed``, plus the install hint when the suite is missing."""
    count = sum(row.installed for row in rows)
    line = f"{suite.name}: {suite.title} - {count}/{len(rows)} installed"
    if rows and all(not row.installed and row.note == suite.hint for row in rows):
        line += f"; {suite.hint}"
    return line


def _row(status: EnvStatus, hint: str) -> str:
    """One table row: id, yes/no, task lists, and the note unless it repeats the suite hint."""
    note = "" if status.note == hint else status.note
    mark = "yes" if status.installed else "no"
    return f"  {status.env_id:<28} {mark:<4} {','.join(status.lists):<22} {note}".rstrip()


def format_envs(statuses: list[EnvStatus]) -> str:
    """The statuses as a table grouped by suite, each group with its installed count."""
    blocks = []
    for suite in SUITES.values():
        rows = [s for s in statuses if s.suite == suite.name]
        if rows:
            lines = [_suite_header(suite, rows)] + [_row(r, suite.hint) for r in rows]
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def format_task_lists(statuses: list[EnvStatus]) -> str:
    """The task lists whose tasks are all in ``statuses``, with sizes and installed counts."""
    installed = {s.env_id: s.installed for s in statuses}
    lines = ["task lists (env names for sweeps, e.g. scalerl sweep --envs dmc-easy ...):"]
    for name, tasks in TASK_LISTS.items():
        if all(t in installed for t in tasks):
            count = sum(installed[t] for t in tasks)
            lines.append(f"  {name:<12} {len(tasks):>2} tasks, {count} installed")
    return "\n".join(lines)


@dataclass(frozen=True)
class EnvsArgs:
    """List the environment suites, their tasks, whether each is installed, and the task lists."""

    suite: SuiteName | None = None
    """Only this suite."""
    installed_only: bool = False
    """Hide tasks that are not installed."""
    check: bool = False
    """Build, reset and step every task of the installed suites (a few seconds)."""


def main_envs(args: list[str]) -> None:
    """Entry point of ``scalerl envs``: parses ``args`` with tyro and prints the tables."""
    opts = tyro.cli(EnvsArgs, args=args, prog="scalerl envs")
    statuses = list_envs(opts.suite, opts.check)
    shown = [s for s in statuses if s.installed or not opts.installed_only]
    print(format_envs(shown) or "no installed tasks")
    print()
    print(format_task_lists(statuses))
    total = sum(s.installed for s in statuses)
    print(f"\n{total}/{len(statuses)} listed tasks installed")
