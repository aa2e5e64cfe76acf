"""On-device, pure-functional uniform replay buffer with n-step returns.

The buffer state is a JAX pytree (`ReplayState`) that lives on the accelerator. Every operation is a
pure function with static shapes, so the buffer can be written to and sampled from *inside* a jitted
training step and `jax.vmap`-ed over seeds (one buffer per seed, leading axis).

Writes are single-row `dynamic_update_slice`s (O(1)); jit the caller with the buffer argument
donated (`jax.jit(step, donate_argnums=...)`) so XLA updates the preallocated arrays in place
instead of copying the whole buffer on every step.

See docs/replay_buffer.md for the n-step semantics and the deviation from the official SimbaV2 code.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from scalerl.errors import CheckpointError, ConfigError, ScalerlError

#: Keys of the dicts produced by `replay_to_numpy` and accepted by `replay_from_numpy`.
ARRAY_KEYS: tuple[str, ...] = ("obs", "action", "reward", "terminated", "truncated", "next_obs")
_ROW_NDIM = {"obs": 2, "action": 2, "reward": 1, "terminated": 1, "truncated": 1, "next_obs": 2}


@flax.struct.dataclass
class Transition:
    """One environment transition with raw (un-normalised) values.

    Attributes:
        obs: Observation, shape (d_o,), float32.
        action: Action taken, shape (d_a,), float32.
        reward: Raw reward (summed over action repeats), shape (), float32.
        terminated: 1.0 if the episode terminated at this step (no bootstrap), else 0.0.
        truncated: 1.0 if the episode was truncated at this step (time limit), else 0.0.
        next_obs: The true next observation (the final observation at an episode end, not the reset
            observation), shape (d_o,), float32.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array


@flax.struct.dataclass
class ReplayState:
    """State of a ring replay buffer.

    Attributes:
        data: A `Transition` whose fields have a leading capacity axis, preallocated with zeros.
        ptr: int32 scalar, the next row to write.
        size: int32 scalar, the number of valid rows (at most the capacity).
    """

    data: Transition
    ptr: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        """Number of rows the buffer can hold (static; the last axis before the row shape)."""
        return self.data.reward.shape[-1]


