"""`scalerl offline` and `scalerl dataset {export,collect}` (tyro; `--help` documents options)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import tyro

from scalerl.cli import agent_from_args, run_or_resume
from scalerl.config import OfflineConfig, offline_preset
from scalerl.errors import ScalerlError

Format = Literal["scalerl", "minari", "d4rl"]
DEFAULT_OUT = {"scalerl": "dataset.npz", "minari": "minari", "d4rl": "dataset.hdf5"}
"""Default output path of each format, inside the run directory."""


def parse_offline(args: list[str]) -> OfflineConfig:
    """Parse `scalerl offline` options on top of the agent's offline preset (docs/offline.md)."""
    default = OfflineConfig(agent=offline_preset(agent_from_args(args)))
    return tyro.cli(
        tyro.conf.OmitArgPrefixes[OfflineConfig],
        args=args,
        default=default,
        prog="scalerl offline",
        description="Train SAC + behaviour cloning on a dataset; evaluate in --env. Continue "
        "an interrupted run with: scalerl offline --resume RUN_DIR [RUN_DIR ...].",
    )


def main_offline(args: list[str]) -> None:
    from scalerl.offline.train import resume_offline, train_offline

    run_or_resume(args, "offline", lambda a: train_offline(parse_offline(a)), resume_offline)


def export(
    run: Annotated[Path, tyro.conf.Positional],
    out: Path | None = None,
    format: Format = "scalerl",
) -> None:
    """Write a run's replay buffer (newest resume checkpoint) as a dataset.

    Args:
        run: Run directory (runs/<name>).
        out: Output path (default <run>/dataset.npz, <run>/dataset.hdf5 or <run>/minari).
        format: scalerl (.npz), d4rl (HDF5) or minari (a Minari datasets root directory).
    """
    from scalerl.datasets import save_any
    from scalerl.offline.collect import export_buffer

    dataset = export_buffer(run)
    path = save_any(out or run / DEFAULT_OUT[format], dataset, format)
    print(f"{len(dataset)} transitions written to {path}")


def collect(
    run: Annotated[Path, tyro.conf.Positional],
    out: Path | None = None,
    format: Format = "scalerl",
    episodes: int = 10,
    steps: int | None = None,
    noise: float = 0.0,
    seed: int = 0,
    random_episodes: int = 5,
) -> None:
    """Roll out a run's saved policy and write the transitions as a dataset.

    Args:
        run: Run directory (runs/<name>) with a checkpoint.
        out: Output path (default <run>/dataset.npz, <run>/dataset.hdf5 or <run>/minari).
        format: scalerl (.npz), d4rl (HDF5) or minari (a Minari datasets root directory).
        episodes: Complete episodes to collect (ignored when --steps is given).
        steps: Collect exactly this many agent steps instead.
        noise: Std of Gaussian noise added to the deterministic action (clipped to [-1, 1]).
        seed: Seed of the environment and the noise.
        random_episodes: Random-policy episodes that measure ref_min_score (0: skip).
    """
    from scalerl.datasets import save_any
    from scalerl.offline.collect import CollectSpec
    from scalerl.offline.collect import collect as collect_dataset

    spec = CollectSpec(episodes, steps, noise, seed, random_episodes)
    dataset = collect_dataset(run, spec)
    path = save_any(out or run / DEFAULT_OUT[format], dataset, format)
    returns = dataset.episode_returns()
    print(f"{len(dataset)} transitions ({len(returns)} episodes, mean return "
          f"{returns.mean():.1f}) written to {path}")  # fmt: skip


def main_dataset(args: list[str]) -> None:
    """`scalerl dataset export|collect ...`."""
    commands = {"export": export, "collect": collect}
    if not args or args[0] not in commands:
        raise ScalerlError("usage: scalerl dataset {export,collect} RUN_DIR [options] (--help)")
    tyro.cli(commands[args[0]], args=args[1:], prog=f"scalerl dataset {args[0]}")
