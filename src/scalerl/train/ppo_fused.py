"""Fully jitted PPO on JAX-native environments: rollout, GAE and all epochs in one lax.scan.

One iteration = a rollout of `num_steps` steps in `num_envs` environments (vmapped) followed by
`PPO.learn`. `make_chunk` scans `k` iterations in one jitted call; `make_chunk_many` vmaps that
over seeds (seed k of a vmapped run equals the single run with seed k: every random stream of a
seed derives from its own key). Episode statistics are returned as sums and counts, so the
host can average any number of iterations.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from scalerl.agents.ppo import PPO, PPOState, Trajectory
from scalerl.envs.jax_envs import JaxEnv
from scalerl.seed_axis import vmap_seeds

Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class EnvCarry:
    """Environment side of the loop: N env states, their observations, episode tallies, key."""

    env_state: Any
    obs: jax.Array
    ep_return: jax.Array
    ep_length: jax.Array
    key: jax.Array


def env_init(env: JaxEnv, key: jax.Array, num_envs: int) -> EnvCarry:
    """N fresh episodes."""
    key, reset_key = jax.random.split(key)
    env_state, obs = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))
    zeros = jnp.zeros((num_envs,), jnp.float32)
    return EnvCarry(env_state, obs, zeros, zeros, key)


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """(agent key, environment key) of a seed."""
    agent_key, env_key = jax.random.split(jax.random.PRNGKey(seed))
    return agent_key, env_key


def episode_tally(carry: EnvCarry, out: Any) -> tuple[EnvCarry, Metrics]:
    """Add the step to the running episode return/length; emit sums over finished episodes."""
    ret = carry.ep_return + out.reward
    length = carry.ep_length + 1.0
    end = jnp.logical_or(out.terminated, out.truncated).astype(jnp.float32)
    stats = {
        "episodes": jnp.sum(end),
        "return_sum": jnp.sum(ret * end),
        "length_sum": jnp.sum(length * end),
    }
    stats |= {k: jnp.sum(v * end) for k, v in out.info.items()}
    carry = carry.replace(ep_return=ret * (1.0 - end), ep_length=length * (1.0 - end))
    return carry, stats


def rollout(
    agent: PPO, env: JaxEnv, state: PPOState, carry: EnvCarry
) -> tuple[PPOState, EnvCarry, Trajectory, Metrics]:
    """`num_steps` steps in every environment with the current policy."""

    def step(c: tuple[PPOState, EnvCarry], _: Any):
        st, ec = c
        rng, act_key = jax.random.split(st.rng)
        key, env_key = jax.random.split(ec.key)
        obs = ec.obs
        stored, action, log_prob, value = agent.act(st, obs, act_key)
        env_keys = jax.random.split(env_key, obs.shape[0])
        env_state, out = env.step_batch(env_keys, ec.env_state, action)
        ec, stats = episode_tally(ec.replace(env_state=env_state, obs=out.obs, key=key), out)
        traj = Trajectory(
            obs, stored, log_prob, value, out.reward, out.terminated, out.truncated, out.final_obs
        )
        return (st.replace(rng=rng), ec), (traj, stats)

    (state, carry), (traj, stats) = jax.lax.scan(
        step, (state, carry), None, length=agent.cfg.num_steps
    )
    return state, carry, traj, jax.tree_util.tree_map(jnp.sum, stats)


def iteration(
    agent: PPO, env: JaxEnv, state: PPOState, carry: EnvCarry, health: bool = False
) -> tuple[PPOState, EnvCarry, Metrics]:
    """Rollout then learn; metrics: the update's means and the rollout's episode sums, and with
    `health` the network-health diagnostics of the rollout, measured before the update."""
    state, carry, traj, stats = rollout(agent, env, state, carry)
    extra = agent.health(state, traj) if health else {}
    state, metrics = agent.learn(state, traj)
    return state, carry, metrics | {f"episodes/{k}": v for k, v in stats.items()} | extra


def _chunk_fn(agent: PPO, env: JaxEnv, iters: int, health: bool):
    """(state, carry) -> (state, carry, (metrics stacked over `iters`, health of the last
    iteration or {}))."""

    def body(c, _):
        s, e, m = iteration(agent, env, *c)
        return (s, e), m

    def chunk(state: PPOState, carry: EnvCarry):
        n = iters - 1 if health else iters
        (state, carry), metrics = jax.lax.scan(body, (state, carry), None, length=n)
        if not health:
            return state, carry, (metrics, {})
        state, carry, last = iteration(agent, env, state, carry, health=True)
        diag = {k: v for k, v in last.items() if k.startswith("health/")}
        last = {k: v[None] for k, v in last.items() if k not in diag}
        metrics = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), metrics, last)
        return state, carry, (metrics, diag)

    return chunk


def make_chunk(agent: PPO, env: JaxEnv, iters: int, health: bool = False):
    """jit((state, carry) -> (state, carry, (metrics stacked over `iters` iterations, health
    diagnostics of the last one or {})))."""
    return jax.jit(_chunk_fn(agent, env, iters, health), donate_argnums=(0, 1))


def make_chunk_many(agent: PPO, env: JaxEnv, iters: int, health: bool = False):
    """`make_chunk` vmapped over a leading seed axis of state and carry."""
    return jax.jit(vmap_seeds(_chunk_fn(agent, env, iters, health)), donate_argnums=(0, 1))


def init_seeds(agent: PPO, env: JaxEnv, seeds: list[int]) -> tuple[PPOState, EnvCarry]:
    """Agent states and env carries of `seeds`, stacked on a leading axis."""
    keys = [seed_keys(s) for s in seeds]
    states = agent.init_many(jnp.stack([k[0] for k in keys]))
    carries = [env_init(env, k[1], agent.cfg.num_envs) for k in keys]
    return states, jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *carries)


def summarize(metrics: Metrics) -> dict[str, float]:
    """Host-side log point from stacked iteration metrics (iters, ...): means of the update
    metrics over iterations, and per-episode means of the episode sums (when any ended).
    `eval/return` repeats the training episodes' mean return (stochastic policy, as CleanRL and
    PureJaxRL report PPO), so `scalerl report` reads PPO runs."""
    out: dict[str, float] = {}
    episodes = float(jnp.sum(metrics["episodes/episodes"]))
    for key, value in metrics.items():
        if not key.startswith("episodes/"):
            out[key] = float(jnp.mean(value))
        elif key != "episodes/episodes" and episodes > 0:
            out[episode_metric_name(key)] = float(jnp.sum(value)) / episodes
    out["train/episodes"] = episodes
    if "train/episode_return" in out:  # what `scalerl report` aggregates (see docs/agents/ppo.md)
        out["eval/return"] = out["train/episode_return"]
    return out


def episode_metric_name(key: str) -> str:
    """episodes/return_sum -> train/episode_return; episodes/Achievements/x -> train/achievement/x
    (Craftax: the percentage of episodes that unlocked it)."""
    name = key.split("/", 1)[1]
    if name.startswith("Achievements/"):
        return "train/achievement/" + name.split("/", 1)[1]
    return "train/episode_" + name.removesuffix("_sum")
