"""`--profile`: where a training run's wall time goes, by phase of the loop.

Host timers wrap the loop's phases. Phases nest (an evaluation inside the setup phase), and each
phase is charged only its own time, so the phases add up to the wall time the profiler saw (up to
the loop's own bookkeeping). When profiling, the fused step's results are waited for
(`jax.block_until_ready`) inside the update phase, so device time is not charged to whichever
phase happens to wait for it next; without `--profile` nothing waits and no timer runs.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax

PHASES: tuple[str, ...] = (
    "setup", "env", "update", "compile", "hooks", "eval", "log", "checkpoint", "video"
)  # fmt: skip
"""Phases of a profile: setup (initial state, environment resets or replay on resume), env
(stepping the training environments), update (the fused train step: replay write, gradient
updates, next action), compile (first call of each train-step variant), hooks (health
diagnostics, resets, ReDo), eval, log (metrics, progress), checkpoint, video."""

PROFILE_JSON = "profile.json"
PROFILE_TXT = "profile.txt"


class Profiler:
    """Wall time per phase; a disabled profiler does nothing (no timers, no waiting)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.calls = dict.fromkeys(PHASES, 0)
        self._stack: list[list[Any]] = []
        self._start = time.perf_counter()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charge the time inside the block to `name` (minus nested phases)."""
        if not self.enabled:
            yield
            return
        frame = [name, time.perf_counter(), 0.0]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            elapsed = time.perf_counter() - frame[1]
            self.seconds[name] += elapsed - frame[2]
            self.calls[name] += 1
            if self._stack:
                self._stack[-1][2] += elapsed

    def sync(self, tree: Any) -> Any:
        """`tree` once computed (only when profiling)."""
        return jax.block_until_ready(tree) if self.enabled else tree

    def move(self, source: str, target: str, seconds: float) -> None:
        """Re-charge `seconds` already counted under `source` to `target` (e.g. compilation)."""
        if self.enabled and seconds > 0:
            self.seconds[source] -= seconds
            self.seconds[target] += seconds
            self.calls[target] += 1

    def report(self) -> dict[str, Any]:
        """{"total_s", "phases": {name: {"seconds", "fraction", "calls"}}, "unaccounted_s"}."""
        total = max(time.perf_counter() - self._start, 1e-9)
        phases = {
            name: {"seconds": s, "fraction": s / total, "calls": self.calls[name]}
            for name, s in self.seconds.items()
        }
        return {"total_s": total, "phases": phases,
                "unaccounted_s": total - sum(self.seconds.values())}  # fmt: skip

    def write(self, run_dir: Path) -> str:
        """Write profile.json and profile.txt to `run_dir`; returns the text table."""
        report = self.report()
        (Path(run_dir) / PROFILE_JSON).write_text(json.dumps(report, indent=2) + "\n")
        text = profile_table(report)
        (Path(run_dir) / PROFILE_TXT).write_text(text + "\n")
        return text


def profile_table(report: dict[str, Any]) -> str:
    """A fixed-width table of a `Profiler.report`: phase, seconds, share, calls."""
    lines = [f"{'phase':<11}{'seconds':>10}{'share':>8}{'calls':>9}"]
    for name, row in report["phases"].items():
        lines.append(f"{name:<11}{row['seconds']:>10.2f}{row['fraction']:>8.1%}{row['calls']:>9}")
    other = report["unaccounted_s"]
    lines.append(f"{'other':<11}{other:>10.2f}{other / report['total_s']:>8.1%}{'':>9}")
    lines.append(f"{'total':<11}{report['total_s']:>10.2f}{1:>8.1%}{'':>9}")
    return "\n".join(lines)
