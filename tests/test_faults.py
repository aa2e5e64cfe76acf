"""Bad inputs and kills: every command fails with one line, exit code 2 and no changed run.

The corpus calls `scalerl.cli.main` in-process (a few cases go through a subprocess, to check
the real entry point); each case may prepare broken files in its own directory first. A real
tiny run and a sweep directory are shared by all cases and must come out byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
import pytest

from scalerl.cli import main
from scalerl.train import loop
from scalerl.train.logging import CsvSink

TINY = [
    "--env", "Pendulum-v1", "--agent", "mlp", "--env-steps", "300", "--warmup-steps", "60",
    "--utd", "1", "--eval-every", "150", "--eval-episodes", "1", "--checkpoint-every", "40",
    "--log-every", "20", "--health-every", "100", "--critic-width", "16", "--actor-width", "16",
    "--batch-size", "16", "--no-progress", "--no-tensorboard",
]  # fmt: skip
"""A tiny Pendulum run (300 agent steps; resume points every 40 steps, evaluations at 0, 150,
300)."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """runs/real: a finished tiny run; runs/sweep/a: a just-started run (header-only CSV)."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", *TINY, "--run-root", str(root), "--name", "real"]) == 0
    fresh = root / "sweep" / "a"
    fresh.mkdir(parents=True)
    shutil.copy(root / "real" / "config.json", fresh / "config.json")
    CsvSink(fresh / "metrics.csv", "mlp", "Pendulum-v1", 0).close()
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Digest of every file under `root` (path -> sha256), to detect any change."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------ broken inputs


def copy_run(runs: Path, tmp: Path) -> Path:
    """A copy of the finished run, to break."""
    return Path(shutil.copytree(runs / "real", tmp / "copy"))


def corrupt_config(runs: Path, tmp: Path) -> None:
    (copy_run(runs, tmp) / "config.json").write_text('{"env": "Pendulum-v1", ')


def config_of_other_version(runs: Path, tmp: Path) -> None:
    path = copy_run(runs, tmp) / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"no_such_field": 1}))


def corrupt_checkpoints(runs: Path, tmp: Path) -> None:
    run = copy_run(runs, tmp)
    for path in [run / "checkpoint.msgpack", *(run / "resume").glob("*.msgpack")]:
        path.write_bytes(b"not a checkpoint")


def no_resume_points(runs: Path, tmp: Path) -> None:
    shutil.rmtree(copy_run(runs, tmp) / "resume")  # a run of an older scalerl: not restarted


def config_only(runs: Path, tmp: Path) -> None:
    (tmp / "copy").mkdir()
    shutil.copy(runs / "real" / "config.json", tmp / "copy" / "config.json")


def garbage_files(runs: Path, tmp: Path) -> None:
    (tmp / "data.npz").write_bytes(b"garbage")
    (tmp / "data.txt").write_text("not a dataset")
    (tmp / "foreign").mkdir()
    (tmp / "foreign" / "metrics.csv").write_text("step,loss\n1,2\n")
    (tmp / "grid.yaml").write_text("envs: [Pendulum-v1]\nbogus: 1\n")
    (tmp / "list.yaml").write_text("- 1\n- 2\n")


def taken_second_seed(runs: Path, tmp: Path) -> None:
    (tmp / "j-s1").mkdir()
    (tmp / "j-s1" / "notes.txt").write_text("mine")


def empty_dir(runs: Path, tmp: Path) -> None:
    (tmp / "empty").mkdir()


NO_SETUP = None
T = [*TINY, "--run-root", "{tmp}/made"]  # a run directory made by mistake changes {tmp}

