"""Sweeps: grid expansion and parsing, skip-on-relaunch, retries, dead workers, both backends."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tyro

from scalerl.cli import main as cli_main
from scalerl.config import TrainConfig, seed_list
from scalerl.envs.suites import MUJOCO
from scalerl.errors import ConfigError, ScalerlError
from scalerl.sweep import (
    SweepArgs,
    SweepSpec,
    Trainer,
    expand,
    main_sweep,
    pack,
    plan_packing,
    run_sweep,
    spec_from_args,
)
from scalerl.sweep.grid import parse_value
from scalerl.sweep.jobs import (
    checkpoint_steps,
    drop_checkpoints_after,
    pack_config,
    resume_groups,
)
from scalerl.sweep.lock import LOCK_NAME, SweepLock
from scalerl.sweep.packing import core_slots, single_thread_flags
from scalerl.sweep.ray_backend import _count_attempt, _unpack, archive
from scalerl.sweep.runner import DONE_NAME, set_aside

TINY = {
    "env_steps": "100",
    "warmup_steps": "50",
    "utd": "1",
    "eval_episodes": "1",
    "log_every": "50",
    "max_episode_steps": "20",
    "health_every": "0",
    "tensorboard": "false",
    "actor_width": "16",
    "critic_width": "16",
    "actor_depth": "1",
    "critic_depth": "1",
    "batch_size": "8",
}
"""A Pendulum-v1 run of a few seconds (most of it compiling)."""


# ----------------------------------------------------------------------------- grid


def test_expand_is_seed_major_with_readable_names(tmp_path):
    spec = SweepSpec.from_options(
        envs=["Pendulum-v1", "dmc:cartpole-swingup"],
        seeds="0-1",
        agents=["mlp"],
        overrides={"critic_width": [128, 256]},
        out_dir=tmp_path,
        name="grid",
    )
    names = [r.name for r in expand(spec)]
    assert names == [
        "mlp-Pendulum-v1-critic_width=128-s0",
        "mlp-Pendulum-v1-critic_width=256-s0",
        "mlp-dmc-cartpole-swingup-critic_width=128-s0",
        "mlp-dmc-cartpole-swingup-critic_width=256-s0",
        "mlp-Pendulum-v1-critic_width=128-s1",
        "mlp-Pendulum-v1-critic_width=256-s1",
        "mlp-dmc-cartpole-swingup-critic_width=128-s1",
        "mlp-dmc-cartpole-swingup-critic_width=256-s1",
    ]


def test_suite_names_expand_to_their_tasks():
    spec = SweepSpec.from_options(envs=["mujoco", "Hopper-v5", "dmc-easy"], agents="simba,mlp")
    runs = expand(spec)
    assert len(runs) == 2 * (5 + 21)  # Hopper-v5 is already in mujoco: listed once
    assert [r.config.env for r in runs[:5]] == list(MUJOCO)
    assert runs[0].name == "simba-HalfCheetah-v5-s0"
    assert runs[-1].name == "mlp-dmc-walker-run-s0"


def test_run_configs_apply_preset_base_and_overrides(tmp_path):
    spec = SweepSpec.from_options(
        envs="Pendulum-v1",
        agents="mlp",
        seeds=[3],
        overrides=["utd=0.5", "reset_every=1000", "gamma=None,0.9"],
        base=["env_steps=2000", "reset=full", "tensorboard=false"],
        out_dir=tmp_path,
        name="cfg",
    )
    first, second = expand(spec)
    cfg = first.config
    assert first.name == "mlp-Pendulum-v1-utd=0.5-reset_every=1000-gamma=None-s3"
    assert (cfg.run_root, cfg.name, cfg.seed) == (tmp_path / "cfg", first.name, 3)
    assert (cfg.progress, cfg.seeds, cfg.num_seeds, cfg.env_steps, cfg.utd) == (
        False, None, 1, 2000, 0.5,
    )  # fmt: skip
    assert cfg.tensorboard is False
    assert (cfg.agent.agent, cfg.agent.temp_init, cfg.agent.gamma) == ("mlp", 1.0, None)
    assert (cfg.agent.plasticity.reset, cfg.agent.plasticity.reset_every) == ("full", 1000)
    assert second.config.agent.gamma == 0.9
    assert first.params == {
        "env": "Pendulum-v1",
        "agent": "mlp",
        "seed": "3",
        "utd": "0.5",
        "reset_every": "1000",
        "gamma": "None",
    }


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("critic_width", "1024", 1024),
        ("env_steps", "1_000_000", 1_000_000),
        ("env_steps", "1e6", 1_000_000),
        ("utd", "2", 2.0),
        ("lr_init", "3e-4", 3e-4),
        ("tensorboard", "False", False),
        ("nap", "yes", True),
        ("use_cdq", "none", None),
        ("use_cdq", "true", True),
        ("action_repeat", "None", None),
        ("action_repeat", "4", 4),
        ("critic_head", "scalar", "scalar"),
        ("wandb_project", "proj", "proj"),
        ("reset_stop_after", "null", None),
    ],
)
def test_values_parse_to_the_field_type(key, text, value):
    parsed = parse_value(key, text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("key", "text"),
    [("critic_width", "wide"), ("critic_width", "1.5"), ("nap", "maybe"), ("reset", "half")],
)
def test_bad_values_raise_config_error(key, text):
    with pytest.raises(ConfigError, match=f"cannot parse {key}="):
        parse_value(key, text)


def test_unknown_and_reserved_keys_raise_one_line_errors():
    with pytest.raises(ConfigError) as err:
        SweepSpec.from_options(envs="Pendulum-v1", overrides=["critic_widht=128,256"])
    message = str(err.value)
    assert "\n" not in message and "unknown sweep key 'critic_widht'" in message
    for valid in ("critic_width", "utd", "reset_every", "env_steps"):
        assert valid in message
    with pytest.raises(ConfigError, match="set by the grid"):
        SweepSpec.from_options(envs="Pendulum-v1", base=["seed=3"])
    with pytest.raises(ConfigError, match="both swept and fixed"):
        SweepSpec.from_options(envs="Pendulum-v1", overrides=["utd=1,2"], base=["utd=1"])
    with pytest.raises(ConfigError, match="unknown agent"):
        SweepSpec.from_options(envs="Pendulum-v1", agents="ppo")
    with pytest.raises(ScalerlError, match="unknown environment id"):
        expand(SweepSpec.from_options(envs="NoSuchEnv-v0"))
    with pytest.raises(ScalerlError, match="use --algo dqn or --algo pqn"):
        expand(SweepSpec.from_options(envs="ale:Pong"))  # SAC cannot act in discrete envs


def test_yaml_grid_and_command_line_options(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        textwrap.dedent(f"""\
            name: utd
            out_dir: {tmp_path}
            envs: [Pendulum-v1]
            seeds: 0-2
            agents: [simbav2, simba]
            overrides:
              utd: [1, 2]
              critic_width: 128,256
            base:
              env_steps: 100000
              normalize_reward: false
            """)
    )
    spec = SweepSpec.from_yaml(grid)
    assert spec == SweepSpec(
        envs=("Pendulum-v1",),
        seeds=(0, 1, 2),
        agents=("simbav2", "simba"),
        overrides={"utd": ["1", "2"], "critic_width": ["128", "256"]},
        base={"env_steps": "100000", "normalize_reward": "false"},
        name="utd",
        out_dir=tmp_path,
    )
    assert len(expand(spec)) == 3 * 2 * 2 * 2
    argv = ["--grid", str(grid), "--seeds", "4", "--set", "utd=8", "--set", "n_step=1,3"]
    args = tyro.cli(SweepArgs, args=[*argv, "--out", str(tmp_path / "other")])
    cli_spec = spec_from_args(args)
    assert cli_spec.seeds == (4,) and cli_spec.sweep_dir == tmp_path / "other"
    assert cli_spec.overrides == {
        "utd": ["8"],
        "critic_width": ["128", "256"],
        "n_step": ["1", "3"],
    }
    grid.write_text("envs: [Pendulum-v1\n")
    with pytest.raises(ConfigError, match="cannot read grid file") as err:
        SweepSpec.from_yaml(grid)
    assert "\n" not in str(err.value)
    grid.write_text("envs: [Pendulum-v1]\nsed: 3\n")
    with pytest.raises(ConfigError, match="unknown keys \\['sed'\\]"):
        SweepSpec.from_yaml(grid)


# ----------------------------------------------------------------------------- local backend


def fake_seeds(cfg: TrainConfig) -> list[Path]:
    """Stand-in for `train_seeds` in worker processes: seed 1 raises, seed 2 is killed, seed 3
    fails its first attempt; it refuses an existing directory, like `create_run_dir`."""
    seeds = seed_list(cfg)
    names = [cfg.name] if len(seeds) == 1 else [f"{cfg.name}-s{s}" for s in seeds]
    dirs = [Path(cfg.run_root) / str(name) for name in names]
    for run_dir in dirs:
        run_dir.mkdir(parents=True)
    with open(Path(cfg.run_root) / "calls.txt", "a") as f:
        f.write(" ".join(names) + "\n")
    if 1 in seeds:
        raise RuntimeError("boom\nsecond line")
    if 2 in seeds:
        os.kill(os.getpid(), signal.SIGKILL)
    if 3 in seeds and not list(dirs[0].parent.glob(f"{dirs[0].name}.failed-*")):
        raise RuntimeError("flaky")
    return dirs


FAKE = Trainer(fresh=fake_seeds)


def calls(sweep_dir: Path) -> list[str]:
    """One entry per training process: the run names it trained, space-separated."""
    path = sweep_dir / "calls.txt"
    return sorted(path.read_text().splitlines()) if path.exists() else []


def test_failures_are_retried_then_reported_and_a_killed_worker_does_not_stop_the_sweep(tmp_path):
    spec = SweepSpec.from_options(envs="Pendulum-v1", seeds="0-3", agents="mlp", out_dir=tmp_path)
    statuses = run_sweep(spec, retries=1, workers=2, trainer=FAKE, seeds_per_process=1)
    table = {s.name: (s.status, s.attempts, s.error) for s in statuses}
    assert table == {
        "mlp-Pendulum-v1-s0": ("done", 1, None),
        "mlp-Pendulum-v1-s1": ("failed", 2, "RuntimeError: boom"),
        "mlp-Pendulum-v1-s2": ("failed", 2, "worker died (SIGKILL)"),
        "mlp-Pendulum-v1-s3": ("done", 2, None),
    }
    sweep = tmp_path / "sweep"
    assert (sweep / "mlp-Pendulum-v1-s1.failed-1").is_dir()
    assert (sweep / "mlp-Pendulum-v1-s3" / DONE_NAME).is_file()
    assert not (sweep / "mlp-Pendulum-v1-s1" / DONE_NAME).exists()
    assert "RuntimeError: boom" in (sweep / "logs" / "mlp-Pendulum-v1-s1.log").read_text()
    report = json.loads((sweep / "sweep.json").read_text())
    assert report["counts"] == {"done": 2, "skipped": 0, "failed": 2}
    assert report["plan"] == {"workers": 2, "threads": 1, "seeds_per_process": 1}
    assert report["runs"][2]["error"] == "worker died (SIGKILL)"
    assert report["runs"][2]["params"] == {"env": "Pendulum-v1", "agent": "mlp", "seed": "2"}
    # relaunch: completed runs are skipped, failed ones get fresh attempts
    before = calls(sweep)
    statuses = run_sweep(spec, retries=0, workers=2, trainer=FAKE, seeds_per_process=1)
    assert [s.status for s in statuses] == ["skipped", "failed", "failed", "skipped"]
    assert calls(sweep) == sorted(before + ["mlp-Pendulum-v1-s1", "mlp-Pendulum-v1-s2"])


def test_packed_jobs_train_the_seeds_of_a_cell_in_one_process(tmp_path):
    spec = SweepSpec.from_options(
        envs="Pendulum-v1", seeds=[0, 3, 4, 5, 6], agents="mlp", out_dir=tmp_path
    )
    statuses = run_sweep(spec, retries=1, workers=2, trainer=FAKE, seeds_per_process=3)
    sweep = tmp_path / "sweep"
    first = "mlp-Pendulum-v1-s0 mlp-Pendulum-v1-s3 mlp-Pendulum-v1-s4"
    # seed 3 fails the first attempt of its pack; the retry trains the pack again
    assert calls(sweep) == sorted([first, first, "mlp-Pendulum-v1-s5 mlp-Pendulum-v1-s6"])
    assert {s.status for s in statuses} == {"done"}
    jobs = {s.name: (s.job, s.attempts) for s in statuses}
    assert jobs["mlp-Pendulum-v1-s4"] == ("mlp-Pendulum-v1-s0,3,4", 2)
    assert jobs["mlp-Pendulum-v1-s6"] == ("mlp-Pendulum-v1-s5-6", 1)
    for name in ("mlp-Pendulum-v1-s0,3,4", "mlp-Pendulum-v1-s5-6"):
        assert (sweep / "logs" / f"{name}.log").is_file()
    assert all((sweep / s.name / DONE_NAME).is_file() for s in statuses)
    # a pack with one completed seed retrains only the other (no checkpoints: from scratch)
    (sweep / "mlp-Pendulum-v1-s6" / DONE_NAME).unlink()
    again = run_sweep(spec, retries=0, workers=2, trainer=FAKE, seeds_per_process=3)
    assert [s.name for s in again if s.status == "done"] == ["mlp-Pendulum-v1-s6"]
    assert (sweep / "mlp-Pendulum-v1-s6.failed-1").is_dir()
    assert calls(sweep).count("mlp-Pendulum-v1-s6") == 1


def test_set_aside_picks_the_first_free_suffix(tmp_path):
    run = tmp_path / "run"
    assert set_aside(run) is None
    run.mkdir()
    assert set_aside(run) == tmp_path / "run.failed-1"
    run.mkdir()
    assert set_aside(run) == tmp_path / "run.failed-2" and not run.exists()


def tiny_args(out: Path, *envs: str) -> list[str]:
    base = [arg for key, value in TINY.items() for arg in ("--base", f"{key}={value}")]
    sweep = ["--envs", *envs, "--agents", "mlp", "--set", "n_step=2", "--out", str(out)]
    return sweep + base


def test_scalerl_sweep_trains_runs_with_the_train_layout_and_skips_them_later(tmp_path, capsys):
    out = tmp_path / "tiny"
    argv = tiny_args(out, "Pendulum-v1", "dmc:nosuch-task")
    with pytest.raises(ScalerlError, match="1 of 2 runs failed"):
        main_sweep([*argv, "--workers", "2", "--retries", "0"])
    report = json.loads((out / "sweep.json").read_text())
    status = {r["name"]: (r["status"], r["error"]) for r in report["runs"]}
    assert status["mlp-Pendulum-v1-n_step=2-s0"] == ("done", None)
    assert status["mlp-dmc-nosuch-task-n_step=2-s0"][0] == "failed"
    assert status["mlp-dmc-nosuch-task-n_step=2-s0"][1].startswith("EnvError: unknown DMC task")
    run = out / "mlp-Pendulum-v1-n_step=2-s0"
    for name in ("config.json", "metrics.csv", "checkpoint.msgpack", DONE_NAME):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert (config["name"], config["run_root"], config["agent"]["n_step"]) == (
        run.name,
        str(out),
        2,
    )
    capsys.readouterr()
    spec = spec_from_args(tyro.cli(SweepArgs, args=tiny_args(out, "Pendulum-v1")))
    assert [s.status for s in run_sweep(spec)] == ["skipped"]
    assert "0 done, 1 skipped, 0 failed" in capsys.readouterr().out


# ----------------------------------------------------------------------------- ray backend


def test_copy_back_archive_round_trip(tmp_path):
    run = tmp_path / "remote" / "run-s0"
    (run / "tb").mkdir(parents=True)
    (run / "metrics.csv").write_text("x\n")
    (run / DONE_NAME).write_text("")
    data = archive(run)
    local = tmp_path / "local" / "run-s0"
    local.mkdir(parents=True)  # a failed earlier attempt is set aside
    _unpack(data, local)
    assert (local / "metrics.csv").read_text() == "x\n" and (local / "tb").is_dir()
    assert (local.parent / "run-s0.failed-1").is_dir()
    (local / "metrics.csv").write_text("kept\n")
    _unpack(data, local)  # already complete here (shared disk): left alone
    assert (local / "metrics.csv").read_text() == "kept\n"


def test_attempts_are_counted_per_launch(tmp_path):
    path = tmp_path / "sweep" / "logs" / "job.attempts"
    assert [_count_attempt(path, "a") for _ in range(3)] == [1, 2, 3]
    assert _count_attempt(path, "b") == 1


@pytest.fixture
def local_ray():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install ray==2.60.0)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_backend_runs_retries_and_skips(local_ray, tmp_path):
    spec = SweepSpec.from_options(
        envs=["Pendulum-v1", "dmc:nosuch-task"], seeds="0-1", agents="mlp", base=TINY,
        out_dir=tmp_path, name="ray",
    )  # fmt: skip
    statuses = run_sweep(spec, backend="ray", retries=1)
    table = {s.name: (s.status, s.attempts) for s in statuses}
    assert table == {
        "mlp-Pendulum-v1-s0": ("done", 1),
        "mlp-dmc-nosuch-task-s0": ("failed", 2),
        "mlp-Pendulum-v1-s1": ("done", 1),
        "mlp-dmc-nosuch-task-s1": ("failed", 2),
    }
    assert statuses[1].error.startswith("EnvError: unknown DMC task")
    # 2 CPUs, 2 cells: each cell's two seeds train together in one single-threaded task
    assert {s.job for s in statuses} == {"mlp-Pendulum-v1-s0-1", "mlp-dmc-nosuch-task-s0-1"}
    for run in ("mlp-Pendulum-v1-s0", "mlp-Pendulum-v1-s1"):
        assert (tmp_path / "ray" / run / "metrics.csv").is_file()
    again = run_sweep(spec, backend="ray", retries=0)
    assert [s.status for s in again] == ["skipped", "failed", "skipped", "failed"]


# ----------------------------------------------------------------------------- packing


@pytest.mark.parametrize(
    ("cells", "seeds", "cores", "given", "plan"),
    [
        (1, 8, 2, {}, (2, 1, 4)),  # one cell: its seeds split so both cores work
        (5, 8, 2, {}, (2, 1, 8)),  # enough cells: all of a cell's seeds in one process
        (3, 3, 8, {}, (8, 1, 1)),  # 9 single-seed jobs for 8 cores
        (1, 1, 2, {}, (1, 2, 1)),  # one job: it gets both cores
        (1, 8, 2, {"seeds_per_process": 8}, (1, 2, 8)),
        (1, 8, 4, {"workers": 1}, (1, 4, 8)),
        (2, 8, 8, {"threads": 2}, (4, 2, 4)),
        (1, 3, 2, {"workers": 3}, (3, 1, 1)),
    ],
)
def test_plan_packing_keeps_every_core_busy(cells, seeds, cores, given, plan):
    got = plan_packing(cells, seeds, cores, **given)
    assert (got.workers, got.threads, got.seeds_per_process) == plan


def test_plan_packing_rejects_non_positive_options():
    with pytest.raises(ScalerlError, match="--seeds-per-process 0: must be >= 1"):
        plan_packing(1, 4, 2, seeds_per_process=0)


def test_pack_cuts_each_cells_seed_list_and_leaves_completed_runs_out(tmp_path):
    spec = SweepSpec.from_options(
        envs="Pendulum-v1", seeds="0-4", agents="mlp", overrides=["utd=1,2"], out_dir=tmp_path
    )
    runs = expand(spec)
    jobs = pack(runs, 2, done={"mlp-Pendulum-v1-utd=1-s0", "mlp-Pendulum-v1-utd=2-s2"})
    assert [(j.name, j.seeds) for j in jobs] == [
        ("mlp-Pendulum-v1-utd=1-s1", [1]),
        ("mlp-Pendulum-v1-utd=2-s0-1", [0, 1]),
        ("mlp-Pendulum-v1-utd=1-s2-3", [2, 3]),
        ("mlp-Pendulum-v1-utd=2-s3", [3]),
        ("mlp-Pendulum-v1-utd=1-s4", [4]),
        ("mlp-Pendulum-v1-utd=2-s4", [4]),
    ]
    cfg = pack_config(list(jobs[1].runs))
    assert (cfg.seeds, cfg.name, cfg.utd) == ("0,1", "mlp-Pendulum-v1-utd=2", 2.0)
    assert pack_config(list(jobs[0].runs)) == jobs[0].runs[0].config


# ----------------------------------------------------------------------------- lock


def test_a_second_launch_on_a_locked_sweep_directory_fails_with_one_line(tmp_path, capsys):
    out = tmp_path / "locked"
    out.mkdir()
    with SweepLock(out):
        code = cli_main(["sweep", *tiny_args(out, "Pendulum-v1")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"sweep directory {out} is in use by another scalerl sweep (pid {os.getpid()}" in err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing was started


def test_the_lock_of_a_killed_launch_is_free(tmp_path):
    code = (
        "import sys, time; from scalerl.sweep.lock import SweepLock; "
        f"lock = SweepLock({str(tmp_path)!r}); lock.__enter__(); print('locked', flush=True); "
        "time.sleep(120)"
    )
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(ScalerlError, match=f"pid {holder.pid} on"), SweepLock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with SweepLock(tmp_path):  # the kernel released the dead holder's lock
        assert f"pid {os.getpid()} on" in (tmp_path / LOCK_NAME).read_text()


# ----------------------------------------------------------------------------- exact resume


def agent_leaves(run_dir: Path) -> list:
    import jax

    from scalerl.train.evaluate import load_run_agent

    _, state, _ = load_run_agent(run_dir)
    return jax.tree.leaves((state.actor.params, state.critic.params, state.temp))


def metric_rows(run_dir: Path) -> list[tuple]:
    with open(run_dir / "metrics.csv") as f:
        return sorted((r["metric"], r["env_step"], r["value"]) for r in csv.DictReader(f))


def assert_same_runs(ref: Path, sweep: Path, names: list[str]) -> None:
    import numpy as np

    for name in names:
        for a, b in zip(agent_leaves(ref / name), agent_leaves(sweep / name), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        evals = [r for r in metric_rows(ref / name) if r[0].startswith("eval/")]
        assert evals and evals == [r for r in metric_rows(sweep / name) if r[0].startswith("eval/")]
        assert [r[:2] for r in metric_rows(ref / name)] == [
            r[:2] for r in metric_rows(sweep / name)
        ]


@pytest.mark.slow
def test_an_interrupted_pack_resumes_exactly_and_only_what_is_missing(tmp_path):
    out = tmp_path / "packed"
    argv = tiny_args(out, "Pendulum-v1")
    argv += ["--seeds", "0-1", "--base", "checkpoint_every=25", "--seeds-per-process", "2"]
    argv += ["--threads-per-worker", "1"]
    main_sweep(argv)
    names = ["mlp-Pendulum-v1-n_step=2-s0", "mlp-Pendulum-v1-n_step=2-s1"]
    report = json.loads((out / "sweep.json").read_text())
    assert report["plan"] == {"workers": 1, "threads": 1, "seeds_per_process": 2}
    assert {r["job"] for r in report["runs"]} == {"mlp-Pendulum-v1-n_step=2-s0-1"}
    shutil.copytree(out, tmp_path / "ref")
    # killed while seed 0's newest checkpoint was being written: seed 1 is one checkpoint ahead
    for name in names:
        (out / name / DONE_NAME).unlink()
    assert checkpoint_steps(out / names[0]) == {75, 100}
    (out / names[0] / "resume" / "step-0000000100.msgpack").unlink()
    main_sweep(argv)
    log = (out / "logs" / "mlp-Pendulum-v1-n_step=2-s0-1.log").read_text()
    assert "resuming seeds 0-1 at step 75" in log
    assert_same_runs(tmp_path / "ref", out, names)
    # killed between the DONE markers: only seed 1 is missing
    (out / names[1] / DONE_NAME).unlink()
    statuses = run_sweep(
        spec_from_args(tyro.cli(SweepArgs, args=argv)), threads=1, seeds_per_process=2
    )
    assert [(s.status, s.job) for s in statuses] == [("skipped", None), ("done", names[1])]
    assert "resuming seeds 1 at step 100" in (out / "logs" / f"{names[1]}.log").read_text()
    assert_same_runs(tmp_path / "ref", out, names)
    assert not list(out.glob("*.failed-*"))


def test_worker_slots_and_single_thread_flags():
    assert core_slots([0, 1, 2, 3], 2, 2) == [(0, 1), (2, 3)]
    assert core_slots([4, 6], 2, 1) == [(4,), (6,)]
    assert core_slots([0, 1], 3, 1) == [None, None, None]  # oversubscribed: not pinned
    flags = single_thread_flags("--xla_cpu_multi_thread_eigen=true --xla_dump_to=/tmp/x")
    assert flags.split() == [
        "--xla_dump_to=/tmp/x",
        "--xla_cpu_multi_thread_eigen=false",
        "intra_op_parallelism_threads=1",
    ]


def test_resumable_seeds_group_at_their_newest_shared_checkpoint(tmp_path):
    spec = SweepSpec.from_options(envs="Pendulum-v1", seeds="0-3", agents="mlp", out_dir=tmp_path)
    runs = expand(spec)
    steps = {0: (75, 100), 1: (50, 75), 2: (75, 100), 3: (300, 400)}  # seed 1: one behind
    for run in runs:
        resume = tmp_path / "sweep" / run.name / "resume"
        resume.mkdir(parents=True)
        for step in steps[run.config.seed]:
            (resume / f"step-{step:010d}.msgpack").write_bytes(b"")
    groups = resume_groups(runs)
    assert [([r.config.seed for r in g], step) for g, step in groups] == [
        ([0, 1, 2], 75),
        ([3], 400),
    ]
    drop_checkpoints_after(tmp_path / "sweep" / runs[0].name, 75)
    assert checkpoint_steps(tmp_path / "sweep" / runs[0].name) == {75}
