"""Tests for the on-device pure-functional replay buffer (scalerl.buffers.replay)."""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.buffers import (
    Transition,
    can_sample,
    load_replay,
    replay_add,
    replay_add_batch,
    replay_from_numpy,
    replay_init,
    replay_sample,
    replay_sample_many,
    replay_to_numpy,
    save_replay,
)
from scalerl.buffers.replay import _gather_nstep
from scalerl.errors import ScalerlError

OBS_DIM, ACT_DIM = 2, 1


def make_transitions(rewards, terminated=(), truncated=()) -> Transition:
    """Stacked transitions: obs_i = [i, 10+i], action_i = [-i], next_obs_i = [100+i, 200+i]."""
    num = len(rewards)
    i = np.arange(num, dtype=np.float32)
    term, trunc = np.zeros(num, np.float32), np.zeros(num, np.float32)
    term[list(terminated)], trunc[list(truncated)] = 1.0, 1.0
    return Transition(
        obs=jnp.stack([i, 10 + i], axis=1),
        action=jnp.asarray(-i[:, None]),
        reward=jnp.asarray(rewards, jnp.float32),
        terminated=jnp.asarray(term),
        truncated=jnp.asarray(trunc),
        next_obs=jnp.stack([100 + i, 200 + i], axis=1),
    )


jit_add = jax.jit(replay_add)
jit_sample = jax.jit(replay_sample, static_argnames=("batch_size", "n_step", "gamma"))


def host_rows(ts: Transition) -> list[Transition]:
    """Splits stacked transitions into single-row transitions of numpy arrays (cheap slicing)."""
    host = jax.tree.map(np.asarray, ts)
    return [jax.tree.map(lambda x, k=k: x[k], host) for k in range(host.reward.shape[0])]


def add_one_by_one(state, ts: Transition):
    """Adds the rows of `ts` with sequential (jitted) `replay_add` calls."""
    for row in host_rows(ts):
        state = jit_add(state, row)
    return state


def assert_trees_equal(a, b) -> None:
    """Asserts exact equality of two pytrees of arrays (same structure)."""
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def test_init_layout_and_dtypes():
    state = replay_init(7, 4, 3)
    assert state.data.obs.shape == (7, 4) and state.data.next_obs.shape == (7, 4)
    assert state.data.action.shape == (7, 3) and state.data.reward.shape == (7,)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.data))
    assert state.ptr.dtype == jnp.int32 and state.size.dtype == jnp.int32
    assert int(state.ptr) == 0 and int(state.size) == 0


