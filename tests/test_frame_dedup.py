"""Frame-deduplicating replay: rebuilt stacks equal the stacks a whole-observation buffer keeps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.buffers.vec_replay import (
    Step,
    start_mask,
    vec_replay_add,
    vec_replay_gather,
    vec_replay_init,
    vec_replay_sample,
)
from scalerl.envs.ale import FrameStack
from scalerl.errors import ConfigError

K, N, ROWS, H = 4, 3, 16, 2


def _stream(steps: int, seed: int = 0) -> list[Step]:
    """Vector steps of N environments whose frames are unique numbers, stacked by the Atari
    wrapper's FrameStack; episodes of 1-6 steps end by termination or truncation."""
    rng = np.random.default_rng(seed)
    counter = iter(range(1, 10**6))
    frame = lambda: np.full((H, H), next(counter) % 251, np.uint8)  # noqa: E731
    stacks = [FrameStack(K) for _ in range(N)]
    obs = [s.reset(frame()) for s in stacks]
    left = rng.integers(1, 7, N)
    out = []
    for _ in range(steps):
        nxt, final, term, trunc = [], [], np.zeros(N), np.zeros(N)
        for e in range(N):
            final.append(stacks[e].push(frame()))
            left[e] -= 1
            if left[e] == 0:
                (term if rng.random() < 0.5 else trunc)[e] = 1.0
                nxt.append(stacks[e].reset(frame()))
                left[e] = rng.integers(1, 7)
            else:
                nxt.append(final[-1])
        action = rng.integers(0, 4, N).astype(np.int32)
        reward = rng.normal(size=N).astype(np.float32)
        out.append(Step(np.stack(obs), action, reward, term, trunc, np.stack(final)))
        obs = nxt
    return out


def _fill(steps: list[Step], stack: int):
    buf = vec_replay_init(ROWS, jax.tree_util.tree_map(jnp.asarray, steps[0]), stack)
    for step in steps:
        buf = vec_replay_add(buf, jax.tree_util.tree_map(jnp.asarray, step))
    return buf


@pytest.mark.parametrize("written", [10, 37])  # before and after the ring wraps
@pytest.mark.parametrize("n_step", [1, 3])
def test_rebuilt_stacks_equal_the_stored_ones(written, n_step):
    steps = _stream(written)
    whole, dedup = _fill(steps, 0), _fill(steps, K)
    assert dedup.data.obs.shape == (ROWS, N, H, H) and whole.data.obs.shape == (ROWS, N, H, H, K)
    mask = np.asarray(start_mask(dedup, n_step))
    assert mask.sum() == min(written, ROWS) - n_step + 1 - (K - 1)
    rows, envs = np.nonzero(np.repeat(mask[:, None], N, axis=1))
    a = vec_replay_gather(whole, jnp.asarray(rows), jnp.asarray(envs), n_step, 0.9)
    b = vec_replay_gather(dedup, jnp.asarray(rows), jnp.asarray(envs), n_step, 0.9)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_samples_skip_rows_without_predecessors():
    dedup = _fill(_stream(8), K)  # rows 0..7 written; rows 0..2 lack K - 1 predecessors
    batch = vec_replay_sample(dedup, jax.random.PRNGKey(0), 512, n_step=1)
    rewards = np.asarray(dedup.data.reward)  # unique draws identify (row, environment)
    rows = {int(np.argwhere(rewards == r)[0, 0]) for r in np.asarray(batch.reward)}
    assert rows == {3, 4, 5, 6, 7}


def test_a_mismatched_stack_is_refused():
    example = jax.tree_util.tree_map(jnp.asarray, _stream(1)[0])
    with pytest.raises(ConfigError, match="needs 3 stacked frames"):
        vec_replay_init(ROWS, example, stack=3)


def _pong_run(*args: str):
    from scalerl.train.dqn_host import HostRun
    from scalerl.train.dqn_run import parse_dqn

    pytest.importorskip("ale_py")
    cfg = parse_dqn(["--algo", "dqn", "--env", "ale:Pong", "--buffer-capacity", "64", *args])
    return HostRun.open(cfg, None)


CASES = [([], (64, 1, 84, 84)), (["--no-dedup-frames"], (64, 1, 84, 84, 4))]


@pytest.mark.parametrize(("flag", "shape"), CASES)
def test_atari_replay_keeps_one_frame_per_observation(flag, shape):
    run = _pong_run(*flag)
    try:
        buffer, _ = run.fresh().replay
    finally:
        run.venv.close()
    assert buffer.data.obs.shape == shape and buffer.data.next_obs.shape == shape
    assert buffer.stack == (0 if flag else 4)


def test_a_buffer_bigger_than_the_memory_is_refused(tmp_path, monkeypatch, capsys):
    from scalerl.buffers import memory
    from scalerl.cli import main

    pytest.importorskip("ale_py")
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**9)
    args = ["train", "--algo", "dqn", "--env", "ale:Pong", "--run-root", str(tmp_path)]
    assert main(args) == 2  # the preset's 1M transitions: 14.1 GB
    err = capsys.readouterr().err
    assert "needs 14.1 GB but this machine has 1.0 GB available; lower --buffer-capacity" in err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # refused before any run dir
