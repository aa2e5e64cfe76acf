"""Metric sinks: a long-format CSV, TensorBoard and (optionally) Weights & Biases.

Metric keys are namespaced by what they measure: ``train/...`` (losses, entropy, ...),
``eval/...`` (evaluation returns), ``perf/...`` (throughput) and ``health/...`` (network-health
metrics). Every sink receives the same scalars with the environment-frame count as x-axis.

The CSV sink writes the long format of the SimbaV2 reference results, so that scalerl runs and
the published curves load with the same reader (:func:`read_metrics_csv`, :func:`load_metrics`).
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from scalerl.errors import ScalerlError, TrainingError

CSV_COLUMNS: tuple[str, ...] = ("exp_name", "env_name", "seed", "metric", "env_step", "value")
"""Columns of ``metrics.csv``."""

CSV_HEADER: str = ",".join(CSV_COLUMNS)
"""Exact header line of ``metrics.csv``."""

INDEXED_CSV_HEADER: str = "," + CSV_HEADER
"""Header of the reference results and of runs written by scalerl <= 0.1: a first, unnamed
integer row-index column (as pandas writes it). Still read, and continued on resume."""

METRICS_CSV_NAME = "metrics.csv"
TENSORBOARD_DIR_NAME = "tb"
WANDB_ID_NAME = "wandb.json"
"""File in a run directory holding its W&B run id and group, so a resume reattaches to it."""
_TAIL_BYTES = 4096


class Sink(Protocol):
    """Anything that receives scalar metrics."""

    def write(self, metrics: Mapping[str, float], env_step: int) -> None:
        """Writes one batch of scalar metrics logged at ``env_step``."""

    def close(self) -> None:
        """Flushes and releases the sink's resources."""


def _to_float(value: Any) -> float:
    """Converts a Python, numpy or jax scalar to a float; non-finite values are kept as is.

    Args:
        value: A scalar, or an array holding exactly one element.

    Returns:
        The value as a Python float (``nan`` and ``inf`` included).
    """
    return float(np.asarray(value, dtype=np.float64).reshape(()))


# --------------------------------------------------------------------------------------------
# CSV sink
# --------------------------------------------------------------------------------------------


def _drop_partial_last_line(path: Path) -> None:
    """Truncates a row left half-written by a killed run (a file not ending with a newline).

    Args:
        path: An existing, non-empty CSV file.
    """
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - _TAIL_BYTES))
        tail = f.read()
        if tail.endswith(b"\n") or b"\n" not in tail:
            return
        f.truncate(size - len(tail) + tail.rindex(b"\n") + 1)


def _read_header_and_last_line(path: Path) -> tuple[str, str]:
    """Returns the first and the last line of a text file, without their newlines.

    Args:
        path: An existing, non-empty text file.

    Returns:
        ``(header, last_line)``; both are the header when the file has a single line.
    """
    with path.open("rb") as f:
        header = f.readline().decode("utf-8").rstrip("\r\n")
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - _TAIL_BYTES))
        lines = f.read().decode("utf-8", errors="replace").rstrip("\r\n").splitlines()
    return header, (lines[-1] if lines else header)


def _existing_layout(path: Path) -> int | None:
    """How to continue an existing ``metrics.csv``: None without an index column, else the next
    row index (files written by older scalerl versions).

    Args:
        path: An existing, non-empty metrics CSV.

    Raises:
        ScalerlError: If the file is not a scalerl metrics CSV.
    """
    _drop_partial_last_line(path)
    header, last = _read_header_and_last_line(path)
    if header == CSV_HEADER:
        return None
    if header != INDEXED_CSV_HEADER:
        raise ScalerlError(
            f"{path} is not a scalerl metrics file (header {header!r}); "
            "move it away or log the run to another directory"
        )
    if last == header:
        return 0
    try:
        return int(last.split(",", 1)[0]) + 1
    except ValueError:
        raise ScalerlError(
            f"{path} has a malformed last row ({last[:60]!r}); "
            "delete that line or log the run to another directory"
        ) from None


