"""On-device replay for N parallel environments, with n-step chains that stay in one episode.

Rows are time steps and columns are environments: a write stores one vector step (N
transitions) in row `ptr`. A sample draws (row, environment) pairs uniformly and follows the
environment's column for up to n rows, stopping after the first row that ended an episode, so
an n-step chain never crosses an episode end: a termination does not bootstrap, a truncation
bootstraps from its final observation. Fields keep their dtypes (uint8 Atari frames stay uint8)
and any shape. Everything is pure and static-shaped, so the buffer lives inside a jitted,
`vmap`-ped training loop.

Frame deduplication (`stack` K > 0, for stacks of K frames on a trailing axis such as Atari's
84x84x4): a row keeps only the newest frame of `obs` and of `next_obs`, 2 frames instead of 2K,
and a sample rebuilds the stacks from the frames of the rows before it. Rows after an episode end
start a new stack, padded with copies of the episode's first frame (how `scalerl.envs.ale`
stacks at a reset), so the rebuilt stacks equal the stored ones exactly. A row is sampled only
with K - 1 written predecessors.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from scalerl.errors import ConfigError


@flax.struct.dataclass
class Step:
    """N transitions of one vector step (leading axis N), or the buffer's (rows, N, ...) arrays.

    `next_obs` is the observation the action reached before any automatic reset (the final
    observation of an episode that ended).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array


@flax.struct.dataclass
class NStepBatch:
    """n-step transitions (B, ...): reward = sum_{k<m} gamma^k r_k, discount = gamma^m, and
    `next_obs` / `terminated` of the chain's last step (m <= n steps)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    discount: jax.Array
    weight: jax.Array | None = None
    """Importance-sampling weights of prioritised replay (None: uniform sampling)."""


@flax.struct.dataclass
class VecReplay:
    """Ring buffer of `rows` vector steps: data leaves (rows, N, ...), next row, valid rows."""

    data: Step
    ptr: jax.Array
    size: jax.Array
    stack: int = flax.struct.field(pytree_node=False, default=0)
    """Frames per stacked observation kept deduplicated (0: observations stored whole)."""

    @property
    def rows(self) -> int:
        """Vector steps the buffer holds (static)."""
        return self.data.reward.shape[-2]


def vec_replay_init(rows: int, example: Step, stack: int = 0) -> VecReplay:
    """An empty buffer of `rows` vector steps shaped and typed like `example` (leaves (N, ...));
    with `stack` K > 0 observations (N, ..., K) are kept as their newest frame only."""
    if rows < 1:
        raise ConfigError(f"replay buffer needs at least one row, got {rows}; raise its capacity")
    if stack and example.obs.shape[-1] != stack:
        raise ConfigError(f"frame deduplication needs {stack} stacked frames on the last axis of "
                          f"the observations, got shape {example.obs.shape[1:]}")  # fmt: skip
    example = _newest_frames(example, stack)
    data = jax.tree_util.tree_map(lambda x: jnp.zeros((rows, *x.shape), x.dtype), example)
    return VecReplay(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), stack)


def replay_nbytes(rows: int, example: Step, stack: int = 0) -> int:
    """Bytes `vec_replay_init(rows, example, stack)` allocates."""
    leaves = jax.tree_util.tree_leaves(_newest_frames(example, stack))
    return rows * sum(x.size * x.dtype.itemsize for x in leaves)


def _newest_frames(step: Step, stack: int) -> Step:
    """`step` with observations cut to their newest frame when deduplicating."""
    if not stack:
        return step
    return step.replace(obs=step.obs[..., -1], next_obs=step.next_obs[..., -1])


def vec_replay_add(buf: VecReplay, step: Step) -> VecReplay:
    """Write one vector step at `ptr` (overwriting the oldest once full)."""
    step = _newest_frames(step, buf.stack)

    def write(arr: jax.Array, x: jax.Array) -> jax.Array:
        return jax.lax.dynamic_update_index_in_dim(arr, x.astype(arr.dtype), buf.ptr, 0)

    data = jax.tree_util.tree_map(write, buf.data, step)
    ptr = ((buf.ptr + 1) % buf.rows).astype(jnp.int32)
    size = jnp.minimum(buf.size + 1, buf.rows).astype(jnp.int32)
    return VecReplay(data, ptr, size, buf.stack)


def nstep_chain(
    reward: jax.Array, terminated: jax.Array, truncated: jax.Array, gamma: float
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Cut windows (B, n) at their first episode end (that step included).

    Returns:
        (sum_{k<m} gamma^k r_k, gamma^m, index m - 1 of the last included step), each (B,).
    """
    n = reward.shape[-1]
    done = jnp.logical_or(terminated > 0, truncated > 0).astype(jnp.float32)
    alive = jnp.cumprod(1.0 - done, axis=-1)
    included = jnp.concatenate([jnp.ones_like(alive[:, :1]), alive[:, :-1]], axis=-1)
    powers = jnp.asarray(gamma, jnp.float32) ** jnp.arange(n, dtype=jnp.float32)
    ret = jnp.sum(included * powers * reward, axis=-1)
    m = jnp.sum(included, axis=-1)
    return ret, jnp.asarray(gamma, jnp.float32) ** m, m.astype(jnp.int32) - 1


