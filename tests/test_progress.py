"""The start and course of a run: start message, progress display, compile notice and cache."""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from scalerl.cli import main
from scalerl.errors import TrainingError
from scalerl.train import loop
from scalerl.train import step as step_module
from scalerl.train.compile_cache import CACHE_ENV, cache_dir, enable_compilation_cache
from scalerl.train.logging import Logger, read_metrics_csv
from scalerl.train.progress import FirstCalls, Progress, start_message, summary_every
from scalerl.train.setup import read_config

TINY = [
    "--env", "Pendulum-v1", "--agent", "mlp", "--env-steps", "200", "--warmup-steps", "20",
    "--utd", "1", "--eval-every", "100", "--eval-episodes", "1", "--log-every", "20",
    "--health-every", "0", "--critic-width", "16", "--actor-width", "16", "--batch-size", "8",
]  # fmt: skip
COMPILE_S = 1.5
"""Extra seconds the first call of the update step takes in the tiny run (a stand-in for a
slow compilation)."""


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, str]:
    """A tiny run whose first update step is slowed down by COMPILE_S; (run dir, stdout)."""
    root = tmp_path_factory.mktemp("runs")
    original = step_module.make_train_step

    def slow_first_call(sac, num_updates, random_action):
        fn, calls = original(sac, num_updates, random_action), []

        def step(*args):
            if num_updates and not calls:
                time.sleep(COMPILE_S)
            calls.append(1)
            return fn(*args)

        return step

    mp = pytest.MonkeyPatch()
    mp.setattr(step_module, "make_train_step", slow_first_call)
    out = io.StringIO()
    mp.setattr("sys.stdout", out)
    try:
        assert main(["train", *TINY, "--run-root", str(root), "--name", "tiny"]) == 0
    finally:
        mp.undo()
    return root / "tiny", out.getvalue()


def test_start_names_the_run_directory_and_tensorboard_first(tiny):
    run_dir, out = tiny
    lines = out.splitlines()
    assert lines[0] == f"scalerl: run directory {run_dir}"
    assert lines[1] == f"scalerl: watch it with: tensorboard --logdir {run_dir.parent}"
    assert lines[-1] == f"run written to {run_dir}"


def test_start_message_without_tensorboard_and_for_many_seeds():
    dirs = [Path(f"runs/job-s{i}") for i in range(6)]
    text = start_message(dirs, tensorboard=False)
    assert text.splitlines() == [
        "scalerl: run directory runs/job-s0",
        "scalerl: run directory runs/job-s1",
        "scalerl: run directory ... (6 seeds)",
        "scalerl: run directory runs/job-s5",
    ]


def test_off_a_terminal_progress_is_plain_lines_in_frames(tiny):
    _, out = tiny
    assert "\r" not in out
    progress = [line for line in out.splitlines() if " frames (" in line]
    # 200 agent steps, log_every 20: a line every 20 steps (summary_every(200, 20) == 20),
    # shown when the display updates (every 100 steps and at the end).
    assert [line.split()[1] for line in progress] == ["100/200", "200/200"]
    assert all("train_return" in line and "eval_return" in line for line in progress)
    assert "compiling the training step..." in out


def test_summary_every_is_a_multiple_of_log_every():
    assert summary_every(400, 20) == 20
    assert summary_every(500_000, 1_000) == 10_000
    assert summary_every(10, 1_000) == 1_000


def test_bar_counts_frames_and_shows_both_returns():
    progress = Progress(total=1000, initial=200, unit="frame", enabled=True, plain_every=100,
                        stream=Tty())  # fmt: skip
    assert not progress.plain and progress.bar.total == 1000 and progress.bar.n == 200
    progress.update(600, [-10.0, math.nan, -20.0], [5.0])
    assert progress.bar.n == 600
    assert progress.bar.postfix == "train_return=-15.0, eval_return=5.0"
    progress.close()


