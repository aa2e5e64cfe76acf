"""Atomic, single-file pytree checkpoints.

A checkpoint is one msgpack file holding ``{"meta": meta, "state": state}``, where ``state`` is
``flax.serialization.to_state_dict`` of the tree (jax arrays copied to numpy) and ``meta`` a
JSON-able dict (config, step counters, ...) to which :func:`save_checkpoint` adds the format
version (:data:`CHECKPOINT_FORMAT`) and the scalerl version.

Files are written to a temporary file in the target directory, fsynced, then renamed over the
target with ``os.replace``: a crash at any point leaves either the old or the new checkpoint,
never a partial one.

Arrays of at least :data:`SIDECAR_BYTES` (replay buffers) are written next to the checkpoint as
``<name>.<token>.<i>.npy`` files, streamed from the arrays' memory, and the msgpack file holds a
reference to each: saving needs no second in-memory copy of a large buffer and loading maps the
file instead of reading it into a bytes object first. The sidecars are written before the msgpack
file, which commits them; :func:`remove_checkpoint` deletes a checkpoint with its sidecars.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import msgpack
import numpy as np
from flax import serialization

from scalerl import __version__
from scalerl.errors import CheckpointError

CHECKPOINT_FORMAT = 1
"""Version of the on-disk layout; bumped whenever old checkpoints can no longer be read."""

FORMAT_KEY = "checkpoint_format"
VERSION_KEY = "scalerl_version"
SIDECAR_BYTES = 64 * 2**20
"""Arrays of at least this many bytes are saved as `.npy` sidecar files."""
SIDECAR_KEY = "__npy_sidecar__"


def _is_typed_key(x: Any) -> bool:
    """Returns whether ``x`` is a new-style typed PRNG key array (``jax.random.key``)."""
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_host(tree: Any) -> Any:
    """Copies the tree's arrays to numpy, turning typed PRNG keys into their raw uint32 data."""
    raw = jax.tree.map(lambda x: jax.random.key_data(x) if _is_typed_key(x) else x, tree)
    return jax.device_get(raw)


def _normalise_meta(meta: dict) -> dict:
    """Checks that ``meta`` is JSON-able and adds the format and scalerl versions.

    Args:
        meta: User metadata.

    Returns:
        A JSON round-tripped copy (tuples become lists) with the version keys set.

    Raises:
        TypeError: If ``meta`` holds values JSON cannot encode.
    """
    try:
        clean = json.loads(json.dumps(meta))
    except (TypeError, ValueError) as e:
        raise TypeError(f"checkpoint meta must be JSON-able: {e}") from e
    return {**clean, FORMAT_KEY: CHECKPOINT_FORMAT, VERSION_KEY: __version__}


def _write_atomic(path: Path, data: bytes | np.ndarray) -> None:
    """Writes ``data`` to ``path`` through a fsynced temporary file and ``os.replace``.

    Args:
        path: Destination file.
        data: File contents, or an array written in `.npy` format.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, np.ndarray):
                np.save(f, data, allow_pickle=False)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Fsyncs a directory so a rename in it survives a power loss (best effort, POSIX only)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(path: Path, tree: Any, meta: dict) -> None:
    """Saves a pytree and its metadata to one file, atomically.

    Args:
        path: Destination file (its directory is created if needed).
        tree: Any pytree flax can serialise: dicts, lists, (named)tuples, flax.struct
            dataclasses, optax states, jax/numpy arrays (PRNG keys included) and scalars.
        meta: JSON-able metadata (config, step counters, ...).

    Raises:
        TypeError: If ``meta`` is not JSON-able.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    state = _split_large(serialization.to_state_dict(_to_host(tree)), path, token, count())
    payload = {"meta": _normalise_meta(meta), "state": state}
    _write_atomic(path, serialization.msgpack_serialize(payload, in_place=True))
    for old in _sidecars(path):
        if not old.name.startswith(f"{path.name}.{token}."):
            old.unlink(missing_ok=True)


