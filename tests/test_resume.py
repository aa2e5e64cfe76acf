"""Exact resume: a killed or truncated run continues to the same parameters and returns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scalerl.buffers.replay import replay_init
from scalerl.cli import main
from scalerl.train.checkpoint import read_checkpoint_meta
from scalerl.train.evaluate import load_run_agent
from scalerl.train.logging import read_metrics_csv
from scalerl.train.resume import KEEP_RESUME, list_checkpoints, load_resume

ARGS = [
    "--env", "Pendulum-v1", "--agent", "mlp", "--env-steps", "300", "--warmup-steps", "60",
    "--utd", "1", "--eval-every", "150", "--eval-episodes", "1", "--checkpoint-every", "40",
    "--log-every", "20", "--health-every", "100", "--critic-width", "16", "--actor-width", "16",
    "--batch-size", "16", "--reset", "shrink_perturb", "--reset-every", "100", "--no-progress",
    "--no-tensorboard",
]  # fmt: skip


def train_cli(root: Path, name: str) -> list[str]:
    return ["train", *ARGS, "--run-root", str(root), "--name", name]


def params(run_dir: Path) -> list[np.ndarray]:
    import jax

    _, state, _ = load_run_agent(run_dir)
    return [np.asarray(x) for x in jax.tree.leaves((state.actor.params, state.critic.params))]


def eval_returns(run_dir: Path) -> list[tuple[int, float]]:
    rows = read_metrics_csv(run_dir / "metrics.csv")
    return [(r["env_step"], r["value"]) for r in rows if r["metric"] == "eval/return"]


def assert_same_run(a: Path, b: Path) -> None:
    for x, y in zip(params(a), params(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert eval_returns(a) == eval_returns(b)
    metrics = lambda d: [(r["metric"], r["env_step"]) for r in read_metrics_csv(d / "metrics.csv")]  # noqa: E731
    assert sorted(metrics(a)) == sorted(metrics(b))  # nothing logged twice or lost


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert main(train_cli(root, "ref")) == 0
    return root / "ref"


def test_checkpoints_are_pruned_to_the_newest(reference):
    names = [p.name for p in list_checkpoints(reference)]
    assert names == ["step-0000000300.msgpack", "step-0000000280.msgpack"][:KEEP_RESUME]


def test_sigkilled_run_resumes_to_the_uninterrupted_result(reference, tmp_path):
    env = os.environ | {"MUJOCO_GL": "egl"}
    cmd = [sys.executable, "-m", "scalerl.cli", *train_cli(tmp_path, "killed")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run_dir, deadline = tmp_path / "killed", time.time() + 240
    while not any(int(p.stem.split("-")[1]) >= 160 for p in list_checkpoints(run_dir)):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "no resume checkpoint appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "resume" / "step-0000000300.msgpack").exists()
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert_same_run(reference, run_dir)


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(reference, tmp_path, capsys):
    assert main(train_cli(tmp_path, "corrupt")) == 0
    run_dir = tmp_path / "corrupt"
    newest = list_checkpoints(run_dir)[0]
    newest.write_bytes(b"not a checkpoint")
    (run_dir / "checkpoint.msgpack").unlink()
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert "skipping step-0000000300.msgpack" in capsys.readouterr().err
    assert_same_run(reference, run_dir)


def test_resume_without_checkpoints_is_a_clear_error(tmp_path, capsys):
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    assert main(["train", "--resume", str(run_dir)]) == 2
    assert "not a scalerl run directory" in capsys.readouterr().err


def test_resume_checkpoint_holds_buffer_actions_and_counters(reference):
    meta = read_checkpoint_meta(list_checkpoints(reference)[0])
    # 300 agent steps, updates from step 60 on, evaluations at steps 0, 150 and 300.
    assert (meta["t"], meta["updates"], meta["eval_resets"]) == (300, 241, 3)
    sac, state, _ = load_run_agent(reference)
    buffer = replay_init(300, sac.obs_dim, sac.action_dim)

    def template(m: dict) -> dict:
        actions = np.zeros((m["t"], sac.action_dim), np.float32)
        return {"agent": state, "buffer": buffer, "next_action": actions[0], "actions": actions}

    tree, _ = load_resume(reference, template)
    assert int(tree["buffer"].size) == 300
    np.testing.assert_array_equal(tree["buffer"].data.action, tree["actions"])


def test_vmapped_seeds_resume_together(tmp_path):
    import shutil

    assert main([*train_cli(tmp_path, "multi"), "--seeds", "0-1", "--env-steps", "200"]) == 0
    dirs = [tmp_path / "multi-s0", tmp_path / "multi-s1"]
    for d in dirs:
        shutil.copytree(d, tmp_path / f"{d.name}-full")
        list_checkpoints(d)[0].unlink()  # back to the previous resume checkpoint
    assert main(["train", "--resume", *map(str, dirs)]) == 0
    for d in dirs:
        assert_same_run(tmp_path / f"{d.name}-full", d)
