"""The in-memory offline-RL dataset: flat, D4RL-style arrays plus JSON metadata.

A `Dataset` holds N consecutive environment steps of one or more episodes, in collection order.
Episodes end after rows whose `terminals` or `timeouts` flag is set. `to_transitions` turns it into
the row dict that `scalerl.buffers.replay_from_numpy` preloads; `dataset_from_transitions` is the
inverse for rows that carry their next observation (e.g. `replay_to_numpy` output).

See docs/datasets.md for the file formats and the timeout rule.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalerl.buffers.replay import ARRAY_KEYS
from scalerl.errors import DatasetError

#: Tolerance on the [-1, 1] action bound (float32 rounding of rescaled actions).
ACTION_TOLERANCE = 1e-6
_FLOAT_FIELDS = ("observations", "actions", "rewards", "next_observations")
_BOOL_FIELDS = ("terminals", "timeouts")
_RANKS = {"observations": 2, "actions": 2, "rewards": 1, "terminals": 1, "timeouts": 1}


@dataclass(frozen=True, eq=False)
class Dataset:
    """N environment steps, in collection order, as flat arrays.

    Arrays are converted on construction: float fields to float32, flags to bool (non-zero is
    True); a non-numeric array raises `DatasetError`. Shapes are checked by `validate_dataset`
    (loaders check them too), not here. Equality is identity (compare arrays explicitly).

    Attributes:
        observations: Observation at each step, shape (N, d_o), float32.
        actions: Action taken, shape (N, d_a), float32, in [-1, 1] (scalerl's action convention).
        rewards: Raw reward, shape (N,), float32.
        terminals: True if the episode terminated at this step (no bootstrap), shape (N,).
        timeouts: True if the episode was truncated (time limit) at this step, shape (N,).
        next_observations: True next observation of each step (the final observation at an
            episode end), shape (N, d_o), float32; None if unknown (most D4RL files).
        metadata: JSON-able dict; optional keys include `env_id`, `ref_min_score`,
            `ref_max_score`, `source`, `action_repeat`, `dataset_id`.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    next_observations: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Casts the arrays to their documented dtypes (no copy when they already match)."""
        for name in _FLOAT_FIELDS + _BOOL_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            dtype = np.float32 if name in _FLOAT_FIELDS else np.bool_
            try:
                object.__setattr__(self, name, np.asarray(value).astype(dtype, copy=False))
            except (TypeError, ValueError) as err:
                raise DatasetError(f"dataset '{name}' is not numeric ({err})") from None
        object.__setattr__(self, "metadata", dict(self.metadata or {}))

    def __repr__(self) -> str:
        """A one-line summary (array shapes and metadata, not the values)."""
        arrays = {k: getattr(self, k) for k in (*_RANKS, "next_observations")}
        shapes = ", ".join(f"{k}={None if v is None else v.shape}" for k, v in arrays.items())
        return f"Dataset({shapes}, metadata={self.metadata!r})"

    def __len__(self) -> int:
        """Number of steps N."""
        return int(self.rewards.shape[0])

    @property
    def obs_dim(self) -> int:
        """Observation dimension d_o."""
        return int(self.observations.shape[1])

    @property
    def action_dim(self) -> int:
        """Action dimension d_a."""
        return int(self.actions.shape[1])

    def episode_ends(self) -> np.ndarray:
        """Indices of the rows that end an episode (terminal or timeout), ascending."""
        return np.flatnonzero(self.terminals | self.timeouts)

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of every complete episode, in order.

        Episodes are split after rows with `terminals | timeouts`. A trailing incomplete episode
        is excluded, unless there is no complete episode at all: then the return of the single
        partial episode (the sum of all rewards) is returned.

        Returns:
            float64 array with one entry per complete episode (or one partial entry).
        """
        ends = self.episode_ends()
        cumsum = np.cumsum(self.rewards, dtype=np.float64)
        if ends.size == 0:
            return cumsum[-1:] if len(self) else np.zeros(1)
        before = np.concatenate([[0.0], cumsum[ends[:-1]]])
        return cumsum[ends] - before

    def to_transitions(self) -> dict[str, np.ndarray]:
        """The rows for `replay_from_numpy` (keys `ARRAY_KEYS`, float32, collection order).

        With `next_observations`, every step is one transition (terminated = terminals,
        truncated = timeouts). Without them, the SimbaV2 offline rule applies: for
        i in 0..N-2, row i is skipped if `timeouts[i]` (its next observation is unknown: row i+1
        starts a new episode); if `terminals[i]`, next_obs is zeros (never bootstrapped);
        otherwise next_obs = observations[i+1]; truncated is 0; the last row is dropped.

        Returns:
            Dict of float32 arrays: obs, action, reward, terminated, truncated, next_obs.
        """
        if self.next_observations is not None:
            return _rows(self, np.arange(len(self)), self.next_observations, self.timeouts)
        idx = np.flatnonzero(~self.timeouts[:-1])
        nxt = np.where(self.terminals[idx, None], 0.0, self.observations[idx + 1])
        return _rows(self, idx, nxt, np.zeros(idx.size, bool))


def _rows(ds: Dataset, idx: np.ndarray, next_obs: np.ndarray, trunc: np.ndarray) -> dict:
    """Builds the float32 transition dict of rows `idx` with the given next_obs/truncated."""
    rows = {
        "obs": ds.observations[idx],
        "action": ds.actions[idx],
        "reward": ds.rewards[idx],
        "terminated": ds.terminals[idx],
        "truncated": trunc,
        "next_obs": next_obs,
    }
    return {k: np.asarray(rows[k], np.float32) for k in ARRAY_KEYS}


def dataset_from_transitions(rows: dict[str, np.ndarray], metadata: dict[str, Any]) -> Dataset:
    """Builds a Dataset from transition rows that carry next_obs (inverse of `to_transitions`).

    Args:
        rows: Dict with keys `ARRAY_KEYS` (e.g. `replay_to_numpy` output), in collection order.
        metadata: JSON-able metadata for the dataset (copied).

    Returns:
        A Dataset with terminals = terminated > 0, timeouts = truncated > 0 and
        next_observations = next_obs.

    Raises:
        DatasetError: If a key is missing.
    """
    missing = [k for k in ARRAY_KEYS if k not in rows]
    if missing:
        raise DatasetError(f"transition rows are missing keys {missing} (expected {ARRAY_KEYS})")
    return Dataset(
        observations=rows["obs"],
        actions=rows["action"],
        rewards=rows["reward"],
        terminals=np.asarray(rows["terminated"]) > 0,
        timeouts=np.asarray(rows["truncated"]) > 0,
        next_observations=rows["next_obs"],
        metadata=dict(metadata),
    )


def check_structure(ds: Dataset, name: str = "dataset") -> Dataset:
    """Checks that every array is present, has the right rank and length, and N > 0.

    Args:
        ds: The dataset.
        name: How to call the dataset in error messages (e.g. its file name).

    Returns:
        `ds`, unchanged.

    Raises:
        DatasetError: Naming the missing array, the bad shape, or the lengths of all arrays.
    """
    for key, rank in _RANKS.items():
        value = getattr(ds, key)
        if value is None:
            raise DatasetError(f"{name} has no '{key}' array; every dataset needs {list(_RANKS)}")
        if value.ndim != rank:
            raise DatasetError(f"{name} '{key}' must be {rank}-D, got shape {value.shape}")
    _check_lengths(ds, name)
    return ds


def _check_lengths(ds: Dataset, name: str) -> None:
    """Checks equal lengths, a next_observations shape equal to observations, and N > 0."""
    arrays = {k: getattr(ds, k) for k in (*_RANKS, "next_observations")}
    lengths = {k: v.shape[0] for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) != 1:
        raise DatasetError(f"{name} arrays have different lengths {lengths}; they must all match")
    nxt = ds.next_observations
    if nxt is not None and nxt.shape != ds.observations.shape:
        raise DatasetError(
            f"{name} 'next_observations' shape {nxt.shape} differs from 'observations' "
            f"{ds.observations.shape}; drop next_observations or fix them"
        )
    if len(ds) == 0:
        raise DatasetError(f"{name} is empty (0 steps); collect or export some data first")


def _check_finite(ds: Dataset, name: str) -> None:
    """Raises DatasetError naming the first float array with NaN/inf and its first bad row."""
    for key in _FLOAT_FIELDS:
        value = getattr(ds, key)
        if value is None:
            continue
        bad = ~np.isfinite(value).all(axis=tuple(range(1, value.ndim)))
        if bad.any():
            row = int(np.argmax(bad))
            raise DatasetError(
                f"{name} '{key}' has NaN or inf values (first at row {row}); clean the dataset"
            )


def _check_dims(ds: Dataset, obs_dim: int | None, action_dim: int | None, name: str) -> None:
    """Raises DatasetError if the obs/action dims differ from the environment's."""
    env_hint = ds.metadata.get("env_id")
    hint = f" (the dataset's metadata says env_id={env_hint!r})" if env_hint else ""
    for what, expected, found in (
        ("observation", obs_dim, ds.obs_dim),
        ("action", action_dim, ds.action_dim),
    ):
        if expected is not None and expected != found:
            raise DatasetError(
                f"{name} has {what} dim {found} but the environment expects {expected}; "
                f"pass the --env the dataset was collected on{hint}"
            )


def _check_action_range(ds: Dataset, name: str) -> None:
    """Raises DatasetError if any action is outside [-1, 1] (+ tolerance)."""
    bad = (np.abs(ds.actions) > 1.0 + ACTION_TOLERANCE).any(axis=1)
    if bad.any():
        low, high = float(ds.actions.min()), float(ds.actions.max())
        raise DatasetError(
            f"{name} has actions outside [-1, 1] (first at row {int(np.argmax(bad))}, range "
            f"[{low:.4g}, {high:.4g}]); scalerl's envs rescale actions to [-1, 1], so rescale "
            "the dataset's actions with a' = 2(a - low)/(high - low) - 1 using the env's bounds"
        )


def validate_dataset(
    ds: Dataset, obs_dim: int | None = None, action_dim: int | None = None, name: str = "dataset"
) -> Dataset:
    """Checks that a dataset is well formed and fits an environment.

    Checks, in order: every array present with the right rank; equal lengths; N > 0; finite
    values; observation/action dims (if given); actions within [-1, 1] (+1e-6).

    Args:
        ds: The dataset.
        obs_dim: The environment's observation dimension, or None to skip the check.
        action_dim: The environment's action dimension, or None to skip the check.
        name: How to call the dataset in error messages (e.g. its path).

    Returns:
        `ds`, unchanged.

    Raises:
        DatasetError: With a one-line message naming the problem and the fix.
    """
    check_structure(ds, name)
    _check_finite(ds, name)
    _check_dims(ds, obs_dim, action_dim, name)
    _check_action_range(ds, name)
    return ds


def _json_default(value: Any) -> Any:
    """Converts numpy scalars/arrays for `json.dumps`; raises TypeError for anything else."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def metadata_to_json(metadata: dict[str, Any], name: str = "dataset") -> str:
    """Serialises metadata to a JSON string (numpy scalars and arrays become Python values).

    Raises:
        DatasetError: If a value is not JSON-serialisable.
    """
    try:
        return json.dumps(metadata, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise DatasetError(
            f"{name} metadata is not JSON-serialisable ({err}); use str/int/float/list/dict values"
        ) from None


def metadata_from_json(text: str, name: str = "dataset") -> dict[str, Any]:
    """Parses a metadata JSON string into a dict.

    Raises:
        DatasetError: If the text is not a JSON object.
    """
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{name} has unreadable metadata JSON ({err}); re-export it") from None
    if not isinstance(value, dict):
        raise DatasetError(f"{name} metadata is not a JSON object; re-export the dataset")
    return value


def write_atomically(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Calls `write(tmp)` on a temporary file next to `path`, then moves it into place.

    A crash never leaves a half-written file at `path`. Parent directories are created.

    Args:
        path: Destination file.
        write: Writes the whole file at the given temporary path.

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
