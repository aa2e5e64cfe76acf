"""Report sections for probability of improvement, performance profiles and aggregate curves.

Called by :func:`scalerl.analysis.report.write_report`; the statistics live in
:mod:`scalerl.analysis.comparisons` and :mod:`scalerl.analysis.profiles` (formulas in
docs/reports.md).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from scalerl.analysis.comparisons import probability_of_improvement_ci  # noqa: E402
from scalerl.analysis.plots import label_axes, mark_empty  # noqa: E402
from scalerl.analysis.profiles import aggregate_curve, performance_profile_ci  # noqa: E402

MAX_CURVE_POINTS = 50
"""Evaluation steps per aggregate curve (evenly thinned from the labels' evaluation steps)."""
PROFILE_POINTS = 101
"""Thresholds τ of a performance profile, evenly spaced from 0 to the best score."""


def _valid(scores: Any) -> Any:
    """Rows with a finite normalised score."""
    return scores[np.isfinite(scores["score"].astype(float))]


def _by_task(rows: Any, tasks: list[str]) -> list[np.ndarray]:
    """Scores of every task of `tasks`, in that order."""
    return [rows.loc[rows["task"] == t, "score"].to_numpy(np.float64) for t in tasks]


def improvement_table(scores: Any, reps: int = 2000, seed: int = 0) -> Any:
    """P(X > Y) with 95 % CI for every pair of labels, on the tasks both have scores for.

    Args:
        scores: Scores at one step (``score_at``), columns label, task, score.
        reps: Bootstrap replicates.
        seed: Seed of the resampling.

    Returns:
        DataFrame with columns x, y, tasks, estimate, lower, upper (labels sorted, x < y;
        P(Y > X) = 1 − P(X > Y)); pairs without a common task are left out.
    """
    valid, rows = _valid(scores), []
    for x, y in itertools.combinations(sorted(valid["label"].unique()), 2):
        sx, sy = valid[valid["label"] == x], valid[valid["label"] == y]
        tasks = sorted(set(sx["task"]) & set(sy["task"]))
        if tasks:
            ci = probability_of_improvement_ci(_by_task(sx, tasks), _by_task(sy, tasks), reps,
                                               seed=seed)  # fmt: skip
            rows.append((x, y, len(tasks), *ci))
    return pd.DataFrame(rows, columns=["x", "y", "tasks", "estimate", "lower", "upper"])


def profile_figure(scores: Any, reps: int = 2000, seed: int = 0) -> Figure:
    """Performance profiles F(τ) with 95 % bands, one line per label."""
    valid = _valid(scores)
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    if valid.empty:
        mark_empty(ax, "no task has a normalised score", note="no scores")
        return fig
    taus = np.linspace(0.0, max(float(valid["score"].max()), 1e-9), PROFILE_POINTS)
    for label, part in valid.groupby("label", sort=True):
        tasks = sorted(part["task"].unique())
        est, low, high = performance_profile_ci(_by_task(part, tasks), taus, reps, seed=seed)
        line = ax.plot(taus, est, label=label)[0]
        ax.fill_between(taus, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.set(xlabel="normalised score τ", ylabel="fraction of runs with score > τ", ylim=(0, 1.02))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def aggregate_curves(df: Any, reps: int = 500, seed: int = 0) -> Any:
    """IQM normalised score against frames per label, with 95 % stratified bootstrap CIs.

    At every step each run contributes its last evaluation at or before it (``score_at``);
    tasks with no evaluation yet are left out of that step.

    Returns:
        DataFrame with columns label, env_step, estimate, lower, upper, runs.
    """
    from scalerl.analysis.report import score_at

    valid, frames = _valid(df), []
    for label, part in valid.groupby("label", sort=True):
        steps = np.unique(part["env_step"].to_numpy())
        steps = steps[np.unique(np.linspace(0, steps.size - 1, MAX_CURVE_POINTS).astype(int))]
        at = [score_at(part, int(s)) for s in steps]
        sets = [_by_task(a, sorted(a["task"].unique())) for a in at]
        est, low, high = aggregate_curve(sets, reps=reps, seed=seed)
        runs = [len(a) for a in at]
        frames.append(pd.DataFrame({"label": label, "env_step": steps, "estimate": est,
                                    "lower": low, "upper": high, "runs": runs}))  # fmt: skip
    cols = ["label", "env_step", "estimate", "lower", "upper", "runs"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def aggregate_curves_figure(table: Any) -> Figure:
    """IQM normalised score vs frames with 95 % bands, one line per label."""
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    label_axes(ax, "IQM normalised score")
    if table.empty:
        mark_empty(ax, "no task has a normalised score", note="no scores")
    for label, part in table.groupby("label", sort=True):
        line = ax.plot(part["env_step"], part["estimate"], label=label)[0]
        ax.fill_between(part["env_step"], part["lower"], part["upper"], color=line.get_color(),
                        alpha=0.2, lw=0)  # fmt: skip
    if not table.empty:
        ax.legend(fontsize="small")
    return fig


def _save(fig: Figure, out_dir: Path, stem: str) -> str:
    """PNG + SVG; returns the Markdown image line."""
    for ext in ("png", "svg"):
        fig.savefig(out_dir / f"{stem}.{ext}", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return f"![{stem}]({stem}.png) ([SVG]({stem}.svg))"


def _improvement_md(table: Any) -> list[str]:
    """Markdown rows of the probability-of-improvement table."""
    if table.empty:
        return ["Needs two labels with a common task."]
    lines = ["| X | Y | tasks | P(X > Y) [95% CI] |", "|---|---|---|---|"]
    lines += [f"| {r.x} | {r.y} | {r.tasks} | {r.estimate:.3f} [{r.lower:.3f}, {r.upper:.3f}] |"
              for r in table.itertuples()]  # fmt: skip
    return lines


def extra_sections(curves: Any, scores: Any, out_dir: Path, reps: int, seed: int) -> str:
    """Writes improvement.csv, aggregate_curves.csv and two figures; returns their Markdown.

    Args:
        curves: Tidy table of every evaluation (learning curves).
        scores: Scores at the report's step (``score_at``).
        out_dir: Report directory.
        reps: Bootstrap replicates (aggregate curves use at most 500 per step).
        seed: Seed of the resampling.
    """
    improvement = improvement_table(scores, reps, seed)
    improvement.to_csv(out_dir / "improvement.csv", index=False)
    table = aggregate_curves(curves, min(reps, 500), seed)
    table.to_csv(out_dir / "aggregate_curves.csv", index=False)
    text = ["## Probability of improvement", "",
            "P(X > Y): chance that a run of X beats a run of Y on a random common task "
            "(ties count 1/2), stratified bootstrap CI (docs/reports.md).", "",
            *_improvement_md(improvement), "", "## Performance profiles and aggregate curves", "",
            _save(profile_figure(scores, reps, seed), out_dir, "performance_profile"), "",
            _save(aggregate_curves_figure(table), out_dir, "aggregate_curves")]  # fmt: skip
    return "\n".join(text)
