"""Command line: `scalerl train`, `scalerl evaluate` (tyro; `--help` documents every option)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import tyro

from scalerl import __version__
from scalerl.config import AGENTS, TrainConfig, agent_preset, apply_train_preset, replace
from scalerl.errors import ScalerlError

COMMANDS = {
    "train": "train an agent online (scalerl train --help)",
    "evaluate": "re-evaluate a saved run's policy (scalerl evaluate RUN_DIR)",
    "plot": "network-health panel of one or more runs (scalerl plot RUN_DIR [RUN_DIR ...])",
    "plasticity": "digits continual-learning benchmark (scalerl plasticity --help)",
    "sweep": "run a grid of training runs, locally or on Ray (scalerl sweep --help)",
    "report": "aggregate runs into curves, IQM tables and scaling plots (scalerl report --help)",
    "offline": "train SAC + behaviour cloning on a dataset (scalerl offline --help)",
    "dataset": "export a run's replay buffer or collect with its policy (scalerl dataset --help)",
    "envs": "list environment suites and tasks, and which are installed (scalerl envs --help)",
    "simplicity": "simplicity-bias score of architectures at init (scalerl simplicity --help)",
}


def agent_from_args(args: list[str], default: str = "simbav2") -> str:
    """The value of --agent in `args` (to choose the preset defaults), checked."""
    agent = _option(args, "--agent") or default
    if agent not in AGENTS:
        raise ScalerlError(f"unknown agent {agent!r}; choose one of {', '.join(AGENTS)}")
    return agent


def _option(args: list[str], flag: str) -> str | None:
    """The value of `flag` in `args` (`--flag v` or `--flag=v`), or None."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def train_defaults(args: list[str]) -> TrainConfig:
    """Defaults of `scalerl train`: --agent's preset, or with --init-from RUN that run's env
    and networks with the online preset's learning rates and no behaviour cloning; then the
    run --preset's values."""
    preset = _option(args, "--preset") or "default"
    init_from = _option(args, "--init-from")
    if init_from is None:
        return apply_train_preset(TrainConfig(agent=agent_preset(agent_from_args(args))), preset)
    from scalerl.train.setup import read_config

    base = read_config(Path(init_from))
    return apply_train_preset(continue_defaults(base, agent_from_args(args, base.agent.agent)),
                              preset)  # fmt: skip


def continue_defaults(base: TrainConfig, agent: str) -> TrainConfig:
    """Defaults of a run that starts from `base`'s weights: its env and networks with the online
    preset's learning rates and no behaviour cloning (another `agent`: that preset)."""
    if agent != base.agent.agent:
        return TrainConfig(env=base.env, agent=agent_preset(agent))
    online = agent_preset(agent)
    rates = {k: getattr(online, k) for k in ("lr_init", "lr_end", "lr_decay_fraction")}
    agent_cfg = replace(base.agent, bc_alpha=0.0, gamma=None, **rates)
    return TrainConfig(env=base.env, agent=agent_cfg)


def parse_train(args: list[str]) -> TrainConfig:
    """Parse `scalerl train` options on top of the defaults of `train_defaults`."""
    return tyro.cli(
        tyro.conf.OmitArgPrefixes[TrainConfig],
        args=args,
        default=train_defaults(args),
        prog="scalerl train",
        description="Train an agent online. Defaults follow --agent's preset (or, with "
        "--init-from RUN, that run's networks). Continue an interrupted run exactly with: "
        "scalerl train --resume RUN_DIR [RUN_DIR ...] (the seed directories of one --seeds "
        "job together).",
    )


def run_or_resume(args: list[str], command: str, start: Any, resume: Any) -> None:
    """`scalerl COMMAND --resume DIR...` -> resume(dirs); else start(args); print the runs."""
    if args[:1] == ["--resume"]:
        if len(args) < 2 or any(a.startswith("-") for a in args[1:]):
            raise ScalerlError(
                f"usage: scalerl {command} --resume RUN_DIR [RUN_DIR ...] (no options)"
            )
        run_dirs = resume([Path(a) for a in args[1:]])
    else:
        run_dirs = start(args)
    for run_dir in run_dirs:
        print(f"run written to {run_dir}")


SEPARATE_LOOPS: dict[str, str] = {
    "ppo": "scalerl.train.ppo_run",
    "dqn": "scalerl.train.dqn_run",
    "pqn": "scalerl.train.pqn_run",
}
"""Algorithms with their own options and loops -> module with `is_run(dir)` and `main(args)`."""


def separate_loop(args: list[str]) -> str | None:
    """Module of `scalerl train --algo A ...` (or `--resume` of an A run) if A has its own loop."""
    import importlib

    if args[:1] == ["--resume"] and len(args) > 1:
        for module in SEPARATE_LOOPS.values():
            if importlib.import_module(module).is_run(Path(args[1])):
                return module
        return None
    return SEPARATE_LOOPS.get(_option(args, "--algo") or "")


def run_train(args: list[str]) -> None:
    module = separate_loop(args)
    if module is not None:  # e.g. scalerl train --algo ppo --help
        import importlib

        for run_dir in importlib.import_module(module).main(args):
            print(f"run written to {run_dir}")
        return
    from scalerl.train.loop import resume, train_seeds

    run_or_resume(args, "train", lambda a: train_seeds(parse_train(a)), resume)


