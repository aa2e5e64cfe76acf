"""Deterministic evaluation episodes and the `scalerl evaluate` command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from scalerl.agents.actor_critic import ActorCritic
from scalerl.agents.state import SACState
from scalerl.envs import env_info, make_env
from scalerl.envs.jax_envs import is_jax_env, make_jax_env
from scalerl.errors import ConfigError
from scalerl.train.checkpoint import load_checkpoint
from scalerl.train.setup import CHECKPOINT_NAME, build_agent, read_config


@dataclass(frozen=True)
class EvalResult:
    """Per-episode returns, lengths (agent steps) and success flags of one evaluation."""

    returns: np.ndarray
    lengths: np.ndarray
    successes: np.ndarray | None

    def metrics(self) -> dict[str, float]:
        """eval/return, eval/return_std, eval/length and eval/success (if reported)."""
        out = {
            "eval/return": float(np.mean(self.returns)),
            "eval/return_std": float(np.std(self.returns)),
            "eval/length": float(np.mean(self.lengths)),
        }
        if self.successes is not None:
            out["eval/success"] = float(np.mean(self.successes))
        return out


def make_policy(sac: ActorCritic):
    """Jitted deterministic policy over a leading seed axis: (states, obs) -> tanh(mean)."""
    key = jax.random.PRNGKey(0)
    return jax.jit(jax.vmap(lambda state, obs: sac.act(state, obs, key, deterministic=True)))


def _episode_batch(envs: list[gym.Env], policy, states: SACState) -> list[tuple]:
    """One episode in every env, stepped in lockstep; (return, length, success) per env."""
    obs = np.stack([env.reset()[0] for env in envs])
    totals, lengths = np.zeros(len(envs)), np.zeros(len(envs), np.int64)
    success: list[bool | None] = [None] * len(envs)
    running = np.ones(len(envs), bool)
    while running.any():
        actions = np.asarray(policy(states, obs))
        for i in np.flatnonzero(running):
            obs[i], reward, terminated, truncated, info = envs[i].step(actions[i])
            totals[i] += float(reward)
            lengths[i] += 1
            if "success" in info:
                success[i] = bool(success[i]) or bool(info["success"])
            running[i] = not (terminated or truncated)
    return list(zip(totals, lengths, success, strict=True))


def evaluate_batch(
    envs: list[gym.Env], policy, states: SACState, episodes: int
) -> list[EvalResult]:
    """`episodes` deterministic episodes per env (seed axis of `states`), run in lockstep."""
    per_env = zip(*[_episode_batch(envs, policy, states) for _ in range(episodes)], strict=True)
    return [_result(list(results)) for results in per_env]


def _result(results: list[tuple]) -> EvalResult:
    returns, lengths, successes = zip(*results, strict=True)
    has_success = any(s is not None for s in successes)
    flags = np.array([bool(s) for s in successes], np.float32) if has_success else None
    return EvalResult(np.array(returns, np.float64), np.array(lengths), flags)


def load_run_agent(run_dir: Path) -> tuple[ActorCritic, SACState, dict]:
    """Rebuild a run's agent from config.json and restore its checkpoint."""
    cfg = read_config(run_dir)
    if is_jax_env(cfg.env):
        env = make_jax_env(cfg.env, cfg.max_episode_steps)
        obs_dim, action_dim = env.obs_dim, env.num_actions
    else:
        probe = make_env(cfg.env, cfg.seed, action_repeat=cfg.action_repeat,
                         max_episode_steps=cfg.max_episode_steps)  # fmt: skip
        obs_dim, action_dim = env_info(probe)
        probe.close()
    sac = build_agent(cfg, obs_dim, action_dim)
    template = sac.init(jax.random.PRNGKey(cfg.seed))
    state, meta = load_checkpoint(Path(run_dir) / CHECKPOINT_NAME, template)
    return sac, state, meta


def video_policy(run_dir: Path) -> tuple[Any, int]:
    """(jitted deterministic policy, observations (B, d_o) -> actions (B, d_a), checkpoint's
    env_step) of a SAC/TD3/DDPG run (`scalerl evaluate --video` on a gymnax id)."""
    sac, state, meta = load_run_agent(run_dir)
    key = jax.random.PRNGKey(0)
    act = jax.jit(lambda obs: sac.act(state, obs, key, deterministic=True))
    return act, int(meta.get("env_step", 0))


SEPARATE_EVALUATORS = {
    "ppo": "scalerl.train.ppo_evaluate",
    "dqn": "scalerl.train.dqn_evaluate",
    "pqn": "scalerl.train.pqn_evaluate",
}
"""Algorithm of a run's config.json -> module with its `evaluate_<algo>_run(run, episodes, seed)`
(deterministic PPO; ε-greedy DQN and PQN with their evaluation ε)."""


def evaluate_run(run_dir: Path, episodes: int = 10, seed: int | None = None) -> EvalResult:
    """Re-evaluate a saved run's policy on a fresh environment.

    Raises:
        ScalerlError: fewer than one episode, not a run directory, or no usable checkpoint.
    """
    import importlib

    from scalerl.train.algo_run import is_algo_run

    for algo, module in SEPARATE_EVALUATORS.items():  # algorithms with their own config/agent
        if is_algo_run(run_dir, algo):
            evaluate = getattr(importlib.import_module(module), f"evaluate_{algo}_run")
            return evaluate(run_dir, episodes, seed)
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}; fix --episodes")
    cfg = read_config(run_dir)
    sac, state, _ = load_run_agent(run_dir)
    if is_jax_env(cfg.env):
        return _jax_episodes(cfg, sac, state, episodes, cfg.seed if seed is None else seed)
    env = make_env(
        cfg.env,
        cfg.seed if seed is None else seed,
        action_repeat=cfg.action_repeat,
        max_episode_steps=cfg.max_episode_steps,
    )
    states = jax.tree_util.tree_map(lambda x: x[None], state)
    return evaluate_batch([env], make_policy(sac), states, episodes)[0]


def _jax_episodes(cfg: Any, sac: ActorCritic, state: SACState, episodes: int, seed: int):
    """`episodes` deterministic episodes of a gymnax run, played in parallel (`jax_episodes`)."""
    from scalerl.train.ac_fused import make_eval
    from scalerl.train.jax_episodes import eval_key

    env = make_jax_env(cfg.env, cfg.max_episode_steps)
    states = jax.tree_util.tree_map(lambda x: x[None], state)
    returns, lengths = make_eval(sac, env, episodes)(states, eval_key(seed, 0)[None])
    return EvalResult(np.asarray(returns[0], np.float64), np.asarray(lengths[0]), None)
