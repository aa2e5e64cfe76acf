"""Tests for scalerl.train.checkpoint: round trip, corruption, mismatch, atomicity."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scalerl import __version__
from scalerl.errors import CheckpointError
from scalerl.train.checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    read_checkpoint_meta,
    save_checkpoint,
)


@flax.struct.dataclass
class _AgentState:
    params: dict
    opt_state: Any
    rng: jax.Array
    step: jax.Array


def _make_tree(seed: int, width: int = 4) -> dict:
    """A nested tree like an agent's: dicts, a struct dataclass, an optax state, keys."""
    key = jax.random.PRNGKey(seed)
    params = {
        "dense": {
            "kernel": jax.random.normal(key, (3, width)),
            "bias": jnp.arange(width, dtype=jnp.float32),
        }
    }
    opt = optax.adam(1e-3)
    opt_state = opt.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    _, opt_state = opt.update(grads, opt_state, params)
    state = _AgentState(params=params, opt_state=opt_state, rng=key, step=jnp.int32(7 + seed))
    return {
        "agent": state,
        "typed_key": jax.random.key(seed + 1),
        "counts": np.array([1, 2, 3], dtype=np.int64),
        "env_steps": 12345 + seed,
        "temperature": 0.25,
        "nothing": None,
    }


def _leaves_equal(a: Any, b: Any) -> None:
    a_leaves, a_def = jax.tree.flatten(a)
    b_leaves, b_def = jax.tree.flatten(b)
    assert a_def == b_def
    for x, y in zip(a_leaves, b_leaves, strict=True):
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert type(x) is type(y) or isinstance(y, jax.Array)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        assert np.asarray(x).dtype == np.asarray(y).dtype


def test_round_trip_restores_identical_leaves(tmp_path: Path) -> None:
    tree = _make_tree(0)
    path = tmp_path / "ckpt" / "checkpoint.msgpack"
    save_checkpoint(path, tree, {"config": {"utd": 2, "widths": (4, 8)}, "env_step": 500})
    restored, meta = load_checkpoint(path, _make_tree(1))
    _leaves_equal(tree, restored)
    assert isinstance(restored["agent"], _AgentState)
    assert isinstance(restored["agent"].opt_state[0], optax.ScaleByAdamState)
    assert isinstance(restored["agent"].params["dense"]["kernel"], jax.Array)
    assert restored["agent"].rng.dtype == jnp.uint32
    assert restored["env_steps"] == 12345
    assert meta["config"] == {"utd": 2, "widths": [4, 8]}
    assert meta["env_step"] == 500
    assert meta["checkpoint_format"] == CHECKPOINT_FORMAT
    assert meta["scalerl_version"] == __version__
    assert read_checkpoint_meta(path) == meta
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temp files left


def test_truncated_file_is_reported_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.msgpack"
    save_checkpoint(path, _make_tree(0), {"env_step": 1})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path, _make_tree(0))
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint_meta(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.msgpack", _make_tree(0))


def test_shape_mismatch_names_the_leaf(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.msgpack"
    save_checkpoint(path, _make_tree(0, width=4), {})
    with pytest.raises(CheckpointError, match="does not match this config") as err:
        load_checkpoint(path, _make_tree(0, width=8))
    message = str(err.value)
    assert "state/agent/params/dense/bias is float32[4] in the checkpoint" in message
    assert "float32[4]" in message and "float32[8]" in message


def test_missing_key_and_dtype_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.msgpack"
    save_checkpoint(path, {"a": np.zeros(2, np.float32), "b": 1}, {})
    with pytest.raises(CheckpointError, match="state/c is in this config"):
        load_checkpoint(path, {"a": np.zeros(2, np.float32), "b": 1, "c": 2})
    with pytest.raises(CheckpointError, match="state/a is float32.2. in the checkpoint"):
        load_checkpoint(path, {"a": np.zeros(2, np.float64), "b": 1})


def test_other_format_version_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.msgpack"
    payload = {"meta": {"checkpoint_format": 99}, "state": {"a": np.zeros(1)}}
    path.write_bytes(flax.serialization.msgpack_serialize(payload))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(path, {"a": np.zeros(1)})


def test_failed_write_keeps_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "checkpoint.msgpack"
    save_checkpoint(path, {"w": np.full(3, 1.0, np.float32)}, {"env_step": 1})
    before = path.read_bytes()

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"w": np.full(3, 2.0, np.float32)}, {"env_step": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.msgpack"]
    restored, meta = load_checkpoint(path, {"w": np.zeros(3, np.float32)})
    np.testing.assert_array_equal(restored["w"], np.full(3, 1.0, np.float32))
    assert meta["env_step"] == 1


def test_non_json_meta_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path / "c.msgpack", {"a": 1}, {"bad": object()})
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------- sidecar arrays


@pytest.fixture
def small_sidecars(monkeypatch):
    """Arrays of 1 KiB and more go to sidecar files."""
    from scalerl.train import checkpoint

    monkeypatch.setattr(checkpoint, "SIDECAR_BYTES", 1024)


def _buffer_tree(fill: int) -> dict:
    return {"obs": jnp.full((64, 32), fill, jnp.uint8), "ptr": jnp.int32(fill), "w": jnp.ones(4)}


def test_large_arrays_round_trip_through_one_sidecar(tmp_path, small_sidecars):
    from scalerl.train.checkpoint import remove_checkpoint

    path = tmp_path / "step.msgpack"
    for fill in (3, 7):  # the second save replaces the first one's sidecar
        save_checkpoint(path, _buffer_tree(fill), {"step": fill})
        sidecars = list(tmp_path.glob("step.msgpack.*.npy"))
        assert len(sidecars) == 1 and path.stat().st_size < 1024 <= sidecars[0].stat().st_size
    tree, meta = load_checkpoint(path, _buffer_tree(0))
    assert meta["step"] == 7 and int(tree["ptr"]) == 7
    np.testing.assert_array_equal(tree["obs"], np.full((64, 32), 7, np.uint8))
    assert isinstance(tree["obs"], jax.Array)
    remove_checkpoint(path)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_sidecar_is_reported_as_corrupt(tmp_path, small_sidecars):
    path = tmp_path / "step.msgpack"
    save_checkpoint(path, _buffer_tree(1), {})
    next(tmp_path.glob("*.npy")).unlink()
    with pytest.raises(CheckpointError, match=r"is corrupt \(sidecar step.msgpack\..*\.npy"):
        load_checkpoint(path, _buffer_tree(0))


def test_pruned_resume_points_take_their_sidecars(tmp_path, small_sidecars):
    from scalerl.train.resume import checkpoint_path, prune_resume

    for t in (10, 20, 30):
        save_checkpoint(checkpoint_path(tmp_path, t), _buffer_tree(t), {})
    prune_resume(tmp_path)
    left = sorted(p.name.split(".")[0] for p in (tmp_path / "resume").iterdir())
    assert left == ["step-0000000020"] * 2 + ["step-0000000030"] * 2