def truncate_metrics(path: Path, env_step: int) -> None:
    """Drop the rows of a metrics CSV logged after `env_step` (atomic rewrite; for resume)."""
    _drop_partial_last_line(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] not in (CSV_HEADER, INDEXED_CSV_HEADER):
        return  # empty, or not a metrics file: CsvSink names the problem
    col = lines[0].split(",").index("env_step")
    kept = [lines[0]] + [line for line in lines[1:] if int(line.split(",")[col]) <= env_step]
    tmp = path.with_suffix(".csv.tmp")
    tmp.write_text("\n".join(kept) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class CsvSink:
    """Appends metrics to ``metrics.csv`` in the long format of the reference results.

    One row per metric: ``exp_name,env_name,seed,metric,env_step,value``. Every call is
    flushed, so a killed run keeps everything it logged. Reopening an existing file (resume)
    appends to it; a file of an older scalerl version (with a row-index column) keeps that
    layout and continues its index.
    """

    def __init__(self, path: Path, exp_name: str, env_name: str, seed: int) -> None:
        """Opens (or creates) the CSV file.

        Args:
            path: The CSV file; its parent directory is created if needed.
            exp_name: Experiment name written on every row.
            env_name: Environment name written on every row.
            seed: Seed written on every row.
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._prefix = (exp_name, env_name, int(seed))
        exists = self.path.exists() and self.path.stat().st_size > 0
        self._index = _existing_layout(self.path) if exists else None
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, lineterminator="\n")
        if not exists:
            self._file.write(CSV_HEADER + "\n")
            self._file.flush()

    def write(self, metrics: Mapping[str, float], env_step: int) -> None:
        """Appends one row per metric and flushes.

        Args:
            metrics: Scalar metrics by key.
            env_step: Environment frames so far.
        """
        for key, value in metrics.items():
            row = (*self._prefix, key, int(env_step), repr(_to_float(value)))
            if self._index is not None:
                row, self._index = (self._index, *row), self._index + 1
            self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        """Flushes and closes the file (idempotent)."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def _parse_row(row: dict[str, str], position: int) -> dict[str, Any]:
    """Converts one CSV row of strings to typed values.

    Args:
        row: A ``csv.DictReader`` row (an index column, if any, is keyed by ``""``).
        position: The row's position in the file (its index when the file has no index column).

    Returns:
        A dict with ``index`` (int), ``exp_name``, ``env_name``, ``seed`` (int), ``metric``,
        ``env_step`` (int) and ``value`` (float).
    """
    return {
        "index": int(row[""]) if "" in row else position,
        "exp_name": row["exp_name"],
        "env_name": row["env_name"],
        "seed": int(float(row["seed"])),
        "metric": row["metric"],
        "env_step": int(float(row["env_step"])),
        "value": float(row["value"]),
    }


def read_metrics_csv(path: Path) -> list[dict[str, Any]]:
    """Reads a scalerl ``metrics.csv`` or a reference results CSV (same long format).

    Files with and without the unnamed row-index column (reference results, runs of scalerl
    <= 0.1) are both read.

    Args:
        path: The CSV file.

    Returns:
        One dict per row, see :func:`_parse_row` for the keys and types.

    Raises:
        ScalerlError: If the file is missing, has other columns or a malformed row.
    """
    path = Path(path)
    if not path.is_file():
        raise ScalerlError(f"no metrics file at {path}; check the path (runs write metrics.csv)")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) not in (CSV_COLUMNS, ("", *CSV_COLUMNS)):
            raise ScalerlError(
                f"{path} is not a metrics CSV (columns {reader.fieldnames}); "
                f"expected the header {CSV_HEADER!r}"
            )
        try:
            return [_parse_row(row, i) for i, row in enumerate(reader)]
        except (TypeError, ValueError) as e:
            raise ScalerlError(
                f"{path} has a malformed row at line {reader.line_num} ({e}); fix or delete it"
            ) from None


def load_metrics(paths: Path | Sequence[Path]) -> Any:
    """Loads one or several metrics CSVs into a single pandas DataFrame.

    Args:
        paths: A CSV file or a sequence of them (scalerl runs and/or reference results).

    Returns:
        A ``pandas.DataFrame`` with the columns of :data:`CSV_COLUMNS` (row index dropped).

    Raises:
        ScalerlError: If pandas is not installed, or a file is missing or malformed.
    """
    try:
        import pandas as pd
    except ImportError:
        raise ScalerlError(
            "load_metrics needs pandas, which is not installed; pip install pandas "
            "or use read_metrics_csv"
        ) from None
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    rows = [row for path in files for row in read_metrics_csv(path)]
    return pd.DataFrame(rows, columns=["index", *CSV_COLUMNS]).drop(columns="index")


# --------------------------------------------------------------------------------------------
# TensorBoard and W&B sinks
# --------------------------------------------------------------------------------------------


