"""`scalerl train --algo ppo`: parse options, create run directories, drive a PPO loop.

JAX-native ids (gymnax:, craftax:) run the fused loop (`train.ppo_fused`), all seeds vmapped in
one process; other ids run the Gymnasium host loop (`train.ppo_host`). Every seed gets its own
run directory with config.json, metrics.csv (+ TensorBoard) and checkpoint.msgpack, the same
layout as off-policy runs, so `scalerl report` reads PPO runs too.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import tyro

from scalerl.agents.ppo import PPO, make_ppo
from scalerl.agents.ppo_net import ActionSpec
from scalerl.config import AGENTS, seed_list
from scalerl.config_ppo import (
    PPOConfig,
    PPOTrainConfig,
    iterations_per_log,
    num_iterations,
    ppo_preset,
    validate_ppo_train,
)
from scalerl.envs.jax_envs import JaxEnv, is_jax_env, make_jax_env
from scalerl.errors import ConfigError
from scalerl.train import algo_run, ppo_fused
from scalerl.train.compile_cache import enable_compilation_cache
from scalerl.train.logging import Logger
from scalerl.train.ppo_checkpoint import load_point, save_point, shared_step
from scalerl.train.resume import clean_partial_writes, restart_note

DESCRIPTION = (
    "Train PPO (Schulman et al. 2017). JAX-native ids (gymnax:<id>, "
    "craftax:Craftax-Classic-Symbolic-v1) run rollout, GAE and all epochs as one jitted scan, "
    "vmapped over --seeds; Gymnasium/DMC/MuJoCo ids step a Gymnasium vector env. Defaults follow "
    "--agent's preset (CleanRL's for mlp). Continue a run: scalerl train --algo ppo "
    "--resume RUN_DIR [RUN_DIR ...]."
)


def parse_ppo(args: list[str]) -> PPOTrainConfig:
    """Parse `scalerl train --algo ppo` options on top of the preset of --agent.agent."""
    agent = _agent_option(args)
    return tyro.cli(
        tyro.conf.OmitArgPrefixes[PPOTrainConfig],
        args=args,
        default=PPOTrainConfig(agent=ppo_preset(agent)),
        prog="scalerl train --algo ppo",
        description=DESCRIPTION,
    )


def _agent_option(args: list[str]) -> str:
    """The value of --agent (default mlp), checked."""
    value = "mlp"
    for i, arg in enumerate(args):
        if arg == "--agent" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--agent="):
            value = arg.split("=", 1)[1]
    if value not in AGENTS:
        raise ConfigError(f"unknown agent {value!r}; choose one of {', '.join(AGENTS)}")
    return value


# ----------------------------------------------------------------------------- run directories


def seed_run_dirs(cfg: PPOTrainConfig, seeds: list[int]) -> list[Path]:
    """One new directory per seed: <name>[-s<seed>] or ppo-<agent>-<env>-s<seed>-<stamp>."""
    return algo_run.make_run_dirs(cfg, seeds, f"ppo-{cfg.agent.agent}")


def write_ppo_config(run_dir: Path, cfg: PPOTrainConfig) -> None:
    """<run>/config.json of one seed (algo "ppo" marks it for --resume)."""
    algo_run.write_config(run_dir, cfg)


def read_ppo_config(run_dir: Path) -> PPOTrainConfig:
    """Inverse of `write_ppo_config` (`scalerl.train.algo_run.read_config`)."""
    return algo_run.read_config(run_dir, "ppo", PPOTrainConfig, PPOConfig)


def is_run(run_dir: Path) -> bool:
    """Whether `run_dir` holds a PPO run's config."""
    return algo_run.is_algo_run(run_dir, "ppo")


def open_loggers(cfg: PPOTrainConfig, dirs: list[Path], seeds: list[int], resume_step=None):
    """One Logger per seed (exp_name ppo-<agent>)."""
    return algo_run.open_loggers(cfg, f"ppo-{cfg.agent.agent}", dirs, seeds, resume_step)


# ----------------------------------------------------------------------------- entry points


def train_ppo(cfg: PPOTrainConfig) -> list[Path]:
    """Run PPO for every seed of `cfg`; returns the run directories."""
    validate_ppo_train(cfg)
    seeds = seed_list(cfg)
    enable_compilation_cache()
    if not is_jax_env(cfg.env):
        from scalerl.train.ppo_host import train_host

        return train_host(cfg, seeds)
    env = make_jax_env(cfg.env)
    dirs = seed_run_dirs(cfg, seeds)
    for d, s in zip(dirs, seeds, strict=True):
        write_ppo_config(d, seed_config(cfg, s, d))
    agent = build(cfg, env)
    states, carries = ppo_fused.init_seeds(agent, env, seeds)
    FusedRun(cfg, env, agent, dirs, seeds).run(states, carries, 0)
    return dirs


def seed_config(cfg: PPOTrainConfig, seed: int, run_dir: Path) -> PPOTrainConfig:
    """The single-seed config of one seed's run directory (named after the directory)."""
    return dataclasses.replace(cfg, seed=seed, seeds=None, num_seeds=1, name=run_dir.name)


def resume_ppo(run_dirs: list[Path]) -> list[Path]:
    """Continue PPO runs exactly from their newest resume points (see docs/agents/ppo.md).

    Several directories of a JAX-native id must be the seeds of one job (vmapped together);
    those of a Gymnasium id are continued one after the other. A run killed before its first
    resume point starts again from step 0 (the same result, exactly).

    Raises:
        ScalerlError: not PPO runs, runs of different jobs, or unusable checkpoints.
    """
    run_dirs = [Path(d) for d in run_dirs]
    cfgs = [read_ppo_config(d) for d in run_dirs]
    algo_run.job_base_config(cfgs)
    for d in run_dirs:
        clean_partial_writes(d)
    enable_compilation_cache()
    if not is_jax_env(cfgs[0].env):
        from scalerl.train.ppo_host import resume_host

        return resume_host(run_dirs)
    base, seeds = cfgs[0], [c.seed for c in cfgs]
    env = make_jax_env(base.env)
    return resume_fused(FusedRun, base, env, build(base, env), run_dirs, seeds)


