"""One launch at a time per sweep directory: an advisory lock on `<sweep>/.sweep.lock`.

The lock is an `fcntl.flock` on the file, held for the whole launch. The operating system
releases it when the holding process exits in any way (even `kill -9`), so a lock can never be
left stale; the file itself stays and only records the last holder, for the error message.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from scalerl.errors import ScalerlError

LOCK_NAME = ".sweep.lock"
"""Lock file in the sweep directory."""


class SweepLock:
    """Context manager holding the sweep directory's lock; raises if another launch holds it."""

    def __init__(self, sweep_dir: Path) -> None:
        self.path = Path(sweep_dir) / LOCK_NAME
        self._file: IO[str] | None = None

    def __enter__(self) -> SweepLock:
        try:
            import fcntl
        except ImportError:  # no flock on this platform: run unlocked
            return self
        f = open(self.path, "a+")  # noqa: SIM115 (held until __exit__)
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = " ".join(f.read().split()) or "unknown process"
            f.close()
            raise ScalerlError(
                f"sweep directory {self.path.parent} is in use by another scalerl sweep "
                f"({holder}); wait for it to finish or stop it, then launch again"
            ) from None
        f.seek(0)
        f.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        f.write(f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n")
        f.flush()
        self._file = f
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()  # closing the file releases the lock
            self._file = None
