"""What a run tells its user while it runs: start message, compile notice, progress.

On a terminal the progress is a tqdm bar counting environment frames (the unit of
``--env-steps``) with the recent training and evaluation returns; when stdout is not a terminal
(sweep logs, CI) it is a plain summary line every few percent instead of carriage-return updates.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import jax
from tqdm import tqdm

SUMMARY_LINES = 50
"""About how many plain summary lines a whole run prints when stdout is not a terminal."""


def start_message(run_dirs: Sequence[Path], tensorboard: bool) -> str:
    """The lines printed when a run starts: its run directories and how to watch it.

    Args:
        run_dirs: The run directory of every seed.
        tensorboard: Whether the run writes TensorBoard event files.
    """
    dirs = [str(d) for d in run_dirs]
    shown = dirs if len(dirs) <= 4 else [*dirs[:2], f"... ({len(dirs)} seeds)", dirs[-1]]
    lines = [f"scalerl: run directory {d}" for d in shown]
    if tensorboard:
        root = Path(run_dirs[0]).parent
        lines.append(f"scalerl: watch it with: tensorboard --logdir {root}")
    return "\n".join(lines)


def summary_every(total: int, log_every: int) -> int:
    """Agent steps between two plain summary lines: a multiple of `log_every`, about
    `SUMMARY_LINES` lines per run."""
    return log_every * max(1, total // (SUMMARY_LINES * log_every))


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


class Progress:
    """Progress of a run in frames (or updates), as a bar or as plain summary lines.

    Args:
        total: Total units (environment frames for online runs).
        initial: Units already done (a resumed run).
        unit: Name of the unit (``frame`` / ``update``).
        enabled: False prints nothing, not even the compile notice (``--no-progress``).
        plain_every: Units between two plain summary lines.
        stream: Where plain lines go (default stdout); the bar mode is used when it is a
            terminal.
    """

    def __init__(
        self,
        total: int,
        initial: int,
        unit: str,
        enabled: bool,
        plain_every: int,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream or sys.stdout
        self.enabled, self.total, self.unit = enabled, total, unit
        self.plain = enabled and not _isatty(self.stream)
        self.plain_every, self._next_line = plain_every, initial + plain_every
        self._start, self._initial = time.perf_counter(), initial
        self.bar = tqdm(total=total, initial=initial, unit=unit, unit_scale=True,
                        disable=not enabled or self.plain, dynamic_ncols=True)  # fmt: skip

    def say(self, message: str) -> None:
        """A one-line notice (e.g. compiling) that does not break the bar."""
        if not self.enabled:
            return
        if self.plain:
            print(f"scalerl: {message}", file=self.stream, flush=True)
        else:
            self.bar.set_description_str(message, refresh=True)

    def clear(self) -> None:
        """Remove the notice from the bar."""
        if self.enabled and not self.plain:
            self.bar.set_description_str("", refresh=False)

    def update(self, done: int, train_returns: Sequence[float], evals: Sequence[float]) -> None:
        """Move to `done` units; show the recent training and the last evaluation return."""
        returns = {"eval_return": f"{_mean(evals):.1f}"}
        if train_returns:  # offline runs have no training episodes
            returns = {"train_return": f"{_mean(train_returns):.1f}"} | returns
        if self.plain:
            if done >= self._next_line or done == self.total:
                self._next_line = done + self.plain_every
                print(self._line(done, returns), file=self.stream, flush=True)
            return
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix(returns, refresh=False)

    def _line(self, done: int, returns: dict[str, str]) -> str:
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        rate = (done - self._initial) / elapsed
        shown = " | ".join(f"{k} {v}" for k, v in returns.items())
        return (
            f"scalerl: {done:,}/{self.total:,} {self.unit}s ({100 * done / self.total:.0f}%) | "
            f"{shown} | {rate:,.0f} {self.unit}s/s | {_clock(elapsed)} elapsed"
        )

    def close(self) -> None:
        self.bar.close()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class FirstCalls:
    """Calls jitted functions, announcing and timing the first call of each variant.

    The first call of a jitted function traces and compiles it (seconds to minutes for the
    larger agents); it is announced as "compiling ..." and its duration is returned, so
    throughput metrics can leave it out.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._seen: set[Any] = set()

    def __call__(self, key: Any, fn: Any, *args: Any) -> tuple[Any, float]:
        """``(fn(*args), seconds to leave out of rates)``; the seconds are 0 after the first
        call of `key`."""
        if key in self._seen:
            return fn(*args), 0.0
        self.progress.say("compiling the training step...")
        start = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        self._seen.add(key)
        self.progress.clear()
        return out, time.perf_counter() - start
