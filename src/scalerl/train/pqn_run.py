"""`scalerl train --algo pqn`: parse options, create run directories, drive the fused PQN loop.

On JAX-native ids (gymnax:, craftax:) rollout, Q(λ) targets and all epochs are one
jitted `lax.scan` per chunk of iterations, vmapped over seeds. The loop is PPO's
(`train.ppo_fused`: the PQN agent has PPO's acting and learning interface); ale:<Game> ids run
the host loop of `train.pqn_host` (seeds one after the other). Every seed gets its
own run directory with config.json ("algo": "pqn"), metrics.csv (+ TensorBoard) and
checkpoint.msgpack, so `scalerl report` and `scalerl train --resume` work on PQN runs.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import tyro

from scalerl.agents.pqn import PQN, make_pqn
from scalerl.cli import _option
from scalerl.config import seed_list
from scalerl.config_pqn import (
    PQNConfig,
    PQNTrainConfig,
    iterations_per_log,
    num_iterations,
    pqn_preset,
    resolve_torso,
    validate_pqn_train,
)
from scalerl.envs.ale import ALE_PREFIX
from scalerl.envs.jax_envs import JaxEnv, is_jax_env, make_jax_env
from scalerl.errors import ConfigError
from scalerl.train import algo_run, ppo_fused, ppo_run
from scalerl.train.logging import Logger
from scalerl.train.resume import clean_partial_writes
from scalerl.train.setup import CONFIG_NAME, config_to_dict

ALGO = "pqn"
DESCRIPTION = (
    "Train PQN (Gallici et al. 2025): Q(λ) from many vectorised environments, no replay buffer "
    "and no target network, LayerNorm, ε-greedy, RAdam. Runs on gymnax:<id> (MinAtar games: "
    "gymnax:Breakout-MinAtar, ...) and craftax:Craftax-Classic-Symbolic-v1 as one jitted scan, "
    "vmapped over --seeds; ale:<Game> ids run a host loop over Atari envs. Defaults follow "
    "--env's preset (MinAtar: the authors' MinAtar settings and CNN; ale: their Atari settings; "
    "others: their CartPole settings). Continue a run: scalerl train "
    "--resume RUN_DIR [RUN_DIR ...]."
)


def parse_pqn(args: list[str]) -> PQNTrainConfig:
    """Parse `scalerl train --algo pqn` options on top of the preset of --env."""
    env = _option(args, "--env") or PQNTrainConfig.env
    return tyro.cli(
        tyro.conf.OmitArgPrefixes[PQNTrainConfig],
        args=join_seeds(args),
        default=PQNTrainConfig(env=env, agent=pqn_preset(env)),
        prog="scalerl train --algo pqn",
        description=DESCRIPTION,
    )


SEED_TOKEN = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def join_seeds(args: list[str]) -> list[str]:
    """`--seeds 0 1 2` -> `--seeds 0,1,2` (a space-separated list is accepted too)."""
    out: list[str] = []
    for arg in args:
        if out and SEED_TOKEN.match(arg) and len(out) >= 2 and out[-2] == "--seeds":
            out[-1] = f"{out[-1]},{arg}"
        else:
            out.append(arg)
    return out


# ----------------------------------------------------------------------------- run directories


def seed_run_dirs(cfg: PQNTrainConfig, seeds: list[int]) -> list[Path]:
    """One new directory per seed: <name>[-s<seed>] or <exp_name>-<env>-s<seed>-<stamp>."""
    return algo_run.make_run_dirs(cfg, seeds, exp_name(cfg))


def write_seed_configs(
    cfg: PQNTrainConfig, dirs: list[Path], seeds: list[int]
) -> list[PQNTrainConfig]:
    """Write each seed's single-seed config.json ("algo": "pqn" marks it); returns them."""
    ones = [dataclasses.replace(cfg, seed=s, seeds=None, num_seeds=1) for s in seeds]
    for d, one in zip(dirs, ones, strict=True):
        (d / CONFIG_NAME).write_text(json.dumps(config_to_dict(one), indent=2) + "\n")
    return ones


def exp_name(cfg: PQNTrainConfig) -> str:
    """pqn-<trunk>, or pqn-<torso> without a trunk (the experiment name of the logs and of
    `scalerl report` labels)."""
    trunk = cfg.agent.trunk
    return f"{ALGO}-{resolve_torso(cfg.agent.torso, cfg.env) if trunk == 'none' else trunk}"


def read_pqn_config(run_dir: Path) -> PQNTrainConfig:
    """The config.json of a PQN run (`scalerl.train.algo_run.read_config`)."""
    return algo_run.read_config(run_dir, ALGO, PQNTrainConfig, PQNConfig)


