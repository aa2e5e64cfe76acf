"""Runner, gap table and heat map of the warm-start experiment (see `warmstart`).

The gap of a method in a cell is its final test accuracy minus that of the plain network trained
from scratch with the same seed (paired by seed: same initialisation key), averaged over seeds,
with a 95 % percentile bootstrap interval over seeds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from scalerl.analysis.aggregate import bootstrap_mean_ci
from scalerl.plasticity.digits_train import make_learner
from scalerl.plasticity.warmstart import METHODS, SCRATCH, cells, make_data, run_method

ACCURACY = "eval/test_accuracy"


def run_warmstart(names: tuple[str, ...], keys: jax.Array, settings: dict[str, Any]) -> list[Any]:
    """`VariantResult`s of the from-scratch references and of every method in `names`.

    `scratch` always runs; `nap_scratch` (NaP's network from scratch) only with `nap`.

    Each result holds `eval/test_accuracy` of shape (cells, seeds) ((1, seeds) from scratch).
    """
    from scalerl.plasticity.digits import VariantResult

    grid = cells(settings["warm_fractions"], settings["label_noise"])
    data = make_data(jax.random.PRNGKey(settings["seed"]), grid)
    rows = []
    references = [n for n in SCRATCH if n == "scratch" or "nap" in names]
    for name in (*references, *names):
        method = {**SCRATCH, **METHODS}[name]
        learner = make_learner(method.variant, settings["width"], settings["lr"],
                               settings["batch_size"])  # fmt: skip
        start = time.perf_counter()
        acc = run_method(learner, method, keys, data, settings["steps"])
        rows.append(VariantResult(name, {ACCURACY: acc}, time.perf_counter() - start))
    return rows


def gaps(rows: list[Any], reps: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """Per method: (3, cells) array of mean gap to `scratch`, lower and upper 95 % bound."""
    scratch = next(r for r in rows if r.name == "scratch").metrics[ACCURACY][0]
    out = {}
    for row in rows:
        if row.name not in SCRATCH:
            diff = row.metrics[ACCURACY] - scratch[None, :]
            out[row.name] = np.stack(bootstrap_mean_ci(diff.T, reps, seed=seed))
    return out


def table_warmstart(results: Any) -> list[str]:
    """Markdown rows: one per method, one column per (p, q) cell: gap [95 % CI] in points."""
    grid = cells(results.settings["warm_fractions"], results.settings["label_noise"])
    head = " | ".join(f"p={p:.0%}, q={q:.0%}" for p, q in grid)
    lines = [f"| method | {head} |", "| --- |" + " --- |" * len(grid)]
    for name, g in gaps(list(results.rows), seed=results.settings["seed"]).items():
        cells_md = [f"{100 * m:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]" for m, lo, hi in g.T]
        lines.append(f"| {name} | " + " | ".join(cells_md) + " |")
    lines += ["", "Gap: test accuracy minus the plain network from scratch, percentage points, "
              "mean over seeds [95% bootstrap CI]. From scratch:"]  # fmt: skip
    for row in results.rows:
        if row.name in SCRATCH:
            acc = row.metrics[ACCURACY][0]
            lines.append(f"- {row.name}: {acc.mean():.4f} ± {acc.std():.4f} (std over seeds)")
    return lines


def plot_gap_heatmap(results: Any, path: str | Path) -> None:
    """Heat map of the mean gap (points): methods × (p, q) cells, annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = cells(results.settings["warm_fractions"], results.settings["label_noise"])
    table = gaps(list(results.rows), seed=results.settings["seed"])
    values = 100 * np.array([g[0] for g in table.values()])
    bound = max(float(np.abs(values).max()), 0.1)
    fig, ax = plt.subplots(figsize=(1.6 * len(grid) + 2.5, 0.55 * len(table) + 1.5))
    image = ax.imshow(values, cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        color = "white" if abs(v) > 0.6 * bound else "black"
        ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize="small", color=color)
    ax.set_xticks(range(len(grid)), [f"p={p:.0%}\nq={q:.0%}" for p, q in grid])
    ax.set_yticks(range(len(table)), list(table))
    ax.set_title("test accuracy gap to from-scratch (points)")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