def test_plain_progress_prints_every_n_and_the_end():
    out = io.StringIO()
    progress = Progress(total=1000, initial=0, unit="frame", enabled=True, plain_every=400,
                        stream=out)  # fmt: skip
    for done in range(100, 1001, 100):
        progress.update(done, [1.0], [2.0])
    progress.close()
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["400/1,000", "800/1,000", "1,000/1,000"]
    assert "train_return 1.0 | eval_return 2.0" in lines[0]


def test_no_progress_prints_nothing():
    out = Tty()
    progress = Progress(total=10, initial=0, unit="frame", enabled=False, plain_every=1,
                        stream=out)  # fmt: skip
    progress.say("compiling")
    progress.update(10, [1.0], [1.0])
    progress.close()
    assert out.getvalue() == ""


def test_first_updates_per_s_leaves_compilation_out(tiny):
    run_dir, _ = tiny
    rows = read_metrics_csv(run_dir / "metrics.csv")
    rates = [r["value"] for r in rows if r["metric"] == "perf/updates_per_s"]
    # The first window (steps 1-20) holds one update, at step 20, whose call took COMPILE_S
    # more: counted, the rate would be below 1 / COMPILE_S.
    assert rates[0] > 2 / COMPILE_S
    assert len(rates) == 10


def test_first_calls_are_announced_once_and_timed():
    said = []

    class Recorder:
        def say(self, message):
            said.append(message)

        def clear(self):
            said.append("")

    call = FirstCalls(Recorder())
    out, seconds = call("a", lambda x: x + 1, jax.numpy.ones(2))
    np.testing.assert_array_equal(out, [2.0, 2.0])
    assert seconds > 0 and said == ["compiling the training step...", ""]
    assert call("a", lambda x: x, 1) == (1, 0.0) and len(said) == 2


def test_nonfinite_loss_row_is_logged_before_stopping(tiny, tmp_path):
    run_dir, _ = tiny
    from scalerl.train.evaluate import load_run_agent

    _, state, _ = load_run_agent(run_dir)
    logger = Logger(tmp_path, "mlp", "Pendulum-v1", 0, tensorboard=False)
    seed_run = loop.SeedRun(read_config(run_dir), tmp_path, None, None, logger, None)
    states = jax.tree_util.tree_map(lambda x: x[None], state)
    metrics = {"train/critic_loss": np.float32("nan"), "train/actor_loss": np.float32(0.5)}
    with pytest.raises(TrainingError, match="critic_loss became nan"):
        loop._check_losses(seed_run, states, 0, metrics, 10)
    logger.close()
    rows = read_metrics_csv(tmp_path / "metrics.csv")
    rows = {r["metric"]: (r["env_step"], r["value"]) for r in rows}
    assert math.isnan(rows["train/critic_loss"][1]) and rows["train/critic_loss"][0] == 10
    assert rows["train/actor_loss"] == (10, 0.5)


def test_compilation_cache_dir_default_override_and_off(tmp_path):
    home = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert cache_dir(home) == tmp_path / "xdg" / "scalerl" / "jax"
    assert cache_dir(home | {CACHE_ENV: str(tmp_path / "c")}) == tmp_path / "c"
    for off in ("off", "0", "False", "no"):
        assert cache_dir(home | {CACHE_ENV: off}) is None
    assert cache_dir({"HOME": "/h"}).parts[-2:] == ("scalerl", "jax")


def test_enable_compilation_cache_sets_jax_config(tmp_path, monkeypatch):
    from scalerl.train import compile_cache

    monkeypatch.setattr(compile_cache, "_configured_dir", lambda: None)
    updates = {}
    monkeypatch.setattr(jax.config, "update", lambda k, v: updates.__setitem__(k, v))
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    path = enable_compilation_cache(env)
    assert path == tmp_path / "scalerl" / "jax" and path.is_dir()
    assert updates == {"jax_compilation_cache_dir": str(path)}
    updates.clear()
    assert enable_compilation_cache(env | {CACHE_ENV: "off"}) is None and updates == {}
