"""`scalerl evaluate` on PPO runs: deterministic episodes of a run's saved policy.

The policy is deterministic: argmax of the categorical logits, or the Gaussian's mean clipped
(or tanh-squashed) to the action bounds (`PPO.act_deterministic`). JAX-native ids play the
episodes in parallel, one vmapped environment per episode, inside one jitted while loop;
Gymnasium ids play them one after the other in a fresh environment with scalerl's wrapper stack.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jax
import numpy as np

from scalerl.agents.ppo import PPO, PPOState, make_ppo
from scalerl.agents.ppo_net import ActionSpec
from scalerl.config_ppo import PPOConfig, PPOTrainConfig, num_iterations
from scalerl.envs.jax_envs import JaxEnv, is_jax_env, make_jax_env
from scalerl.envs.make import make_env
from scalerl.envs.suites import suite_preset
from scalerl.errors import ConfigError
from scalerl.train.checkpoint import load_checkpoint
from scalerl.train.evaluate import EvalResult, evaluate_batch
from scalerl.train.jax_episodes import play_episodes
from scalerl.train.setup import CHECKPOINT_NAME


def load_ppo_agent(run_dir: Path) -> tuple[PPOTrainConfig, PPO, PPOState]:
    """A PPO run's config, agent and the state of its agent checkpoint."""
    cfg, agent, state, _ = load_ppo_checkpoint(run_dir)
    return cfg, agent, state


def load_ppo_checkpoint(run_dir: Path) -> tuple[PPOTrainConfig, PPO, PPOState, dict]:
    """`load_ppo_agent` plus the checkpoint's metadata (`env_step`, `iteration`)."""
    from scalerl.train.ppo_run import build, read_ppo_config

    cfg = read_ppo_config(run_dir)
    if is_jax_env(cfg.env):
        agent = build(cfg, make_jax_env(cfg.env))
    else:
        probe = _gym_env(cfg, cfg.seed)
        repeat = cfg.action_repeat or suite_preset(cfg.env).action_repeat
        action = ActionSpec(False, int(probe.action_space.shape[0]))
        obs_dim = int(probe.observation_space.shape[0])
        probe.close()
        agent = make_ppo(cfg.agent, obs_dim, action, num_iterations(cfg, repeat))
    template = jax.eval_shape(agent._init, jax.random.PRNGKey(cfg.seed))  # shapes only
    state, meta = load_checkpoint(Path(run_dir) / CHECKPOINT_NAME, template)
    return cfg, agent, state, meta


def host_policy(agent: PPO):
    """Jitted deterministic policy over a leading seed axis, (states, obs) -> actions, for
    Gymnasium ids (the layout of `evaluate.make_policy`)."""
    return jax.jit(jax.vmap(lambda s, o: agent.act_deterministic(s, o[None])[0]))


def video_policy(run_dir: Path) -> tuple[Any, int]:
    """(jitted deterministic policy, observations (B, ...) -> actions (B, ...), checkpoint's
    env_step) of a PPO run (`scalerl evaluate --video`)."""
    _, agent, state, meta = load_ppo_checkpoint(run_dir)
    return jax.jit(lambda obs: agent.act_deterministic(state, obs)), int(meta.get("env_step", 0))


def _gym_env(cfg: PPOTrainConfig, seed: int):
    return make_env(
        cfg.env, seed, action_repeat=cfg.action_repeat, max_episode_steps=cfg.max_episode_steps
    )


def evaluate_ppo_run(run_dir: Path, episodes: int = 10, seed: int | None = None) -> EvalResult:
    """`episodes` deterministic episodes of a PPO run's policy (environment seed: the run's
    seed unless `seed` is given).

    Raises:
        ScalerlError: fewer than one episode, not a PPO run, or no usable checkpoint.
    """
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}; fix --episodes")
    cfg, agent, state = load_ppo_agent(run_dir)
    seed = cfg.seed if seed is None else seed
    if is_jax_env(cfg.env):
        play = jax_evaluator(cfg.agent, cfg.env, num_iterations(cfg), episodes)
        returns, lengths = jax.device_get(play(state, jax.random.PRNGKey(seed)))
        return EvalResult(np.asarray(returns, np.float64), np.asarray(lengths), None)
    states = jax.tree_util.tree_map(lambda x: x[None], state)
    return evaluate_batch([_gym_env(cfg, seed)], host_policy(agent), states, episodes)[0]


@functools.lru_cache(maxsize=8)
def jax_evaluator(agent_cfg: PPOConfig, env_id: str, iterations: int, episodes: int):
    """jit((state, key) -> (returns, lengths)) of `jax_episodes` for one agent configuration and
    environment (cached: evaluating several runs of one configuration compiles once)."""
    env = make_jax_env(env_id)
    agent = make_ppo(agent_cfg, env.obs_dim, ActionSpec(env.discrete, env.num_actions), iterations)
    return jax.jit(lambda state, key: jax_episodes(agent, env, state, key, episodes))


def jax_episodes(
    agent: PPO, env: JaxEnv, state: PPOState, key: jax.Array, episodes: int
) -> tuple[jax.Array, jax.Array]:
    """(returns, lengths) of `episodes` deterministic episodes played in parallel (pure)."""
    return play_episodes(lambda obs, _: agent.act_deterministic(state, obs), env, key, episodes)