@flax.struct.dataclass
class Batch:
    """A batch of (possibly n-step) transitions as consumed by the agent.

    Attributes:
        obs: Start observations, shape (B, d_o).
        action: Start actions, shape (B, d_a).
        reward: Discounted raw reward sum over the chain, `sum_{k<m} gamma**k r_k`, shape (B,).
        next_obs: Next observation of the last row of the chain, shape (B, d_o).
        terminated: 1.0 if the chain ended in a termination (do not bootstrap), shape (B,).
        discount: `gamma**m` with m the number of rows in the chain (m <= n_step), shape (B,).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    discount: jax.Array


def _is_shape(x: Any) -> bool:
    """Returns whether `x` is a shape tuple (a leaf when building zero arrays from shapes)."""
    return isinstance(x, tuple)


def replay_init(capacity: int, obs_dim: int, act_dim: int) -> ReplayState:
    """Allocates an empty buffer.

    Memory use is `capacity * (2 * obs_dim + act_dim + 3) * 4` bytes.

    Args:
        capacity: Maximum number of stored transitions.
        obs_dim: Observation dimension d_o.
        act_dim: Action dimension d_a.

    Returns:
        A `ReplayState` with zero-filled float32 arrays and `ptr = size = 0`.

    Raises:
        ConfigError: If `capacity < 1` or a dimension is negative.
    """
    if capacity < 1 or obs_dim < 0 or act_dim < 0:
        raise ConfigError(
            f"replay buffer needs capacity >= 1 and non-negative dims, got capacity={capacity}, "
            f"obs_dim={obs_dim}, act_dim={act_dim}"
        )
    obs, act, flag = (capacity, obs_dim), (capacity, act_dim), (capacity,)
    shapes = Transition(
        obs=obs, action=act, reward=flag, terminated=flag, truncated=flag, next_obs=obs
    )
    data = jax.tree.map(lambda s: jnp.zeros(s, jnp.float32), shapes, is_leaf=_is_shape)
    return ReplayState(data=data, ptr=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def replay_add(state: ReplayState, t: Transition) -> ReplayState:
    """Writes one transition at `ptr`, overwriting the oldest row once the buffer is full.

    O(1): one `dynamic_update_slice` per field. Jit the caller with the state donated to make the
    write in place.

    Args:
        state: The buffer.
        t: One transition (unbatched field shapes, see `Transition`).

    Returns:
        The updated buffer.
    """
    capacity = state.capacity

    def write(buf: jax.Array, x: jax.Array) -> jax.Array:
        return jax.lax.dynamic_update_index_in_dim(buf, jnp.asarray(x, buf.dtype), state.ptr, 0)

    data = jax.tree.map(write, state.data, t)
    ptr = (state.ptr + 1) % capacity
    size = jnp.minimum(state.size + 1, capacity)
    return ReplayState(data=data, ptr=ptr.astype(jnp.int32), size=size.astype(jnp.int32))


def replay_add_batch(state: ReplayState, ts: Transition) -> ReplayState:
    """Writes several transitions in order (leading axis), e.g. to preload a dataset.

    Equivalent to calling `replay_add` on each row in turn. If more rows than the capacity are
    given, only the newest `capacity` rows survive, as they would with sequential writes.

    Args:
        state: The buffer.
        ts: Transitions stacked along a leading axis of (static) length K.

    Returns:
        The updated buffer.
    """
    capacity = state.capacity
    num = ts.reward.shape[0]
    skip = max(num - capacity, 0)  # rows that sequential writes would overwrite anyway
    kept = jax.tree.map(lambda x: x[skip:], ts)
    idx = (state.ptr + skip + jnp.arange(num - skip)) % capacity

    def write(buf: jax.Array, x: jax.Array) -> jax.Array:
        return buf.at[idx].set(jnp.asarray(x, buf.dtype), unique_indices=True)

    data = jax.tree.map(write, state.data, kept)
    ptr = (state.ptr + num) % capacity
    size = jnp.minimum(state.size + num, capacity)
    return ReplayState(data=data, ptr=ptr.astype(jnp.int32), size=size.astype(jnp.int32))


def can_sample(state: ReplayState, min_size: int) -> jax.Array:
    """Returns whether the buffer holds at least `min_size` transitions.

    Args:
        state: The buffer.
        min_size: Minimum number of stored rows (use at least `n_step` for n-step sampling).

    Returns:
        A boolean scalar array.
    """
    return state.size >= min_size


def _check_n_step(state: ReplayState, n_step: int, stride: int = 1) -> None:
    """Raises `ConfigError` unless a chain of n_step rows `stride` apart fits (all static)."""
    if n_step < 1 or stride * (n_step - 1) >= state.capacity:
        raise ConfigError(
            f"n_step must be >= 1 with (n_step - 1) x {stride} < capacity={state.capacity}, "
            f"got {n_step}; lower n_step"
        )
    if n_step > 1 and state.capacity % stride:
        raise ConfigError(
            f"n-step chains over {stride} interleaved environments need a capacity divisible by "
            f"{stride}, got {state.capacity}; change buffer_capacity"
        )


def _sample_start_rows(
    state: ReplayState, key: jax.Array, shape: tuple[int, ...], n_step: int, stride: int = 1
) -> jax.Array:
    """Draws start rows uniformly (with replacement) among rows with n-1 written successors.

    An offset j ~ U[0, size - stride (n - 1)) is counted from the oldest row, so the newest
    stride (n - 1) rows are never start rows. If `size < n_step` every draw returns the oldest
    row (gate with `can_sample`).

    Args:
        state: The buffer.
        key: PRNG key.
        shape: Output shape of the index array.
        n_step: Chain length n.
        stride: Rows between successive steps of one environment (`num_envs` when N
            environments write one row each per step).

    Returns:
        int32 row indices of the given shape.
    """
    oldest = (state.ptr - state.size) % state.capacity
    num_starts = jnp.maximum(state.size - stride * (n_step - 1), 1)
    offsets = jax.random.randint(key, shape, 0, num_starts, dtype=jnp.int32)
    return ((oldest + offsets) % state.capacity).astype(jnp.int32)


def _gather_nstep(
    state: ReplayState, idx: jax.Array, n_step: int, gamma: float, stride: int = 1
) -> Batch:
    """Builds n-step transitions starting at explicit row indices.

    The chain walks k = 0..n-1 from each start row and stops after the first row that is terminated
    or truncated (that row included). With m the number of included rows: reward is
    `sum_{k<m} gamma**k r_k`, next_obs and terminated come from the last included row, and
    discount is `gamma**m`. Only the (B, n) reward/flag windows are gathered; observations are
    gathered once per sample.

    Args:
        state: The buffer.
        idx: int32 start rows, shape (B,). Rows idx + k stride, k < n (mod capacity), must be
            valid.
        n_step: Chain length n (static).
        gamma: Discount factor.
        stride: Rows between successive steps of one environment (static).

    Returns:
        The batch of n-step transitions.
    """
    data = state.data
    window = (idx[:, None] + stride * jnp.arange(n_step)) % state.capacity  # (B, n)
    done = jnp.maximum(data.terminated[window], data.truncated[window]) > 0
    alive = jnp.cumprod(1.0 - done.astype(jnp.float32), axis=1)
    mask = jnp.concatenate([jnp.ones_like(alive[:, :1]), alive[:, :-1]], axis=1)  # row k included
    powers = jnp.asarray(gamma, jnp.float32) ** jnp.arange(n_step, dtype=jnp.float32)
    reward = jnp.sum(mask * powers * data.reward[window], axis=1)
    m = jnp.sum(mask, axis=1).astype(jnp.int32)
    last = jnp.take_along_axis(window, (m - 1)[:, None], axis=1)[:, 0]
    discount = jnp.asarray(gamma, jnp.float32) ** m.astype(jnp.float32)
    return Batch(
        obs=data.obs[idx],
        action=data.action[idx],
        reward=reward,
        next_obs=data.next_obs[last],
        terminated=data.terminated[last],
        discount=discount,
    )


def replay_sample(
    state: ReplayState,
    key: jax.Array,
    batch_size: int,
    n_step: int = 1,
    gamma: float = 0.99,
    stride: int = 1,
) -> Batch:
    """Samples a batch uniformly with replacement (jit with `batch_size`, `n_step` static).

    Args:
        state: The buffer; must hold at least `n_step` rows (see `can_sample`).
        key: PRNG key.
        batch_size: Number of transitions B.
        n_step: Return horizon n; the chain is cut at episode ends (see `_gather_nstep`).
        gamma: Discount factor.
        stride: Rows between successive steps of one environment (static; `num_envs`).

    Returns:
        A `Batch` with leading axis B.

    Raises:
        ConfigError: If the chain does not fit the capacity, or (n_step > 1) the capacity is not
            a multiple of `stride`.
    """
    _check_n_step(state, n_step, stride)
    idx = _sample_start_rows(state, key, (batch_size,), n_step, stride)
    return _gather_nstep(state, idx, n_step, gamma, stride)


def replay_sample_many(
    state: ReplayState,
    key: jax.Array,
    num_batches: int,
    batch_size: int,
    n_step: int = 1,
    gamma: float = 0.99,
    stride: int = 1,
) -> Batch:
    """Samples `num_batches` independent batches with one gather (for `lax.scan` over updates).

    Args:
        state: The buffer; must hold at least `n_step` rows (see `can_sample`).
        key: PRNG key.
        num_batches: Number of batches U (static).
        batch_size: Batch size B (static).
        n_step: Return horizon n (static).
        gamma: Discount factor.
        stride: Rows between successive steps of one environment (static; `num_envs`).

    Returns:
        A `Batch` whose fields have leading axes (U, B).

    Raises:
        ConfigError: If the chain does not fit the capacity, or (n_step > 1) the capacity is not
            a multiple of `stride`.
    """
    _check_n_step(state, n_step, stride)
    idx = _sample_start_rows(state, key, (num_batches * batch_size,), n_step, stride)
    flat = _gather_nstep(state, idx, n_step, gamma, stride)
    return jax.tree.map(lambda x: x.reshape((num_batches, batch_size) + x.shape[1:]), flat)


def replay_to_numpy(state: ReplayState) -> dict[str, np.ndarray]:
    """Copies the valid rows to host memory in chronological (oldest to newest) order.

    Args:
        state: A single (not vmapped) buffer.

    Returns:
        Dict with keys `ARRAY_KEYS` of float32 arrays with `size` rows.

    Raises:
        ScalerlError: If the state has a batch axis (split a vmapped state first).
    """
    if np.ndim(state.ptr) != 0:
        raise ScalerlError(
            "replay_to_numpy needs a single buffer; index the vmapped state first (e.g. state[i])"
        )
    ptr, size, capacity = int(state.ptr), int(state.size), state.capacity
    order = (ptr - size + np.arange(size)) % capacity
    fields = {k: np.asarray(getattr(state.data, k)) for k in ARRAY_KEYS}
    return {k: v[order] for k, v in fields.items()}


def _validated_arrays(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    """Checks keys, dtypes, ranks, lengths and feature dims; returns float32 copies.

    Raises:
        ScalerlError: With a one-line message naming the offending key.
    """
    out = {}
    for key in ARRAY_KEYS:
        if key not in arrays:
            raise ScalerlError(f"replay data is missing key '{key}' (expected keys {ARRAY_KEYS})")
        try:
            out[key] = np.asarray(arrays[key], dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise ScalerlError(f"replay data '{key}' is not numeric: {err}") from None
        if out[key].ndim != _ROW_NDIM[key]:
            raise ScalerlError(
                f"replay data '{key}' must be {_ROW_NDIM[key]}-D, got shape {out[key].shape}"
            )
    _check_consistent(out)
    return out


def _check_consistent(arrays: dict[str, np.ndarray]) -> None:
    """Checks that all arrays have the same length, obs matches next_obs, and values are finite."""
    lengths = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ScalerlError(f"replay data arrays have different lengths: {lengths}")
    if arrays["obs"].shape != arrays["next_obs"].shape:
        raise ScalerlError(
            f"replay data 'obs' {arrays['obs'].shape} and 'next_obs' "
            f"{arrays['next_obs'].shape} shapes differ"
        )
    for key, value in arrays.items():
        if not np.all(np.isfinite(value)):
            raise ScalerlError(f"replay data '{key}' contains NaN or inf values")


def replay_from_numpy(arrays: dict[str, Any], capacity: int) -> ReplayState:
    """Builds a buffer from chronologically ordered rows (inverse of `replay_to_numpy`).

    If there are more rows than `capacity`, only the newest `capacity` rows are kept (as sequential
    `replay_add` calls would). The result has `ptr = size % capacity`, rows in order from row 0.

    Args:
        arrays: Dict with keys `ARRAY_KEYS` (extra keys are ignored); obs/action/next_obs 2-D,
            reward/terminated/truncated 1-D, all of equal length.
        capacity: Capacity of the new buffer.

    Returns:
        The buffer, on the default device.

    Raises:
        ScalerlError: On a missing key, wrong rank, length mismatch or non-finite value.
    """
    valid = _validated_arrays(arrays)
    num = min(valid["reward"].shape[0], capacity)
    state = replay_init(capacity, valid["obs"].shape[1], valid["action"].shape[1])
    host = {k: np.zeros(getattr(state.data, k).shape, np.float32) for k in ARRAY_KEYS}
    for key, value in valid.items():
        host[key][:num] = value[value.shape[0] - num :]
    data = Transition(**{k: jnp.asarray(v) for k, v in host.items()})
    return ReplayState(
        data=data, ptr=jnp.asarray(num % capacity, jnp.int32), size=jnp.asarray(num, jnp.int32)
    )


def save_replay(path: str | os.PathLike, state: ReplayState) -> None:
    """Saves the valid rows to an uncompressed `.npz` file, atomically.

    The data is written to a temporary file in the destination directory and moved into place with
    `os.replace`, so a crash never leaves a half-written file at `path`.

    Args:
        path: Destination file (conventionally ending in `.npz`); parent directories are created.
        state: A single (not vmapped) buffer.
    """
    arrays = replay_to_numpy(state)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".replay-", suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_replay(path: str | os.PathLike, capacity: int) -> ReplayState:
    """Loads a buffer written by `save_replay`.

    Args:
        path: The `.npz` file.
        capacity: Capacity of the new buffer (may differ from the saved one).

    Returns:
        The buffer, rows in chronological order from row 0.

    Raises:
        CheckpointError: (a `ScalerlError`) if the file is missing, truncated, corrupt or has
            missing/malformed arrays; the message names the file and the problem.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"replay file {path} not found; check the path")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as err:
        raise CheckpointError(
            f"replay file {path} is corrupt or truncated ({type(err).__name__}: {err}); "
            "delete it or restore a backup"
        ) from None
    try:
        return replay_from_numpy(arrays, capacity)
    except ScalerlError as err:
        raise CheckpointError(f"replay file {path}: {err}") from None
