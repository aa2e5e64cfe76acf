"""Atomic, single-file pytree checkpoints.

A checkpoint is one msgpack file holding ``{"meta": meta, "state": state}``, where ``state`` is
``flax.serialization.to_state_dict`` of the tree (jax arrays copied to numpy) and ``meta`` a
JSON-able dict (config, step counters, ...) to which :func:`save_checkpoint` adds the format
version (:data:`CHECKPOINT_FORMAT`) and the scalerl version.

Files are written to a temporary file in the target directory, fsynced, then renamed over the
target with ``os.replace``: a crash at any point leaves either the old or the new checkpoint,
never a partial one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
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


def _write_atomic(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a fsynced temporary file and ``os.replace``.

    Args:
        path: Destination file.
        data: File contents.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
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
    payload = {
        "meta": _normalise_meta(meta),
        "state": serialization.to_state_dict(_to_host(tree)),
    }
    _write_atomic(path, serialization.msgpack_serialize(payload, in_place=True))


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
    return payload


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
