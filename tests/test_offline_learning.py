"""Offline learning test (slow): SimbaV2 + BC learns Pendulum-v1 from a dataset that a trained
small policy collected with exploration noise.

Normalised score = 100 (R - R_random) / (R_data - R_random), with R_random the return of uniform
random actions and R_data the mean return of the collected episodes (collect's metadata). The
offline agent must reach at least 60, i.e. 60% of the way from random play to the data's return,
in 2,000 updates. The LR is constant: the paper's decay to 1e-5 over the first half of the
updates suits its 390k-update budget, not this tiny one (with it, 4,000 updates reach ~50-75).
Seeds 0-2 scored 94, 100 and 81 at the end when this test was written.
"""

from __future__ import annotations

import csv

import pytest

from conftest import PENDULUM_SIZES
from scalerl.config import OfflineConfig, replace
from scalerl.datasets import save_any
from scalerl.offline.collect import CollectSpec, collect
from scalerl.offline.train import train_offline

THRESHOLD = 60.0


def _scores(run_dir) -> list[float]:
    with open(run_dir / "metrics.csv") as f:
        rows = csv.DictReader(f)
        return [float(r["value"]) for r in rows if r["metric"] == "eval/normalized_return"]


@pytest.mark.slow
@pytest.mark.xdist_group("pendulum_simbav2")
def test_offline_simbav2_bc_reaches_most_of_the_data_return(tmp_path, pendulum_simbav2_run):
    """The expert is the session's shared 7,000-step SimbaV2 Pendulum run (conftest)."""
    spec = CollectSpec(episodes=20, noise=0.2, random_episodes=5)
    dataset = collect(pendulum_simbav2_run, spec)
    low, high = dataset.metadata["ref_min_score"], dataset.metadata["ref_max_score"]
    assert high - low > 500, f"the collecting policy did not learn: data {high}, random {low}"
    path = save_any(tmp_path / "pendulum.npz", dataset, "scalerl")
    offline = OfflineConfig(
        dataset=path, epochs=128.0, eval_every=500, log_every=500, eval_episodes=5,
        progress=False, tensorboard=False, run_root=tmp_path, name="offline",
        agent=replace(OfflineConfig().agent, lr_end=1e-4, **PENDULUM_SIZES["simbav2"]),
    )  # fmt: skip
    scores = _scores(train_offline(offline)[0])
    assert scores[0] < 30, f"an untrained policy should score near random, got {scores[0]:.0f}"
    assert max(scores[-2:]) >= THRESHOLD, f"normalised scores: {[round(s) for s in scores]}"
