"""One packed job in a worker: skip completed seeds, resume interrupted ones, train the rest.

The seeds of a job train in lockstep (one vmapped process), so they finish together and their
resume checkpoints are written at the same agent steps. When a job is launched again, each of
its seeds is

- *completed* if its run directory holds `DONE` (skipped);
- *resumable* if its directory holds the run's own `config.json` and resume checkpoints: the
  resumable seeds are grouped by a checkpoint step they share (the newest one; a kill during a
  checkpoint write can leave one seed a checkpoint ahead, and that newer checkpoint is dropped)
  and each group continues exactly with `scalerl.train.loop.resume`;
- otherwise *fresh*: a leftover directory is set aside to `<run>.failed-<k>` and the seeds train
  from scratch together with `scalerl.train.loop.train_seeds`.

Runs of an algorithm with its own loop (PPO, `sweep.algos`) train with its functions
(`train_ppo`, `resume_ppo`); their resume points have the same layout.

Each group writes `DONE` into its seeds' directories as soon as it returns.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scalerl.config import TrainConfig
from scalerl.errors import CheckpointError, ScalerlError
from scalerl.sweep import algos
from scalerl.sweep.grid import RunSpec
from scalerl.sweep.packing import Job, seed_text

DONE_NAME = "DONE"
"""Marker file of a completed run."""


@dataclass(frozen=True)
class Trainer:
    """The training functions a worker calls (picklable top-level functions, for tests)."""

    fresh: Callable[[TrainConfig], list[Path]] | None = None
    """Train the seeds of a `--seeds` config from scratch (default `train.loop.train_seeds`)."""
    resume: Callable[[list[Path]], list[Path]] | None = None
    """Continue run directories exactly (default `train.loop.resume`)."""

    def train_fresh(self, cfg: TrainConfig) -> list[Path]:
        if self.fresh is not None:
            return self.fresh(cfg)
        if algos.is_separate(cfg):  # e.g. PPO: its own loop
            return algos.train_fresh(cfg)
        from scalerl.train.loop import train_seeds

        return train_seeds(cfg)

    def train_resume(self, run_dirs: list[Path]) -> list[Path]:
        if self.resume is not None:
            return self.resume(run_dirs)
        if algos.saved_algo(run_dirs[0]) in algos.SEPARATE_ALGOS:
            return algos.train_resume(run_dirs)
        from scalerl.train.loop import resume

        return resume(run_dirs)


def run_dir_of(cfg: TrainConfig) -> Path:
    """The directory `train` writes for a sweep run's config."""
    return Path(cfg.run_root) / str(cfg.name)


def is_done(run_dir: Path) -> bool:
    """Whether a run directory holds a completed run."""
    return (Path(run_dir) / DONE_NAME).is_file()


def mark_done(run_dir: Path) -> None:
    """Write the `DONE` marker of a completed run."""
    (Path(run_dir) / DONE_NAME).write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))


def set_aside(run_dir: Path) -> Path | None:
    """Move a failed attempt's directory to the first free `<run>.failed-<k>`; return it."""
    if not run_dir.exists():
        return None
    k = 1
    while run_dir.with_name(f"{run_dir.name}.failed-{k}").exists():
        k += 1
    return run_dir.rename(run_dir.with_name(f"{run_dir.name}.failed-{k}"))


def pack_config(runs: list[RunSpec]) -> TrainConfig:
    """The `--seeds` config training `runs` (seeds of one cell) so that every seed's run
    directory gets its sweep name (`train.setup.seed_configs` names seed s `<name>-s<s>`)."""
    first = runs[0]
    if len(runs) == 1:
        return first.config
    seeds = ",".join(str(r.config.seed) for r in runs)
    return dataclasses.replace(first.config, seeds=seeds, num_seeds=1, name=first.cell)


RESUME_GLOB = "resume/step-*.msgpack"
"""Resume checkpoints of a run directory (`train.resume.checkpoint_path`; globbed here without
importing JAX, so a worker that only skips or restarts runs starts quickly)."""


