"""Minari datasets (HDF5 backend, Minari 0.5.x layout), read and written without `minari`.

Layout of a dataset `<root>/<dataset_id>/` (the id may contain a `namespace/` prefix):

    data/main_data.hdf5   groups episode_0, episode_1, ... (attrs id, total_steps), each with
                          observations (T+1, d_o), actions (T, d_a), rewards (T,),
                          terminations (T,) bool, truncations (T,) bool, infos/ (empty here)
    data/metadata.json    dataset_id, total_episodes, total_steps, data_format "hdf5",
                          observation_space / action_space (serialised Box), minari_version,
                          env_spec (if known), ref_min_score / ref_max_score (if known), ...

`minari.load_dataset(dataset_id)` with `MINARI_DATASETS_PATH=<root>` reads what `save_minari`
writes. Only flat (1-D) Box observation and action spaces are supported. See docs/datasets.md for
how episode ends are written when a `Dataset` has no next observations.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from scalerl.datasets.d4rl import open_hdf5
from scalerl.datasets.dataset import (
    Dataset,
    check_structure,
    metadata_from_json,
    metadata_to_json,
)
from scalerl.errors import DatasetError

#: The Minari version whose on-disk layout is written (listed in `metadata.json`).
MINARI_VERSION = "0.5.4"
MAIN_FILE = "main_data.hdf5"
METADATA_FILE = "metadata.json"
#: Minari dataset ids: `(namespace/)name-v<version>`.
DATASET_ID_RE = re.compile(r"^(?:[-_\w][-_\w/]*[-_\w]+/)?[-_\w]+?-v\d+$")
_EPISODE_RE = re.compile(r"^episode_(\d+)$")


def split_episodes(ds: Dataset) -> list[tuple[int, int]]:
    """Row ranges [start, stop) of the episodes; each ends after a terminal|timeout row.

    A trailing incomplete episode (rows after the last end) is included as the last range.
    """
    stops = (ds.episode_ends() + 1).tolist()
    if not stops or stops[-1] != len(ds):
        stops.append(len(ds))
    return list(zip([0, *stops[:-1]], stops, strict=True))


def _episode(ds: Dataset, start: int, stop: int) -> dict[str, np.ndarray] | None:
    """The Minari arrays of rows [start, stop), or None if nothing is left to write.

    With next observations, the final observation is `next_observations[stop-1]` and an
    episode without a terminal/timeout at its end is marked truncated. Without them, a terminal
    episode ends with a zero final observation (as in `to_transitions`), and any other episode
    drops its last row (its next observation is unknown) and is truncated one row earlier.
    """
    term, trunc = ds.terminals[start:stop].copy(), ds.timeouts[start:stop].copy()
    if ds.next_observations is not None:
        final = ds.next_observations[stop - 1]
    elif term[-1] and not trunc[-1]:
        final = np.zeros_like(ds.observations[0])
    else:
        stop, term, trunc = stop - 1, term[:-1], np.zeros(stop - 1 - start, bool)
        if stop == start:
            return None
        final = ds.observations[stop]
    trunc[-1] |= not term[-1]
    return {
        "observations": np.concatenate([ds.observations[start:stop], final[None]]),
        "actions": ds.actions[start:stop],
        "rewards": ds.rewards[start:stop],
        "terminations": term,
        "truncations": trunc,
    }


def _write_main_file(path: Path, episodes: list[dict[str, np.ndarray]]) -> None:
    """Writes the episode groups to `main_data.hdf5` as Minari's HDF5 storage does."""
    with h5py.File(path, "w", track_order=True) as f:
        for k, arrays in enumerate(episodes):
            group = f.create_group(f"episode_{k}")
            group.attrs["id"] = k
            group.attrs["total_steps"] = len(arrays["rewards"])
            for key, value in arrays.items():
                group.create_dataset(
                    key, data=value, chunks=True, maxshape=(None, *value.shape[1:])
                )
            group.create_group("infos")


def _box_json(low: np.ndarray, high: np.ndarray) -> str:
    """A 1-D float32 Box serialised as `minari.serialization.serialize_space` does."""
    box = {"type": "Box", "dtype": "float32", "shape": [int(low.size)]}
    return json.dumps(box | {"low": low.tolist(), "high": high.tolist()})


def _env_spec_json(env_id: Any) -> str | None:
    """The Gymnasium EnvSpec JSON of a registered id, or None (e.g. `dmc:` ids)."""
    if not isinstance(env_id, str):
        return None
    import gymnasium

    try:
        return gymnasium.spec(env_id).to_json()
    except Exception:  # unregistered id or unserialisable spec: omit it
        return None


