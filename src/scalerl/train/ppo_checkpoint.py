"""PPO checkpoints: the agent checkpoint read by `scalerl evaluate`, and exact-resume points.

At every checkpoint point each seed's run directory gets, resume point first,

- `resume/step-<env_step>.msgpack`: everything the loop needs to continue exactly (agent state
  with its RNG, normalisers and return statistics; the fused loop's environment carry; the host
  loop's action log), the newest `KEEP_RESUME` kept (the layout of the off-policy loop, so
  sweeps find PPO's resume points the same way);
- `checkpoint.msgpack`: the `PPOState` alone.

Checkpoint points are log points, so no metric is pending when one is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scalerl.errors import CheckpointError
from scalerl.train.checkpoint import load_checkpoint, read_checkpoint_meta, save_checkpoint
from scalerl.train.resume import checkpoint_path, list_checkpoints, prune_resume
from scalerl.train.setup import CHECKPOINT_NAME


def save_point(run_dir: Path, state: Any, resume_tree: Any, meta: dict) -> None:
    """Write one seed's resume point (`meta["env_step"]` names it), prune, then the agent.

    `meta["algo"]` labels the files (default ppo; PQN's host loop passes pqn)."""
    meta = {"algo": "ppo"} | meta
    save_checkpoint(checkpoint_path(run_dir, meta["env_step"]), resume_tree, meta)
    prune_resume(run_dir)
    save_checkpoint(Path(run_dir) / CHECKPOINT_NAME, state, meta)


def resume_steps(run_dir: Path) -> list[int]:
    """Env steps of a run's resume points, newest first."""
    return [int(p.stem.split("-")[-1]) for p in list_checkpoints(run_dir)]


def shared_step(run_dirs: list[Path]) -> int | None:
    """The newest env step at which every run has a resume point; None if none has any.

    Seeds trained together write their points in lockstep, so a kill during a write leaves at
    most one seed a point ahead; they continue together from the step they share.

    Raises:
        CheckpointError: the runs have resume points but share none.
    """
    steps = [set(resume_steps(d)) for d in run_dirs]
    if not any(steps):
        return None
    common = set.intersection(*steps)
    if not common:
        raise CheckpointError(
            "the runs share no resume checkpoint step; resume each run directory on its own"
        )
    return max(common)


def load_point(run_dir: Path, step: int, template_fn: Any) -> tuple[Any, dict]:
    """(tree, meta) of a run's resume point at `step`; `template_fn(meta)` gives the template.

    Raises:
        CheckpointError: missing, corrupt or incompatible checkpoint.
    """
    path = checkpoint_path(run_dir, step)
    return load_checkpoint(path, template_fn(read_checkpoint_meta(path)))
