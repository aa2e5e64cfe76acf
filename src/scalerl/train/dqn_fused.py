"""Fully jitted DQN on gymnax environments: acting, replay writes and updates in one lax.scan.

One round = `train_every` vector steps of `num_envs` environments (ε-greedy, vmapped) written
to the on-device replay, then `utd` gradient steps on fresh n-step batches (`DQN.learn`). Rounds
before `learning_starts` only collect. `make_chunk_many` scans k rounds in one jitted call and
vmaps it over seeds (every random stream of a seed derives from its own key, so seed k of a
vmapped run equals the single run with seed k). Episode statistics come back as sums and
counts (`ppo_fused.summarize` turns them into a log point).
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from scalerl.agents.dqn import DQN, PRIORITY, DQNState
from scalerl.agents.epsilon import linear_epsilon
from scalerl.buffers.prioritized import (
    Priorities,
    priorities_init,
    priorities_update,
    priorities_write,
    prioritized_sample,
)
from scalerl.buffers.vec_replay import (
    Step,
    VecReplay,
    vec_replay_add,
    vec_replay_init,
    vec_replay_sample,
    vec_replay_sample_many,
)
from scalerl.config_dqn import buffer_rows
from scalerl.envs.jax_envs import JaxEnv
from scalerl.seed_axis import vmap_seeds
from scalerl.train.ppo_fused import EnvCarry, env_init, episode_tally, seed_keys

Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class LoopCarry:
    """Environment side of one seed: the N environments, the replay and its priorities
    (None with uniform sampling)."""

    env: EnvCarry
    buffer: VecReplay
    priorities: Priorities | None = None


def frame_shape(env: JaxEnv) -> tuple[int, ...]:
    """Unflattened observation shape of a gymnax env (MinAtar: (10, 10, channels))."""
    space = env.env.observation_space(env.params)
    return tuple(int(d) for d in space.shape) or (env.obs_dim,)


def storage_dtype(env: JaxEnv) -> jnp.dtype:
    """Replay dtype of observations: bool for MinAtar's binary channels (Young & Tian 2019
    §2; a quarter of float32's memory), float32 otherwise."""
    return jnp.bool_ if env.env_id.endswith("-MinAtar") else jnp.float32


def loop_init(agent: DQN, env: JaxEnv, key: jax.Array) -> LoopCarry:
    """N fresh episodes and an empty replay buffer."""
    n = agent.cfg.num_envs
    ec = env_init(env, key, n)
    obs = ec.obs.astype(storage_dtype(env))
    example = Step(
        obs, jnp.zeros((n,), jnp.int32), jnp.zeros((n,)), jnp.zeros((n,)), jnp.zeros((n,)), obs
    )
    rows = buffer_rows(agent.cfg)
    pr = priorities_init(rows, n) if agent.cfg.prioritized else None
    return LoopCarry(ec, vec_replay_init(rows, example), pr)


def collect(
    agent: DQN, env: JaxEnv, state: DQNState, carry: LoopCarry
) -> tuple[DQNState, LoopCarry, Metrics]:
    """`train_every` ε-greedy vector steps, each written to the replay."""

    def step(c: tuple[DQNState, LoopCarry], _: Any):
        st, lc = c
        rng, act_key = jax.random.split(st.rng)
        key, env_key = jax.random.split(lc.env.key)
        obs = lc.env.obs
        action = agent.act(st, obs, act_key)
        env_keys = jax.random.split(env_key, obs.shape[0])
        env_state, out = env.step_batch(env_keys, lc.env.env_state, action)
        ec = lc.env.replace(env_state=env_state, obs=out.obs, key=key)
        ec, stats = episode_tally(ec, out)
        f32 = jnp.float32
        step_data = Step(
            obs, action, out.reward, out.terminated.astype(f32), out.truncated.astype(f32),
            out.final_obs,
        )  # fmt: skip
        pr = lc.priorities
        pr = None if pr is None else priorities_write(pr, lc.buffer.ptr)
        buffer = vec_replay_add(lc.buffer, step_data)
        st = st.replace(rng=rng, env_steps=st.env_steps + obs.shape[0])
        return (st, LoopCarry(ec, buffer, pr)), stats

    (state, carry), stats = jax.lax.scan(step, (state, carry), None, length=agent.cfg.train_every)
    return state, carry, jax.tree_util.tree_map(jnp.sum, stats)