class TensorBoardSink:
    """Writes scalars to a tensorboardX event file in ``<run_dir>/tb/``."""

    def __init__(self, log_dir: Path, flush_secs: int = 30, purge_step: int | None = None) -> None:
        """Creates the event-file writer.

        Args:
            log_dir: Directory of the event files (created if needed).
            flush_secs: How often tensorboardX flushes pending events to disk.
            purge_step: On resume, events at this step or later are hidden (tensorboardX's
                purge), so a resumed run does not show the lost steps twice.
        """
        from tensorboardX import SummaryWriter

        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(
            logdir=str(self.log_dir), flush_secs=flush_secs, purge_step=purge_step
        )
        self._closed = False

    def write(self, metrics: Mapping[str, float], env_step: int) -> None:
        """Adds one scalar per metric at ``env_step``.

        Args:
            metrics: Scalar metrics by key (the key is the TensorBoard tag).
            env_step: Environment frames so far.
        """
        for key, value in metrics.items():
            self._writer.add_scalar(key, _to_float(value), int(env_step))

    def close(self) -> None:
        """Flushes and closes the event file (idempotent)."""
        if not self._closed:
            self._writer.flush()
            self._writer.close()
            self._closed = True


def wandb_identity(run_dir: Path, group: str | None) -> dict[str, str | None]:
    """The W&B run id and group of a run directory, created on first use (``wandb.json``).

    Args:
        run_dir: The run directory.
        group: Group of a new run (the seeds of one ``--seeds`` job share it); a stored group
            wins, so a resumed run stays in its group.

    Returns:
        ``{"id": ..., "group": ...}``.
    """
    path = Path(run_dir) / WANDB_ID_NAME
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
            return {"id": str(stored["id"]), "group": stored.get("group")}
        except (ValueError, KeyError, TypeError):
            pass  # unreadable: start a new W&B run rather than fail
    identity = {"id": uuid.uuid4().hex[:16], "group": group}
    path.write_text(json.dumps(identity) + "\n")
    return identity


class WandbSink:
    """Logs scalars to a Weights & Biases run (needs the optional ``wandb`` package).

    The W&B run id is kept in ``<run_dir>/wandb.json``: ``scalerl train --resume`` reattaches
    to the same W&B run, and the seeds of one ``--seeds`` job share a W&B group.
    """

    def __init__(
        self,
        project: str,
        run_name: str,
        run_dir: Path,
        config: dict | None = None,
        group: str | None = None,
    ) -> None:
        """Starts (or, when ``run_dir`` already has a W&B id, resumes) the W&B run.

        Args:
            project: W&B project name.
            run_name: Display name of the run.
            run_dir: Directory where wandb keeps its local files.
            config: Configuration shown with the run.
            group: W&B group of a new run (e.g. the job name of a ``--seeds`` job).

        Raises:
            ScalerlError: If wandb is not installed.
        """
        try:
            import wandb
        except ImportError:
            raise ScalerlError(
                "W&B logging asked for but wandb is not installed; pip install wandb (or, in a "
                'scalerl checkout, pip install -e ".[wandb]"), or drop --wandb-project'
            ) from None
        identity = wandb_identity(run_dir, group)
        self._run = wandb.init(
            project=project,
            name=run_name,
            dir=str(run_dir),
            config=config or {},
            group=identity["group"],
            id=identity["id"],
            resume="allow",
        )
        self._closed = False

    def write(self, metrics: Mapping[str, float], env_step: int) -> None:
        """Logs the metrics with ``env_step`` as the W&B step.

        Args:
            metrics: Scalar metrics by key.
            env_step: Environment frames so far.
        """
        self._run.log({k: _to_float(v) for k, v in metrics.items()}, step=int(env_step))

    def close(self) -> None:
        """Finishes the W&B run (idempotent)."""
        if not self._closed:
            self._run.finish()
            self._closed = True


# --------------------------------------------------------------------------------------------
# Logger and accumulator
# --------------------------------------------------------------------------------------------


