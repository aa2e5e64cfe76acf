"""Ray backend: one Ray task per run, with Ray's scheduling and retries (scalerl[ray] extra).

Each run is a task reserving `cpus_per_run` CPUs (and `gpus_per_run` GPUs), submitted with
`max_retries=retries, retry_exceptions=True`: Ray re-runs it after an exception or a lost worker
or node. Run directories are written on the node running the task, under the same path as on
the driver, so the sweep directory should be on a filesystem every node shares; otherwise pass
`copy_back=True` and each finished run directory is sent back to the driver as an archive.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path
from typing import Any

from scalerl.config import TrainConfig
from scalerl.errors import ScalerlError
from scalerl.sweep.grid import RunSpec
from scalerl.sweep.runner import (
    LOG_DIR,
    RunStatus,
    Target,
    error_line,
    execute,
    is_done,
    run_dir_of,
    set_aside,
)


def import_ray() -> Any:
    """The `ray` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ScalerlError(
            "--backend ray needs Ray: pip install ray==2.60.0 (or, in a scalerl checkout, "
            "pip install -e '.[ray]'), or use --backend local"
        ) from None
    return ray


def run_ray(
    runs: list[RunSpec],
    retries: int = 1,
    target: Target | None = None,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    copy_back: bool = False,
) -> dict[str, RunStatus]:
    """Run `runs` as Ray tasks and gather them with `ray.wait` as they finish.

    Args:
        runs: Runs to do (completed ones already removed, see `runner.split_done`).
        retries: Ray's `max_retries` (exceptions and lost workers alike).
        target: Training function (default `scalerl.train.loop.train`); must be importable on
            every node.
        address: Cluster address; "auto" joins the running cluster, None starts a local Ray
            instance. Ignored when Ray is already initialised in this process.
        cpus_per_run: CPUs reserved per task.
        gpus_per_run: GPUs reserved per task.
        copy_back: Return each run directory to the driver (no shared filesystem).

    Returns:
        Run name -> status.
    """
    ray = import_ray()
    started = _connect(ray, address)
    try:
        task = ray.remote(_task).options(
            num_cpus=cpus_per_run,
            num_gpus=gpus_per_run,
            max_retries=retries,
            retry_exceptions=True,
        )
        launch = uuid.uuid4().hex
        refs = {task.remote(r.config, target, launch, copy_back): r for r in runs}
        return _gather(ray, refs, retries)
    finally:
        if started:
            ray.shutdown()


def _connect(ray: Any, address: str | None) -> bool:
    """Initialise Ray unless it already is; whether this call started it."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address)
    except ConnectionError as err:
        raise ScalerlError(
            f"cannot reach a Ray cluster at {address!r} ({err}); start one with "
            "`ray start --head` or omit --address for a local Ray instance"
        ) from None
    return True


def _gather(ray: Any, refs: dict[Any, RunSpec], retries: int) -> dict[str, RunStatus]:
    out: dict[str, RunStatus] = {}
    total = len(refs)
    while refs:
        (ref,), _ = ray.wait(list(refs), num_returns=1)
        run = refs.pop(ref)
        try:
            attempts, archive = ray.get(ref)
            _unpack(archive, run_dir_of(run.config))
            out[run.name] = RunStatus(run.name, "done", attempts, None, run.params)
        except Exception as err:  # a failed run is reported, not raised
            cause = getattr(err, "cause", None) or err
            out[run.name] = RunStatus(
                run.name, "failed", retries + 1, error_line(cause), run.params
            )
        word = out[run.name].error or "done"
        print(f"[{len(out)}/{total}] {run.name}: {word}", flush=True)
    return out


def _task(
    cfg: TrainConfig, target: Target | None, launch: str, copy_back: bool
) -> tuple[int, bytes | None]:
    """One attempt on a Ray worker: count it, train, and archive the run if asked."""
    attempts = _count_attempt(run_dir_of(cfg), launch)
    run_dir = execute(cfg, target)
    return attempts, archive(run_dir) if copy_back else None


def _count_attempt(run_dir: Path, launch: str) -> int:
    """Attempt number of this launch, from `<sweep>/logs/<run>.attempts` on this node."""
    path = run_dir.parent / LOG_DIR / f"{run_dir.name}.attempts"
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = path.read_text().split() if path.exists() else []
    number = int(parts[1]) + 1 if len(parts) == 2 and parts[0] == launch else 1
    path.write_text(f"{launch} {number}\n")
    return number


def archive(run_dir: Path) -> bytes:
    """A run directory as gzipped tar bytes (top-level entry: the run's name)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(run_dir, arcname=run_dir.name)
    return buffer.getvalue()


def _unpack(data: bytes | None, run_dir: Path) -> None:
    """Extract a copied-back run unless the driver already sees it completed (shared disk)."""
    if data is None or is_done(run_dir):
        return
    set_aside(run_dir)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(run_dir.parent, filter="data")