def _split_large(node: Any, path: Path, token: str, numbers: Iterator[int]) -> Any:
    """The state dict with every large array written to a sidecar and replaced by its name."""
    if isinstance(node, dict):
        return {k: _split_large(v, path, token, numbers) for k, v in node.items()}
    if not isinstance(node, np.ndarray) or node.nbytes < SIDECAR_BYTES:
        return node
    name = f"{path.name}.{token}.{next(numbers)}.npy"
    _write_atomic(path.parent / name, node)
    return {SIDECAR_KEY: name}


def _sidecars(path: Path) -> list[Path]:
    """The sidecar files of checkpoint `path` (of any save)."""
    return list(path.parent.glob(f"{path.name}.*.npy"))


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint file and its sidecar arrays (missing files are fine)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    for sidecar in _sidecars(path):
        sidecar.unlink(missing_ok=True)


def _join_large(node: Any, path: Path) -> Any:
    """The state dict with every sidecar reference replaced by the memory-mapped array."""
    if not isinstance(node, dict):
        return node
    if set(node) == {SIDECAR_KEY}:
        try:
            return np.load(path.parent / node[SIDECAR_KEY], mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise _corrupt(path, f"sidecar {node[SIDECAR_KEY]}: {e}") from None
    return {k: _join_large(v, path) for k, v in node.items()}


def _corrupt(path: Path, reason: str) -> CheckpointError:
    """Builds the error for an unreadable checkpoint file."""
    return CheckpointError(
        f"checkpoint {path} is corrupt ({reason}); delete it or resume from an earlier one"
    )


def _read_payload(path: Path) -> dict:
    """Reads and decodes the whole checkpoint file.

    Raises:
        CheckpointError: If the file is missing, undecodable or not a scalerl checkpoint.
    """
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; check the path or start a fresh run")
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except Exception as e:  # msgpack raises several unrelated types on bad input.
        raise _corrupt(path, f"{type(e).__name__}: {e}") from None
    if not isinstance(payload, dict) or not {"meta", "state"} <= payload.keys():
        raise _corrupt(path, "not a scalerl checkpoint: no meta/state entries")
    _check_format(path, payload["meta"])
    return payload | {"state": _join_large(payload["state"], path)}


def read_checkpoint(path: Path) -> tuple[dict, dict]:
    """Reads a checkpoint without a template: (state dict of numpy arrays, meta).

    Sidecar arrays come memory-mapped. Raises CheckpointError as `load_checkpoint` does.
    """
    payload = _read_payload(Path(path))
    return payload["state"], payload["meta"]


def _check_format(path: Path, meta: Any) -> None:
    """Raises CheckpointError unless ``meta`` declares the supported format version."""
    if not isinstance(meta, dict) or FORMAT_KEY not in meta:
        raise _corrupt(path, "its metadata has no format version")
    if meta[FORMAT_KEY] != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has format version {meta[FORMAT_KEY]} but scalerl "
            f"{__version__} reads version {CHECKPOINT_FORMAT}; use the scalerl version that "
            f"wrote it ({meta.get(VERSION_KEY, 'unknown')}) or start a fresh run"
        )


