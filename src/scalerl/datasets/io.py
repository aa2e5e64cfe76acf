"""Format dispatch: load or save a `Dataset` in any supported format.

- `scalerl`: one `.npz` file; recognised by the suffix `.npz`.
- `d4rl`: one HDF5 file in D4RL's `get_dataset()` layout; recognised by the suffix `.hdf5`/`.h5`
  when the file has no Minari `episode_*` groups.
- `minari`: the directory `<root>/<dataset_id>/` with `data/main_data.hdf5`; recognised as a
  directory, or as a `.hdf5` file holding `episode_*` groups.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from scalerl.datasets.d4rl import load_d4rl, open_hdf5, save_d4rl
from scalerl.datasets.dataset import Dataset
from scalerl.datasets.minari_format import DATASET_ID_RE, load_minari, save_minari
from scalerl.datasets.scalerl_format import load_dataset, save_dataset
from scalerl.errors import DatasetError

FORMATS: tuple[str, ...] = ("scalerl", "minari", "d4rl")
HDF5_SUFFIXES = (".hdf5", ".h5")
_SUPPORTED = (
    "scalerl (.npz file), d4rl (.hdf5/.h5 file), minari (dataset directory or its "
    "data/main_data.hdf5)"
)


def _holds_minari_episodes(path: Path) -> bool:
    """Whether an HDF5 file has Minari `episode_<k>` groups at its root."""
    with open_hdf5(path) as f:
        return any(re.fullmatch(r"episode_\d+", k) for k in f)


def detect_format(path: str | os.PathLike) -> str:
    """The format of a dataset path, one of `FORMATS` (see the module docstring).

    Raises:
        DatasetError: If the path does not exist or its format is not recognised.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset {path} not found; check the path")
    if path.is_dir():
        return "minari"
    if path.suffix == ".npz":
        return "scalerl"
    if path.suffix in HDF5_SUFFIXES:
        return "minari" if _holds_minari_episodes(path) else "d4rl"
    raise DatasetError(f"unknown dataset format for {path}; supported: {_SUPPORTED}")


def load_any(path: str | os.PathLike) -> Dataset:
    """Loads a dataset in any supported format (dispatch by `detect_format`).

    Args:
        path: A scalerl `.npz`, a D4RL `.hdf5`/`.h5`, or a Minari dataset directory, its
            `data/` directory or its `data/main_data.hdf5`.

    Returns:
        The dataset (structure checked; call `validate_dataset` to check it against an env).

    Raises:
        DatasetError: If the path is missing, of an unknown format, or malformed.
    """
    loaders = {"scalerl": load_dataset, "d4rl": load_d4rl, "minari": load_minari}
    return loaders[detect_format(path)](path)


def _default_minari_id(ds: Dataset) -> str:
    """`metadata["dataset_id"]` if valid, else `scalerl/<env id, sanitised>-v0`."""
    given = ds.metadata.get("dataset_id")
    if isinstance(given, str) and DATASET_ID_RE.match(given):
        return given
    env = str(ds.metadata.get("env_id") or "dataset")
    name = re.sub(r"[^-\w]+", "-", env).strip("-").lower()
    return f"scalerl/{name}-v0"


def minari_target(path: str | os.PathLike, ds: Dataset) -> tuple[Path, str]:
    """The (root, dataset id) `save_any` uses for the Minari format.

    If the last component of `path` is a versioned name (`<name>-v<N>`), `path` is the dataset
    directory: root = its parent, id = its name. Otherwise `path` is the root and the id is
    `metadata["dataset_id"]`, or else `scalerl/<env_id>-v0` (env id lowercased, characters
    other than letters, digits, `_` and `-` replaced by `-`).
    """
    path = Path(path)
    if DATASET_ID_RE.match(path.name):
        return path.parent, path.name
    return path, _default_minari_id(ds)


def save_any(path: str | os.PathLike, ds: Dataset, fmt: str) -> Path:
    """Saves a dataset in the given format.

    Args:
        path: Destination: the `.npz` file (scalerl), the `.hdf5` file (d4rl), or for minari
            the dataset directory `<root>/<name>-v<N>` or the root (see `minari_target`).
        ds: The dataset.
        fmt: One of `FORMATS`.

    Returns:
        The written file (scalerl, d4rl) or dataset directory (minari).

    Raises:
        DatasetError: On an unknown format or any error of the format's writer.
    """
    if fmt == "scalerl":
        return save_dataset(path, ds)
    if fmt == "d4rl":
        return save_d4rl(path, ds)
    if fmt == "minari":
        return save_minari(*minari_target(path, ds), ds)
    raise DatasetError(f"unknown dataset format {fmt!r}; choose one of {', '.join(FORMATS)}")
