"""The online training loop (spec 2.10): the only place where env, buffer, agent and logger meet."""

from __future__ import annotations

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
from scalerl.config import TrainConfig
from scalerl.envs import env_info, make_env
from scalerl.errors import TrainingError
from scalerl.train.checkpoint import save_checkpoint
from scalerl.train.evaluate import evaluate_policy, make_policy
from scalerl.train.logging import Logger, MeanAccumulator
from scalerl.train.setup import (
    CHECKPOINT_NAME,
    agent_steps,
    build_agent,
    config_to_dict,
    create_run_dir,
    resolve,
    write_config,
)
from scalerl.train.step import StepCache, UpdateSchedule

CURVE_NAME = "learning_curve.png"


@dataclass
class Episode:
    """Return and length of the training episode in progress."""

    ret: float = 0.0
    length: int = 0


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
class Run:
    """Host-side pieces of one run (the agent itself stays a pure state pytree)."""

    cfg: TrainConfig
    run_dir: Path
    env: gym.Env
    eval_env: gym.Env
    sac: SAC
    logger: Logger
    policy: Any
    last_eval: float = math.nan

    def env_step(self, agent_step: int) -> int:
        return agent_step * self.cfg.action_repeat

    def checkpoint(self, state: SACState, agent_step: int, name: str = CHECKPOINT_NAME) -> None:
        meta = {
            "agent_step": agent_step,
            "env_step": self.env_step(agent_step),
            "config": config_to_dict(self.cfg),
            "scalerl_version": scalerl.__version__,
        }
        save_checkpoint(self.run_dir / name, state, meta)

    def evaluate(self, state: SACState, agent_step: int) -> None:
        result = evaluate_policy(self.eval_env, self.policy, state, self.cfg.eval_episodes)
        metrics = result.metrics()
        self.last_eval = metrics["eval/return"]
        self.logger.log(metrics, self.env_step(agent_step))
        plot_learning_curve(self.run_dir / "metrics.csv", self.run_dir / CURVE_NAME)


def train(cfg: TrainConfig) -> Path:
    """Train one agent online; returns the run directory (see docs/outputs.md).

    Raises:
        ScalerlError: invalid config or env id (before any work), non-finite env values, or a
            non-finite loss (after saving the state to checkpoint_nan.msgpack).
    """
    cfg = resolve(cfg)
    run = _open_run(cfg)
    try:
        _run_loop(run)
    finally:
        run.logger.close()
        run.env.close()
        run.eval_env.close()
    return run.run_dir


def _open_run(cfg: TrainConfig) -> Run:
    env = make_env(
        cfg.env, cfg.seed, action_repeat=cfg.action_repeat, max_episode_steps=cfg.max_episode_steps
    )
    eval_env = make_env(
        cfg.env, cfg.seed, action_repeat=cfg.action_repeat, max_episode_steps=cfg.max_episode_steps
    )
    sac = build_agent(cfg, *env_info(env))
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
    return Run(cfg, run_dir, env, eval_env, sac, logger, make_policy(sac))


def _run_loop(run: Run) -> None:
    cfg, sac = run.cfg, run.sac
    total = agent_steps(cfg)
    state = sac.init(jax.random.PRNGKey(cfg.seed))
    buffer = replay_init(min(cfg.buffer_capacity, total), sac.obs_dim, sac.action_dim)
    run.evaluate(state, 0)
    obs, _ = run.env.reset()
    action = np.random.default_rng(cfg.seed).uniform(-1.0, 1.0, sac.action_dim)
    schedule, cache = UpdateSchedule(cfg.utd), StepCache(sac)
    acc, window, episode = MeanAccumulator(), Window(), Episode()
    bar = tqdm(total=total, unit="step", disable=not cfg.progress, dynamic_ncols=True)
    for t in range(1, total + 1):
        next_obs, reward, terminated, truncated, _ = run.env.step(action)
        transition = _transition(obs, action, reward, terminated, truncated, next_obs)
        episode.ret, episode.length = episode.ret + float(reward), episode.length + 1
        if terminated or truncated:
            acc.add({"train/episode_return": episode.ret, "train/episode_length": episode.length})
            episode = Episode()
            next_obs, _ = run.env.reset()
        warm = t < cfg.warmup_steps
        num_updates = 0 if warm else schedule.next()
        step_fn = cache.get(num_updates, random_action=warm)
        state, buffer, action, metrics = step_fn(state, buffer, transition, next_obs)
        action, metrics = jax.device_get((action, metrics))
        obs = next_obs
        _check_losses(run, state, metrics, t)
        acc.add(metrics)
        window.steps, window.updates = window.steps + 1, window.updates + num_updates
        if t % cfg.log_every == 0:
            run.logger.log(acc.means() | window.rates(cfg.action_repeat), run.env_step(t))
            acc.reset()
            window = Window()
        if t % cfg.eval_every == 0 or t == total:
            run.evaluate(state, t)
            run.checkpoint(state, t)
        elif cfg.checkpoint_every and t % cfg.checkpoint_every == 0:
            run.checkpoint(state, t)
        if t % 100 == 0 or t == total:
            bar.update(t - bar.n)
            bar.set_postfix(eval_return=f"{run.last_eval:.1f}", refresh=False)
    bar.close()


def _transition(obs, action, reward, terminated, truncated, next_obs) -> Transition:
    f32 = np.float32
    return Transition(
        obs=np.asarray(obs, f32),
        action=np.asarray(action, f32),
        reward=f32(reward),
        terminated=f32(terminated),
        truncated=f32(truncated),
        next_obs=np.asarray(next_obs, f32),
    )


def _check_losses(run: Run, state: SACState, metrics: dict[str, Any], t: int) -> None:
    """Stop on a non-finite loss: save the state and name the loss (no silent divergence)."""
    for key, value in metrics.items():
        if key.endswith("_loss") and not np.isfinite(value):
            run.checkpoint(state, t, "checkpoint_nan.msgpack")
            raise TrainingError(
                f"{key} became {value} at env step {run.env_step(t)}; state saved to "
                f"{run.run_dir / 'checkpoint_nan.msgpack'}; try a lower learning rate "
                "or check the environment's rewards"
            )
