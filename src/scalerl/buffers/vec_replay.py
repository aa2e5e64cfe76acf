"""On-device replay for N parallel environments, with n-step chains that stay in one episode.

Rows are time steps and columns are environments: a write stores one vector step (N
transitions) in row `ptr`. A sample draws (row, environment) pairs uniformly and follows the
environment's column for up to n rows, stopping after the first row that ended an episode, so
an n-step chain never crosses an episode end: a termination does not bootstrap, a truncation
bootstraps from its final observation. Fields keep their dtypes (uint8 Atari frames stay uint8)
and any shape. Everything is pure and static-shaped, so the buffer lives inside a jitted,
`vmap`-ped training loop.
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

    @property
    def rows(self) -> int:
        """Vector steps the buffer holds (static)."""
        return self.data.reward.shape[-2]


def vec_replay_init(rows: int, example: Step) -> VecReplay:
    """An empty buffer of `rows` vector steps shaped and typed like `example` (leaves (N, ...))."""
    if rows < 1:
        raise ConfigError(f"replay buffer needs at least one row, got {rows}; raise its capacity")
    data = jax.tree_util.tree_map(lambda x: jnp.zeros((rows, *x.shape), x.dtype), example)
    return VecReplay(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def vec_replay_add(buf: VecReplay, step: Step) -> VecReplay:
    """Write one vector step at `ptr` (overwriting the oldest once full)."""

    def write(arr: jax.Array, x: jax.Array) -> jax.Array:
        return jax.lax.dynamic_update_index_in_dim(arr, x.astype(arr.dtype), buf.ptr, 0)

    data = jax.tree_util.tree_map(write, buf.data, step)
    ptr = ((buf.ptr + 1) % buf.rows).astype(jnp.int32)
    return VecReplay(data, ptr, jnp.minimum(buf.size + 1, buf.rows).astype(jnp.int32))


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
    successors (gate with `buf.size >= n_step`)."""
    check_n_step(buf, n_step)
    row_key, env_key = jax.random.split(key)
    oldest = (buf.ptr - buf.size) % buf.rows
    starts = jnp.maximum(buf.size - n_step + 1, 1)
    row = (oldest + jax.random.randint(row_key, (batch_size,), 0, starts)) % buf.rows
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
    return NStepBatch(
        obs=d.obs[row, env],
        action=d.action[row, env],
        reward=ret,
        next_obs=d.next_obs[last_row, env],
        terminated=d.terminated[last_row, env].astype(jnp.float32),
        discount=discount,
    )


def start_mask(buf: VecReplay, n_step: int) -> jax.Array:
    """Bool (rows,): rows that can start an n-step chain (n - 1 written successors)."""
    oldest = (buf.ptr - buf.size) % buf.rows
    offset = (jnp.arange(buf.rows) - oldest) % buf.rows
    return offset < buf.size - n_step + 1


def vec_replay_sample_many(
    buf: VecReplay, key: jax.Array, num: int, batch_size: int, n_step: int, gamma: float
) -> Any:
    """`num` independent batches, leaves (num, B, ...), for a scan over updates."""
    flat = vec_replay_sample(buf, key, num * batch_size, n_step, gamma)
    return jax.tree_util.tree_map(lambda x: x.reshape((num, batch_size, *x.shape[1:])), flat)