def read_checkpoint_meta(path: Path) -> dict:
    """Reads only the metadata of a checkpoint (the arrays are skipped, not decoded).

    Args:
        path: Checkpoint file.

    Returns:
        The metadata dict, including ``checkpoint_format`` and ``scalerl_version``.

    Raises:
        CheckpointError: If the file is missing, corrupt or of another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; check the path or start a fresh run")
    try:
        meta = _stream_meta(path)
    except Exception as e:  # msgpack raises several unrelated types on bad input.
        raise _corrupt(path, f"{type(e).__name__}: {e}") from None
    if meta is None:
        raise _corrupt(path, "not a scalerl checkpoint: no meta entry")
    _check_format(path, meta)
    return meta


def _stream_meta(path: Path) -> dict | None:
    """Returns the ``meta`` entry of the top-level msgpack map, skipping the other entries."""
    with path.open("rb") as f:
        unpacker = msgpack.Unpacker(f, raw=False, strict_map_key=False)
        for _ in range(unpacker.read_map_header()):
            if unpacker.unpack() == "meta":
                return unpacker.unpack()
            unpacker.skip()
    return None


# --------------------------------------------------------------------------------------------
# Restoring into a template
# --------------------------------------------------------------------------------------------


def _leaf_signature(x: Any) -> tuple[tuple[int, ...], str]:
    """Returns ``(shape, dtype name)`` of an array or scalar leaf (typed keys as raw data)."""
    if _is_typed_key(x):
        x = jax.random.key_data(x)
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return tuple(x.shape), np.dtype(x.dtype).name
    return (), np.asarray(x).dtype.name


def _describe_kind(x: Any) -> str:
    """Names a node for error messages: subtree, None or array signature."""
    if isinstance(x, dict):
        return "a subtree"
    if x is None:
        return "None"
    shape, dtype = _leaf_signature(x)
    return f"{dtype}{list(shape)}"


def _dict_mismatch(expected: dict, saved: dict, where: str) -> str | None:
    """Compares the keys of two state-dict nodes, then recurses into the shared keys."""
    missing = sorted(expected.keys() - saved.keys())
    if missing:
        return f"{where}/{missing[0]} is in this config but not in the checkpoint"
    extra = sorted(saved.keys() - expected.keys())
    if extra:
        return f"{where}/{extra[0]} is in the checkpoint but not in this config"
    for key in expected:
        found = _first_mismatch(expected[key], saved[key], f"{where}/{key}")
        if found:
            return found
    return None


def _first_mismatch(expected: Any, saved: Any, where: str = "state") -> str | None:
    """Returns a description of the first difference in structure, shape or dtype, or None.

    Args:
        expected: State dict of the template.
        saved: State dict read from the checkpoint.
        where: Path of the current node, used in the description.
    """
    if isinstance(expected, dict) and isinstance(saved, dict):
        return _dict_mismatch(expected, saved, where)
    saved_kind, expected_kind = _describe_kind(saved), _describe_kind(expected)
    if saved_kind == expected_kind:
        return None
    return f"{where} is {saved_kind} in the checkpoint but {expected_kind} in this config"


def _match_template_leaf(template_leaf: Any, restored: Any) -> Any:
    """Gives a restored numpy leaf the array type of the template leaf (jax array, typed key)."""
    if _is_typed_key(template_leaf):
        impl = jax.random.key_impl(template_leaf)
        return jax.random.wrap_key_data(jnp.asarray(restored), impl=impl)
    if isinstance(template_leaf, jax.Array | jax.ShapeDtypeStruct):
        return jnp.asarray(restored)
    if isinstance(restored, np.memmap):  # a sidecar: keep no mapping of a file that may go
        return np.array(restored)
    return restored


def load_checkpoint(path: Path, template: Any) -> tuple[Any, dict]:
    """Loads a checkpoint into the structure of ``template``.

    Args:
        path: Checkpoint file written by :func:`save_checkpoint`.
        template: A tree with the structure, shapes and dtypes to restore (e.g. a freshly
            initialised agent state for the same config); its values are not used.

    Returns:
        ``(tree, meta)``: the restored tree (jax arrays where the template has jax arrays) and
        the checkpoint's metadata.

    Raises:
        CheckpointError: If the file is missing, corrupt, of another format version, or does
            not match the template's structure, shapes or dtypes.
    """
    path = Path(path)
    payload = _read_payload(path)
    expected = serialization.to_state_dict(_to_host_signature(template))
    mismatch = _first_mismatch(expected, payload["state"])
    if mismatch:
        raise CheckpointError(
            f"checkpoint {path} does not match this config: {mismatch}; resume with the config "
            "it was saved with (see read_checkpoint_meta) or start a fresh run"
        )
    restored = serialization.from_state_dict(template, payload["state"])
    tree = jax.tree.map(_match_template_leaf, template, restored)
    return tree, payload["meta"]


def _to_host_signature(template: Any) -> Any:
    """Replaces typed keys by their raw data's shape/dtype, without copying arrays to host."""
    return jax.tree.map(
        lambda x: jax.eval_shape(jax.random.key_data, x) if _is_typed_key(x) else x, template
    )
