"""`scalerl sweep --algo ppo`: PPO grids, packed seeds, skip-completed and exact resume."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
import tyro
from flax import serialization

from scalerl.config_ppo import PPOTrainConfig
from scalerl.errors import ConfigError, EnvError
from scalerl.sweep import SweepArgs, SweepSpec, expand, main_sweep, spec_from_args
from scalerl.sweep.algos import default_seeds_per_process
from scalerl.sweep.jobs import DONE_NAME, checkpoint_steps, pack_config

TINY = {
    "env_steps": "64", "log_every": "16", "checkpoint_every": "16", "num_envs": "2",
    "num_steps": "8", "num_minibatches": "2", "update_epochs": "1", "actor_width": "8",
    "value_width": "8", "tensorboard": "false", "health": "false",
}  # fmt: skip
"""A CartPole run of 4 rollouts with a resume point after each."""


def test_ppo_grid_runs_are_ppo_configs_with_preset_base_and_overrides(tmp_path):
    spec = SweepSpec.from_options(
        envs="gymnax:CartPole-v1", seeds="0-1", agents="mlp,simba", algo="ppo",
        overrides={"lr": ["1e-3"], "reset": ["full"]}, base=TINY | {"reset_every": "8"},
        out_dir=tmp_path, name="p",
    )  # fmt: skip
    runs = expand(spec)
    assert [r.name for r in runs] == [
        "ppo-mlp-gymnax-CartPole-v1-lr=1e-3-reset=full-s0",
        "ppo-simba-gymnax-CartPole-v1-lr=1e-3-reset=full-s0",
        "ppo-mlp-gymnax-CartPole-v1-lr=1e-3-reset=full-s1",
        "ppo-simba-gymnax-CartPole-v1-lr=1e-3-reset=full-s1",
    ]
    cfg = runs[1].config
    assert isinstance(cfg, PPOTrainConfig)
    assert (cfg.run_root, cfg.name, cfg.seed) == (tmp_path / "p", runs[1].name, 0)
    assert (cfg.progress, cfg.seeds, cfg.num_seeds) == (False, None, 1)
    assert (cfg.env_steps, cfg.agent.num_steps, cfg.agent.lr) == (64, 8, 1e-3)
    assert (cfg.agent.agent, cfg.agent.normalize_obs, cfg.agent.plasticity.reset) == (
        "simba", True, "full",
    )  # fmt: skip
    assert runs[0].params["algo"] == "ppo" and runs[0].cell == runs[2].cell
    packed = pack_config([runs[0], runs[2]])
    assert (packed.seeds, packed.name) == ("0,1", runs[0].cell)  # dirs <cell>-s0, <cell>-s1
    assert default_seeds_per_process([r.config for r in runs]) == 2  # fused: a cell's seeds
    host = expand(SweepSpec.from_options(envs="Pendulum-v1", agents="mlp", algo="ppo"))
    assert default_seeds_per_process([host[0].config]) == 1  # host loop: seeds in turn
    assert (
        default_seeds_per_process([expand(SweepSpec.from_options(envs="Pendulum-v1"))[0].config])
        is None
    )


def test_ppo_grid_errors_are_one_line():
    with pytest.raises(ConfigError, match="unknown sweep key 'utd'.*num_minibatches"):
        SweepSpec.from_options(envs="gymnax:CartPole-v1", algo="ppo", base=["utd=2"])
    with pytest.raises(ConfigError, match="set by the grid"):
        SweepSpec.from_options(envs="gymnax:CartPole-v1", algo="ppo", base=["algo=ppo"])
    with pytest.raises(ConfigError, match="unknown sweep algo 'dreamer'"):
        SweepSpec.from_options(envs="gymnax:CartPole-v1", algo="dreamer")
    with pytest.raises(EnvError, match="unknown id 'gymnax:NoSuch-v0'"):
        expand(SweepSpec.from_options(envs="gymnax:NoSuch-v0", algo="ppo"))
    with pytest.raises(ConfigError, match="not divisible by num_minibatches"):
        expand(SweepSpec.from_options(envs="gymnax:CartPole-v1", algo="ppo",
                                      base=["num_minibatches=3"]))  # fmt: skip
    args = tyro.cli(SweepArgs, args=["--algo", "ppo", "--envs", "gymnax:Acrobot-v1"])
    assert spec_from_args(args).algo == "ppo"


def _leaves(run_dir: Path) -> list:
    payload = serialization.msgpack_restore((run_dir / "checkpoint.msgpack").read_bytes())
    return jax.tree_util.tree_leaves(payload["state"])


def _rows(run_dir: Path) -> list[tuple]:
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if not r["metric"].startswith("perf/")]
    return sorted((r["metric"], r["env_step"], r["value"]) for r in rows)


@pytest.mark.slow
def test_ppo_sweep_packs_seeds_skips_completed_and_resumes_exactly(tmp_path, capsys):
    out = tmp_path / "ppo"
    argv = ["--algo", "ppo", "--envs", "gymnax:CartPole-v1", "--agents", "mlp", "--seeds", "0-1",
            "--out", str(out)]  # fmt: skip
    argv += [arg for key, value in TINY.items() for arg in ("--base", f"{key}={value}")]
    main_sweep(argv)
    names = ["ppo-mlp-gymnax-CartPole-v1-s0", "ppo-mlp-gymnax-CartPole-v1-s1"]
    report = json.loads((out / "sweep.json").read_text())
    assert (report["plan"]["workers"], report["plan"]["seeds_per_process"]) == (1, 2)
    assert {r["job"] for r in report["runs"]} == {"ppo-mlp-gymnax-CartPole-v1-s0-1"}
    for name in names:
        assert {"config.json", "metrics.csv", "checkpoint.msgpack", DONE_NAME} <= {
            p.name for p in (out / name).iterdir()
        }
    assert {r[0] for r in _rows(out / names[0])} >= {"train/episode_return", "eval/return"}
    capsys.readouterr()
    main_sweep(argv)  # completed: skipped
    assert "0 done, 2 skipped, 0 failed" in capsys.readouterr().out
    shutil.copytree(out, tmp_path / "ref")
    # killed while seed 0's newest resume point was being written: seed 1 is one point ahead
    for name in names:
        (out / name / DONE_NAME).unlink()
    assert checkpoint_steps(out / names[0]) == {48, 64}
    (out / names[0] / "resume" / "step-0000000064.msgpack").unlink()
    main_sweep(argv)
    log = (out / "logs" / "ppo-mlp-gymnax-CartPole-v1-s0-1.log").read_text()
    assert "resuming seeds 0-1 at step 48" in log
    for name in names:
        for a, b in zip(_leaves(tmp_path / "ref" / name), _leaves(out / name), strict=True):
            np.testing.assert_array_equal(a, b)
        assert _rows(tmp_path / "ref" / name) == _rows(out / name)
    assert not list(out.glob("*.failed-*"))


@pytest.mark.slow
def test_ppo_sweep_on_the_ray_backend_trains_and_skips(tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install ray==2.60.0)")
    from scalerl.sweep import run_sweep

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        spec = SweepSpec.from_options(
            envs="gymnax:CartPole-v1", seeds="0-1", agents="mlp", algo="ppo", base=TINY,
            out_dir=tmp_path, name="ray",
        )  # fmt: skip
        statuses = run_sweep(spec, backend="ray", retries=0)
        assert [(s.status, s.job) for s in statuses] == [
            ("done", "ppo-mlp-gymnax-CartPole-v1-s0-1"),
            ("done", "ppo-mlp-gymnax-CartPole-v1-s0-1"),
        ]  # one task trains both seeds, vmapped
        for s in statuses:
            assert (tmp_path / "ray" / s.name / "checkpoint.msgpack").is_file()
        assert [s.status for s in run_sweep(spec, backend="ray")] == ["skipped", "skipped"]
    finally:
        ray.shutdown()