def resume_fused(
    run_cls: type[FusedRun], cfg: Any, env: JaxEnv, agent: Any, run_dirs: list[Path], seeds
) -> list[Path]:
    """Continue a fused job from the newest resume point all its seeds share (PPO, PQN)."""
    template = ppo_fused.init_seeds(agent, env, seeds)
    step = shared_step(run_dirs)
    if step is None:
        restart_note(run_dirs)
        run_cls(cfg, env, agent, run_dirs, seeds).run(*template, 0, resuming=True)
        return run_dirs
    trees, iteration = [], 0
    for i, d in enumerate(run_dirs):
        one = jax.tree_util.tree_map(lambda x, i=i: x[i], template)
        tree, meta = load_point(d, step, lambda _, one=one: {"state": one[0], "carry": one[1]})
        trees.append((tree["state"], tree["carry"]))
        iteration = meta["iteration"]
    states, carries = jax.tree_util.tree_map(lambda *xs: jax.device_put(np.stack(xs)), *trees)
    run_cls(cfg, env, agent, run_dirs, seeds).run(states, carries, iteration, resuming=True)
    return run_dirs


def build(cfg: PPOTrainConfig, env: JaxEnv) -> PPO:
    """The PPO agent of a run on a JAX-native environment."""
    action = ActionSpec(env.discrete, env.num_actions)
    return make_ppo(cfg.agent, env.obs_dim, action, num_iterations(cfg))


@dataclasses.dataclass
class FusedRun:
    """Drives the fused loop in chunks of `iterations_per_log` iterations (all seeds at once)."""

    cfg: PPOTrainConfig
    env: JaxEnv
    agent: PPO
    dirs: list[Path]
    seeds: list[int]

    def total_iterations(self) -> int:
        """Iterations of the whole run."""
        return num_iterations(self.cfg)

    def iterations_per_log(self) -> int:
        """Iterations per jitted chunk (one log point each)."""
        return iterations_per_log(self.cfg)

    def open_loggers(self, resume_step: int | None) -> list[Logger]:
        """One logger per seed."""
        return open_loggers(self.cfg, self.dirs, self.seeds, resume_step)

    def run(self, states: Any, carries: Any, start: int, resuming: bool = False) -> None:
        """Iterations start..total; log and checkpoint between chunks. `resuming`: the run
        directories exist (metrics logged after iteration `start` are dropped)."""
        cfg, total = self.cfg, self.total_iterations()
        batch = cfg.agent.batch_size
        loggers = self.open_loggers(start * batch if resuming else None)
        chunks: dict[int, Any] = {}
        done, last_ckpt = start, start
        try:
            while done < total:
                n = min(self.iterations_per_log(), total - done)
                if n not in chunks:
                    chunks[n] = ppo_fused.make_chunk_many(self.agent, self.env, n, cfg.health)
                t0 = time.perf_counter()
                states, carries, (metrics, health) = chunks[n](states, carries)
                metrics, health = jax.device_get((metrics, health))
                done += n
                rate = n * batch * len(self.seeds) / (time.perf_counter() - t0)
                self._log(loggers, metrics, health, done * batch, rate)
                every = cfg.checkpoint_every
                if done == total or (every and (done - last_ckpt) * batch >= every):
                    self._checkpoint(states, carries, done)
                    last_ckpt = done
        finally:
            for logger in loggers:
                logger.close()

    def _log(self, loggers: list[Logger], metrics: Any, health: Any, env_step: int, rate: float):
        for i, logger in enumerate(loggers):
            seed_metrics = jax.tree_util.tree_map(lambda x, i=i: x[i], metrics)
            summary = ppo_fused.summarize(seed_metrics)
            summary |= {k: float(v[i]) for k, v in health.items()}
            summary["perf/env_steps_per_second"] = rate
            logger.log(summary, env_step)
            if self.cfg.progress:
                print(progress_line(self.seeds[i], env_step, summary))

    def _checkpoint(self, states: Any, carries: Any, iteration: int) -> None:
        """Every seed's resume point {"state", "carry"} and agent checkpoint."""
        for i, d in enumerate(self.dirs):
            pair = (states, carries)
            state, carry = jax.tree_util.tree_map(lambda x, i=i: np.asarray(x[i]), pair)
            meta = {"iteration": iteration, "env_step": iteration * self.cfg.agent.batch_size}
            save_point(d, state, {"state": state, "carry": carry}, meta | {"algo": self.cfg.algo})


def progress_line(seed: int, env_step: int, summary: dict[str, float]) -> str:
    """One progress line: the mean return of the episodes finished since the last line."""
    ret = summary.get("train/episode_return")
    text = "no episode finished yet" if ret is None else f"episode return {ret:.2f}"
    return f"[seed {seed}] step {env_step}: {text}"


def strip_algo(args: list[str]) -> list[str]:
    """`args` without its `--algo ppo` / `--algo=ppo`."""
    return algo_run.strip_algo(args, "ppo")


def main(args: list[str]) -> list[Path]:
    """`scalerl train --algo ppo ...` or `scalerl train --algo ppo --resume DIR ...`."""
    return algo_run.run_main(args, "ppo", lambda a: train_ppo(parse_ppo(a)), resume_ppo)
