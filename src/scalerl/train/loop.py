"""The online training loop (spec 2.10): the only place where env, buffer, agent and logger meet.

Any number of seeds train in one process: the agent states and replay buffers carry a leading
seed axis and one jitted, vmapped call per agent step updates all of them (one seed is the
special case N = 1). Each seed has its own environments, RNG stream and run directory, in the
same format as a single run.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np
from tqdm import tqdm

import scalerl
from scalerl.agents.sac import SAC
from scalerl.agents.state import SACState
from scalerl.analysis.plots import plot_learning_curve
from scalerl.buffers.replay import Transition, replay_init
from scalerl.config import TrainConfig, seed_list
from scalerl.envs import env_info, make_env
from scalerl.errors import TrainingError
from scalerl.train.checkpoint import save_checkpoint
from scalerl.train.evaluate import evaluate_batch, make_policy
from scalerl.train.hooks import Hooks
from scalerl.train.logging import Logger, MeanAccumulator
from scalerl.train.setup import (
    CHECKPOINT_NAME,
    agent_steps,
    build_agent,
    config_to_dict,
    create_run_dir,
    resolve,
    seed_configs,
    write_config,
)
from scalerl.train.step import StepCache, UpdateSchedule

CURVE_NAME = "learning_curve.png"


@dataclass
class Window:
    """Counters since the last log point, for perf/ metrics."""

    start: float = field(default_factory=time.perf_counter)
    steps: int = 0
    updates: int = 0

    def rates(self, action_repeat: int) -> dict[str, float]:
        dt = max(time.perf_counter() - self.start, 1e-9)
        return {
            "perf/updates_per_s": self.updates / dt,
            "perf/env_steps_per_s": self.steps * action_repeat / dt,
        }


@dataclass
class SeedRun:
    """Host-side pieces of one seed: its config, run directory, environments and logger."""

    cfg: TrainConfig
    run_dir: Path
    env: gym.Env
    eval_env: gym.Env
    logger: Logger
    acc: MeanAccumulator = field(default_factory=MeanAccumulator)
    episode_return: float = 0.0
    episode_length: int = 0
    last_eval: float = math.nan

    def end_episode(self) -> None:
        self.acc.add(
            {
                "train/episode_return": self.episode_return,
                "train/episode_length": self.episode_length,
            }
        )
        self.episode_return, self.episode_length = 0.0, 0

    def checkpoint(self, state: SACState, agent_step: int, name: str = CHECKPOINT_NAME) -> None:
        meta = {
            "agent_step": agent_step,
            "env_step": agent_step * self.cfg.action_repeat,
            "config": config_to_dict(self.cfg),
            "scalerl_version": scalerl.__version__,
        }
        save_checkpoint(self.run_dir / name, state, meta)

    def close(self) -> None:
        self.logger.close()
        self.env.close()
        self.eval_env.close()


@dataclass
class Run:
    """All seeds of one training job and the agent's static parts (the state stays a pytree)."""

    cfg: TrainConfig
    sac: SAC
    seeds: list[SeedRun]
    policy: Any

    def env_step(self, agent_step: int) -> int:
        return agent_step * self.cfg.action_repeat

    def evaluate(self, states: SACState, agent_step: int) -> None:
        envs = [s.eval_env for s in self.seeds]
        results = evaluate_batch(envs, self.policy, states, self.cfg.eval_episodes)
        for seed_run, result in zip(self.seeds, results, strict=True):
            metrics = result.metrics()
            seed_run.last_eval = metrics["eval/return"]
            seed_run.logger.log(metrics, self.env_step(agent_step))
            plot_learning_curve(seed_run.run_dir / "metrics.csv", seed_run.run_dir / CURVE_NAME)

    def checkpoint(self, states: SACState, agent_step: int) -> None:
        for i, seed_run in enumerate(self.seeds):
            seed_run.checkpoint(take(states, i), agent_step)


