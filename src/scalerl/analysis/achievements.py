"""Craftax achievement curves for `scalerl report`.

PPO runs on Craftax-Classic log `train/achievement/<name>`: the percentage of the episodes
finished since the previous log point that unlocked the achievement (Matthews et al. 2024,
"Craftax", report the same success rates). The report draws one panel per achievement, the
mean over each label's runs against environment frames, and tabulates the rates at each run's
last log point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from scalerl.train.logging import METRICS_CSV_NAME, read_metrics_csv  # noqa: E402

PREFIX = "train/achievement/"
"""Metric-name prefix of the achievement rates."""
COLUMNS = ["label", "run", "seed", "env_step", "achievement", "value"]
"""Columns of the achievement table."""


def load_achievements(runs: Any) -> Any:
    """Achievement rates of the runs of a report's tidy table (columns `COLUMNS`).

    Args:
        runs: The report's runs (`report.load_runs`): columns label, run (its directory), seed.
    """
    records = []
    for run, rows in runs.groupby("run"):
        label, seed = rows["label"].iloc[0], rows["seed"].iloc[0]
        path = Path(run) / METRICS_CSV_NAME
        for row in read_metrics_csv(path) if path.is_file() else []:
            if row["metric"].startswith(PREFIX):
                name = row["metric"][len(PREFIX) :]
                records.append((label, run, seed, row["env_step"], name, row["value"]))
    table = pd.DataFrame(records, columns=COLUMNS)
    return table.drop_duplicates(["run", "env_step", "achievement"], keep="last")


def final_rates(table: Any) -> Any:
    """Rate of every achievement at each run's last log point, averaged per label (wide:
    one row per achievement, one column per label)."""
    last = table[table["env_step"] == table.groupby("run")["env_step"].transform("max")]
    means = last.groupby(["achievement", "label"])["value"].mean()
    return means.unstack("label").sort_index()


def achievements_figure(table: Any, ncols: int = 4) -> Figure:
    """One panel per achievement: mean rate (%) over each label's runs against frames."""
    names = sorted(table["achievement"].unique())
    ncols = max(1, min(ncols, len(names)))
    nrows = max(1, -(-len(names) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.4 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        rows = table[table["achievement"] == name]
        for label, part in rows.groupby("label"):
            mean = part.groupby("env_step")["value"].mean()
            ax.plot(mean.index, mean.values, label=str(label))
        ax.set_title(name.replace("_", " "), fontsize="small")
        ax.set_ylim(-2, 102)
        ax.tick_params(labelsize="x-small")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize="x-small")
    fig.supxlabel("environment frames")
    fig.supylabel("episodes that unlocked it (%)")
    fig.tight_layout()
    return fig


def achievement_section(runs: Any, out_dir: Path) -> str:
    """Writes achievements.csv and the achievements figure; returns the report's Markdown
    section, or "" when no run logged achievements."""
    table = load_achievements(runs)
    if table.empty:
        return ""
    table.to_csv(out_dir / "achievements.csv", index=False)
    fig = achievements_figure(table)
    for ext in ("png", "svg"):
        fig.savefig(out_dir / f"achievements.{ext}", dpi=120, bbox_inches="tight")
    plt.close(fig)
    final = final_rates(table)
    labels = [str(c) for c in final.columns]
    lines = ["## Craftax achievements", "",
             "Percentage of training episodes that unlocked each achievement, at each run's "
             "last log point, mean over the label's runs.", "",
             "| achievement | " + " | ".join(labels) + " |",
             "|---|" + "---|" * len(labels)]  # fmt: skip
    for name, row in final.iterrows():
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in row.values) + " |")
    lines += ["", "![achievements](achievements.png) ([SVG](achievements.svg))"]
    return "\n".join(lines)
