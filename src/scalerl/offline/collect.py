"""Datasets from scalerl runs: export a run's replay buffer, or collect with a saved policy."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jax
import numpy as np

import scalerl
from scalerl.buffers.replay import replay_to_numpy
from scalerl.config import TrainConfig
from scalerl.datasets import Dataset, dataset_from_transitions, load_any
from scalerl.envs import env_info, make_env
from scalerl.errors import ConfigError
from scalerl.offline.finetune import preload_rows
from scalerl.train.evaluate import load_run_agent
from scalerl.train.resume import load_resume, resume_template
from scalerl.train.setup import build_agent, read_config, replay_capacity


def _base_metadata(cfg: TrainConfig, run_dir: Path, source: str) -> dict[str, Any]:
    return {
        "env_id": cfg.env,
        "action_repeat": cfg.action_repeat,
        "max_episode_steps": cfg.max_episode_steps,
        "source": source,
        "run": str(Path(run_dir).resolve()),
        "agent": cfg.agent.agent,
        "seed": cfg.seed,
        "scalerl_version": scalerl.__version__,
    }


def _probe_dims(cfg: TrainConfig) -> tuple[int, int]:
    env = make_env(cfg.env, cfg.seed, action_repeat=cfg.action_repeat)
    dims = env_info(env)
    env.close()
    return dims


def export_buffer(run_dir: Path) -> Dataset:
    """The replay buffer of a run's newest resume checkpoint as a Dataset (oldest row first).

    Rows keep their true next observations, terminations and time-limit truncations, so the
    export is exactly what the agent trained on (the ring buffer keeps the newest
    `buffer_capacity` transitions).

    Raises:
        ScalerlError: not a run directory, or no usable resume checkpoint.
    """
    cfg = read_config(run_dir)
    sac = build_agent(cfg, *_probe_dims(cfg))
    preload = None if cfg.preload_dataset is None else load_any(cfg.preload_dataset)
    capacity = replay_capacity(cfg, preload_rows(preload))
    tree, meta = load_resume(run_dir, resume_template(sac, capacity))
    rows = replay_to_numpy(tree["buffer"])
    source = f"replay buffer at agent step {meta['t']}"
    return dataset_from_transitions(rows, _base_metadata(cfg, run_dir, source))


@dataclass(frozen=True)
class CollectSpec:
    """How to collect transitions with a saved policy."""

    episodes: int = 10
    """Complete episodes to collect (ignored when steps is set)."""
    steps: int | None = None
    """Collect exactly this many agent steps instead (the last episode may be cut)."""
    noise: float = 0.0
    """Std of Gaussian noise added to the deterministic action (then clipped to [-1, 1])."""
    seed: int = 0
    """Seed of the environment and the noise."""
    random_episodes: int = 5
    """Episodes of a uniform random policy to measure ref_min_score (0: skip)."""


def collect(run_dir: Path, spec: CollectSpec) -> Dataset:
    """Roll out a run's saved policy (deterministic + optional Gaussian noise) into a Dataset.

    The metadata records `ref_min_score` (mean return of a uniform random policy) and
    `ref_max_score` (mean return of the collected episodes), so a normalised score of 100
    means "as good as the data" and 0 "as good as random".

    Raises:
        ConfigError: invalid episodes/steps/noise. ScalerlError: not a run directory.
    """
    _check_spec(spec)
    cfg = read_config(run_dir)
    sac, state, meta = load_run_agent(run_dir)
    policy = jax.jit(lambda obs: sac.act(state, obs, jax.random.PRNGKey(0), deterministic=True))
    env = make_env(cfg.env, spec.seed, action_repeat=cfg.action_repeat,
                   max_episode_steps=cfg.max_episode_steps)  # fmt: skip
    rng = np.random.default_rng(spec.seed)
    rows = _rollout(env, lambda o: _noisy(np.asarray(policy(o)), spec.noise, rng), spec)
    source = f"policy at agent step {meta.get('agent_step')} with noise {spec.noise}"
    metadata = _base_metadata(cfg, run_dir, source) | {"noise": spec.noise}
    dataset = dataset_from_transitions(rows, metadata)
    returns = dataset.episode_returns()
    refs = {"ref_max_score": float(np.mean(returns))} if len(returns) else {}
    if spec.random_episodes > 0:
        refs["ref_min_score"] = random_return(env, spec.random_episodes, rng)
    env.close()
    return replace(dataset, metadata=dataset.metadata | refs)


def _check_spec(spec: CollectSpec) -> None:
    if spec.episodes < 1 and spec.steps is None:
        raise ConfigError(f"episodes must be >= 1, got {spec.episodes}; fix --episodes")
    if spec.steps is not None and spec.steps < 1:
        raise ConfigError(f"steps must be >= 1, got {spec.steps}; fix --steps")
    if spec.noise < 0 or spec.random_episodes < 0:
        raise ConfigError("noise and random_episodes must be >= 0")


def _noisy(action: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    if noise > 0:
        action = action + rng.normal(0.0, noise, action.shape)
    return np.clip(action, -1.0, 1.0).astype(np.float32)


def _rollout(env: Any, act: Any, spec: CollectSpec) -> dict[str, np.ndarray]:
    """Transitions with true next observations until the episode or step budget is reached."""
    keys = ("obs", "action", "reward", "terminated", "truncated", "next_obs")
    out: dict[str, list] = {k: [] for k in keys}
    obs, _ = env.reset()
    episodes = 0
    while not _done(spec, episodes, len(out["reward"])):
        action = act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        row = (obs, action, reward, terminated, truncated, next_obs)
        for key, value in zip(keys, row, strict=True):
            out[key].append(value)
        obs = next_obs
        if terminated or truncated:
            episodes += 1
            obs, _ = env.reset()
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def _done(spec: CollectSpec, episodes: int, steps: int) -> bool:
    return steps >= spec.steps if spec.steps is not None else episodes >= spec.episodes


def random_return(env: Any, episodes: int, rng: np.random.Generator) -> float:
    """Mean return of uniform random actions in [-1, 1] over `episodes` episodes."""
    total = 0.0
    for _ in range(episodes):
        env.reset()
        done = False
        while not done:
            action = rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32)
            _, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
    return total / episodes