def evaluate(
    run: Annotated[Path, tyro.conf.Positional],
    episodes: int = 10,
    seed: int | None = None,
    video: bool = False,
    video_out: Path | None = None,
    video_episodes: int = 1,
    fps: int = 30,
    width: int = 320,
    height: int = 240,
) -> None:
    """Re-evaluate a saved run's policy and print mean/std return: deterministic actions
    (SAC/TD3/DDPG/PPO), ε-greedy with the run's small evaluation ε (DQN/PQN).

    Args:
        run: Run directory (runs/<name>).
        episodes: Number of evaluation episodes.
        seed: Environment seed (default: the run's seed).
        video: Also record deterministic episodes to a video, rendered headless (docs/video.md;
            gymnax ids without renderer, e.g. bandits, are refused).
        video_out: Video file, .mp4 or .gif (default: <run>/videos/eval-<env_step>.mp4).
        video_episodes: Episodes recorded in the video.
        fps: Video frames per second.
        width: Video frame width.
        height: Video frame height.
    """
    from scalerl.train.evaluate import evaluate_run

    if video:  # fail before the evaluation episodes, not after them
        from scalerl.train.video import check_recordable

        check_recordable(run)
    result = evaluate_run(run, episodes, seed)
    metrics = result.metrics()
    line = f"{run}: return {metrics['eval/return']:.1f} +- {metrics['eval/return_std']:.1f}"
    line += f" over {episodes} episodes"
    if "eval/success" in metrics:
        line += f", success {metrics['eval/success']:.2f}"
    print(line)
    if video:
        from scalerl.train.video import record_run

        path = record_run(run, video_out, video_episodes, seed, fps, width, height)
        print(f"video written to {path}")


def run_evaluate(args: list[str]) -> None:
    tyro.cli(evaluate, args=args, prog="scalerl evaluate")


def plot(
    runs: Annotated[tuple[Path, ...], tyro.conf.Positional],
    out: Path = Path("health.png"),
    net: str | None = None,
    labels: tuple[str, ...] | None = None,
) -> None:
    """Draw the network-health panel (return, feature/parameter/gradient norm, ELR) of runs.

    Args:
        runs: Run directories (runs/<name>), one line each.
        out: Output PNG path (an SVG is written beside it).
        net: Network whose health/<net>/* metrics are drawn: critic or actor (off-policy runs),
            value, actor or shared (PPO runs). Default: each run's value network (critic,
            value or shared).
        labels: Legend label per run (default: directory names).
    """
    from scalerl.analysis.health_plot import plot_health

    print(f"wrote {plot_health(list(runs), out, net, labels)}")


def run_plot(args: list[str]) -> None:
    tyro.cli(plot, args=args, prog="scalerl plot")


def run_plasticity(args: list[str]) -> None:
    from scalerl.plasticity.digits import DigitsConfig
    from scalerl.plasticity.digits import main as digits_main

    digits_main(tyro.cli(DigitsConfig, args=args, prog="scalerl plasticity"))


def run_simplicity(args: list[str]) -> None:
    from scalerl.science.simplicity import SimplicityConfig
    from scalerl.science.simplicity_report import main as simplicity_main

    simplicity_main(tyro.cli(SimplicityConfig, args=args, prog="scalerl simplicity"))


def run_sweep(args: list[str]) -> None:
    from scalerl.sweep import main_sweep

    main_sweep(args)


def report(
    runs: Annotated[tuple[Path, ...], tyro.conf.Positional],
    reference: tuple[str, ...] = (),
    out: Path = Path("report"),
    env_step: int | None = None,
    reps: int = 2000,
    seed: int = 0,
) -> None:
    """Aggregate runs (or sweep directories) into report.md, scores.csv and figures.

    Args:
        runs: Run directories, sweep directories (searched recursively) or metrics.csv files.
        reference: The paper's reference curves: short names of the shipped SimbaV2 results
            (simbav2-utd1/2/4/8, baseline/sac, baseline/simba-utd2, scaling/utd/simbav2-utd4-reset,
            ...; docs/reports.md lists them) or CSV paths in that schema.
        out: Output directory.
        env_step: Environment frames at which scores are compared (default: the last step
            every run reached).
        reps: Bootstrap resamples of the confidence intervals.
        seed: Seed of the bootstrap.
    """
    from scalerl.analysis.report import write_report

    refs = [Path(r) for r in reference] or None
    path = write_report(list(runs), out, refs, env_step, reps=reps, seed=seed)
    print(f"report written to {path}")


def run_report(args: list[str]) -> None:
    tyro.cli(report, args=args, prog="scalerl report")


def run_offline(args: list[str]) -> None:
    from scalerl.offline.commands import main_offline

    main_offline(args)


def run_envs(args: list[str]) -> None:
    from scalerl.envs.listing import main_envs

    main_envs(args)


def run_dataset(args: list[str]) -> None:
    from scalerl.offline.commands import main_dataset

    main_dataset(args)


def _usage() -> str:
    lines = ["usage: scalerl COMMAND [options]   (scalerl --version)", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one line and exit with status 2."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"scalerl {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    handlers = {
        "train": run_train,
        "evaluate": run_evaluate,
        "plot": run_plot,
        "plasticity": run_plasticity,
        "sweep": run_sweep,
        "report": run_report,
        "offline": run_offline,
        "dataset": run_dataset,
        "envs": run_envs,
        "simplicity": run_simplicity,
    }
    if command not in handlers:
        print(f"scalerl: unknown command {command!r}\n{_usage()}", file=sys.stderr)
        return 2
    try:
        handlers[command](rest)
    except ScalerlError as err:
        print(f"scalerl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scalerl: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
