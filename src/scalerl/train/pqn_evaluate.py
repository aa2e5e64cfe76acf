"""`scalerl evaluate` on PQN runs: ε-greedy episodes of a run's saved Q network.

The evaluation policy is greedy in Q with a small ε = `EVAL_EPSILON` = 0.001, the evaluation ε
of Rainbow (Hessel et al. 2018, Table 1 / Dopamine's defaults, Castro et al. 2018) and of PQN's
Atari runs (their ε ends at 0.001). A little randomness keeps a deterministic policy from
looping forever in a deterministic state (Mnih et al. 2015 used ε = 0.05 for the same reason).

JAX-native ids (gymnax:, craftax:) play the episodes in parallel inside one jitted while loop
(`jax_episodes.play_episodes`); ale: ids play them one after the other in one Atari env with
unclipped rewards, so the returns are game scores.
"""

from __future__ import annotations

import dataclasses
import functools
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from scalerl.agents.epsilon import epsilon_greedy
from scalerl.agents.pqn import PQN, PQNState
from scalerl.config_pqn import PQNTrainConfig
from scalerl.envs.ale import ALE_PREFIX, AtariOptions, make_ale_env
from scalerl.envs.jax_envs import JaxEnv, make_jax_env
from scalerl.errors import ConfigError
from scalerl.train.checkpoint import load_checkpoint
from scalerl.train.evaluate import EvalResult, evaluate_batch
from scalerl.train.jax_episodes import play_episodes
from scalerl.train.setup import CHECKPOINT_NAME

EVAL_EPSILON = 0.001
"""ε of evaluation episodes (Hessel et al. 2018; Castro et al. 2018)."""
EVAL_OPTIONS = AtariOptions(clip_rewards=False)
"""Atari protocol of evaluation episodes: training's (Machado et al. 2018) with game scores."""


def evaluate_pqn_run(run_dir: Path, episodes: int = 10, seed: int | None = None) -> EvalResult:
    """`episodes` ε-greedy episodes (ε = EVAL_EPSILON) of a PQN run's Q network (environment
    seed: the run's seed unless `seed` is given).

    Raises:
        ScalerlError: fewer than one episode, not a PQN run, or no usable checkpoint.
    """
    from scalerl.train.pqn_run import read_pqn_config

    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}; fix --episodes")
    cfg = read_pqn_config(run_dir)
    seed = cfg.seed if seed is None else seed
    if cfg.env.startswith(ALE_PREFIX):
        return _ale_episodes(cfg, Path(run_dir), episodes, seed)
    agent, env, play = jax_evaluator(dataclasses.replace(cfg, seed=0, name=None), episodes)
    state, _ = load_state(Path(run_dir), agent)
    returns, lengths = jax.device_get(play(state, jax.random.PRNGKey(seed)))
    return EvalResult(np.asarray(returns, np.float64), np.asarray(lengths), None)


def load_state(run_dir: Path, agent: PQN) -> tuple[PQNState, dict]:
    """The agent state of a run's checkpoint.msgpack (fused and ALE runs alike) and its
    metadata."""
    template = jax.eval_shape(agent._init, jax.random.PRNGKey(0))
    return load_checkpoint(run_dir / CHECKPOINT_NAME, template)


def video_policy(run_dir: Path) -> tuple[Any, int]:
    """(jitted greedy policy, observations (B, ...) -> actions (B,), checkpoint's env_step) of
    a PQN run (`scalerl evaluate --video` records greedy episodes)."""
    from scalerl.train.pqn_host import ale_agent
    from scalerl.train.pqn_run import build, read_pqn_config

    cfg = read_pqn_config(run_dir)
    if cfg.env.startswith(ALE_PREFIX):
        env = make_ale_env(cfg.env, cfg.seed, EVAL_OPTIONS)
        agent = ale_agent(cfg, env).agent
        env.close()
    else:
        agent = build(cfg, make_jax_env(cfg.env))
    state, meta = load_state(Path(run_dir), agent)
    return jax.jit(lambda obs: agent.act_deterministic(state, obs)), int(meta.get("env_step", 0))


@functools.lru_cache(maxsize=8)
def jax_evaluator(cfg: PQNTrainConfig, episodes: int) -> tuple[PQN, JaxEnv, Any]:
    """(agent, env, jit((state, key) -> (returns, lengths))) of a run's settings (cached:
    evaluating the seeds of one job compiles once; pass the config with seed 0, no name)."""
    from scalerl.train.pqn_run import build

    env = make_jax_env(cfg.env)
    agent = build(cfg, env)

    def act(state: PQNState, obs: jax.Array, key: jax.Array) -> jax.Array:
        return epsilon_greedy(key, agent.q_values(state.net.params, obs), EVAL_EPSILON)

    play = jax.jit(lambda state, key: play_episodes(partial(act, state), env, key, episodes))
    return agent, env, play


def _ale_episodes(cfg: PQNTrainConfig, run_dir: Path, episodes: int, seed: int) -> EvalResult:
    """Episodes one after the other in one Atari env, ε-greedy on the host."""
    from scalerl.train.pqn_host import ale_agent

    env = make_ale_env(cfg.env, seed, EVAL_OPTIONS)
    agent = ale_agent(cfg, env).agent
    state, _ = load_state(run_dir, agent)
    greedy = jax.jit(agent.act_deterministic)
    rng = np.random.default_rng(seed)

    def policy(_: Any, obs: np.ndarray) -> np.ndarray:
        action = np.asarray(greedy(state, jnp.asarray(obs)))
        explore = rng.random(action.shape) < EVAL_EPSILON
        return np.where(explore, rng.integers(agent.num_actions, size=action.shape), action)

    try:
        return evaluate_batch([env], policy, None, episodes)[0]
    finally:
        env.close()
