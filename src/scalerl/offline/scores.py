"""Normalised offline scores: 100 (R - R_min) / (R_max - R_min) with D4RL's reference returns."""

from __future__ import annotations

import math
import re
from typing import Any

#: D4RL reference returns (random, expert) per MuJoCo task family, from D4RL's infos
#: (the same for every dataset of a family and for Gymnasium v4/v5 ids of that task).
D4RL_REF_SCORES: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}


def task_family(env_id: str) -> str:
    """'Hopper-v5' or 'hopper-medium-replay-v2' -> 'hopper' (lower case, no version/dataset)."""
    name = re.sub(r"-v\d+$", "", env_id.split(":")[-1]).lower()
    return name.split("-")[0]


def reference_range(
    env_id: str, metadata: dict[str, Any], ref_min: float | None, ref_max: float | None
) -> tuple[float, float] | None:
    """The (min, max) returns to normalise with: explicit values, else the dataset's metadata
    (`ref_min_score`, `ref_max_score`), else D4RL's table; None when none is known."""
    low = ref_min if ref_min is not None else metadata.get("ref_min_score")
    high = ref_max if ref_max is not None else metadata.get("ref_max_score")
    table = D4RL_REF_SCORES.get(task_family(env_id))
    if table is not None:
        low = table[0] if low is None else low
        high = table[1] if high is None else high
    if low is None or high is None or math.isclose(float(low), float(high)):
        return None
    return float(low), float(high)


def normalized_score(ret: float, ref: tuple[float, float]) -> float:
    """100 (ret - min) / (max - min): 0 = random, 100 = expert (D4RL convention)."""
    low, high = ref
    return 100.0 * (ret - low) / (high - low)