def is_run(run_dir: Path) -> bool:
    """Whether `run_dir` holds a PQN run's config."""
    return algo_run.is_algo_run(run_dir, ALGO)


# ----------------------------------------------------------------------------- entry points


def frame_shape(env: JaxEnv, torso: str) -> tuple[int, ...]:
    """What the Q network sees: (obs_dim,) without a torso, the (H, W, C) frame with one.

    Raises:
        ConfigError: a conv torso on an environment without image observations.
    """
    if torso == "none":
        return (env.obs_dim,)
    shape = tuple(env.env.observation_space(env.params).shape)
    if len(shape) != 3:
        raise ConfigError(
            f"--torso {torso} needs (H, W, C) frames but {env.env_id} observations have shape "
            f"{shape}; use --torso none"
        )
    return shape


def build(cfg: PQNTrainConfig, env: JaxEnv) -> PQN:
    """The PQN agent of a run on a JAX-native environment."""
    if not env.discrete:
        raise ConfigError(f"PQN needs discrete actions; {cfg.env} is continuous")
    torso = resolve_torso(cfg.agent.torso, cfg.env)
    shape = frame_shape(env, torso)
    try:
        return make_pqn(cfg.agent, shape, env.num_actions, num_iterations(cfg), torso)
    except (TypeError, ValueError) as err:  # e.g. a torso too deep for small frames
        msg = f"--torso {torso} cannot read {env.env_id} frames {shape}: {err}"
        raise ConfigError(msg) from None


def train_pqn(cfg: PQNTrainConfig) -> list[Path]:
    """Run PQN for every seed of `cfg`; returns the run directories."""
    validate_pqn_train(cfg)
    seeds = seed_list(cfg)
    if cfg.env.startswith(ALE_PREFIX):
        from scalerl.train.pqn_host import train_ale

        return train_ale(cfg, seeds)
    if not is_jax_env(cfg.env):
        raise ConfigError(
            f"PQN runs on JAX-native ids (gymnax:<id>, craftax:<id>) and ale:<Game>, "
            f"not {cfg.env!r}"
        )
    env = make_jax_env(cfg.env)
    agent = build(cfg, env)
    dirs = seed_run_dirs(cfg, seeds)
    write_seed_configs(cfg, dirs, seeds)
    states, carries = ppo_fused.init_seeds(agent, env, seeds)
    FusedRun(cfg, env, agent, dirs, seeds).run(states, carries, 0)
    return dirs


def resume_pqn(run_dirs: list[Path]) -> list[Path]:
    """Continue PQN runs (the seed directories of one job) from their checkpoints, exactly."""
    cfgs = [read_pqn_config(d) for d in run_dirs]
    base = algo_run.job_base_config(cfgs)
    if base.env.startswith(ALE_PREFIX):
        from scalerl.train.pqn_host import resume_ale

        return resume_ale(list(run_dirs))
    for d in run_dirs:
        clean_partial_writes(d)
    seeds = [c.seed for c in cfgs]
    env = make_jax_env(base.env)
    return ppo_run.resume_fused(FusedRun, base, env, build(base, env), list(run_dirs), seeds)


def open_loggers(
    cfg: PQNTrainConfig, dirs: list[Path], seeds: list[int], resume_step: int | None = None
) -> list[Logger]:
    """One Logger per seed (exp_name pqn-<trunk>)."""
    return algo_run.open_loggers(cfg, exp_name(cfg), dirs, seeds, resume_step)


class FusedRun(ppo_run.FusedRun):
    """PPO's fused driver (`scalerl.train.ppo_run.FusedRun`) with PQN's iteration counts and
    loggers: chunks of `iterations_per_log` iterations, all seeds at once, resume points."""

    def total_iterations(self) -> int:
        return num_iterations(self.cfg)

    def iterations_per_log(self) -> int:
        return iterations_per_log(self.cfg)

    def open_loggers(self, resume_step: int | None) -> list[Logger]:
        return open_loggers(self.cfg, self.dirs, self.seeds, resume_step)


def strip_algo(args: list[str]) -> list[str]:
    """`args` without its `--algo pqn` / `--algo=pqn`."""
    return algo_run.strip_algo(args, ALGO)


def main(args: list[str]) -> list[Path]:
    """`scalerl train --algo pqn ...` or `scalerl train --resume DIR ...` of a PQN run."""
    return algo_run.run_main(args, ALGO, lambda a: train_pqn(parse_pqn(a)), resume_pqn)