def _minari_metadata(ds: Dataset, dataset_id: str, episodes: list[dict]) -> dict[str, Any]:
    """The `metadata.json` content (without `dataset_size`)."""
    low = np.minimum(ds.actions.min(axis=0), -1.0)
    high = np.maximum(ds.actions.max(axis=0), 1.0)
    inf = np.full(ds.obs_dim, np.inf, np.float32)
    meta = {
        "dataset_id": dataset_id,
        "total_episodes": len(episodes),
        "total_steps": int(sum(len(e["rewards"]) for e in episodes)),
        "data_format": "hdf5",
        "jpeg_encoding": False,
        "observation_space": _box_json(-inf, inf),
        "action_space": _box_json(low, high),
        "minari_version": MINARI_VERSION,
        "scalerl_metadata": ds.metadata,
    }
    spec = _env_spec_json(ds.metadata.get("env_id"))
    if spec is not None:
        meta["env_spec"] = spec
    for key in ("ref_min_score", "ref_max_score", "description"):
        if ds.metadata.get(key) is not None:
            meta[key] = ds.metadata[key]
    return meta


def _write_dataset_dir(directory: Path, ds: Dataset, dataset_id: str) -> None:
    """Writes `data/main_data.hdf5` and `data/metadata.json` under `directory`."""
    episodes = [e for r in split_episodes(ds) if (e := _episode(ds, *r)) is not None]
    if not episodes:
        raise DatasetError(f"dataset {dataset_id} has no complete transition to write")
    data = directory / "data"
    data.mkdir(parents=True)
    _write_main_file(data / MAIN_FILE, episodes)
    meta = _minari_metadata(ds, dataset_id, episodes)
    meta["dataset_size"] = round((data / MAIN_FILE).stat().st_size / 1e6, 1)
    (data / METADATA_FILE).write_text(metadata_to_json(meta, dataset_id))


def _target_dir(root: Path, dataset_id: str, overwrite: bool) -> Path:
    """Checks the id and the destination; returns `<root>/<dataset_id>`."""
    if not DATASET_ID_RE.match(dataset_id):
        raise DatasetError(
            f"invalid Minari dataset id {dataset_id!r}; use (namespace/)name-v<version>, "
            "e.g. 'scalerl/cartpole-swingup-expert-v0'"
        )
    target = root / dataset_id
    if target.exists() and not overwrite:
        raise DatasetError(
            f"Minari dataset {target} already exists; delete it, pass overwrite=True or bump "
            "the -v<version> of the id"
        )
    return target


