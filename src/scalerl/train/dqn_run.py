"""`scalerl train --algo dqn`: parse options, create run directories, drive a DQN loop.

gymnax ids run the fused loop (`train.dqn_fused`), all seeds vmapped in one process; ale: and
Gymnasium ids run the host loop (`train.dqn_host`). Every seed gets its own run directory with
config.json ("algo": "dqn"), metrics.csv (+ TensorBoard) and checkpoints holding the agent,
the environments (host loop: the action log) and the replay buffer, so `scalerl train --resume
RUN` continues exactly where the run stopped. Evaluation episodes: `train.dqn_evaluate`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import tyro

from scalerl.agents.dqn import DQN, make_dqn
from scalerl.cli import _option
from scalerl.config import seed_list
from scalerl.config_dqn import (
    PRESETS,
    DQNConfig,
    DQNTrainConfig,
    dqn_preset,
    eval_due,
    num_rounds,
    preset_for_env,
    rounds_per_log,
    validate_dqn_train,
    warmup_rounds,
)
from scalerl.envs.jax_envs import JaxEnv, is_jax_env, make_jax_env
from scalerl.errors import ConfigError
from scalerl.train import algo_run, dqn_fused
from scalerl.train.checkpoint import load_checkpoint, save_checkpoint
from scalerl.train.dqn_evaluate import make_fused_eval
from scalerl.train.jax_episodes import fused_eval_metrics
from scalerl.train.logging import Logger
from scalerl.train.ppo_fused import summarize
from scalerl.train.ppo_run import progress_line
from scalerl.train.setup import CHECKPOINT_NAME

DESCRIPTION = (
    "Train DQN (Mnih et al. 2015) with optional double Q-learning, n-step returns, dueling and "
    "C51 heads. gymnax:<id> runs acting, replay and updates as one jitted scan, vmapped over "
    "--seeds; ale:<Game> and Gymnasium ids step the environments on the host. Defaults follow "
    "--preset (auto: atari for ale:, minatar for *-MinAtar, classic otherwise). Continue a run: "
    "scalerl train --resume RUN_DIR [RUN_DIR ...]."
)


def preset_of(args: list[str]) -> str:
    """The preset `args` select: --preset, or auto's choice for --env."""
    preset = _option(args, "--preset") or "auto"
    if preset == "auto":
        return preset_for_env(_option(args, "--env") or DQNTrainConfig.env)
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of auto, {', '.join(PRESETS)}")
    return preset


def parse_dqn(args: list[str]) -> DQNTrainConfig:
    """Parse `scalerl train --algo dqn` options on top of the selected preset."""
    default = DQNTrainConfig(agent=dqn_preset(preset_of(args)))
    return tyro.cli(
        tyro.conf.OmitArgPrefixes[DQNTrainConfig],
        args=args,
        default=default,
        prog="scalerl train --algo dqn",
        description=DESCRIPTION,
    )


# ----------------------------------------------------------------------------- run directories


def run_dirs(cfg: DQNTrainConfig, seeds: list[int]) -> list[Path]:
    """One new directory per seed: <name>[-s<seed>] or dqn-<env>-s<seed>-<stamp>."""
    return algo_run.make_run_dirs(cfg, seeds, "dqn")


def write_dqn_config(run_dir: Path, cfg: DQNTrainConfig) -> None:
    """<run>/config.json of one seed (algo "dqn" marks it for --resume)."""
    algo_run.write_config(run_dir, cfg)


def read_dqn_config(run_dir: Path) -> DQNTrainConfig:
    """Inverse of `write_dqn_config` (`scalerl.train.algo_run.read_config`)."""
    return algo_run.read_config(run_dir, "dqn", DQNTrainConfig, DQNConfig)


def is_run(run_dir: Path) -> bool:
    """Whether `run_dir` holds a DQN run's config."""
    return algo_run.is_algo_run(run_dir, "dqn")


def open_loggers(cfg: DQNTrainConfig, dirs: list[Path], seeds: list[int], resume_step=None):
    """One Logger per seed (exp_name dqn)."""
    return algo_run.open_loggers(cfg, "dqn", dirs, seeds, resume_step)


def build(cfg: DQNTrainConfig, env: JaxEnv) -> DQN:
    """The DQN agent of a run on a gymnax environment."""
    if not env.discrete:
        raise ConfigError(f"{cfg.env} has continuous actions; DQN needs discrete ones")
    return make_dqn(cfg.agent, dqn_fused.frame_shape(env), env.num_actions)


def train_dqn(cfg: DQNTrainConfig) -> list[Path]:
    """Run DQN for every seed of `cfg`; returns the run directories."""
    validate_dqn_train(cfg)
    seeds = seed_list(cfg)
    if not is_jax_env(cfg.env):
        from scalerl.train.dqn_host import train_host

        if len(seeds) > 1:
            raise ConfigError(
                "--seeds with an ale:/Gymnasium id is not supported by DQN's host loop; "
                "run one seed per process or use a gymnax: id"
            )
        return train_host(cfg, seeds[0])
    env = make_jax_env(cfg.env)
    agent = build(cfg, env)
    dirs = run_dirs(cfg, seeds)
    for d, s in zip(dirs, seeds, strict=True):
        write_dqn_config(d, dataclasses.replace(cfg, seed=s, seeds=None, num_seeds=1))
    states, carries = dqn_fused.init_seeds(agent, env, seeds)
    FusedRun(cfg, env, agent, dirs, seeds).run(states, carries, 0)
    return dirs


