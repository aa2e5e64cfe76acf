"""Run directories, config files, loggers and the command line shared by the algorithms with
their own training loops (PPO, DQN, PQN; `scalerl.cli.SEPARATE_LOOPS`).

Each such run directory holds a ``config.json`` whose ``"algo"`` names the algorithm (that is how
``scalerl train --resume DIR`` finds the loop) and whose ``"agent"`` entry nests the agent's
config with its ``"plasticity"`` options, as the off-policy runs do.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from scalerl.config import PlasticityConfig
from scalerl.errors import ConfigError, ScalerlError
from scalerl.train.logging import Logger
from scalerl.train.setup import CONFIG_NAME, config_to_dict, safe_name


def make_run_dirs(cfg: Any, seeds: list[int], prefix: str) -> list[Path]:
    """One new directory per seed under ``cfg.run_root``.

    Named ``<cfg.name>`` (one seed) or ``<cfg.name>-s<seed>``; without a name
    ``<prefix>-<env>-s<seed>-<time>``.

    Raises:
        ScalerlError: a directory exists and is not empty.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dirs = []
    for seed in seeds:
        if cfg.name:
            name = cfg.name if len(seeds) == 1 else f"{cfg.name}-s{seed}"
        else:
            name = f"{prefix}-{safe_name(cfg.env)}-s{seed}-{stamp}"
        run_dir = Path(cfg.run_root) / name
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ScalerlError(
                f"run directory {run_dir} already exists; choose another --name or delete it"
            )
        dirs.append(run_dir)
    for run_dir in dirs:
        run_dir.mkdir(parents=True, exist_ok=True)
    return dirs


def write_config(run_dir: Path, cfg: Any) -> None:
    """<run>/config.json of one seed (its "algo" marks the loop for --resume)."""
    (Path(run_dir) / CONFIG_NAME).write_text(json.dumps(config_to_dict(cfg), indent=2) + "\n")


def read_config(run_dir: Path, algo: str, train_cls: type, agent_cls: type) -> Any:
    """Inverse of `write_config` for a run of `algo`.

    Raises:
        ScalerlError: no config.json.
        ConfigError: a run of another algorithm, or a config of another scalerl version.
    """
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise ScalerlError(f"{run_dir} is not a scalerl run directory (no {CONFIG_NAME})")
    data = json.loads(path.read_text())
    if data.get("algo") != algo:
        name = algo.upper()
        raise ConfigError(f"{run_dir} is not a {name} run; resume it with scalerl train --resume")
    try:
        agent = dict(data.pop("agent"))
        plasticity = PlasticityConfig(**agent.pop("plasticity", {}))
        data["run_root"] = Path(data["run_root"])
        return train_cls(**data, agent=agent_cls(**agent, plasticity=plasticity))
    except (TypeError, KeyError) as err:
        raise ConfigError(f"config file does not match this scalerl version ({err})") from None


def job_base_config(cfgs: list[Any]) -> Any:
    """The config the seeds of one job share (seed 0, no name).

    Raises:
        ConfigError: the configs differ in more than seed and name.
    """
    base = dataclasses.replace(cfgs[0], seed=0, name=None)
    if any(dataclasses.replace(c, seed=0, name=None) != base for c in cfgs):
        raise ConfigError("--resume directories must come from one job (same config)")
    return base


def config_fields(run_dir: Path) -> dict[str, Any]:
    """The raw fields of a run's config.json ({} when there is none or it is unreadable)."""
    try:
        return dict(json.loads((Path(run_dir) / CONFIG_NAME).read_text()))
    except (OSError, json.JSONDecodeError, TypeError, ValueError):
        return {}


def is_algo_run(run_dir: Path, algo: str) -> bool:
    """Whether `run_dir` holds the config.json of a run of `algo`."""
    return config_fields(run_dir).get("algo") == algo


def open_loggers(
    cfg: Any, exp_name: str, dirs: Iterable[Path], seeds: Iterable[int], resume_step=None
) -> list[Logger]:
    """One Logger per seed; `exp_name` labels the runs in metrics.csv and reports."""
    return [
        Logger(
            d, exp_name, cfg.env, s, tensorboard=cfg.tensorboard,
            wandb_project=cfg.wandb_project, wandb_config=config_to_dict(cfg),
            resume_step=resume_step,
        )
        for d, s in zip(dirs, seeds, strict=True)
    ]  # fmt: skip


def strip_algo(args: list[str], algo: str) -> list[str]:
    """`args` without its `--algo <algo>` / `--algo=<algo>`."""
    out, skip = [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
        elif arg == "--algo" and args[i + 1 : i + 2] == [algo]:
            skip = True
        elif arg != f"--algo={algo}":
            out.append(arg)
    return out


def run_main(
    args: list[str],
    algo: str,
    train: Callable[[list[str]], list[Path]],
    resume: Callable[[list[Path]], list[Path]],
) -> list[Path]:
    """`scalerl train --algo <algo> ...` -> train(args); `... --resume DIR ...` -> resume(dirs)."""
    rest = strip_algo(args, algo)
    if rest[:1] == ["--resume"]:
        if len(rest) < 2 or any(a.startswith("-") for a in rest[1:]):
            raise ScalerlError(f"usage: scalerl train --algo {algo} --resume RUN_DIR [RUN_DIR ...]")
        return resume([Path(a) for a in rest[1:]])
    return train(args)