def save_minari(
    root: str | os.PathLike, dataset_id: str, ds: Dataset, *, overwrite: bool = False
) -> Path:
    """Writes `ds` as the Minari dataset `<root>/<dataset_id>/` (HDF5 backend).

    Episodes are split after terminal|timeout rows (see `_episode` and docs/datasets.md for
    the final observation of each episode). The directory is built under a temporary name in
    `root` and renamed into place, so a crash leaves no half-written dataset.

    Args:
        root: The Minari datasets root (what `MINARI_DATASETS_PATH` points to).
        dataset_id: Minari id `(namespace/)name-v<version>`.
        ds: The dataset; its whole metadata is kept in `metadata.json` as `scalerl_metadata`.
        overwrite: Replace an existing dataset directory instead of raising.

    Returns:
        The dataset directory `<root>/<dataset_id>`.

    Raises:
        DatasetError: On an invalid id, an existing dataset (without `overwrite`), a malformed
            dataset, or nothing left to write.
    """
    check_structure(ds, dataset_id)
    target = _target_dir(Path(root), dataset_id, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        _write_dataset_dir(tmp, ds, dataset_id)
        os.chmod(tmp, 0o755)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_data_dir(path: Path) -> bool:
    """Whether `path` holds both `main_data.hdf5` and `metadata.json`."""
    return (path / MAIN_FILE).is_file() and (path / METADATA_FILE).is_file()


def resolve_data_dir(path: Path) -> Path:
    """The `data/` directory of a Minari dataset.

    Args:
        path: The dataset directory, its `data/` directory, its `data/main_data.hdf5`, or a
            datasets root that holds exactly one dataset.

    Raises:
        DatasetError: If no dataset, or several datasets, are found.
    """
    candidates = [path.parent] if path.is_file() else [path, path / "data"]
    found = [c for c in candidates if _is_data_dir(c)]
    if not found and path.is_dir():
        found = [m.parent for m in sorted(path.glob(f"**/data/{METADATA_FILE}"))]
        found = [c for c in found if _is_data_dir(c)]
    if len(found) > 1:
        names = ", ".join(str(c.parent) for c in found[:3])
        raise DatasetError(f"{path} holds {len(found)} Minari datasets ({names}, ...); pass one")
    if not found:
        raise DatasetError(
            f"{path} is not a Minari dataset (no data/{MAIN_FILE} with data/{METADATA_FILE}); "
            "pass <root>/<dataset_id>, its data/ directory or data/main_data.hdf5"
        )
    return found[0]


def _check_space(meta: dict[str, Any], key: str, data_dir: Path) -> None:
    """Raises DatasetError unless the serialised space (if present) is a 1-D Box."""
    raw = meta.get(key)
    space = metadata_from_json(raw, str(data_dir)) if isinstance(raw, str) else {}
    if space and (space.get("type") != "Box" or len(space.get("shape", [])) != 1):
        raise DatasetError(
            f"Minari dataset {data_dir} has a {space.get('type')} {key} of shape "
            f"{space.get('shape')}; scalerl supports only flat (1-D) Box spaces, flatten it first"
        )


def _read_metadata(data_dir: Path) -> dict[str, Any]:
    """Reads and checks `metadata.json` (HDF5 backend, flat Box spaces)."""
    meta = metadata_from_json((data_dir / METADATA_FILE).read_text(), str(data_dir))
    if meta.get("data_format", "hdf5") != "hdf5":
        raise DatasetError(
            f"Minari dataset {data_dir} uses the {meta['data_format']!r} backend; scalerl reads "
            "only 'hdf5' (re-create it with data_format='hdf5')"
        )
    _check_space(meta, "observation_space", data_dir)
    _check_space(meta, "action_space", data_dir)
    return meta


def _array(group: h5py.Group, key: str, data_dir: Path) -> np.ndarray:
    """Reads one episode array; dict/tuple spaces (stored as groups) raise DatasetError."""
    if key not in group:
        raise DatasetError(f"Minari dataset {data_dir} {group.name} has no '{key}'; re-create it")
    node = group[key]
    if not isinstance(node, h5py.Dataset):
        raise DatasetError(
            f"Minari dataset {data_dir} has dict/tuple {key}; scalerl supports only flat Box "
            "spaces (flatten the observations first)"
        )
    return np.asarray(node[()])


def _read_episode(group: h5py.Group, data_dir: Path) -> dict[str, np.ndarray]:
    """One episode as `Dataset` field arrays (next_observations = observations[1:])."""
    obs = _array(group, "observations", data_dir)
    rewards = _array(group, "rewards", data_dir)
    if obs.ndim != 2 or obs.shape[0] != rewards.shape[0] + 1:
        raise DatasetError(
            f"Minari dataset {data_dir} {group.name} has observations of shape {obs.shape} "
            f"for {rewards.shape[0]} steps (expected (T+1, d_o)); re-create it"
        )
    return {
        "observations": obs[:-1],
        "actions": _array(group, "actions", data_dir),
        "rewards": rewards,
        "terminals": _array(group, "terminations", data_dir),
        "timeouts": _array(group, "truncations", data_dir),
        "next_observations": obs[1:],
    }


def _read_episodes(data_dir: Path) -> dict[str, np.ndarray]:
    """Reads and concatenates every `episode_<k>` group, in order of k."""
    with open_hdf5(data_dir / MAIN_FILE) as f:
        names = sorted((k for k in f if _EPISODE_RE.match(k)), key=lambda k: int(k[8:]))
        if not names:
            raise DatasetError(f"Minari dataset {data_dir} has no episodes; it is empty")
        episodes = [_read_episode(f[k], data_dir) for k in names]
    return {k: np.concatenate([e[k] for e in episodes]) for k in episodes[0]}


def _dataset_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """scalerl metadata: `scalerl_metadata` if present, else ids and reference scores."""
    if isinstance(meta.get("scalerl_metadata"), dict):
        return dict(meta["scalerl_metadata"])
    out: dict[str, Any] = {"source": "minari", "dataset_id": meta.get("dataset_id")}
    spec = meta.get("env_spec")
    if isinstance(spec, str):
        out["env_id"] = json.loads(spec).get("id")
    for key in ("ref_min_score", "ref_max_score"):
        if meta.get(key) is not None:
            out[key] = float(meta[key])
    return {k: v for k, v in out.items() if v is not None}


def load_minari(path: str | os.PathLike) -> Dataset:
    """Reads a Minari HDF5 dataset (written by `save_minari` or by `minari` itself).

    Args:
        path: The dataset directory `<root>/<dataset_id>`, its `data/` directory, or
            `data/main_data.hdf5`.

    Returns:
        The episodes concatenated in order, with next_observations = each episode's
        observations[1:], terminals/timeouts = terminations/truncations. Metadata is the saved
        `scalerl_metadata`, else `source`, `dataset_id`, `env_id` (from `env_spec`) and
        `ref_min_score`/`ref_max_score` when present.

    Raises:
        DatasetError: If the path is not a Minari dataset, uses another backend or non-flat
            spaces, or holds malformed episodes.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset {path} not found; check the path")
    data_dir = resolve_data_dir(path)
    meta = _read_metadata(data_dir)
    ds = Dataset(**_read_episodes(data_dir), metadata=_dataset_metadata(meta))
    return check_structure(ds, str(data_dir))
