"""Run `scalerl simplicity` over architectures and depths; table, JSON and bar plot.

See `scalerl.science.simplicity` for the measure and docs/simplicity.md for measured results.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from scalerl.science.simplicity import (
    SimplicityConfig,
    complexities,
    parse_depths,
    parse_list,
    score,
    validate,
)


@dataclasses.dataclass(frozen=True)
class SimplicityRow:
    """Score of one architecture at one depth, with the per-init complexities."""

    arch: str
    depth: int
    score: float
    """Mean over inits of 1 / complexity."""
    lower: float
    """Lower end of the 95 % bootstrap interval of `score`."""
    upper: float
    """Upper end of the 95 % bootstrap interval of `score`."""
    complexities: np.ndarray
    """Complexity of every initialisation, shape (inits,)."""


def run_simplicity(cfg: SimplicityConfig) -> list[SimplicityRow]:
    """Scores of every architecture of `cfg.archs` at every depth of `cfg.depth`."""
    validate(cfg)
    rows = []
    for depth in parse_depths(cfg.depth):
        for arch in parse_list(cfg.archs, "archs"):
            c = complexities(cfg, arch, depth)
            rows.append(SimplicityRow(arch, depth, *score(c, seed=cfg.seed), complexities=c))
    return rows


def format_table(rows: list[SimplicityRow]) -> str:
    """Markdown table: architecture, depth, score [95 % CI], mean and std of the complexity."""
    lines = [
        "| arch | depth | simplicity score [95% CI] | complexity mean | complexity std |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.arch} | {r.depth} | {r.score:.3f} [{r.lower:.3f}, {r.upper:.3f}] "
            f"| {r.complexities.mean():.4f} | {r.complexities.std():.4f} |"
        )
    return "\n".join(lines) + "\n"


def plot_scores(rows: list[SimplicityRow], path: str | Path, title: str = "") -> Path:
    """Bar plot of the scores with CI error bars: architectures grouped, one bar per depth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = list(dict.fromkeys(r.arch for r in rows))
    depths = sorted({r.depth for r in rows})
    width = 0.8 / len(depths)
    fig, ax = plt.subplots(figsize=(1.2 * len(archs) + 2, 3.5))
    for j, depth in enumerate(depths):
        part = {r.arch: r for r in rows if r.depth == depth}
        x = [i + (j - (len(depths) - 1) / 2) * width for i, a in enumerate(archs) if a in part]
        sel = [part[a] for a in archs if a in part]
        err = np.array([[r.score - r.lower for r in sel], [r.upper - r.score for r in sel]])
        ax.bar(x, [r.score for r in sel], width, yerr=err, capsize=3, label=f"depth {depth}")
    ax.set_xticks(range(len(archs)), archs)
    ax.set(ylabel="simplicity score (1 / complexity)", title=title or "simplicity bias at init")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def save(rows: list[SimplicityRow], cfg: SimplicityConfig) -> Path:
    """Write results.json, table.md and simplicity.png to `cfg.out_dir`; return the plot path."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "settings": dataclasses.asdict(cfg),
        "rows": [
            {**{k: getattr(r, k) for k in ("arch", "depth", "score", "lower", "upper")},
             "complexities": r.complexities.tolist()}
            for r in rows
        ],
    }  # fmt: skip
    (out / "results.json").write_text(json.dumps(payload, indent=1))
    (out / "table.md").write_text(format_table(rows))
    title = f"width {cfg.width}, {cfg.init} init, grid {cfg.grid}² over [{cfg.low:g}, {cfg.high:g})"
    return plot_scores(rows, out / "simplicity.png", title)


def main(cfg: SimplicityConfig) -> list[SimplicityRow]:
    """Entry point of `scalerl simplicity`: run, print the table, save the outputs."""
    rows = run_simplicity(cfg)
    print(format_table(rows), end="")
    print(f"plot written to {save(rows, cfg)}")
    return rows