def sample_and_learn(
    agent: DQN, state: DQNState, buffer: VecReplay, pr: Priorities | None
) -> tuple[DQNState, Priorities | None, Metrics]:
    """`utd` batches from the replay (uniform, or prioritised with the annealed beta), the
    updates, and the sampled slots' new priorities."""
    c = agent.cfg
    rng, key = jax.random.split(state.rng)
    state = state.replace(rng=rng)
    if pr is None:
        batches = vec_replay_sample_many(buffer, key, c.utd, c.batch_size, c.n_step, c.gamma)
        state, info = agent.learn(state, batches)
        return state, None, info
    beta = linear_epsilon(state.env_steps, c.per_beta, 1.0, c.per_beta_steps)
    num = c.utd * c.batch_size
    flat, row, env = prioritized_sample(buffer, pr, key, num, c.n_step, c.gamma, c.per_alpha, beta)
    batches = jax.tree_util.tree_map(lambda x: x.reshape((c.utd, c.batch_size, *x.shape[1:])), flat)
    state, info = agent.learn(state, batches)
    pr = priorities_update(pr, row, env, info.pop(PRIORITY).reshape(-1), c.per_eps)
    return state, pr, info | {"train/per_beta": beta}


def one_round(
    agent: DQN, env: JaxEnv, state: DQNState, carry: LoopCarry, learn: bool, health: bool
) -> tuple[DQNState, LoopCarry, Metrics]:
    """Collect, then (when `learn`) `utd` updates; `health` adds the diagnostics of a replay
    batch, measured before the updates."""
    state, carry, stats = collect(agent, env, state, carry)
    metrics = {f"episodes/{k}": v for k, v in stats.items()}
    if not learn:
        return state, carry, metrics
    if health:
        rng, key = jax.random.split(state.rng)
        c = agent.cfg
        probe = vec_replay_sample(carry.buffer, key, c.batch_size, c.n_step, c.gamma)
        metrics |= agent.health(state.replace(rng=rng), probe)
        state = state.replace(rng=rng)
    state, pr, info = sample_and_learn(agent, state, carry.buffer, carry.priorities)
    return state, carry.replace(priorities=pr), metrics | info


def _chunk_fn(agent: DQN, env: JaxEnv, rounds: int, learn: bool, health: bool):
    """(state, carry) -> (state, carry, (metrics stacked over rounds, health of the last))."""
    health = health and learn

    def body(c, _):
        s, e, m = one_round(agent, env, *c, learn, False)
        return (s, e), m

    def chunk(state: DQNState, carry: LoopCarry):
        n = rounds - 1 if health else rounds
        (state, carry), metrics = jax.lax.scan(body, (state, carry), None, length=n)
        if not health:
            return state, carry, (metrics, {})
        state, carry, last = one_round(agent, env, state, carry, learn, True)
        diag = {k: v for k, v in last.items() if k.startswith("health/")}
        last = {k: v[None] for k, v in last.items() if k not in diag}
        metrics = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), metrics, last)
        return state, carry, (metrics, diag)

    return chunk


def make_chunk_many(agent: DQN, env: JaxEnv, rounds: int, learn: bool, health: bool = False):
    """jit(vmap over seeds of (state, carry) -> (state, carry, (metrics, health)))."""
    fn = vmap_seeds(_chunk_fn(agent, env, rounds, learn, health))
    return jax.jit(fn, donate_argnums=(0, 1))


def init_seeds(agent: DQN, env: JaxEnv, seeds: list[int]) -> tuple[DQNState, LoopCarry]:
    """Agent states and loop carries of `seeds`, stacked on a leading axis."""
    keys = [seed_keys(s) for s in seeds]
    states = agent.init_many(jnp.stack([k[0] for k in keys]))
    carries = [loop_init(agent, env, k[1]) for k in keys]
    return states, jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *carries)
