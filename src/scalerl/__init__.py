"""scalerl: scalable deep RL for continuous control in JAX.

The Python API (docs/python_api.md): `scalerl.SAC`, `scalerl.TD3`, `scalerl.DDPG` and
`scalerl.OfflineSAC`, loaded on first use so `import scalerl` stays cheap (no JAX import).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

API = ("SAC", "TD3", "DDPG", "OfflineSAC")
"""Names exported lazily from `scalerl.api`."""

__all__ = [*API, "__version__"]


def __getattr__(name: str) -> Any:
    if name in API:
        from scalerl import api

        return getattr(api, name)
    raise AttributeError(f"module 'scalerl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(API))