class Logger:
    """Writes scalar metrics to several sinks; keys are namespaced train/, eval/, perf/, health/.

    Always writes ``<run_dir>/metrics.csv``; TensorBoard (``<run_dir>/tb/``) unless disabled;
    W&B only when a project is given. Usable as a context manager.
    """

    def __init__(
        self,
        run_dir: Path,
        exp_name: str,
        env_name: str,
        seed: int,
        *,
        tensorboard: bool = True,
        wandb_project: str | None = None,
        wandb_config: dict | None = None,
        resume_step: int | None = None,
        wandb_group: str | None = None,
    ) -> None:
        """Opens the sinks.

        Args:
            run_dir: The run directory (created if needed).
            exp_name: Experiment name (CSV column, W&B run name prefix).
            env_name: Environment name (CSV column).
            seed: Seed (CSV column).
            tensorboard: Whether to write TensorBoard event files.
            wandb_project: W&B project; ``None`` disables W&B.
            wandb_config: Configuration attached to the W&B run.
            wandb_group: W&B group (the seeds of one ``--seeds`` job share one).
            resume_step: Continue a run from this env step: CSV rows logged after it are
                dropped and TensorBoard events after it are purged.

        Raises:
            ScalerlError: If W&B is asked for but not installed, or an existing metrics.csv in
                ``run_dir`` is not a scalerl metrics file.
        """
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        csv_path = self.run_dir / METRICS_CSV_NAME
        if resume_step is not None and csv_path.exists():
            truncate_metrics(csv_path, resume_step)
        self.sinks: list[Sink] = [CsvSink(csv_path, exp_name, env_name, seed)]
        if tensorboard:
            purge = None if resume_step is None else resume_step + 1
            self.sinks.append(
                TensorBoardSink(self.run_dir / TENSORBOARD_DIR_NAME, purge_step=purge)
            )
        if wandb_project is not None:
            name = f"{exp_name}-{env_name}-s{seed}"
            sink = WandbSink(wandb_project, name, self.run_dir, wandb_config, wandb_group)
            self.sinks.append(sink)

    def log(self, metrics: Mapping[str, float], env_step: int) -> None:
        """Writes the metrics to every sink; non-finite values are written too (as nan/inf).

        Args:
            metrics: Scalar metrics by namespaced key (Python, numpy or jax scalars).
            env_step: Environment frames so far (the x-axis of every sink).
        """
        values = {key: _to_float(value) for key, value in metrics.items()}
        if not values:
            return
        for sink in self.sinks:
            sink.write(values, env_step)

    def close(self) -> None:
        """Closes every sink (idempotent)."""
        for sink in self.sinks:
            sink.close()

    def __enter__(self) -> Logger:
        """Returns the logger itself."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Closes the sinks."""
        self.close()


def nonfinite_loss(metrics: Mapping[str, Any]) -> str | None:
    """The first `*_loss` key whose value is NaN or inf, else None."""
    return next((k for k, v in metrics.items() if k.endswith("_loss") and not np.isfinite(v)), None)


def diverged(key: str, value: Any, env_step: int, seed: int, saved: Path) -> TrainingError:
    """The error that stops an online run whose loss `key` became `value` (state at `saved`)."""
    return TrainingError(
        f"{key} became {value} at env step {env_step} (seed {seed}); state saved to {saved}; "
        "try a lower learning rate or check the environment's rewards"
    )


class MeanAccumulator:
    """Averages scalar metrics between two log points (like SimbaV2's ``AverageMeter``).

    Keys starting with ``_`` are ignored (private values such as intermediate activations).
    Array values are reduced to their mean before being accumulated. Each key keeps its own
    count, so metrics added at different rates are averaged correctly; a nan makes its key's
    mean nan until the next :meth:`reset`, so problems stay visible.
    """

    def __init__(self) -> None:
        """Creates an empty accumulator."""
        self._sums: dict[str, float] = {}
        self._counts: dict[str, float] = {}

    def add(self, metrics: Mapping[str, float | np.ndarray], weight: float = 1) -> None:
        """Adds one value per key.

        Args:
            metrics: Scalars or arrays (numpy or jax) by key.
            weight: How many values each one stands for (e.g. the mean of that many episodes).
        """
        if weight <= 0:
            return
        for key, value in metrics.items():
            if key.startswith("_"):
                continue
            scalar = float(np.mean(np.asarray(value, dtype=np.float64)))
            self._sums[key] = self._sums.get(key, 0.0) + scalar * weight
            self._counts[key] = self._counts.get(key, 0) + weight

    def means(self) -> dict[str, float]:
        """Returns the mean of every key added since the last reset."""
        return {key: self._sums[key] / self._counts[key] for key in self._sums}

    def state(self) -> dict[str, dict]:
        """The accumulated sums and counts (JSON-able; for resume checkpoints)."""
        return {"sums": dict(self._sums), "counts": dict(self._counts)}

    def load_state(self, state: dict[str, dict]) -> None:
        """Replace the accumulated values by a saved :meth:`state`."""
        self._sums = {k: float(v) for k, v in state["sums"].items()}
        self._counts = {k: float(v) for k, v in state["counts"].items()}

    def reset(self) -> None:
        """Forgets everything added so far."""
        self._sums.clear()
        self._counts.clear()

    def __len__(self) -> int:
        """Number of keys currently accumulated."""
        return len(self._sums)
