"""DQN evaluation episodes: ε_eval-greedy play in environments separate from training.

Evaluation acts ε-greedily with the small fixed `eps_eval` (Mnih et al. 2015, Methods). Its
randomness derives from the run seed and the environment step only (`eval_key`, `eval_seeds`),
never from the training state, so evaluating changes nothing in training and a resumed run
evaluates exactly as an uninterrupted one. gymnax ids play the episodes in parallel, one vmapped
environment per episode, in one jitted while loop; ale: and Gymnasium ids step separate
environments in lockstep (ale: with the evaluation protocol: unclipped game scores, episodes end
at game over only). Also `scalerl evaluate RUN` on DQN runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from scalerl.agents.dqn import DQN, DQNState
from scalerl.config_dqn import DQNTrainConfig
from scalerl.envs.ale import ALE_PREFIX, AtariOptions, evaluation_options
from scalerl.envs.discrete import make_discrete_env
from scalerl.envs.jax_envs import JaxEnv, is_jax_env, make_jax_env
from scalerl.errors import ConfigError
from scalerl.train.checkpoint import load_checkpoint
from scalerl.train.evaluate import EvalResult
from scalerl.train.jax_episodes import EVAL_STREAM, eval_key, play_episodes
from scalerl.train.setup import CHECKPOINT_NAME


def eval_seeds(seed: int, env_step: int, episodes: int) -> list[int]:
    """Reset seeds of the evaluation environments at `env_step` (one per episode)."""
    state = np.random.SeedSequence([seed, env_step, EVAL_STREAM]).generate_state(episodes)
    return [int(s) % 2**31 for s in state]


# ----------------------------------------------------------------------------- gymnax


def jax_episodes(
    agent: DQN, env: JaxEnv, state: DQNState, key: jax.Array, episodes: int
) -> tuple[jax.Array, jax.Array]:
    """(returns, lengths) of `episodes` ε_eval-greedy episodes played in parallel (pure)."""
    return play_episodes(lambda obs, k: agent.act_eval(state, obs, k), env, key, episodes)


def make_fused_eval(agent: DQN, env: JaxEnv, episodes: int):
    """jit(vmap over seeds of (state, key) -> (returns, lengths)) of `jax_episodes`."""
    fn = jax.vmap(lambda state, key: jax_episodes(agent, env, state, key, episodes))
    return jax.jit(fn)


# ----------------------------------------------------------------------------- host envs


def make_eval_envs(cfg: DQNTrainConfig, seed: int) -> list[gym.Env]:
    """`eval_episodes` environments of `cfg.env` (ale: with the evaluation protocol)."""
    atari = evaluation_options(AtariOptions()) if cfg.env.startswith(ALE_PREFIX) else None
    return [
        make_discrete_env(cfg.env, seed, max_episode_steps=cfg.max_episode_steps, atari=atari)
        for _ in range(cfg.eval_episodes)
    ]


def host_episodes(
    act: Any, state: DQNState, envs: list[gym.Env], seeds: list[int], key: jax.Array
) -> EvalResult:
    """One episode per env, stepped in lockstep; `act(state, obs, key)` gives the actions.
    Returns are game scores (info["raw_reward"] when reported)."""
    obs = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, seeds, strict=True)])
    totals, lengths = np.zeros(len(envs)), np.zeros(len(envs), np.int64)
    running = np.ones(len(envs), bool)
    while running.any():
        key, act_key = jax.random.split(key)
        actions = np.asarray(act(state, obs, act_key))
        for i in np.flatnonzero(running):
            obs[i], reward, term, trunc, info = envs[i].step(int(actions[i]))
            totals[i] += float(info.get("raw_reward", reward))
            lengths[i] += 1
            running[i] = not (term or trunc)
    return EvalResult(totals, lengths, None)


# ----------------------------------------------------------------------------- scalerl evaluate


def load_dqn_agent(run_dir: Path) -> tuple[DQNTrainConfig, DQN, DQNState, dict]:
    """A DQN run's config, agent, the agent state of its checkpoint and its metadata."""
    from scalerl.train.dqn_run import build, read_dqn_config

    cfg = read_dqn_config(run_dir)
    path = Path(run_dir) / CHECKPOINT_NAME
    if is_jax_env(cfg.env):
        from scalerl.train.dqn_fused import loop_init

        env = make_jax_env(cfg.env)
        agent = build(cfg, env)
        key = jax.random.PRNGKey(0)
        template = jax.eval_shape(lambda k: (agent._init(k), loop_init(agent, env, k)), key)
        (state, _), meta = load_checkpoint(path, template)
        return cfg, agent, state, meta
    from scalerl.train.dqn_host import host_agent

    probe = make_discrete_env(cfg.env, cfg.seed, max_episode_steps=cfg.max_episode_steps)
    agent = host_agent(cfg, probe.observation_space, probe.action_space)
    probe.close()
    template = jax.eval_shape(agent._init, jax.random.PRNGKey(0))
    tree, meta = load_checkpoint(path, {"state": template})
    return cfg, agent, tree["state"], meta


def video_policy(run_dir: Path) -> tuple[Any, int]:
    """(jitted greedy policy, observations (B, ...) -> actions (B,), checkpoint's env_step) of
    a DQN run (`scalerl evaluate --video` records greedy episodes)."""
    _, agent, state, meta = load_dqn_agent(run_dir)
    return jax.jit(lambda obs: agent.act_greedy(state, obs)), int(meta.get("env_step", 0))


def evaluate_dqn_run(run_dir: Path, episodes: int = 10, seed: int | None = None) -> EvalResult:
    """`episodes` ε_eval-greedy episodes of a DQN run's saved agent (environment seed: the
    run's seed unless `seed` is given).

    Raises:
        ScalerlError: fewer than one episode, not a DQN run, or no usable checkpoint.
    """
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}; fix --episodes")
    cfg, agent, state, _ = load_dqn_agent(run_dir)
    seed = cfg.seed if seed is None else seed
    key = eval_key(seed, 0)
    if is_jax_env(cfg.env):
        env = make_jax_env(cfg.env)
        play = jax.jit(lambda s, k: jax_episodes(agent, env, s, k, episodes))
        returns, lengths = jax.device_get(play(state, key))
        return EvalResult(np.asarray(returns, np.float64), np.asarray(lengths), None)
    envs = make_eval_envs(dataclasses.replace(cfg, eval_episodes=episodes), seed)
    seeds = eval_seeds(seed, 0, episodes)
    try:
        return host_episodes(jax.jit(agent.act_eval), state, envs, seeds, key)
    finally:
        for env in envs:
            env.close()
