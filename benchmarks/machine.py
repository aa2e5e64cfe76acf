"""Machine facts shared by the benchmarks: CPU model and CPU time used by other processes."""

from __future__ import annotations

import math
import os


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or "unknown" if it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def busy_cpu_seconds() -> tuple[float, float]:
    """(CPU-seconds all processes have used since boot, CPU-seconds this process has used).

    The first is read from /proc/stat (every state but idle and iowait); it is NaN if that file
    cannot be read. Their difference over a window is the CPU time other processes used.
    """
    times = os.times()
    own = times.user + times.system
    try:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return math.nan, own
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK"), own


def other_cores(before: tuple[float, float], after: tuple[float, float], seconds: float) -> float:
    """Mean number of cores other processes kept busy between two `busy_cpu_seconds` readings."""
    others = (after[0] - before[0]) - (after[1] - before[1])
    return round(max(others, 0.0) / seconds, 2) if math.isfinite(others) else math.nan
