"""D4RL-format HDF5 datasets: the flat layout of D4RL's `env.get_dataset()` files.

Root datasets `observations` (N, d_o), `actions` (N, d_a), `rewards` (N,), `terminals` (N,),
`timeouts` (N,) and optionally `next_observations` (N, d_o). Other groups (`infos/...`,
`metadata/...`) are ignored when reading. scalerl also stores its metadata as the JSON string
file attribute `scalerl_metadata`. See docs/datasets.md for how timeouts are handled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from scalerl.datasets.dataset import (
    Dataset,
    check_structure,
    metadata_from_json,
    metadata_to_json,
    write_atomically,
)
from scalerl.errors import DatasetError

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
METADATA_ATTR = "scalerl_metadata"


def save_d4rl(path: str | os.PathLike, ds: Dataset) -> Path:
    """Writes `ds` as a D4RL-layout HDF5 file, atomically (temp file + `os.replace`).

    Arrays keep their `Dataset` dtypes (float32, bool); the metadata goes to the file attribute
    `scalerl_metadata` (JSON string).

    Args:
        path: Destination file (use `.hdf5` or `.h5` so `load_any` recognises it).
        ds: The dataset.

    Returns:
        The written path.

    Raises:
        DatasetError: If the dataset is malformed or its metadata is not JSON-serialisable.
    """
    check_structure(ds, str(path))
    meta = metadata_to_json(ds.metadata, str(path))
    arrays = {k: getattr(ds, k) for k in (*REQUIRED_KEYS, "next_observations")}

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for key, value in arrays.items():
                if value is not None:
                    f.create_dataset(key, data=value)
            f.attrs[METADATA_ATTR] = meta

    return write_atomically(path, write)


def open_hdf5(path: Path) -> h5py.File:
    """Opens an HDF5 file for reading; DatasetError if it is missing or not valid HDF5."""
    if not path.is_file():
        raise DatasetError(f"dataset {path} not found; check the path")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DatasetError(
            f"dataset {path} is not a readable HDF5 file ({err}); re-download or re-export it"
        ) from None


def _read_array(f: h5py.File, key: str, path: Path) -> np.ndarray:
    """Reads one root dataset; flags/rewards of shape (N, 1) are flattened to (N,)."""
    node = f[key]
    if not isinstance(node, h5py.Dataset):
        raise DatasetError(f"dataset {path} key '{key}' is a group, expected an array")
    try:
        value = np.asarray(node[()])
    except (OSError, ValueError) as err:
        raise DatasetError(f"dataset {path} key '{key}' is unreadable ({err})") from None
    if key in ("rewards", "terminals", "timeouts") and value.ndim == 2 and value.shape[1] == 1:
        value = value[:, 0]
    return value


def _read_metadata(f: h5py.File, path: Path) -> dict[str, Any]:
    """The `scalerl_metadata` attribute, or `{"source": "d4rl:<file name>"}` if absent."""
    raw = f.attrs.get(METADATA_ATTR)
    if raw is None:
        return {"source": f"d4rl:{path.name}"}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return metadata_from_json(text, str(path))


def load_d4rl(path: str | os.PathLike, use_next_observations: bool = True) -> Dataset:
    """Reads a D4RL-layout HDF5 file (D4RL's `get_dataset()` files or `save_d4rl` output).

    Arrays are cast to float32 (observations, actions, rewards, next observations) and bool
    (terminals, timeouts: non-zero is True). `infos/...`, `metadata/...` and other keys are
    ignored.

    Args:
        path: The `.hdf5`/`.h5` file.
        use_next_observations: Keep `next_observations` if the file has them (every row is then
            a transition); False drops them, so `to_transitions` applies the SimbaV2 rule.

    Returns:
        The dataset; metadata from the `scalerl_metadata` attribute, else `{"source": ...}`.

    Raises:
        DatasetError: If the file is missing or corrupt, lacks a required key, or holds arrays
            of the wrong rank or length.
    """
    path = Path(path)
    with open_hdf5(path) as f:
        missing = [k for k in REQUIRED_KEYS if k not in f]
        if missing:
            raise DatasetError(
                f"dataset {path} is missing key '{missing[0]}' (D4RL files need "
                f"{', '.join(REQUIRED_KEYS)}); pass a D4RL get_dataset() file or use load_any"
            )
        arrays = {k: _read_array(f, k, path) for k in REQUIRED_KEYS}
        if use_next_observations and "next_observations" in f:
            arrays["next_observations"] = _read_array(f, "next_observations", path)
        meta = _read_metadata(f, path)
    return check_structure(Dataset(**arrays, metadata=meta), str(path))
