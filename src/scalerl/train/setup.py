"""Resolving a run: suite presets and derived values, the run directory, config files."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any

from scalerl.agents.actor_critic import ActorCritic
from scalerl.agents.registry import make_agent
from scalerl.config import (
    AgentConfig,
    OfflineConfig,
    PlasticityConfig,
    TrainConfig,
    auto_utd,
    lr_decay_steps,
    seed_list,
    validate_train,
)
from scalerl.envs import discount_heuristic, suite_preset
from scalerl.envs.make import check_continuous_id
from scalerl.errors import ConfigError, ScalerlError
from scalerl.train.logging import Logger

CONFIG_NAME = "config.json"
CHECKPOINT_NAME = "checkpoint.msgpack"
CURVE_NAME = "learning_curve.png"


def resolve(cfg: TrainConfig) -> TrainConfig:
    """Fill every `None` ("auto") value from the suite preset and the derived-value functions.

    Raises:
        ConfigError: invalid values. EnvError: unknown environment id.
    """
    validate_train(cfg)
    check_continuous_id(cfg.env)
    preset = suite_preset(cfg.env)
    repeat = cfg.action_repeat or preset.action_repeat
    limit = cfg.max_episode_steps or preset.max_episode_steps
    agent = cfg.agent
    gamma = agent.gamma if agent.gamma is not None else discount_heuristic(limit, repeat)
    use_cdq = agent.use_cdq if agent.use_cdq is not None else auto_cdq(preset.episodic, agent.algo)
    agent = dataclasses.replace(agent, gamma=gamma, use_cdq=use_cdq)
    resolved = dataclasses.replace(
        cfg,
        action_repeat=repeat,
        max_episode_steps=limit,
        utd=cfg.utd if cfg.utd is not None else auto_utd(repeat),
        eval_every=cfg.eval_every or preset.eval_every,
        init_from=absolute(cfg.init_from),
        preload_dataset=absolute(cfg.preload_dataset),
        agent=agent,
    )
    if resolved.env_steps < repeat:
        raise ConfigError(f"env_steps ({cfg.env_steps}) is below one agent step ({repeat} frames)")
    check_budget(resolved)
    return resolved


def check_budget(cfg: TrainConfig) -> None:
    """Raise ConfigError when a resolved run's budget ends before its first update.

    `--env-steps` counts environment frames, `--warmup-steps` agent steps (frames / action
    repeat); updates start at agent step `warmup_steps`.
    """
    steps = agent_steps(cfg)
    if steps < cfg.num_envs:
        raise ConfigError(
            f"env_steps ({cfg.env_steps} frames = {steps} agent steps) is below one step of "
            f"{cfg.num_envs} environments; raise --env-steps or lower --num-envs"
        )
    steps -= steps % cfg.num_envs
    if steps < cfg.warmup_steps:
        raise ConfigError(
            f"env_steps ({cfg.env_steps} frames = {steps} agent steps at action repeat "
            f"{cfg.action_repeat}) ends before warmup_steps ({cfg.warmup_steps} agent steps), so "
            "no update would run; raise --env-steps or lower --warmup-steps"
        )


def absolute(path: Path | None) -> Path | None:
    """An absolute path (so config.json stays valid from any working directory), or None."""
    return None if path is None else Path(path).resolve()


def auto_cdq(episodic: bool, algo: str) -> bool:
    """Clipped double-Q when not set: on for episodic suites (SimbaV2 code) and always for TD3,
    whose target is the minimum of two critics by definition."""
    return episodic or algo == "td3"


def agent_steps(cfg: TrainConfig) -> int:
    """Number of agent (interaction) steps of a resolved run: env frames / action repeat."""
    return cfg.env_steps // cfg.action_repeat


def replay_capacity(cfg: TrainConfig, preload_rows: int = 0) -> int:
    """Replay capacity of a resolved run: the budget's transitions plus preloaded ones, at most
    `buffer_capacity`; with n-step returns over N > 1 environments, rounded down to a multiple
    of N (each environment's rows then stay N apart when the ring wraps)."""
    capacity = min(cfg.buffer_capacity, agent_steps(cfg) + preload_rows)
    if cfg.num_envs > 1 and cfg.agent.n_step > 1:
        capacity -= capacity % cfg.num_envs
    return capacity


def build_agent(cfg: TrainConfig, obs_dim: int, action_dim: int) -> ActorCritic:
    """The agent (SAC, TD3 or DDPG) of a resolved run; LR decay length from the budget."""
    decay = lr_decay_steps(cfg.env_steps, cfg.action_repeat, cfg.utd, cfg.agent.lr_decay_fraction)
    return make_agent(cfg.agent, obs_dim, action_dim, decay)


def default_run_name(cfg: TrainConfig, stamp: str | None = None) -> str:
    """<agent>-<env>-s<seed>-<YYYYmmdd-HHMMSS>, with characters safe for a directory name."""
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    return f"{cfg.agent.agent}-{safe_name(cfg.env)}-s{cfg.seed}-{stamp}"


def safe_name(text: str) -> str:
    """`text` with every run of characters unsafe in a directory name replaced by '-'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def seed_configs(cfg: TrainConfig) -> list[TrainConfig]:
    """One single-seed config per seed, each naming its own run directory.

    With one seed the name is `--name` (or the default); with several, `<name>-s<seed>` (the
    default name already ends in the seed), so every seed's directory looks like a single run.
    """
    seeds = seed_list(cfg)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = []
    for seed in seeds:
        one = dataclasses.replace(cfg, seed=seed, seeds=None, num_seeds=1)
        name = cfg.name if cfg.name and len(seeds) == 1 else None
        if cfg.name and len(seeds) > 1:
            name = f"{cfg.name}-s{seed}"
        out.append(dataclasses.replace(one, name=name or default_run_name(one, stamp)))
    return out


def job_group(configs: list[TrainConfig]) -> str | None:
    """W&B group of a `--seeds` job: the seeds' run name without the seed (None for one seed)."""
    if len(configs) < 2:
        return None
    first = configs[0]
    return re.sub(rf"-s{first.seed}(?=-|$)", "", first.name or "", count=1) or None


def create_run_dir(cfg: TrainConfig) -> Path:
    """Create runs/<name>/; an existing non-empty directory is never overwritten."""
    run_dir = Path(cfg.run_root) / (cfg.name or default_run_name(cfg))
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ScalerlError(
            f"run directory {run_dir} already exists; choose another --name or delete it"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


PATH_FIELDS = ("run_root", "init_from", "preload_dataset", "dataset")
"""Config fields holding paths (strings in JSON)."""


def config_to_dict(cfg: TrainConfig | OfflineConfig) -> dict[str, Any]:
    """JSON-able dict of a run or offline config (paths as strings)."""
    data = dataclasses.asdict(cfg)
    return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


def config_from_dict(data: dict[str, Any], kind: type = TrainConfig) -> Any:
    """Inverse of `config_to_dict` for `kind` (TrainConfig or OfflineConfig).

    Raises:
        ConfigError: unknown or missing keys (a config file of another scalerl version).
    """
    try:
        agent_fields = dict(data["agent"])
        plasticity = PlasticityConfig(**agent_fields.pop("plasticity", {}))
        agent = AgentConfig(**agent_fields, plasticity=plasticity)
        rest = {k: v for k, v in data.items() if k != "agent"}
        for key in PATH_FIELDS:
            if rest.get(key) is not None:
                rest[key] = Path(rest[key])
        return kind(**rest, agent=agent)
    except (TypeError, KeyError) as err:
        raise ConfigError(f"config file does not match this scalerl version ({err})") from None


def open_logger(
    cfg: TrainConfig,
    run_dir: Path,
    resume_step: int | None,
    exp_name: str | None = None,
    group: str | None = None,
) -> Logger:
    """The run's logger (metrics.csv, TensorBoard, W&B); `resume_step` truncates to that step.

    Args:
        cfg: The seed's resolved config.
        run_dir: Its run directory.
        resume_step: Step (x-axis value) a resumed run continues from, or None.
        exp_name: The exp_name column (default: the agent name).
        group: W&B group of a new run (`job_group`).
    """
    return Logger(
        run_dir,
        exp_name or cfg.agent.agent,
        cfg.env,
        cfg.seed,
        tensorboard=cfg.tensorboard,
        wandb_project=cfg.wandb_project,
        wandb_config=config_to_dict(cfg),
        resume_step=resume_step,
        wandb_group=group,
    )


def write_config(run_dir: Path, cfg: TrainConfig) -> None:
    """Write the resolved config to <run>/config.json."""
    (run_dir / CONFIG_NAME).write_text(json.dumps(config_to_dict(cfg), indent=2) + "\n")


def read_config(run_dir: Path) -> TrainConfig:
    """Read <run>/config.json, with a clear error when the directory is not a run."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise ScalerlError(f"{run_dir} is not a scalerl run directory (no {CONFIG_NAME})")
    try:
        return config_from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{path} is not valid JSON ({err}); the run is intact: restore the file from a backup "
            "or from the copy in every checkpoint's metadata "
            "(scalerl.train.checkpoint.read_checkpoint_meta(path)['config'])"
        ) from None