# (id, argv; {runs} = shared runs root, {tmp} = the case's own directory), setup, message part
CASES: list[tuple[str, list[str], Callable | None, str]] = [
    # train: config values
    ("train-unknown-env", ["train", *T, "--env", "NoSuchEnv-v9"], NO_SETUP, "NoSuchEnv-v9"),
    ("train-unknown-dmc-task", ["train", *T, "--env", "dmc:cartpole-nope"], NO_SETUP, "cartpole"),
    ("train-unknown-agent", ["train", "--agent", "ppo"], NO_SETUP, "unknown agent"),
    ("train-utd-zero", ["train", *T, "--utd", "0"], NO_SETUP, "utd must be positive"),
    ("train-negative-width", ["train", *T, "--critic-width", "-3"], NO_SETUP, "critic_width"),
    ("train-zero-env-steps", ["train", *T, "--env-steps", "0"], NO_SETUP, "env_steps"),
    ("train-budget-below-warmup", ["train", *T, "--env-steps", "50"], NO_SETUP,
     "ends before warmup_steps"),
    ("train-budget-below-warmup-repeat", ["train", *T, "--env-steps", "200",
     "--action-repeat", "4"], NO_SETUP, "50 agent steps at action repeat 4"),
    ("train-below-one-agent-step", ["train", *T, "--env-steps", "3", "--action-repeat", "4",
     "--warmup-steps", "1"], NO_SETUP, "below one agent step"),
    ("train-zero-warmup", ["train", *T, "--warmup-steps", "0"], NO_SETUP, "warmup_steps"),
    ("train-buffer-below-warmup", ["train", *T, "--buffer-capacity", "10"], NO_SETUP,
     "buffer_capacity"),
    ("train-seeds-unparsable", ["train", *T, "--seeds", "a-b"], NO_SETUP, "cannot parse --seeds"),
    ("train-seeds-empty-range", ["train", *T, "--seeds", "3-1"], NO_SETUP, "cannot parse --seeds"),
    ("train-seeds-repeated", ["train", *T, "--seeds", "0,0"], NO_SETUP, "repeats a seed"),
    ("train-zero-num-seeds", ["train", *T, "--num-seeds", "0"], NO_SETUP, "num_seeds"),
    ("train-zero-eval-episodes", ["train", *T, "--eval-episodes", "0"], NO_SETUP,
     "eval_episodes"),
    ("train-zero-log-every", ["train", *T, "--log-every", "0"], NO_SETUP, "log_every"),
    ("train-negative-health-every", ["train", *T, "--health-every", "-1"], NO_SETUP,
     "health_every"),
    ("train-negative-checkpoint-every", ["train", *T, "--checkpoint-every", "-5"], NO_SETUP,
     "checkpoint_every"),
    ("train-zero-action-repeat", ["train", *T, "--action-repeat", "0"], NO_SETUP,
     "action_repeat"),
    ("train-zero-eval-every", ["train", *T, "--eval-every", "0"], NO_SETUP, "eval_every"),
    ("train-negative-lr-warmup", ["train", *T, "--lr-warmup", "-1"], NO_SETUP, "lr_warmup"),
    ("train-redo-on-simbav2", ["train", "--agent", "simbav2", "--redo-every", "10"], NO_SETUP,
     "ReDo"),
    ("train-init-from-missing", ["train", *T, "--init-from", "{tmp}/missing"], NO_SETUP,
     "not a scalerl run directory"),
    ("train-preload-missing", ["train", *T, "--preload-dataset", "{tmp}/missing.npz"], NO_SETUP,
     "not found"),
    ("train-preload-garbage", ["train", *T, "--preload-dataset", "{tmp}/data.txt"],
     garbage_files, "dataset"),
    ("train-existing-name", ["train", *T, "--run-root", "{runs}", "--name", "real"], NO_SETUP,
     "already exists"),
    ("train-existing-second-seed", ["train", *T, "--run-root", "{tmp}", "--name", "j",
     "--seeds", "0-1"], taken_second_seed, "j-s1 already exists"),
    ("train-init-from-corrupt-checkpoint", ["train", *T, "--init-from", "{tmp}/copy"],
     corrupt_checkpoints, "is corrupt"),
    # resume
    ("resume-missing-dir", ["train", "--resume", "{tmp}/missing"], NO_SETUP,
     "not a scalerl run directory"),
    ("resume-with-options", ["train", "--resume", "{runs}/real", "--utd", "2"], NO_SETUP,
     "usage: scalerl train --resume"),
    ("resume-no-dir", ["train", "--resume"], NO_SETUP, "usage: scalerl train --resume"),
    ("resume-corrupt-config", ["train", "--resume", "{tmp}/copy"], corrupt_config,
     "the run is intact"),
    ("resume-config-of-other-version", ["train", "--resume", "{tmp}/copy"],
     config_of_other_version, "does not match this scalerl version"),
    ("resume-corrupt-checkpoints", ["train", "--resume", "{tmp}/copy"], corrupt_checkpoints,
     "no usable resume checkpoint"),
    ("resume-agent-checkpoint-only", ["train", "--resume", "{tmp}/copy"], no_resume_points,
     "no usable resume checkpoint"),
    ("resume-sweep-dir-of-runs", ["train", "--resume", "{runs}"], NO_SETUP,
     "not a scalerl run directory"),
    # evaluate
    ("evaluate-missing-run", ["evaluate", "{tmp}/missing"], NO_SETUP, "not a scalerl run"),
    ("evaluate-corrupt-config", ["evaluate", "{tmp}/copy"], corrupt_config, "not valid JSON"),
    ("evaluate-no-checkpoint", ["evaluate", "{tmp}/copy"], config_only, "no checkpoint"),
    ("evaluate-corrupt-checkpoint", ["evaluate", "{tmp}/copy"], corrupt_checkpoints,
     "is corrupt"),
    ("evaluate-zero-episodes", ["evaluate", "{runs}/real", "--episodes", "0"], NO_SETUP,
     "episodes"),
    # sweep
    ("sweep-unknown-field", ["sweep", "--envs", "Pendulum-v1", "--set", "no_such_field=1",
     "--out", "{tmp}/sw"], NO_SETUP, "no_such_field"),
    ("sweep-bad-value", ["sweep", "--envs", "Pendulum-v1", "--set", "utd=fast", "--out",
     "{tmp}/sw"], NO_SETUP, "cannot parse utd"),
    ("sweep-unknown-agent", ["sweep", "--envs", "Pendulum-v1", "--agents", "ppo", "--out",
     "{tmp}/sw"], NO_SETUP, "unknown agent"),
    ("sweep-bad-seeds", ["sweep", "--envs", "Pendulum-v1", "--seeds", "x", "--out",
     "{tmp}/sw"], NO_SETUP, "seeds"),
    ("sweep-missing-grid", ["sweep", "--grid", "{tmp}/missing.yaml"], NO_SETUP, "missing.yaml"),
    ("sweep-grid-unknown-key", ["sweep", "--grid", "{tmp}/grid.yaml"], garbage_files, "bogus"),
    ("sweep-grid-not-mapping", ["sweep", "--grid", "{tmp}/list.yaml"], garbage_files,
     "must be a mapping"),
    ("sweep-pair-without-value", ["sweep", "--envs", "Pendulum-v1", "--set", "utd", "--out",
     "{tmp}/sw"], NO_SETUP, "key=value"),
    # report
    ("report-missing-path", ["report", "{tmp}/missing", "--out", "{tmp}/r"], NO_SETUP,
     "does not exist"),
    ("report-no-runs", ["report", "{tmp}/empty", "--out", "{tmp}/r"], empty_dir,
     "no runs found"),
    ("report-only-unevaluated-run", ["report", "{runs}/sweep", "--out", "{tmp}/r"], NO_SETUP,
     "no evaluation results"),
    ("report-missing-reference", ["report", "{runs}/real", "--reference", "{tmp}/nope.csv",
     "--out", "{tmp}/r"], NO_SETUP, "not found"),
    ("report-foreign-csv", ["report", "{tmp}/foreign", "--out", "{tmp}/r"], garbage_files,
     "not a metrics CSV"),
    # plot
    ("plot-missing-run", ["plot", "{tmp}/missing", "--out", "{tmp}/p.png"], NO_SETUP,
     "no metrics file"),
    ("plot-label-count", ["plot", "{runs}/real", "--labels", "a", "b", "--out", "{tmp}/p.png"],
     NO_SETUP, "2 labels for 1 run"),
    ("plot-foreign-csv", ["plot", "{tmp}/foreign", "--out", "{tmp}/p.png"], garbage_files,
     "not a metrics CSV"),
    # offline
    ("offline-missing-dataset", ["offline", "--dataset", "{tmp}/missing.npz", "--env",
     "Pendulum-v1"], NO_SETUP, "not found"),
    ("offline-garbage-dataset", ["offline", "--dataset", "{tmp}/data.txt", "--env",
     "Pendulum-v1"], garbage_files, "dataset"),
    ("offline-zero-epochs", ["offline", "--dataset", "{tmp}/missing.npz", "--epochs", "0"],
     NO_SETUP, "epochs"),
    ("offline-unknown-agent", ["offline", "--agent", "ppo"], NO_SETUP, "unknown agent"),
    ("offline-resume-online-run", ["offline", "--resume", "{runs}/real"], NO_SETUP,
     "not an offline run directory"),
    # dataset
    ("dataset-no-subcommand", ["dataset"], NO_SETUP, "usage: scalerl dataset"),
    ("dataset-unknown-subcommand", ["dataset", "convert", "{runs}/real"], NO_SETUP,
     "usage: scalerl dataset"),
    ("dataset-export-missing-run", ["dataset", "export", "{tmp}/missing"], NO_SETUP,
     "not a scalerl run directory"),
    ("dataset-collect-zero-episodes", ["dataset", "collect", "{runs}/real", "--episodes", "0",
     "--out", "{tmp}/d.npz"], NO_SETUP, "episodes must be >= 1"),
    ("dataset-collect-negative-noise", ["dataset", "collect", "{runs}/real", "--noise", "-1",
     "--out", "{tmp}/d.npz"], NO_SETUP, "noise"),
    ("dataset-collect-corrupt-checkpoint", ["dataset", "collect", "{tmp}/copy", "--out",
     "{tmp}/d.npz"], corrupt_checkpoints, "is corrupt"),
]  # fmt: skip


