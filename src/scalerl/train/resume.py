"""Exact resume: full-state checkpoints of a run and their restoration.

A resume checkpoint (`<run>/resume/step-<t>.msgpack`, written atomically, the newest
`KEEP_RESUME` kept) holds one seed's agent state (optimizer, target, normalisers, RNG), its
replay buffer, every action the training environment received so far, the pending action,
and the loop's counters and metric accumulator. Environments are restored by replaying the
action log into a freshly seeded environment: simulators are deterministic given their seed and
actions, so this recovers their exact state without simulator-specific snapshots. Evaluation
environments only consume randomness at reset, so the same number of resets restores them.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from scalerl.errors import CheckpointError
from scalerl.train.checkpoint import (
    load_checkpoint,
    read_checkpoint_meta,
    remove_checkpoint,
    save_checkpoint,
)

RESUME_DIR = "resume"
"""Sub-directory of a run holding its resume checkpoints."""
KEEP_RESUME = 2
"""Number of newest resume checkpoints kept (older ones are deleted after a successful save)."""


@dataclass
class LoopCounters:
    """Host-side state of the training loop that a resume must restore (shared by all seeds)."""

    t: int = 0
    """Agent steps done (transitions, all of a seed's environments together)."""
    updates: int = 0
    """Gradient updates done."""
    utd_counter: float = 0.0
    """Fractional-UTD carry of `UpdateSchedule`."""
    fresh_draws: int = 0
    """Fresh initialisations drawn so far by resets and ReDo (`Hooks.fresh_draws`)."""
    eval_resets: int = 0
    """Resets of each evaluation environment so far."""
    wall_s: float = 0.0
    """Wall-clock seconds of training up to this checkpoint (over all processes of the run)."""


def checkpoint_path(run_dir: Path, t: int) -> Path:
    """The resume checkpoint file of agent step `t`."""
    return Path(run_dir) / RESUME_DIR / f"step-{t:010d}.msgpack"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Resume checkpoints of a run, newest first."""
    return sorted((Path(run_dir) / RESUME_DIR).glob("step-*.msgpack"), reverse=True)


def clean_partial_writes(run_dir: Path) -> list[Path]:
    """Delete the temporary files a kill during a checkpoint or CSV rewrite left behind.

    Checkpoints are written to ``.<name>.<random>.tmp`` and renamed into place (see
    `scalerl.train.checkpoint`), so such a file is never a usable checkpoint.

    Returns:
        The deleted files.
    """
    run_dir = Path(run_dir)
    found = [*run_dir.glob(".*.tmp"), *(run_dir / RESUME_DIR).glob(".*.tmp")]
    found += list(run_dir.glob("*.csv.tmp"))
    for path in found:
        path.unlink(missing_ok=True)
    return found


def has_resume_point(run_dir: Path) -> bool:
    """Whether a run wrote any resume checkpoint (usable or not)."""
    return bool(list_checkpoints(run_dir))


def save_resume(run_dir: Path, tree: dict[str, Any], counters: LoopCounters, meta: dict) -> None:
    """Write one seed's resume checkpoint and prune all but the newest `KEEP_RESUME`."""
    save_checkpoint(checkpoint_path(run_dir, counters.t), tree, meta | asdict(counters))
    prune_resume(run_dir)


def prune_resume(run_dir: Path) -> None:
    """Delete all but the newest `KEEP_RESUME` resume checkpoints (with their sidecars)."""
    for old in list_checkpoints(run_dir)[KEEP_RESUME:]:
        remove_checkpoint(old)


def load_resume(run_dir: Path, template_fn: Any) -> tuple[dict[str, Any], dict]:
    """The newest usable resume checkpoint of a run: (tree, meta).

    A corrupt or incompatible checkpoint is reported on stderr and the previous one is tried.

    Args:
        run_dir: The run directory.
        template_fn: meta -> template tree (shapes depend on the step count in meta).

    Raises:
        CheckpointError: if the run has no usable resume checkpoint.
    """
    problems = []
    for path in list_checkpoints(run_dir):
        try:
            meta = read_checkpoint_meta(path)
            return load_checkpoint(path, template_fn(meta))
        except CheckpointError as err:
            problems.append(str(err))
            print(f"scalerl: warning: skipping {path.name}: {err}", file=sys.stderr)
    detail = f" ({problems[-1]})" if problems else ""
    raise CheckpointError(
        f"no usable resume checkpoint in {Path(run_dir) / RESUME_DIR}{detail}; "
        "start a fresh run (resume needs checkpoints written by scalerl train)"
    )


def resume_template(sac: Any, capacity: int) -> Any:
    """meta -> the template tree of one seed's resume checkpoint (for `load_resume`).

    Args:
        sac: The run's agent (`scalerl.agents.actor_critic.ActorCritic`).
        capacity: The run's replay-buffer capacity (`scalerl.train.setup.replay_capacity`).
    """
    from scalerl.buffers.replay import replay_init
    from scalerl.train.vector import with_env_axis

    agent = sac.init(jax.random.PRNGKey(0))
    buffer = replay_init(capacity, sac.obs_dim, sac.action_dim)

    def template(meta: dict) -> dict[str, Any]:
        num_envs = int(meta.get("config", {}).get("num_envs", 1))
        log = ActionLog(meta["t"] // num_envs, sac.action_dim, num_envs)
        next_action = np.zeros(log.actions.shape[1:], np.float32)
        return {"agent": with_env_axis(agent, num_envs), "buffer": buffer,
                "next_action": next_action, "actions": log.actions}  # fmt: skip

    return template


def counters_from_meta(meta: dict) -> LoopCounters:
    """The loop counters stored in a resume checkpoint's metadata (those an older scalerl did
    not store keep their defaults)."""
    fields = LoopCounters.__dataclass_fields__
    return LoopCounters(**{k: meta[k] for k in fields if k in meta})


class ActionLog:
    """Every action one seed's training environments received, for replay on resume.

    With N environments a row holds the N actions of one loop step, shape (N, action_dim).
    """

    def __init__(self, steps: int, action_dim: int, num_envs: int = 1) -> None:
        self.num_envs = num_envs
        row = (action_dim,) if num_envs == 1 else (num_envs, action_dim)
        self.actions = np.zeros((steps, *row), np.float32)

    def record(self, t: int, action: np.ndarray) -> None:
        """Store the action(s) of the loop step that ends at agent step `t` (1-based)."""
        self.actions[t // self.num_envs - 1] = action

    def upto(self, t: int) -> np.ndarray:
        """The actions of the loop steps up to agent step t."""
        return self.actions[: t // self.num_envs]


def restart_note(run_dirs: list[Path]) -> None:
    """Say on stderr that runs killed before their first resume point start over from step 0."""
    for d in run_dirs:
        print(f"scalerl: {d} has no resume checkpoint yet; restarting it from step 0",
              file=sys.stderr)  # fmt: skip