def take(tree: Any, i: int) -> Any:
    """Seed `i`'s slice of a tree with a leading seed axis."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[i], tree)


def train(cfg: TrainConfig) -> Path:
    """Train one agent online; returns its run directory (see docs/outputs.md)."""
    return train_seeds(dataclasses.replace(cfg, seeds=None, num_seeds=1))[0]


def train_seeds(cfg: TrainConfig) -> list[Path]:
    """Train every seed of `seed_list(cfg)` in one process; returns their run directories.

    Raises:
        ScalerlError: invalid config or env id (before any work), non-finite env values, or a
            non-finite loss (after saving that seed's state to checkpoint_nan.msgpack).
    """
    cfg = resolve(cfg)
    run = _open_run(cfg)
    try:
        _run_loop(run)
    finally:
        for seed_run in run.seeds:
            seed_run.close()
    return [s.run_dir for s in run.seeds]


def _open_seed(cfg: TrainConfig) -> SeedRun:
    kwargs = {"action_repeat": cfg.action_repeat, "max_episode_steps": cfg.max_episode_steps}
    env = make_env(cfg.env, cfg.seed, **kwargs)
    eval_env = make_env(cfg.env, cfg.seed, **kwargs)
    run_dir = create_run_dir(cfg)
    write_config(run_dir, cfg)
    logger = Logger(
        run_dir,
        cfg.agent.agent,
        cfg.env,
        cfg.seed,
        tensorboard=cfg.tensorboard,
        wandb_project=cfg.wandb_project,
        wandb_config=config_to_dict(cfg),
    )
    return SeedRun(cfg, run_dir, env, eval_env, logger)


def _open_run(cfg: TrainConfig) -> Run:
    seeds = [_open_seed(c) for c in seed_configs(cfg)]
    sac = build_agent(cfg, *env_info(seeds[0].env))
    return Run(cfg, sac, seeds, make_policy(sac))


def _initial(run: Run) -> tuple[SACState, Any, np.ndarray, np.ndarray]:
    """Stacked states and buffers, first observations, first (uniform random) actions."""
    sac, seeds = run.sac, seed_list(run.cfg)
    states = sac.init_many(np.stack([jax.random.PRNGKey(s) for s in seeds]))
    capacity = min(run.cfg.buffer_capacity, agent_steps(run.cfg))
    one = replay_init(capacity, sac.obs_dim, sac.action_dim)
    buffers = jax.tree_util.tree_map(lambda x: np.stack([np.asarray(x)] * len(seeds)), one)
    obs = np.stack([s.env.reset()[0] for s in run.seeds])
    rngs = [np.random.default_rng(s) for s in seeds]
    actions = np.stack([r.uniform(-1.0, 1.0, sac.action_dim) for r in rngs])
    return states, buffers, obs, actions


def _env_step(run: Run, obs: np.ndarray, actions: np.ndarray) -> tuple[Transition, np.ndarray]:
    """Step every seed's env; the transitions (with final observations) and the obs to act on."""
    rows, act_obs = [], []
    for seed_run, o, a in zip(run.seeds, obs, actions, strict=True):
        next_obs, reward, terminated, truncated, _ = seed_run.env.step(a)
        rows.append((o, a, reward, terminated, truncated, next_obs))
        seed_run.episode_return += float(reward)
        seed_run.episode_length += 1
        if terminated or truncated:
            seed_run.end_episode()
            next_obs, _ = seed_run.env.reset()
        act_obs.append(next_obs)
    cols = [np.asarray(c, np.float32) for c in zip(*rows, strict=True)]
    return Transition(*cols), np.stack(act_obs).astype(np.float32)


def _run_loop(run: Run) -> None:
    cfg = run.cfg
    total = agent_steps(cfg)
    states, buffers, obs, actions = _initial(run)
    run.evaluate(states, 0)
    schedule, cache, window = UpdateSchedule(cfg.utd), StepCache(run.sac), Window()
    hooks, updates = Hooks(cfg, run.sac, seed_list(cfg)), 0
    bar = tqdm(total=total, unit="step", disable=not cfg.progress, dynamic_ncols=True)
    for t in range(1, total + 1):
        transitions, obs = _env_step(run, obs, actions)
        warm = t < cfg.warmup_steps
        num_updates = 0 if warm else schedule.next()
        step_fn = cache.get(num_updates, random_action=warm)
        states, buffers, actions, metrics = step_fn(states, buffers, transitions, obs)
        actions, metrics = jax.device_get((actions, metrics))
        _record(run, states, metrics, t)
        states, info = hooks.after_updates(states, buffers, updates, updates + num_updates, t)
        _log_each(run, info, t)
        updates += num_updates
        if cfg.health_every and t % cfg.health_every == 0 and updates > 0:
            _log_each(run, hooks.health(states, buffers, t), t)
        window.steps, window.updates = window.steps + 1, window.updates + num_updates
        if t % cfg.log_every == 0:
            _log(run, window.rates(cfg.action_repeat), t)
            window = Window()
        if t % cfg.eval_every == 0 or t == total:
            run.evaluate(states, t)
            run.checkpoint(states, t)
        elif cfg.checkpoint_every and t % cfg.checkpoint_every == 0:
            run.checkpoint(states, t)
        if t % 100 == 0 or t == total:
            bar.update(t - bar.n)
            last = np.nanmean([s.last_eval for s in run.seeds])
            bar.set_postfix(eval_return=f"{last:.1f}", refresh=False)
    bar.close()


def _record(run: Run, states: SACState, metrics: dict[str, np.ndarray], t: int) -> None:
    """Accumulate each seed's update metrics; stop on a non-finite loss."""
    for i, seed_run in enumerate(run.seeds):
        seed_metrics = {k: v[i] for k, v in metrics.items()}
        _check_losses(seed_run, states, i, seed_metrics, t)
        seed_run.acc.add(seed_metrics)


def _log_each(run: Run, per_seed: list[dict[str, float]], t: int) -> None:
    for seed_run, metrics in zip(run.seeds, per_seed, strict=True):
        if metrics:
            seed_run.logger.log(metrics, run.env_step(t))


def _log(run: Run, perf: dict[str, float], t: int) -> None:
    for seed_run in run.seeds:
        seed_run.logger.log(seed_run.acc.means() | perf, run.env_step(t))
        seed_run.acc.reset()


def _check_losses(
    seed_run: SeedRun, states: SACState, i: int, metrics: dict[str, Any], t: int
) -> None:
    """Stop on a non-finite loss: save seed i's state and name the loss (no silent divergence)."""
    for key, value in metrics.items():
        if key.endswith("_loss") and not np.isfinite(value):
            seed_run.checkpoint(take(states, i), t, "checkpoint_nan.msgpack")
            env_step = t * seed_run.cfg.action_repeat
            raise TrainingError(
                f"{key} became {value} at env step {env_step} (seed {seed_run.cfg.seed}); state "
                f"saved to {seed_run.run_dir / 'checkpoint_nan.msgpack'}; try a lower learning "
                "rate or check the environment's rewards"
            )