def _argv(argv: list[str], runs: Path, tmp: Path) -> list[str]:
    return [a.replace("{runs}", str(runs)).replace("{tmp}", str(tmp)) for a in argv]


def test_corpus_covers_every_command_with_40_cases() -> None:
    assert len(CASES) >= 40
    assert len({case[0] for case in CASES}) == len(CASES)
    commands = {case[1][0] for case in CASES}
    commands |= {"resume"} if any("--resume" in case[1] for case in CASES) else set()
    expected = {"train", "evaluate", "resume", "sweep", "report", "plot", "offline", "dataset"}
    assert expected <= commands


@pytest.mark.parametrize(("argv", "setup", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_changes_no_run(
    runs, tmp_path, capsys, argv, setup, message
):
    if setup is not None:
        setup(runs, tmp_path)
    before, mine = snapshot(runs), snapshot(tmp_path)
    capsys.readouterr()
    assert main(_argv(argv, runs, tmp_path)) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("scalerl: error:")]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err
    assert snapshot(runs) == before
    assert snapshot(tmp_path) == mine  # the case's own broken run is left as it was


SUBPROCESS_CASES = ["train-budget-below-warmup", "resume-corrupt-config"]


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_bad_input_through_the_real_entry_point(runs, tmp_path, case):
    _, argv, setup, message = next(c for c in CASES if c[0] == case)
    if setup is not None:
        setup(runs, tmp_path)
    before = snapshot(runs)
    env = os.environ | {"MUJOCO_GL": "egl"}
    cmd = [sys.executable, "-m", "scalerl.cli", *_argv(argv, runs, tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert snapshot(runs) == before


# ------------------------------------------------------------------------ kills and resume


class Killed(BaseException):
    """Stands in for SIGKILL: raised at a chosen point, caught by nothing in scalerl."""


RNG = np.random.default_rng(16)
WARMUP_KILL = int(RNG.integers(1, 60))  # agent steps; updates start at 60
MID_KILL = int(RNG.integers(61, 300))


def kill_at_step(monkeypatch, step: int) -> None:
    """Kill the run at the start of agent step `step` (steps 1..step-1 done; 1 = at step 0)."""
    original, calls = loop._env_step, []

    def env_step(*args):
        calls.append(1)
        if len(calls) == step:
            raise Killed
        return original(*args)

    monkeypatch.setattr(loop, "_env_step", env_step)


def kill_in_call(monkeypatch, owner, name: str, call: int, before=None) -> None:
    """Kill the run in the `call`-th call of owner.name (after `before(*args)` if given)."""
    original, calls = getattr(owner, name), []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            if before is not None:
                before(*args, **kwargs)
            raise Killed
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)


def half_written(path: Path, data: bytes) -> None:
    """What a kill in the middle of `_write_atomic` leaves: a partial temporary file."""
    (path.parent / f".{path.name}.k1ll3d.tmp").write_bytes(data[: len(data) // 2])


def lines(run_dir: Path) -> list[str]:
    """metrics.csv rows without perf/ (wall-clock rates differ between runs), sorted."""
    rows = (run_dir / "metrics.csv").read_text().splitlines()[1:]
    return sorted(row for row in rows if ",perf/" not in row)


def assert_same_run(a: Path, b: Path) -> None:
    """Bit-identical final parameters (agent checkpoint) and metrics."""
    for x, y in zip(params(a), params(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert lines(a) == lines(b)
    assert not list(b.rglob("*.tmp"))


def params(run_dir: Path) -> list[np.ndarray]:
    from scalerl.train.evaluate import load_run_agent

    _, state, _ = load_run_agent(run_dir)
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def start_killed(tmp_path: Path, extra: list[str] = ()) -> list[Path]:
    """Start the tiny run, killed by the patches in place; its seed directories."""
    with pytest.raises(Killed):
        main(["train", *TINY, *extra, "--run-root", str(tmp_path), "--name", "k"])
    dirs = sorted(d for d in tmp_path.iterdir() if d.is_dir())
    return dirs


def resume(dirs: list[Path]) -> None:
    assert main(["train", "--resume", *map(str, dirs)]) == 0


def test_kill_at_step_0_restarts_from_scratch_exactly(runs, tmp_path, monkeypatch, capsys):
    kill_at_step(monkeypatch, 1)
    dirs = start_killed(tmp_path)
    monkeypatch.undo()
    assert not (dirs[0] / "resume").exists()
    resume(dirs)
    assert "has no resume checkpoint yet; restarting it from step 0" in capsys.readouterr().err
    assert_same_run(runs / "real", dirs[0])


@pytest.mark.slow
def test_kill_during_warmup_before_any_resume_point(runs, tmp_path, monkeypatch):
    kill_at_step(monkeypatch, min(WARMUP_KILL, 39))  # the first resume point is at step 40
    dirs = start_killed(tmp_path)
    monkeypatch.undo()
    resume(dirs)
    assert_same_run(runs / "real", dirs[0])


@pytest.mark.slow
def test_kill_mid_training(runs, tmp_path, monkeypatch):
    kill_at_step(monkeypatch, MID_KILL)
    dirs = start_killed(tmp_path)
    monkeypatch.undo()
    resume(dirs)
    assert_same_run(runs / "real", dirs[0])


@pytest.mark.slow
def test_kill_during_evaluation(runs, tmp_path, monkeypatch):
    kill_in_call(monkeypatch, loop, "evaluate_batch", 2)  # the evaluation at step 150
    dirs = start_killed(tmp_path)
    monkeypatch.undo()
    resume(dirs)
    assert_same_run(runs / "real", dirs[0])


@pytest.mark.slow
def test_kill_during_a_checkpoint_write_leaves_nothing_behind(runs, tmp_path, monkeypatch):
    from scalerl.train import checkpoint

    kill_in_call(monkeypatch, checkpoint, "_write_atomic", 2 * 4 + 1, half_written)
    dirs = start_killed(tmp_path)  # killed writing the resume point of step 160
    monkeypatch.undo()
    assert list(dirs[0].rglob("*.tmp"))
    resume(dirs)
    assert_same_run(runs / "real", dirs[0])


@pytest.mark.slow
def test_kill_with_seeds_resumes_every_seed(tmp_path, monkeypatch):
    seeds = ["--seeds", "0-1", "--env-steps", "120"]
    assert main(["train", *TINY, *seeds, "--run-root", str(tmp_path / "ref"), "--name", "k"]) == 0
    kill_at_step(monkeypatch, int(RNG.integers(61, 120)))
    dirs = start_killed(tmp_path / "killed", seeds)
    monkeypatch.undo()
    assert [d.name for d in dirs] == ["k-s0", "k-s1"]
    resume(dirs)
    for d in dirs:
        assert_same_run(tmp_path / "ref" / d.name, d)


def test_job_group_is_the_seeds_name_without_the_seed():
    from scalerl.config import TrainConfig
    from scalerl.train.setup import job_group, seed_configs

    named = seed_configs(TrainConfig(env="Pendulum-v1", name="job", seeds="0-1"))
    assert job_group(named) == "job"
    default = seed_configs(TrainConfig(env="Pendulum-v1", seeds="3,5"))
    assert job_group(default) == default[0].name.replace("-s3-", "-")
    assert job_group(seed_configs(TrainConfig(env="Pendulum-v1", name="one"))) is None


@pytest.mark.slow
def test_wandb_groups_seeds_and_resume_reattaches(tmp_path, monkeypatch):
    inits = []

    class FakeRun:
        def log(self, values, step):
            pass

        def finish(self):
            pass

    fake = types.SimpleNamespace(init=lambda **kw: inits.append(kw) or FakeRun())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    args = ["--seeds", "0-1", "--env-steps", "2", "--warmup-steps", "1", "--eval-every", "1",
            "--wandb-project", "p", "--run-root", str(tmp_path), "--name", "job"]  # fmt: skip
    assert main(["train", *TINY, *args]) == 0
    dirs = [tmp_path / "job-s0", tmp_path / "job-s1"]
    resume(dirs)
    first, second, *resumed = inits
    assert first["group"] == second["group"] == "job" and first["id"] != second["id"]
    assert [r["id"] for r in resumed] == [first["id"], second["id"]]
    assert {r["group"] for r in resumed} == {"job"} and {r["resume"] for r in inits} == {"allow"}
