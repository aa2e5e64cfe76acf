"""JAX's persistent compilation cache, on by default for training runs.

Compiling the fused training step takes seconds for a small MLP and minutes for SimbaV2 on a busy
machine. With the cache, a second run with the same shapes (same agent, widths, batch size,
UTD, number of seeds, observation and action sizes) loads the compiled program from disk and
starts at once; see docs/performance.md for the measured gain.

The cache lives in ``$XDG_CACHE_HOME/scalerl/jax`` (default ``~/.cache/scalerl/jax``).
``SCALERL_COMPILATION_CACHE=off`` turns it off, ``SCALERL_COMPILATION_CACHE=<dir>`` moves it; a
cache directory already configured for JAX (``JAX_COMPILATION_CACHE_DIR``) is left alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import jax

CACHE_ENV = "SCALERL_COMPILATION_CACHE"
"""Environment variable: ``off`` (or 0/false/no) disables the cache, a path moves it."""
OFF_VALUES = frozenset({"0", "off", "false", "no", "none"})


def cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The compilation-cache directory scalerl uses, or None when turned off.

    Args:
        environ: Environment variables (default: ``os.environ``).
    """
    environ = os.environ if environ is None else environ
    value = environ.get(CACHE_ENV, "").strip()
    if value.lower() in OFF_VALUES:
        return None
    if value:
        return Path(value).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scalerl" / "jax"


def _configured_dir() -> str | None:
    """The cache directory JAX is already configured with (e.g. JAX_COMPILATION_CACHE_DIR)."""
    return jax.config.jax_compilation_cache_dir


def enable_compilation_cache(environ: Mapping[str, str] | None = None) -> Path | None:
    """Point JAX's persistent compilation cache at :func:`cache_dir` (call before compiling).

    Returns:
        The cache directory in use, or None when the cache is off (or cannot be created, which
        is reported on stderr and does not stop the run).
    """
    configured = _configured_dir()
    if configured:
        return Path(configured)
    path = cache_dir(environ)
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"scalerl: warning: no compilation cache ({err}); set {CACHE_ENV}=<dir> or off",
              file=sys.stderr)  # fmt: skip
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    return path
