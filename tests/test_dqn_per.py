"""Prioritised replay: sampling proportional to p^alpha, importance weights, priority updates."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.agents import dqn_losses as dl
from scalerl.buffers.prioritized import (
    Priorities,
    priorities_init,
    priorities_update,
    priorities_write,
    prioritized_sample,
)
from scalerl.buffers.vec_replay import Step, start_mask, vec_replay_add, vec_replay_init


def _buffer(rows: int = 4, written: int = 4):
    example = Step(
        jnp.zeros((2, 1)), jnp.zeros((2,), jnp.int32), jnp.zeros((2,)), jnp.zeros((2,)),
        jnp.zeros((2,)), jnp.zeros((2, 1)),
    )  # fmt: skip
    buf, add = vec_replay_init(rows, example), jax.jit(vec_replay_add)
    for t in range(written):
        obs = jnp.array([[10.0 * t], [10.0 * t + 1]])
        buf = add(buf, example.replace(obs=obs, reward=jnp.array([t, t + 0.5])))
    return buf


def test_sampling_follows_priorities_and_weights_by_hand() -> None:
    """Slots (row 0, env 0) p=1 and (row 2, env 0) p=3, alpha 1: P = 1/4, 3/4; beta 1, M = 8
    slots: w = 1/(8 P) = 0.5 and 1/6, divided by the batch maximum 0.5 -> 1 and 1/3."""
    pr = Priorities(jnp.array([[1.0, 0.0], [0.0, 0.0], [3.0, 0.0], [0.0, 0.0]]), jnp.float32(3))
    sample = jax.jit(prioritized_sample, static_argnums=(3, 4))
    batch, row, env = sample(_buffer(), pr, jax.random.key(0), 4000, 1, 0.9, 1.0, 1.0)
    row, env, obs = np.asarray(row), np.asarray(env), np.asarray(batch.obs[:, 0])
    assert set(zip(row.tolist(), env.tolist(), strict=True)) == {(0, 0), (2, 0)}
    np.testing.assert_array_equal(obs, 10.0 * row)
    assert np.mean(row == 2) == pytest.approx(0.75, abs=0.03)
    weight = np.asarray(batch.weight)
    np.testing.assert_allclose(weight[row == 0], 1.0, rtol=1e-5)
    np.testing.assert_allclose(weight[row == 2], 1.0 / 3.0, rtol=1e-5)


def test_new_transitions_get_the_max_priority_and_updates_track_it() -> None:
    pr = priorities_write(priorities_init(4, 2), jnp.int32(1))
    np.testing.assert_array_equal(pr.value[1], [1.0, 1.0])
    pr = priorities_update(pr, jnp.array([1, 3]), jnp.array([0, 1]), jnp.array([-4.0, 0.5]), 0.1)
    assert float(pr.value[1, 0]) == pytest.approx(4.1)
    assert float(pr.value[3, 1]) == pytest.approx(0.6)
    assert float(pr.max_value) == pytest.approx(4.1)
    assert float(priorities_write(pr, jnp.int32(0)).value[0, 1]) == pytest.approx(4.1)


def test_chains_never_start_in_the_newest_n_minus_1_rows() -> None:
    buf = _buffer(rows=6, written=4)  # rows 0..3 written; n = 3: starts 0 and 1
    np.testing.assert_array_equal(start_mask(buf, 3), [1, 1, 0, 0, 0, 0])
    full = _buffer(rows=4, written=6)  # ring wrapped: oldest row 2, newest row 1
    np.testing.assert_array_equal(start_mask(full, 2), [1, 0, 1, 1])


def test_weighted_mean() -> None:
    losses = jnp.array([1.0, 3.0])
    assert float(dl.weighted_mean(losses, None)) == 2.0
    assert float(dl.weighted_mean(losses, jnp.array([1.0, 0.0]))) == 0.5


@pytest.mark.slow
def test_prioritized_fused_and_host_runs(tmp_path) -> None:
    from scalerl.cli import main
    from scalerl.train.logging import read_metrics_csv

    tiny = [
        "--algo", "dqn", "--env-steps", "32", "--log-every", "16", "--learning-starts", "8",
        "--train-every", "4", "--batch-size", "4", "--buffer-capacity", "32", "--width", "8",
        "--depth", "1", "--n-step", "2", "--prioritized", "--no-health", "--no-tensorboard",
        "--no-progress", "--run-root", str(tmp_path),
    ]  # fmt: skip
    for env, name in (("gymnax:CartPole-v1", "fused"), ("CartPole-v1", "host")):
        assert main(["train", *tiny, "--env", env, "--name", name]) == 0
        rows = read_metrics_csv(tmp_path / name / "metrics.csv")
        beta = [r["value"] for r in rows if r["metric"] == "train/per_beta"]
        assert beta and 0.4 < beta[-1] < 0.41  # annealing from 0.4 toward 1 over 500k steps
