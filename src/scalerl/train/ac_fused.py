"""Fully jitted SAC, TD3 and DDPG on JAX-native environments (continuous gymnax and Brax ids).

The environments step inside the jitted program: one call runs any number of *rounds* on device,
vmapped over seeds, with no host round trip per step. A round is `steps` vector steps of the N
environments, each followed by the host loop's own step body (`train.step.train_step`: replay
write, normaliser update, next action); the last one also runs the round's `updates` gradient
updates. `round_shape` picks (steps, updates) so that updates per transition equal `--utd`
(utd x N updates per vector step when that is a whole number, else e.g. one update every two
vector steps for utd x N = 1/2). Rounds during the warm-up act uniformly at random and do not
update. Every random stream of a seed derives from its own key, so seed k of a vmapped run
equals the single run with seed k.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from scalerl.agents.actor_critic import ActorCritic
from scalerl.agents.state import SACState
from scalerl.buffers.replay import ReplayState, Transition, replay_init
from scalerl.envs.jax_envs import JaxEnv
from scalerl.errors import ConfigError
from scalerl.offline.finetune import initial_state
from scalerl.seed_axis import vmap_seeds
from scalerl.train.jax_episodes import play_episodes
from scalerl.train.ppo_fused import EnvCarry, env_init, episode_tally
from scalerl.train.step import train_step
from scalerl.train.vector import with_env_axis

Metrics = dict[str, jax.Array]
MAX_ROUND_STEPS = 64
"""Largest number of vector steps per round (the denominator of utd x num_envs)."""
ENV_STREAM = 0xE17
"""Folded into the seed's key for the environments' key (the agent uses the seed's key, as in the
host loop, so resets to the initial weights find the same initialisation)."""


@flax.struct.dataclass
class LoopCarry:
    """Environment side of one seed: the N environments, the replay buffer and the actions the
    environments take next."""

    env: EnvCarry
    buffer: ReplayState
    action: jax.Array


def round_shape(utd: float, num_envs: int) -> tuple[int, int]:
    """(vector steps, updates) of one round: updates / (steps x num_envs) = utd.

    Raises:
        ConfigError: utd x num_envs is not a fraction with a denominator of at most 64.
    """
    rate = utd * num_envs
    frac = Fraction(rate).limit_denominator(MAX_ROUND_STEPS)
    if frac <= 0 or abs(float(frac) - rate) > 1e-6 * rate:
        raise ConfigError(
            f"utd x num_envs = {rate:g} is not a ratio of whole numbers with at most "
            f"{MAX_ROUND_STEPS} vector steps per round; choose --utd so that utd x num_envs "
            "is, e.g., 1, 2 or 1/4"
        )
    return frac.denominator, frac.numerator


def loop_init(sac: ActorCritic, env: JaxEnv, key: jax.Array, num_envs: int, capacity: int):
    """N fresh episodes, an empty replay buffer and uniform first actions."""
    env_key, act_key = jax.random.split(key)
    action = jax.random.uniform(act_key, (num_envs, sac.action_dim), minval=-1.0, maxval=1.0)
    buffer = replay_init(capacity, sac.obs_dim, sac.action_dim)
    return LoopCarry(env_init(env, env_key, num_envs), buffer, action)


def init_seeds(
    sac: ActorCritic,
    env: JaxEnv,
    seeds: list[int],
    num_envs: int,
    capacity: int,
    init_from: Path | None = None,
) -> tuple[SACState, LoopCarry]:
    """Agent states (`ActorCritic.init` of the seed's key, or `--init-from`'s networks) and
    loop carries, stacked by seed."""
    keys = [jax.random.PRNGKey(s) for s in seeds]
    states = initial_state(sac, sac.init_many(jnp.stack(keys)), init_from, None)
    states = with_env_axis(states, num_envs)
    carries = [loop_init(sac, env, jax.random.fold_in(k, ENV_STREAM), num_envs, capacity)
               for k in keys]  # fmt: skip
    # Through numpy: strongly typed leaves, as the jitted chunk returns them (a weakly typed
    # leaf, e.g. in gymnax's Pendulum state, would make the second call compile again).
    strong = lambda *xs: jnp.asarray(np.stack([np.asarray(x) for x in xs]))  # noqa: E731
    states = jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x)), states)
    return states, jax.tree_util.tree_map(strong, *carries)


def env_step(env: JaxEnv, carry: LoopCarry) -> tuple[EnvCarry, Transition, Metrics]:
    """Step the N environments with `carry.action`; the transitions end in the true last
    observations of finished episodes (`final_obs`)."""
    key, step_key = jax.random.split(carry.env.key)
    obs = carry.env.obs
    keys = jax.random.split(step_key, obs.shape[0])
    env_state, out = env.step_batch(keys, carry.env.env_state, carry.action)
    ec, stats = episode_tally(carry.env.replace(env_state=env_state, obs=out.obs, key=key), out)
    f32 = jnp.float32
    transition = Transition(obs, carry.action, out.reward, out.terminated.astype(f32),
                            out.truncated.astype(f32), out.final_obs)  # fmt: skip
    return ec, transition, stats


def agent_step(sac: ActorCritic, env: JaxEnv, num_updates: int, random_action: bool, n: int):
    """(state, carry) -> (state, carry, update metrics, episode sums) of one vector step."""
    body = train_step(sac, num_updates, random_action, n)

    def step(state: SACState, carry: LoopCarry):
        ec, transition, stats = env_step(env, carry)
        next_obs = ec.obs
        if n == 1:  # the single-environment layout of `train_step`
            transition = jax.tree_util.tree_map(lambda x: x[0], transition)
            next_obs = next_obs[0]
        state, buffer, action, metrics = body(state, carry.buffer, transition, next_obs)
        return state, LoopCarry(ec, buffer, action.reshape(n, -1)), metrics, stats

    return step


def round_fn(sac: ActorCritic, env: JaxEnv, shape: tuple[int, int], warm: bool, n: int):
    """(state, carry) -> (state, carry, update metrics, episode sums) of one round."""
    steps, updates = shape
    plain = agent_step(sac, env, 0, warm, n)
    last = agent_step(sac, env, 0 if warm else updates, warm, n)

    def one_round(state: SACState, carry: LoopCarry):
        def body(c, _):
            s, lc, _, stats = plain(*c)
            return (s, lc), stats

        (state, carry), stats = jax.lax.scan(body, (state, carry), None, length=steps - 1)
        state, carry, metrics, last_stats = last(state, carry)
        stats = jax.tree_util.tree_map(lambda a, b: jnp.sum(a, axis=0) + b, stats, last_stats)
        return state, carry, metrics, stats

    return one_round


def chunk_fn(sac: ActorCritic, env: JaxEnv, shape: tuple[int, int], warm: bool, n: int):
    """(state, carry, rounds) -> (state, carry, summed update metrics, summed episode sums) of
    `rounds` rounds (a traced count: one compilation serves every chunk length)."""
    one_round = round_fn(sac, env, shape, warm, n)

    def chunk(state: SACState, carry: LoopCarry, rounds: jax.Array):
        _, _, m_shape, s_shape = jax.eval_shape(one_round, state, carry)
        zeros = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype), (m_shape, s_shape))

        def body(_, c):
            s, lc, m_sum, s_sum = c
            s, lc, m, st = one_round(s, lc)
            m_sum, s_sum = jax.tree_util.tree_map(jnp.add, (m_sum, s_sum), (m, st))
            return s, lc, m_sum, s_sum

        return jax.lax.fori_loop(0, rounds, body, (state, carry, *zeros))

    return chunk


def make_chunk_many(sac: ActorCritic, env: JaxEnv, shape: tuple[int, int], warm: bool, n: int):
    """jit(vmap over seeds of `chunk_fn`). Nothing is donated: the chunk is long, and a donated
    carry of a loop with a traced trip count measured no faster here."""
    fn = vmap_seeds(chunk_fn(sac, env, shape, warm, n), in_axes=(0, 0, None))
    return jax.jit(fn)


def make_eval(sac: ActorCritic, env: JaxEnv, episodes: int):
    """jit(vmap over seeds of (state, key) -> (returns, lengths)) of deterministic episodes."""

    def evaluate(state: SACState, key: jax.Array):
        act = lambda obs, k: sac.act(state, obs, k, deterministic=True)  # noqa: E731
        return play_episodes(act, env, key, episodes)

    return jax.jit(jax.vmap(evaluate))