def test_add_then_to_numpy_in_order():
    state = add_one_by_one(replay_init(5, OBS_DIM, ACT_DIM), make_transitions([1.0, 2.0, 3.0]))
    assert (int(state.ptr), int(state.size)) == (3, 3)
    rows = replay_to_numpy(state)
    assert set(rows) == {"obs", "action", "reward", "terminated", "truncated", "next_obs"}
    np.testing.assert_array_equal(rows["reward"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(rows["obs"], [[0, 10], [1, 11], [2, 12]])
    np.testing.assert_array_equal(rows["next_obs"][:, 0], [100, 101, 102])


def test_wrap_around_keeps_last_rows_in_order():
    state = add_one_by_one(replay_init(5, OBS_DIM, ACT_DIM), make_transitions(np.arange(7.0)))
    assert (int(state.ptr), int(state.size)) == (2, 5)
    np.testing.assert_array_equal(np.asarray(state.data.reward), [5, 6, 2, 3, 4])  # storage order
    rows = replay_to_numpy(state)
    np.testing.assert_array_equal(rows["reward"], [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(rows["action"][:, 0], [-2, -3, -4, -5, -6])


@pytest.mark.parametrize("num", [3, 5, 12])
def test_add_batch_equals_sequential_adds(num):
    ts = make_transitions(np.arange(num, dtype=np.float32) + 1, terminated=[1], truncated=[2])
    start = add_one_by_one(replay_init(5, OBS_DIM, ACT_DIM), make_transitions([9.0, 8.0]))
    assert_trees_equal(replay_add_batch(start, ts), add_one_by_one(start, ts))


def test_can_sample():
    state = add_one_by_one(replay_init(8, OBS_DIM, ACT_DIM), make_transitions([1.0, 2.0, 3.0]))
    assert bool(can_sample(state, 3)) and not bool(can_sample(state, 4))


# Episode layout for the n-step tests (n=3, gamma=0.5): rows 0..7 with rewards 1..8,
# terminated at row 2, truncated at row 4.
NSTEP_REWARDS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
# start row -> (R, row whose next_obs is used, terminated, discount), computed by hand.
NSTEP_EXPECTED = {
    0: (1 + 0.5 * 2 + 0.25 * 3, 2, 1.0, 0.125),  # hits the termination at row 2 after 3 rows
    1: (2 + 0.5 * 3, 2, 1.0, 0.25),  # hits the termination after 2 rows
    2: (3.0, 2, 1.0, 0.5),  # starts on the terminal row
    3: (4 + 0.5 * 5, 4, 0.0, 0.25),  # cut by the truncation at row 4: no termination flag
    4: (5.0, 4, 0.0, 0.5),  # starts on the truncated row
    5: (6 + 0.5 * 7 + 0.25 * 8, 7, 0.0, 0.125),  # full-length chain
}


@functools.cache
def nstep_batch_all_starts():
    """n=3, gamma=0.5 chains gathered at every start row of the NSTEP episode layout (host)."""
    ts = make_transitions(NSTEP_REWARDS, terminated=[2], truncated=[4])
    state = replay_add_batch(replay_init(8, OBS_DIM, ACT_DIM), ts)
    batch = _gather_nstep(state, jnp.arange(len(NSTEP_EXPECTED)), n_step=3, gamma=0.5)
    return jax.tree.map(np.asarray, batch)


@pytest.mark.parametrize("start", sorted(NSTEP_EXPECTED))
def test_nstep_chain_by_hand(start):
    batch = jax.tree.map(lambda x: x[start], nstep_batch_all_starts())
    reward, last, terminated, discount = NSTEP_EXPECTED[start]
    assert float(batch.reward) == reward
    np.testing.assert_array_equal(batch.next_obs, [100 + last, 200 + last])
    assert float(batch.terminated) == terminated
    assert float(batch.discount) == discount
    np.testing.assert_array_equal(batch.obs, [start, 10 + start])
    np.testing.assert_array_equal(batch.action, [-start])


def test_nstep_chain_wraps_around_the_ring():
    # capacity 5 after 7 adds: storage holds transitions [5, 6, 2, 3, 4]; row 4 -> rows 4, 0, 1.
    ts = make_transitions([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    state = replay_add_batch(replay_init(5, OBS_DIM, ACT_DIM), ts)
    batch = _gather_nstep(state, jnp.array([4], jnp.int32), n_step=3, gamma=0.5)
    assert float(batch.reward[0]) == 5 + 0.5 * 6 + 0.25 * 7
    assert float(batch.discount[0]) == 0.125
    np.testing.assert_array_equal(np.asarray(batch.next_obs[0]), [106, 206])


def test_nstep_chains_follow_one_of_two_interleaved_envs():
    """Two envs write one row each per step (rows env0, env1, env0, ...); with stride 2 a chain
    from row 1 (env 1) walks rows 1, 3, 5 and stops at env 1's termination at row 3, while
    env 0's chain from row 0 walks 0, 2, 4 untouched by it."""
    ts = make_transitions([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], terminated=[3])
    state = replay_add_batch(replay_init(8, OBS_DIM, ACT_DIM), ts)
    batch = _gather_nstep(state, jnp.array([0, 1], jnp.int32), n_step=3, gamma=0.5, stride=2)
    np.testing.assert_array_equal(np.asarray(batch.reward), [1 + 0.5 * 3 + 0.25 * 5, 2 + 0.5 * 4])
    np.testing.assert_array_equal(np.asarray(batch.next_obs[:, 0]), [104, 103])
    np.testing.assert_array_equal(np.asarray(batch.terminated), [0.0, 1.0])
    np.testing.assert_array_equal(np.asarray(batch.discount), [0.125, 0.25])


def test_interleaved_start_rows_exclude_each_envs_newest_rows():
    # capacity 8 after 12 adds of 2 envs holds transitions 4..11; n=3, stride 2: starts 4..7.
    state = replay_add_batch(replay_init(8, OBS_DIM, ACT_DIM), make_transitions(np.ones(12)))
    sample = jax.jit(replay_sample, static_argnames=("batch_size", "n_step", "gamma", "stride"))
    batch = sample(state, jax.random.key(1), batch_size=4000, n_step=3, gamma=0.5, stride=2)
    assert set(np.asarray(batch.obs[:, 0]).astype(int).tolist()) == {4, 5, 6, 7}


def test_one_step_sample_is_the_raw_row():
    ts = make_transitions([1.0, 2.0, 3.0, 4.0], terminated=[1], truncated=[3])
    state = replay_add_batch(replay_init(6, OBS_DIM, ACT_DIM), ts)
    batch = jit_sample(state, jax.random.key(0), batch_size=64, n_step=1, gamma=0.9)
    row = np.asarray(batch.obs[:, 0]).astype(int)
    np.testing.assert_array_equal(np.asarray(batch.reward), np.asarray(ts.reward)[row])
    np.testing.assert_array_equal(np.asarray(batch.terminated), np.asarray(ts.terminated)[row])
    np.testing.assert_array_equal(np.asarray(batch.next_obs), np.asarray(ts.next_obs)[row])
    np.testing.assert_allclose(np.asarray(batch.discount), np.full(64, 0.9, np.float32))


def test_start_rows_exclude_newest_n_minus_one():
    # capacity 6 after 10 adds holds transitions 4..9; with n=3 only 4..7 may start a chain.
    state = replay_add_batch(replay_init(6, OBS_DIM, ACT_DIM), make_transitions(np.ones(10)))
    batch = jit_sample(state, jax.random.key(1), batch_size=4000, n_step=3, gamma=0.5)
    assert set(np.asarray(batch.obs[:, 0]).astype(int).tolist()) == {4, 5, 6, 7}


def test_sampling_is_uniform():
    # capacity 10 after 13 adds (wrapped): transitions 3..12 each drawn with probability 0.1.
    state = replay_add_batch(replay_init(10, OBS_DIM, ACT_DIM), make_transitions(np.ones(13)))
    batch = jit_sample(state, jax.random.key(2), batch_size=100_000)
    counts = np.bincount(np.asarray(batch.obs[:, 0]).astype(int), minlength=13)
    assert counts[:3].sum() == 0
    np.testing.assert_allclose(counts[3:] / 100_000, 0.1, atol=0.005)  # 5 sigma for 100k draws


def test_sample_many_shapes_and_independent_batches():
    state = replay_add_batch(replay_init(50, OBS_DIM, ACT_DIM), make_transitions(np.arange(40.0)))
    sample_many = jax.jit(replay_sample_many, static_argnums=(2, 3, 4, 5))
    batches = sample_many(state, jax.random.key(3), 4, 16, 2, 0.9)
    assert batches.obs.shape == (4, 16, OBS_DIM) and batches.action.shape == (4, 16, ACT_DIM)
    assert batches.reward.shape == batches.discount.shape == batches.terminated.shape == (4, 16)
    starts = np.asarray(batches.obs[..., 0])
    assert len({tuple(row) for row in starts}) == 4  # every batch is a different draw
    assert starts.min() >= 0 and starts.max() <= 38  # last n-1 = 1 row excluded


def test_vmap_matches_separate_buffers():
    seeds = 3
    per_seed = [
        make_transitions(np.arange(9.0) * (s + 1), terminated=[s + 2]) for s in range(seeds)
    ]
    stacked_ts = jax.tree.map(lambda *xs: jnp.stack(xs), *per_seed)
    states = jax.vmap(lambda _: replay_init(7, OBS_DIM, ACT_DIM))(jnp.arange(seeds))
    add = jax.jit(jax.vmap(replay_add))
    for row in host_rows(jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), stacked_ts)):
        states = add(states, row)
    keys = jax.random.split(jax.random.key(4), seeds)
    sample = jax.jit(jax.vmap(lambda s, key: replay_sample(s, key, 32, n_step=3, gamma=0.9)))
    batches = sample(states, keys)
    for s in range(seeds):
        single = add_one_by_one(replay_init(7, OBS_DIM, ACT_DIM), per_seed[s])
        assert_trees_equal(jax.tree.map(lambda x, s=s: x[s], states), single)
        expected = jit_sample(single, keys[s], batch_size=32, n_step=3, gamma=0.9)
        assert_trees_equal(jax.tree.map(lambda x, s=s: x[s], batches), expected)


def test_jit_with_donation_matches_eager():
    rng = np.random.default_rng(0)
    num = 2000
    ts = Transition(
        obs=jnp.asarray(rng.normal(size=(num, 3)), jnp.float32),
        action=jnp.asarray(rng.normal(size=(num, 2)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=num), jnp.float32),
        terminated=jnp.asarray(rng.random(num) < 0.1, jnp.float32),
        truncated=jnp.asarray(rng.random(num) < 0.1, jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(num, 3)), jnp.float32),
    )
    rows = host_rows(ts)
    add = jax.jit(replay_add, donate_argnums=0)
    jitted, eager = replay_init(300, 3, 2), replay_init(300, 3, 2)
    first = jitted
    for row in rows:
        jitted, eager = add(jitted, row), replay_add(eager, row)
    assert first.data.obs.is_deleted()  # the donated buffer was consumed (in-place update)
    assert_trees_equal(jitted, eager)
    assert (int(jitted.ptr), int(jitted.size)) == (num % 300, 300)
    np.testing.assert_array_equal(replay_to_numpy(jitted)["reward"], np.asarray(ts.reward)[-300:])


def test_from_numpy_keeps_newest_rows_when_over_capacity():
    rows = replay_to_numpy(
        replay_add_batch(replay_init(10, 2, 1), make_transitions(np.arange(8.0)))
    )
    state = replay_from_numpy(rows, capacity=5)
    assert (int(state.ptr), int(state.size)) == (0, 5)
    np.testing.assert_array_equal(replay_to_numpy(state)["reward"], [3, 4, 5, 6, 7])


def test_save_load_round_trip(tmp_path):
    ts = make_transitions(np.arange(7.0) + 0.25, terminated=[3], truncated=[5])
    state = replay_add_batch(replay_init(5, OBS_DIM, ACT_DIM), ts)  # wrapped: ptr=2
    path = tmp_path / "sub" / "replay.npz"
    save_replay(path, state)
    assert os.listdir(path.parent) == ["replay.npz"]  # no temporary file left behind
    loaded = load_replay(path, capacity=5)
    for key, value in replay_to_numpy(state).items():
        np.testing.assert_array_equal(replay_to_numpy(loaded)[key], value)
    bigger = load_replay(path, capacity=9)
    assert (int(bigger.ptr), int(bigger.size)) == (5, 5)
    np.testing.assert_array_equal(replay_to_numpy(bigger)["reward"], np.arange(2.0, 7.0) + 0.25)


def test_load_truncated_or_corrupt_file_raises(tmp_path):
    path = tmp_path / "replay.npz"
    save_replay(path, replay_add_batch(replay_init(8, OBS_DIM, ACT_DIM), make_transitions([1.0])))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ScalerlError, match="corrupt or truncated"):
        load_replay(path, capacity=8)
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(ScalerlError, match="corrupt or truncated"):
        load_replay(path, capacity=8)
    with pytest.raises(ScalerlError, match="not found"):
        load_replay(tmp_path / "missing.npz", capacity=8)


def test_load_missing_key_names_the_key(tmp_path):
    rows = replay_to_numpy(replay_add_batch(replay_init(4, 2, 1), make_transitions([1.0, 2.0])))
    del rows["truncated"]
    np.savez(tmp_path / "replay.npz", **rows)
    with pytest.raises(ScalerlError, match="missing key 'truncated'"):
        load_replay(tmp_path / "replay.npz", capacity=4)


def test_from_numpy_rejects_inconsistent_arrays():
    rows = replay_to_numpy(replay_add_batch(replay_init(4, 2, 1), make_transitions([1.0, 2.0])))
    with pytest.raises(ScalerlError, match="different lengths"):
        replay_from_numpy({**rows, "reward": np.zeros(3)}, capacity=4)
    with pytest.raises(ScalerlError, match="'action' must be 2-D"):
        replay_from_numpy({**rows, "action": np.zeros(2)}, capacity=4)
    with pytest.raises(ScalerlError, match="NaN or inf"):
        replay_from_numpy({**rows, "reward": np.array([1.0, np.nan])}, capacity=4)


def test_invalid_n_step_raises():
    state = replay_add_batch(replay_init(4, OBS_DIM, ACT_DIM), make_transitions([1.0, 2.0]))
    with pytest.raises(ScalerlError, match="n_step must be >= 1"):
        replay_sample(state, jax.random.key(0), 8, n_step=5)
    with pytest.raises(ScalerlError, match="n_step must be >= 1 with"):
        replay_sample(state, jax.random.key(0), 8, n_step=3, stride=2)  # rows 0, 2, 4 > 3
    odd = replay_init(5, OBS_DIM, ACT_DIM)
    with pytest.raises(ScalerlError, match="capacity divisible by 2, got 5"):
        replay_sample(odd, jax.random.key(0), 8, n_step=2, stride=2)
