"""Accelerator readiness: the train step keeps the replay buffer on the device; the check script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import small_sac
from scalerl.buffers.replay import Transition, replay_init
from scalerl.train.step import make_train_step

ROOT = Path(__file__).parents[1]
SEEDS, CAPACITY = 2, 64


def host_transition(rng: np.random.Generator, obs_dim: int, act_dim: int) -> Transition:
    """One transition per seed, as the loop builds it on the host."""
    f32 = np.float32
    return Transition(
        obs=rng.standard_normal((SEEDS, obs_dim), f32),
        action=rng.uniform(-1, 1, (SEEDS, act_dim)).astype(f32),
        reward=rng.standard_normal(SEEDS).astype(f32),
        terminated=np.zeros(SEEDS, f32),
        truncated=np.zeros(SEEDS, f32),
        next_obs=rng.standard_normal((SEEDS, obs_dim), f32),
    )


def test_a_training_step_does_not_move_the_replay_buffer_between_host_and_device():
    sac = small_sac("mlp", batch_size=4)
    rng = np.random.default_rng(0)
    states = sac.init_many(np.stack([jax.random.PRNGKey(s) for s in range(SEEDS)]))
    one = replay_init(CAPACITY, sac.obs_dim, sac.action_dim)
    buffers = jax.device_put(jax.tree.map(lambda x: np.stack([np.asarray(x)] * SEEDS), one))
    warm, update = make_train_step(sac, 0, True), make_train_step(sac, 2, False)
    for fn in (warm, update):  # compile outside the guard (compilation moves constants)
        t = jax.device_put(host_transition(rng, sac.obs_dim, sac.action_dim))
        states, buffers, _, _ = fn(states, buffers, t, t.next_obs)
    for fn in [warm] * 4 + [update] * 3:
        # the design's only transfers, made explicitly: the new transition in, action/metrics out
        t = jax.device_put(host_transition(rng, sac.obs_dim, sac.action_dim))
        before = buffers
        with jax.transfer_guard("disallow"):
            states, buffers, actions, metrics = fn(states, buffers, t, t.next_obs)
        jax.device_get((actions, metrics))
        assert all(x.is_deleted() for x in jax.tree.leaves(before)), "buffer not donated"
        assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(buffers))
        assert [d.platform for d in buffers.data.obs.devices()] == [jax.default_backend()]
    assert np.asarray(buffers.size).tolist() == [9, 9]
    host = jax.device_get(buffers)  # the guard does catch a buffer that comes from the host
    t = jax.device_put(host_transition(rng, sac.obs_dim, sac.action_dim))
    with pytest.raises(Exception, match="[Dd]isallowed host-to-device transfer"):
        with jax.transfer_guard("disallow"):
            update(states, host, t, t.next_obs)


@pytest.mark.slow
def test_accelerator_check_tiny_cpu_mode_writes_one_json_line_per_figure(tmp_path):
    out = tmp_path / "check.jsonl"
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "accelerator_check.sh"), "--tiny", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=1800, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = [line["figure"] for line in lines]
    assert kinds[0] == "devices" and lines[0]["backend"] == jax.default_backend()
    figures = [x for x in lines if x["figure"] == "update_throughput"]
    throughput = {(x["config"], x["seeds"], x["precision"]) for x in figures}
    assert throughput == {("simbav2-small", s, p) for s in (1, 8) for p in ("fp32", "bf16")}
    assert all(x["updates_per_s"] > 0 for x in figures)
    (train,) = [x for x in lines if x["figure"] == "training_run"]
    assert train["env_steps"] == 300 and np.isfinite(train["final_eval_return"])
    assert train["updates_per_s"] > 0
    assert "no GPU" in proc.stdout or jax.default_backend() != "cpu"