def check_n_step(buf: VecReplay, n_step: int) -> None:
    """Raise ConfigError unless 1 <= n_step <= rows (both static)."""
    if not 1 <= n_step <= buf.rows:
        raise ConfigError(f"n_step must be in [1, {buf.rows}] (buffer rows), got {n_step}")


def vec_replay_sample(
    buf: VecReplay, key: jax.Array, batch_size: int, n_step: int = 1, gamma: float = 0.99
) -> NStepBatch:
    """B n-step transitions, uniform over (row, environment) among rows with n - 1 written
    successors (and K - 1 written predecessors when deduplicating frames; gate with
    `buf.size >= n_step + max(K - 1, 0)`)."""
    check_n_step(buf, n_step)
    row_key, env_key = jax.random.split(key)
    lead = max(buf.stack - 1, 0)
    first = buf.ptr - buf.size + lead
    starts = jnp.maximum(buf.size - n_step + 1 - lead, 1)
    row = (first + jax.random.randint(row_key, (batch_size,), 0, starts)) % buf.rows
    env = jax.random.randint(env_key, (batch_size,), 0, buf.data.reward.shape[-1])
    return vec_replay_gather(buf, row, env, n_step, gamma)


def vec_replay_gather(
    buf: VecReplay, row: jax.Array, env: jax.Array, n_step: int, gamma: float
) -> NStepBatch:
    """The n-step transitions starting at rows `row` (B,) of environments `env` (B,)."""
    window = (row[:, None] + jnp.arange(n_step)) % buf.rows
    d = buf.data
    ret, discount, last = nstep_chain(
        d.reward[window, env[:, None]],
        d.terminated[window, env[:, None]],
        d.truncated[window, env[:, None]],
        gamma,
    )
    last_row = jnp.take_along_axis(window, last[:, None], axis=1)[:, 0]
    if buf.stack:
        obs, next_obs = stacked_obs(buf, row, env, False), stacked_obs(buf, last_row, env, True)
    else:
        obs, next_obs = d.obs[row, env], d.next_obs[last_row, env]
    return NStepBatch(
        obs=obs,
        action=d.action[row, env],
        reward=ret,
        next_obs=next_obs,
        terminated=d.terminated[last_row, env].astype(jnp.float32),
        discount=discount,
    )


def stacked_obs(buf: VecReplay, row: jax.Array, env: jax.Array, final: bool) -> jax.Array:
    """Rebuilt stacks (B, ..., K) of a frame-deduplicating buffer: the observation of rows `row`
    or, with `final`, the observation their actions reached (`next_obs`).

    The K frames are the newest `obs` frames of rows row - K + 1 .. row (final: row - K + 2 ..
    row, then the row's `next_obs` frame). Frames from before the last episode start in that
    window are replaced by the start's frame.
    """
    k, d = buf.stack, buf.data
    span = k - 1 if final else k
    rows = (row[:, None] + jnp.arange(1 - span, 1)) % buf.rows
    frames = d.obs[rows, env[:, None]]
    if final:
        frames = jnp.concatenate([frames, d.next_obs[row, env][:, None]], axis=1)
    ended = jnp.logical_or(d.terminated[rows, env[:, None]], d.truncated[rows, env[:, None]])
    if final:  # the last row's own end is the episode the final frame belongs to
        ended = ended.at[:, -1].set(False)
    marks = jnp.concatenate([jnp.zeros_like(ended[:, :1]), ended[:, : k - 1]], axis=1)
    start = jnp.max(jnp.where(marks, jnp.arange(k), 0), axis=1)
    pick = jnp.maximum(jnp.arange(k), start[:, None])
    pick = pick.reshape(pick.shape + (1,) * (frames.ndim - 2))
    return jnp.moveaxis(jnp.take_along_axis(frames, pick, axis=1), 1, -1)


def start_mask(buf: VecReplay, n_step: int) -> jax.Array:
    """Bool (rows,): rows that can start an n-step chain (n - 1 written successors, and K - 1
    written predecessors when deduplicating frames)."""
    oldest = (buf.ptr - buf.size) % buf.rows
    offset = (jnp.arange(buf.rows) - oldest) % buf.rows
    lead = max(buf.stack - 1, 0)
    return jnp.logical_and(offset >= lead, offset < buf.size - n_step + 1)


def vec_replay_sample_many(
    buf: VecReplay, key: jax.Array, num: int, batch_size: int, n_step: int, gamma: float
) -> Any:
    """`num` independent batches, leaves (num, B, ...), for a scan over updates."""
    flat = vec_replay_sample(buf, key, num * batch_size, n_step, gamma)
    return jax.tree_util.tree_map(lambda x: x.reshape((num, batch_size, *x.shape[1:])), flat)
