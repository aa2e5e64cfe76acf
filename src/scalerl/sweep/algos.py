"""Sweeps of algorithms with their own configs and loops (`--algo ppo`): fields, runs, training.

The off-policy algorithms (sac, td3, ddpg) share `TrainConfig`; an algorithm with its own loop
has its own run config (PPO: `PPOTrainConfig` with `PPOConfig` and `PlasticityConfig`), its own
presets and its own train/resume functions. This module gives the grid, the jobs and the runner
what they need of such an algorithm without importing JAX.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalerl.errors import ConfigError

SEPARATE_ALGOS = ("ppo",)
"""Algorithms a sweep selects with `--algo` (the off-policy ones need none)."""


@dataclass(frozen=True)
class AlgoConfigs:
    """The config classes and functions of one algorithm with its own loop."""

    train: type
    """Run config (fields: env, seed, seeds, num_seeds, name, run_root, progress, agent)."""
    agent: type
    """Agent config (field `plasticity`: a `PlasticityConfig`)."""
    preset: Any
    """agent preset name -> agent config."""
    validate: Any
    """run config -> None, raising ConfigError."""


def algo_configs(algo: str) -> AlgoConfigs:
    """The configs of `algo` (one of `SEPARATE_ALGOS`).

    Raises:
        ConfigError: unknown algorithm.
    """
    if algo == "ppo":
        from scalerl.config_ppo import PPOConfig, PPOTrainConfig, ppo_preset, validate_ppo_train

        return AlgoConfigs(PPOTrainConfig, PPOConfig, ppo_preset, validate_ppo_train)
    raise ConfigError(
        f"unknown sweep algo {algo!r}; choose one of {', '.join(SEPARATE_ALGOS)} "
        "(or leave --algo out for sac/td3/ddpg)"
    )


def build_config(
    algo: str, env: str, agent: str, seed: int, groups: dict[str, dict], fixed: dict
) -> Any:
    """The validated run config of one run of an `algo` grid.

    Args:
        algo: The algorithm.
        env: Environment id.
        agent: Agent preset.
        seed: Seed.
        groups: Parsed grid values by owner ('train', 'agent', 'plasticity').
        fixed: Run fields the grid sets (name, run_root, progress, seeds, num_seeds).

    Raises:
        ConfigError/EnvError: an invalid value or env id.
    """
    configs = algo_configs(algo)
    preset = configs.preset(agent)
    plasticity = dataclasses.replace(preset.plasticity, **groups["plasticity"])
    agent_cfg = dataclasses.replace(preset, plasticity=plasticity, **groups["agent"])
    cfg = configs.train(env=env, seed=seed, agent=agent_cfg, **groups["train"], **fixed)
    configs.validate(cfg)
    check_env(env)
    return cfg


def check_env(env: str) -> None:
    """Raise EnvError for an env id PPO cannot run (JAX-native ids by name, others by suite)."""
    if is_jax_id(env):
        from scalerl.envs.jax_envs import validate_jax_id

        validate_jax_id(env)
        return
    from scalerl.envs.suites import suite_preset

    suite_preset(env)


def is_jax_id(env: str) -> bool:
    """Whether `env` is a JAX-native id (gymnax:, craftax:, brax:), without importing JAX."""
    return env.startswith(("gymnax:", "craftax:", "brax:"))


def is_separate(cfg: Any) -> bool:
    """Whether a run config belongs to an algorithm with its own loop."""
    return getattr(cfg, "algo", None) in SEPARATE_ALGOS


def saved_algo(run_dir: Path) -> str | None:
    """The `algo` of a run directory's config.json (None if unreadable)."""
    try:
        return json.loads((Path(run_dir) / "config.json").read_text()).get("algo")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def train_fresh(cfg: Any) -> list[Path]:
    """Train the seeds of a run config of an algorithm with its own loop."""
    from scalerl.train.ppo_run import train_ppo

    return train_ppo(cfg)


def train_resume(run_dirs: list[Path]) -> list[Path]:
    """Continue runs of an algorithm with its own loop exactly."""
    from scalerl.train.ppo_run import resume_ppo

    return resume_ppo(run_dirs)


def default_seeds_per_process(configs: list[Any]) -> int | None:
    """Seeds per process of a PPO grid: every seed of a cell in one process for JAX-native ids
    (the fused loop vmaps them: one compilation, one XLA program), 1 for Gymnasium ids (the
    host loop trains packed seeds one after the other, so separate processes run them in
    parallel); None (the automatic plan) for other algorithms.

    Args:
        configs: The run configs of the grid (one per run).
    """
    separate = [c for c in configs if is_separate(c)]
    if not separate:
        return None
    if any(not is_jax_id(c.env) for c in separate):
        return 1
    per_cell: dict[tuple, int] = {}
    for c in separate:
        key = dataclasses.replace(c, seed=0, name=None)
        per_cell[key] = per_cell.get(key, 0) + 1
    return max(per_cell.values())
