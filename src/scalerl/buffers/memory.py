"""A clear error, instead of the kernel's out-of-memory kill, for a buffer too big for the host."""

from __future__ import annotations

from pathlib import Path

from scalerl.errors import ConfigError

MEMINFO = Path("/proc/meminfo")


def available_bytes() -> int | None:
    """The memory the kernel can hand out now (Linux `MemAvailable`), None where unknown."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(nbytes: int, option: str) -> None:
    """Raise ConfigError naming `option` when `nbytes` exceed the available memory."""
    free = available_bytes()
    if free is not None and nbytes > free:
        raise ConfigError(
            f"the replay buffer needs {nbytes / 1e9:.1f} GB but this machine has "
            f"{free / 1e9:.1f} GB available; lower {option}"
        )