def checkpoint_steps(run_dir: Path) -> set[int]:
    """Agent steps of a run's resume checkpoints (from their file names)."""
    return {int(p.stem.split("-")[-1]) for p in Path(run_dir).glob(RESUME_GLOB)}


def _own_config(run: RunSpec) -> bool:
    """Whether the run directory was written for this run's config (not an older grid's)."""
    from scalerl.train.setup import CONFIG_NAME, config_to_dict, resolve

    path = run_dir_of(run.config) / CONFIG_NAME
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    cfg = run.config if algos.is_separate(run.config) else resolve(run.config)
    return saved == json.loads(json.dumps(config_to_dict(cfg)))


def resume_groups(runs: list[RunSpec]) -> list[tuple[list[RunSpec], int]]:
    """Resumable runs grouped by the newest checkpoint step all of a group have, in run order.

    A run joins the first group whose runs share a checkpoint step with it (seeds of one pack
    always do); the group's step is the newest shared one.
    """
    groups: list[tuple[list[RunSpec], set[int]]] = []
    for run in runs:
        steps = checkpoint_steps(run_dir_of(run.config))
        for members, common in groups:
            if common & steps:
                members.append(run)
                common &= steps
                break
        else:
            groups.append(([run], steps))
    return [(members, max(common)) for members, common in groups]


def drop_checkpoints_after(run_dir: Path, step: int) -> None:
    """Delete resume checkpoints newer than `step` (resume continues from `step`, exactly)."""
    from scalerl.train.checkpoint import remove_checkpoint
    from scalerl.train.resume import checkpoint_path

    for newer in checkpoint_steps(run_dir) - set(range(step + 1)):
        remove_checkpoint(checkpoint_path(run_dir, newer))


def classify(runs: tuple[RunSpec, ...]) -> tuple[list[RunSpec], list[RunSpec]]:
    """(resumable, fresh) runs of a job; completed runs are in neither."""
    todo = [r for r in runs if not is_done(run_dir_of(r.config))]
    resumable = [r for r in todo if checkpoint_steps(run_dir_of(r.config)) and _own_config(r)]
    return resumable, [r for r in todo if r not in resumable]


def execute_job(job: Job, trainer: Trainer | None = None) -> list[Path]:
    """Complete every run of a job (in a worker): resume groups first, then fresh seeds.

    Returns:
        The run directories completed by this call.

    Raises:
        ScalerlError (or whatever training raises): a group failed; groups finished before
        keep their `DONE`.
    """
    trainer = trainer or Trainer()
    resumable, fresh = classify(job.runs)
    done: list[Path] = []
    for group, step in resume_groups(resumable):
        dirs = [run_dir_of(r.config) for r in group]
        for run_dir in dirs:
            drop_checkpoints_after(run_dir, step)
        print(f"resuming seeds {seed_text([r.config.seed for r in group])} at step {step}")
        try:
            done += _finish(dirs, trainer.train_resume(dirs))
        except CheckpointError as err:  # unreadable checkpoints: start these seeds again
            print(f"cannot resume ({err}); training these seeds from scratch", flush=True)
            fresh += group
    if fresh:
        fresh = [r for r in job.runs if r in fresh]  # keep the grid order
        for run in fresh:
            set_aside(run_dir_of(run.config))
        print(f"training seeds {seed_text([r.config.seed for r in fresh])}", flush=True)
        dirs = [run_dir_of(r.config) for r in fresh]
        done += _finish(dirs, trainer.train_fresh(pack_config(fresh)))
    return done


def _finish(expected: list[Path], returned: list[Path]) -> list[Path]:
    """Mark the runs of a group completed, after checking training wrote where expected."""
    if [Path(p).resolve() for p in returned] != [p.resolve() for p in expected]:
        raise ScalerlError(f"training wrote {returned}, expected {expected}")
    for run_dir in expected:
        mark_done(run_dir)
    return expected