def resume_dqn(dirs: list[Path]) -> list[Path]:
    """Continue DQN runs (the seed directories of one job) from their checkpoints."""
    cfgs = [read_dqn_config(d) for d in dirs]
    base = algo_run.job_base_config(cfgs)
    if not is_jax_env(base.env):
        from scalerl.train.dqn_host import resume_host

        if len(dirs) > 1:
            raise ConfigError("resume one ale:/Gymnasium DQN run per process")
        return resume_host(cfgs[0], dirs[0])
    seeds = [c.seed for c in cfgs]
    env = make_jax_env(base.env)
    agent = build(base, env)
    template = dqn_fused.init_seeds(agent, env, seeds)
    trees, done = [], None
    for i, d in enumerate(dirs):
        one = jax.tree_util.tree_map(lambda x, i=i: x[i], template)
        tree, meta = load_checkpoint(d / CHECKPOINT_NAME, one)
        trees.append(tree)
        if done not in (None, meta["round"]):
            raise ConfigError("--resume directories were checkpointed at different rounds")
        done = meta["round"]
    states, carries = jax.tree_util.tree_map(lambda *xs: jax.device_put(np.stack(xs)), *trees)
    FusedRun(base, env, agent, list(dirs), seeds).run(states, carries, done)
    return list(dirs)


def next_chunk(cfg: DQNTrainConfig, done: int) -> tuple[int, bool]:
    """(rounds of the next chunk, whether they learn): up to a log point, never straddling
    the end of the warm-up."""
    total, warm = num_rounds(cfg), warmup_rounds(cfg)
    n = min(rounds_per_log(cfg), total - done)
    if done < warm:
        return min(n, warm - done), False
    return n, True


@dataclasses.dataclass
class FusedRun:
    """Drives the fused loop chunk by chunk (all seeds at once); logs and checkpoints."""

    cfg: DQNTrainConfig
    env: JaxEnv
    agent: DQN
    dirs: list[Path]
    seeds: list[int]
    _eval_fn: Any = None

    def run(self, states: Any, carries: Any, start: int) -> None:
        """Rounds start..num_rounds."""
        cfg, total = self.cfg, num_rounds(self.cfg)
        per = cfg.agent.steps_per_round
        loggers = open_loggers(cfg, self.dirs, self.seeds, start * per if start else None)
        chunks: dict[tuple[int, bool], Any] = {}
        done, last_ckpt = start, start
        try:
            while done < total:
                n, learn = next_chunk(cfg, done)
                if (n, learn) not in chunks:
                    chunks[n, learn] = dqn_fused.make_chunk_many(
                        self.agent, self.env, n, learn, cfg.health
                    )
                t0 = time.perf_counter()
                states, carries, (metrics, health) = chunks[n, learn](states, carries)
                metrics, health = jax.device_get((metrics, health))
                done += n
                rate = n * per * len(self.seeds) / (time.perf_counter() - t0)
                evals = self._evaluate(states, (done - n) * per, done * per, done == total)
                self._log(loggers, metrics, health, evals, done * per, rate)
                every = cfg.checkpoint_every
                if done == total or (every and (done - last_ckpt) * per >= every):
                    self._checkpoint(states, carries, done)
                    last_ckpt = done
        finally:
            for logger in loggers:
                logger.close()

    def _evaluate(self, states: Any, before: int, env_step: int, last: bool) -> list[dict] | None:
        """Every seed's eval/ metrics when an evaluation is due in (before, env_step]."""
        if not eval_due(self.cfg, before, env_step, last):
            return None
        if self._eval_fn is None:
            self._eval_fn = make_fused_eval(self.agent, self.env, self.cfg.eval_episodes)
        return fused_eval_metrics(self._eval_fn, states, self.seeds, env_step)

    def _log(self, loggers: list[Logger], metrics: Any, health: Any, evals: list[dict] | None,
             env_step: int, rate: float):  # fmt: skip
        for i, logger in enumerate(loggers):
            summary = summarize(jax.tree_util.tree_map(lambda x, i=i: x[i], metrics))
            if self.cfg.eval_every:  # eval/ comes from evaluation episodes only
                summary.pop("eval/return", None)
            summary |= evals[i] if evals else {}
            summary |= {k: float(v[i]) for k, v in health.items()}
            summary["perf/env_steps_per_second"] = rate
            logger.log(summary, env_step)
            if self.cfg.progress:
                print(progress_line(self.seeds[i], env_step, summary))

    def _checkpoint(self, states: Any, carries: Any, done: int) -> None:
        for i, d in enumerate(self.dirs):
            tree = jax.tree_util.tree_map(lambda x, i=i: np.asarray(x[i]), (states, carries))
            meta = {"round": done, "env_step": done * self.cfg.agent.steps_per_round}
            save_checkpoint(d / CHECKPOINT_NAME, tree, meta | {"algo": "dqn"})


def strip_algo(args: list[str]) -> list[str]:
    """`args` without `--algo dqn` / `--algo=dqn`."""
    return algo_run.strip_algo(args, "dqn")


def main(args: list[str]) -> list[Path]:
    """`scalerl train --algo dqn ...` or `scalerl train --resume DIR ...` of DQN runs."""
    return algo_run.run_main(args, "dqn", lambda a: train_dqn(parse_dqn(a)), resume_dqn)
