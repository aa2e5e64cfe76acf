"""The scalerl dataset format: one uncompressed `.npz` file with the `Dataset` arrays.

Entries: `observations` (N, d_o) float32, `actions` (N, d_a) float32, `rewards` (N,) float32,
`terminals` (N,) bool, `timeouts` (N,) bool, optionally `next_observations` (N, d_o) float32, and
`metadata`, a 0-d unicode array holding a JSON object with the dataset metadata plus the reserved
keys `"format": "scalerl-dataset"` and `"format_version": 1`. Loading needs no pickle. Save → load
is exact (bitwise-identical arrays, equal metadata). See docs/datasets.md.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from scalerl.datasets.dataset import (
    Dataset,
    check_structure,
    metadata_from_json,
    metadata_to_json,
    write_atomically,
)
from scalerl.errors import DatasetError

FORMAT_NAME = "scalerl-dataset"
FORMAT_VERSION = 1
_REQUIRED = ("observations", "actions", "rewards", "terminals", "timeouts", "metadata")
_RESERVED = ("format", "format_version")
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile)


def save_dataset(path: str | os.PathLike, ds: Dataset) -> Path:
    """Writes `ds` to a scalerl `.npz` file, atomically (temp file + `os.replace`).

    Args:
        path: Destination file (use the `.npz` suffix so `load_any` recognises it).
        ds: The dataset; its metadata must be JSON-serialisable. The keys `format` and
            `format_version` are reserved and overwritten.

    Returns:
        The written path.

    Raises:
        DatasetError: If the dataset is malformed or its metadata is not JSON-serialisable.
    """
    check_structure(ds, str(path))
    header = {**ds.metadata, "format": FORMAT_NAME, "format_version": FORMAT_VERSION}
    arrays = {
        "observations": ds.observations,
        "actions": ds.actions,
        "rewards": ds.rewards,
        "terminals": ds.terminals,
        "timeouts": ds.timeouts,
        "metadata": np.array(metadata_to_json(header, str(path))),
    }
    if ds.next_observations is not None:
        arrays["next_observations"] = ds.next_observations

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return write_atomically(path, write)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Reads every entry of an `.npz` file (no pickle); DatasetError if corrupt or truncated."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except _READ_ERRORS as err:
        raise DatasetError(
            f"dataset {path} is corrupt or truncated ({type(err).__name__}: {err}); "
            "re-export it or restore a backup"
        ) from None


def _check_header(arrays: dict[str, np.ndarray], path: Path) -> dict:
    """Checks the entries and the format header; returns the metadata without reserved keys."""
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise DatasetError(
            f"dataset {path} is missing {missing} (scalerl .npz files need {list(_REQUIRED)}); "
            "it was not written by scalerl's save_dataset"
        )
    meta = metadata_from_json(str(arrays["metadata"][()]), str(path))
    found = (meta.get("format"), meta.get("format_version"))
    if found != (FORMAT_NAME, FORMAT_VERSION):
        raise DatasetError(
            f"dataset {path} has format {found[0]!r} version {found[1]!r}, expected "
            f"{FORMAT_NAME!r} version {FORMAT_VERSION}; re-export it with this scalerl version"
        )
    return {k: v for k, v in meta.items() if k not in _RESERVED}


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Reads a scalerl `.npz` dataset written by `save_dataset`.

    Args:
        path: The `.npz` file.

    Returns:
        The dataset (arrays exactly as saved, metadata without the reserved format keys).

    Raises:
        DatasetError: If the file is missing, corrupt, truncated, of another format or version,
            or holds malformed arrays; the message names the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset {path} not found; check the path")
    arrays = _read_npz(path)
    meta = _check_header(arrays, path)
    ds = Dataset(
        observations=arrays["observations"],
        actions=arrays["actions"],
        rewards=arrays["rewards"],
        terminals=arrays["terminals"],
        timeouts=arrays["timeouts"],
        next_observations=arrays.get("next_observations"),
        metadata=meta,
    )
    return check_structure(ds, str(path))
