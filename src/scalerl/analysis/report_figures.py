"""Figures of the benchmark report: learning curves, aggregate intervals, scaling plots.

Split from :mod:`scalerl.analysis.report`, which builds the tidy tables these functions draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from scalerl.analysis.aggregate import (  # noqa: E402
    AGGREGATES,
    bootstrap_mean_ci,
    iqm,
    stratified_bootstrap_ci,
)
from scalerl.analysis.plots import label_axes, mark_empty, seed_statistics  # noqa: E402

_INTERVAL = ["estimate", "lower", "upper"]
REFERENCE_SUFFIX = " (ref)"
"""Appended to the label of reference curves (dashed in the figures)."""


def per_task(scores: Any) -> list[np.ndarray]:
    """Normalised scores of every task (one array of runs per task), tasks sorted."""
    return [g["score"].to_numpy() for _, g in scores.groupby("task", sort=True)]


def _colors(labels: Sequence[str]) -> dict[str, str]:
    """A fixed colour per label, shared by all subplots."""
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {label: palette[i % len(palette)] for i, label in enumerate(sorted(labels))}


def padded_limits(values: Any, pad: float = 0.08) -> tuple[float, float]:
    """Axis limits holding every finite value with a margin (``pad`` of the span on each side).

    A single value (a one-run interval [x, x]) gets a margin of ``pad`` times its magnitude (at
    least ``pad``), so no estimate sits on the edge of its axis.
    """
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    margin = pad * (hi - lo) if hi > lo else pad * max(abs(lo), 1.0)
    return lo - margin, hi + margin


def _curve_value(rows: Any) -> str:
    """Plotted quantity of a task: success rate for MyoSuite, else the return."""
    myo = rows["suite"].iloc[0] == "myosuite" and rows["success"].notna().any()
    return "success" if myo else "return"


def _draw_curves(ax: Any, rows: Any, value: str, color: str, dashed: bool, reps: int) -> None:
    """Mean over seeds with a bootstrap CI band for one label on one task."""
    curves = [
        (g["env_step"].to_numpy(float), g[value].to_numpy(float))
        for _, g in rows.dropna(subset=[value]).groupby(["run", "seed"])
    ]
    curves = [(s, v) for s, v in curves if s.size]
    if not curves:
        return
    grid, mean, _ = seed_statistics(curves)
    stacked = np.stack([np.interp(grid, s, v) for s, v in curves])
    _, lower, upper = bootstrap_mean_ci(stacked, reps)
    label = f"{rows['label'].iloc[0]} ({len(curves)})"
    ax.plot(grid, mean, color=color, lw=2.0, ls="--" if dashed else "-", label=label)
    ax.fill_between(grid, lower, upper, color=color, alpha=0.2, lw=0)


def learning_curves_figure(df: Any, ncols: int = 4, reps: int = 1000) -> Figure:
    """Per-task learning curves: mean over seeds ± 95 % bootstrap CI, one line per label.

    Args:
        df: Tidy table (runs and/or reference rows; reference lines are dashed).
        ncols: Maximum subplots per row.
        reps: Bootstrap replicates of each band.

    Returns:
        The figure (return on y, success rate for MyoSuite; the legend counts seeds).
    """
    tasks = sorted(df["task"].unique())
    cols = max(1, min(ncols, len(tasks)))
    nrows = max(1, -(-len(tasks) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    colors = _colors(df["label"].unique())
    for ax, task in zip(axes.flat, tasks, strict=False):
        rows = df[df["task"] == task]
        value = _curve_value(rows)
        label_axes(ax, value)
        for label, part in rows.groupby("label", sort=True):
            dashed = part["source"].iloc[0] == "reference"
            _draw_curves(ax, part.sort_values("env_step"), value, colors[label], dashed, reps)
        ax.set_title(task, fontsize="medium")
        ax.legend(fontsize="x-small")
    for ax in axes.flat[len(tasks) :]:
        ax.set_visible(False)
    if not tasks:
        mark_empty(axes.flat[0], "no tasks", note="no evaluation")
    fig.tight_layout()
    return fig


def aggregate_figure(table: Any, domain: str = "all") -> Figure:
    """Interval plot of the aggregate metrics: one column per metric, one row per label.

    Args:
        table: Output of :func:`aggregate_table`.
        domain: Which domain's rows to draw.

    Returns:
        The figure (thick bar: 95 % CI; black tick: point estimate).
    """
    rows = table[table["domain"] == domain]
    labels = sorted(rows["label"].unique())
    fig, axes = plt.subplots(
        1,
        len(AGGREGATES),
        figsize=(3.2 * len(AGGREGATES), 0.6 * max(len(labels), 1) + 1.2),
        sharey=True,
    )
    colors = _colors(labels)
    for ax, metric in zip(axes, AGGREGATES, strict=True):
        for i, label in enumerate(labels):
            r = rows[(rows["label"] == label) & (rows["metric"] == metric)].iloc[0]
            ax.barh(i, r.upper - r.lower, left=r.lower, height=0.6, color=colors[label], alpha=0.7)
            ax.vlines(r.estimate, i - 0.3, i + 0.3, color="k", lw=1.5)
        if labels:
            ax.set_xlim(*padded_limits(rows.loc[rows["metric"] == metric, _INTERVAL].to_numpy()))
        ax.set_title(metric)
        ax.set_xlabel("normalised score")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(labels)), labels)
    axes[0].invert_yaxis()
    if not labels:
        mark_empty(axes[0], "no task has a normalised score", note="no scores")
    fig.tight_layout()
    return fig


def scaling_figure(
    scores: Any, by: str = "critic_width", hue: str = "reset", reps: int = 2000, seed: int = 0
) -> Figure:
    """IQM normalised score (95 % stratified bootstrap CI) against a config value.

    Args:
        scores: Output of :func:`score_at` (runs and/or reference rows).
        by: x axis (log2 scale): ``critic_width`` or ``utd``.
        hue: Column splitting the lines (``reset``: with / without periodic resets).
        reps: Bootstrap replicates.
        seed: Seed of the resampling.

    Returns:
        The figure: one line per (algo, source, hue value).
    """
    data = scores[np.isfinite(scores["score"].astype(float)) & scores[by].notna()]
    data = data.assign(**{hue: data[hue].fillna("n/a").astype(str), by: data[by].astype(float)})
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    drawn: list[np.ndarray] = []
    for (algo, source, level), part in data.groupby(["algo", "source", hue], sort=True):
        xs = np.sort(part[by].unique())
        cis = [
            stratified_bootstrap_ci(per_task(part[part[by] == x]), iqm, reps, seed=seed) for x in xs
        ]
        est, lower, upper = (np.array(v) for v in zip(*cis, strict=True))
        name = f"{algo}{REFERENCE_SUFFIX if source == 'reference' else ''}, {hue}={level}"
        line = ax.plot(xs, est, marker="o", label=name)[0]
        ax.fill_between(xs, lower, upper, color=line.get_color(), alpha=0.2, lw=0)
        drawn += [est, lower, upper]
    ax.set_xlabel(by)
    ax.set_ylabel("IQM normalised score")
    if data.empty:
        mark_empty(ax, f"no runs with a {by} and a normalised score", note="no data")
        return fig
    ax.set_ylim(*padded_limits(np.concatenate(drawn)))
    ax.set_xscale("log", base=2)
    ticks = np.sort(data[by].unique())
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------
