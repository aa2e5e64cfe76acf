"""Learning-curve plots from long-format metrics CSVs (scalerl runs and reference results).

Everything renders with matplotlib's Agg backend, so plots work on headless machines.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from scalerl.errors import ScalerlError  # noqa: E402
from scalerl.train.logging import CSV_COLUMNS, read_metrics_csv  # noqa: E402

X_LABEL = "environment frames"
EMPTY_NOTE = "no evaluation yet"
MAX_LEGEND_ENTRIES = 12

Curve = tuple[np.ndarray, np.ndarray]


def normalise_env_name(name: str) -> str:
    """Canonical env name for matching across files: no suite prefix (``dmc:``), lower case,
    ``_`` spelled as ``-`` (so ``dmc:ball_in_cup-catch`` matches ``ball-in-cup-catch``)."""
    return name.strip().split(":")[-1].lower().replace("_", "-")


def _select(rows: Iterable[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Keeps the rows whose metric is one of ``metrics``."""
    wanted = set(metrics)
    return [row for row in rows if row["metric"] in wanted]


def _curves(rows: Iterable[dict[str, Any]], key: str) -> dict[Any, dict[int, Curve]]:
    """Groups rows into one sorted curve per (``row[key]``, seed).

    A step logged twice (e.g. after a resume) keeps its last value.

    Returns:
        ``{group: {seed: (steps, values)}}``.
    """
    points: dict[Any, dict[int, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        points[row[key]][row["seed"]][row["env_step"]] = row["value"]
    return {
        group: {seed: _as_curve(steps) for seed, steps in seeds.items()}
        for group, seeds in points.items()
    }


def _as_curve(points: dict[int, float]) -> Curve:
    """Turns ``{step: value}`` into step-sorted arrays."""
    steps = np.array(sorted(points), dtype=np.float64)
    return steps, np.array([points[int(s)] for s in steps], dtype=np.float64)


def seed_statistics(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and standard deviation across seeds on the steps every seed has reached.

    Seeds logged at different steps are linearly interpolated onto the union of their steps,
    restricted to the range that all seeds cover.

    Args:
        curves: One ``(steps, values)`` pair per seed; each must be non-empty.

    Returns:
        ``(steps, mean, std)`` (population std; zeros for a single seed).
    """
    lo = max(steps[0] for steps, _ in curves)
    hi = min(steps[-1] for steps, _ in curves)
    grid = np.unique(np.concatenate([steps for steps, _ in curves]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    stacked = np.stack([np.interp(grid, steps, values) for steps, values in curves])
    return grid, stacked.mean(axis=0), stacked.std(axis=0)


def label_axes(ax: Axes, metric: str, fontsize: str | None = None) -> None:
    """Labels an axes: environment frames on x (engineering notation), the metric on y."""
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(metric, fontsize=fontsize)
    ax.xaxis.set_major_formatter(EngFormatter())
    ax.grid(True, alpha=0.3)


def mark_empty(ax: Axes, detail: str, note: str = EMPTY_NOTE, fontsize: str | None = None) -> None:
    """Writes `note` and `detail` in the middle of an empty axes (no ticks)."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, f"{note}\n({detail})", ha="center", va="center",
            transform=ax.transAxes, color="0.4", fontsize=fontsize)  # fmt: skip


def _save(fig: Figure, out_png: Path) -> Path:
    """Saves the figure as a PNG (creating the directory) and closes it."""
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out_png


def _default_title(rows: Sequence[dict[str, Any]], all_rows: Sequence[dict[str, Any]]) -> str:
    """Title from the environment name(s) of the plotted rows (or of the file if none)."""
    envs = sorted({row["env_name"] for row in (rows or all_rows)})
    if not envs:
        return "learning curve"
    more = f" (+{len(envs) - 3} more)" if len(envs) > 3 else ""
    return ", ".join(envs[:3]) + more


def _draw_run_curves(ax: Axes, curves: dict[Any, dict[int, Curve]]) -> None:
    """Draws one thin line per (exp_name, seed) and a bold mean when an experiment has >1 seed."""
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (exp_name, seeds) in enumerate(sorted(curves.items())):
        color = colors[i % len(colors)]
        several = len(seeds) > 1
        for seed, (steps, values) in sorted(seeds.items()):
            ax.plot(steps, values, color=color, lw=1.0, alpha=0.45 if several else 1.0,
                    marker="" if several else ".", label=f"{exp_name} seed {seed}")  # fmt: skip
        if several:
            grid, mean, _ = seed_statistics(list(seeds.values()))
            ax.plot(grid, mean, color=color, lw=2.5, label=f"{exp_name} mean ({len(seeds)})")
    if len(ax.get_lines()) <= MAX_LEGEND_ENTRIES:
        ax.legend(fontsize="small")


def plot_learning_curve(
    metrics_csv: Path, out_png: Path, metric: str = "eval/return", title: str | None = None
) -> Path:
    """Plots a run's metric against environment frames.

    One line per (exp_name, seed); when an experiment has several seeds their mean is drawn
    bold. A metric without rows gives an empty axes saying "no evaluation yet".

    Args:
        metrics_csv: A long-format metrics CSV (a run's ``metrics.csv``, or a reference file).
        out_png: Output PNG path (its directory is created if needed).
        metric: Metric to plot.
        title: Figure title; defaults to the environment name.

    Returns:
        ``out_png``.

    Raises:
        ScalerlError: If the CSV is missing or malformed.
    """
    all_rows = read_metrics_csv(metrics_csv)
    rows = _select(all_rows, [metric])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    label_axes(ax, metric)
    if rows:
        _draw_run_curves(ax, _curves(rows, "exp_name"))
    else:
        mark_empty(ax, f"no '{metric}' rows in {Path(metrics_csv).name}")
    ax.set_title(title if title is not None else _default_title(rows, all_rows))
    return _save(fig, out_png)


# --------------------------------------------------------------------------------------------
# Comparisons across files
# --------------------------------------------------------------------------------------------


def _load_rows(csvs: Sequence[Path], metrics: Sequence[str], env_name: str | None) -> list[dict]:
    """Reads every CSV, keeping the rows of the wanted metric(s) and environment."""
    rows = [row for path in csvs for row in _select(read_metrics_csv(path), metrics)]
    if env_name is None:
        return rows
    wanted = normalise_env_name(env_name)
    return [row for row in rows if normalise_env_name(row["env_name"]) == wanted]


def _by_env(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Groups rows by normalised env name, in sorted order."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[normalise_env_name(row["env_name"])].append(row)
    return dict(sorted(groups.items()))


def _draw_mean_std(ax: Axes, rows: list[dict], label_by: str, colors: dict[str, str]) -> None:
    """Draws mean ± std across seeds for each label on one axes."""
    for label, seeds in sorted(_curves(rows, label_by).items(), key=lambda kv: str(kv[0])):
        grid, mean, std = seed_statistics(list(seeds.values()))
        color = colors[str(label)]
        ax.plot(grid, mean, color=color, lw=2.0, label=str(label))
        ax.fill_between(grid, mean - std, mean + std, color=color, alpha=0.2, lw=0)


def _label_colors(rows: Iterable[dict[str, Any]], label_by: str) -> dict[str, str]:
    """Gives every label a fixed color, shared by all subplots."""
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = sorted({str(row[label_by]) for row in rows})
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _check_label_by(label_by: str) -> None:
    """Raises ScalerlError unless ``label_by`` is a CSV column."""
    if label_by not in CSV_COLUMNS:
        raise ScalerlError(
            f"label_by={label_by!r} is not a metrics column; use one of {', '.join(CSV_COLUMNS)}"
        )


def plot_compare(
    csvs: list[Path],
    out_png: Path,
    metric: str | Sequence[str] = "eval/return",
    label_by: str = "exp_name",
    *,
    env_name: str | None = None,
    title: str | None = None,
    ncols: int = 4,
) -> Path:
    """Plots mean ± std over seeds per label, one subplot per environment.

    Works on scalerl runs and on the reference results (whose metric is ``avg_return``); pass
    several metric names (e.g. ``("eval/return", "avg_return")``) to put both on one plot.
    Environment names are matched after normalising ``-``/``_`` and case.

    Args:
        csvs: Long-format metrics CSVs.
        out_png: Output PNG path (its directory is created if needed).
        metric: Metric name, or several names treated as the same quantity.
        label_by: Column whose values name the curves (``exp_name`` by default).
        env_name: Only plot this environment; by default every environment found.
        title: Figure title; defaults to the metric (and the environment if only one).
        ncols: Maximum subplots per row.

    Returns:
        ``out_png``.

    Raises:
        ScalerlError: If a CSV is missing or malformed, or ``label_by`` is not a column.
    """
    _check_label_by(label_by)
    metrics = [metric] if isinstance(metric, str) else list(metric)
    per_env = _by_env(_load_rows([Path(p) for p in csvs], metrics, env_name))
    n = max(1, len(per_env))
    cols = min(ncols, n)
    rows_n = math.ceil(n / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.2 * rows_n), squeeze=False)
    colors = _label_colors((r for rs in per_env.values() for r in rs), label_by)
    for ax, (env, rows) in zip(axes.flat, per_env.items(), strict=False):
        label_axes(ax, " / ".join(metrics))
        _draw_mean_std(ax, rows, label_by, colors)
        ax.set_title(env, fontsize="medium")
    _finish_compare(fig, axes, colors, metrics, title)
    return _save(fig, out_png)


def _finish_compare(
    fig: Figure, axes: np.ndarray, colors: dict[str, str], metrics: list[str], title: str | None
) -> None:
    """Hides unused subplots, marks an empty figure, adds the shared legend and title."""
    n_used = sum(ax.has_data() for ax in axes.flat)
    for ax in axes.flat[max(n_used, 1) :]:
        ax.set_visible(False)
    if n_used == 0:
        label_axes(axes.flat[0], " / ".join(metrics))
        mark_empty(axes.flat[0], f"no rows for metric {' / '.join(metrics)}")
    handles = [Line2D([], [], color=c, lw=2.0, label=label) for label, c in colors.items()]
    if handles:
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncols=min(4, len(handles)), fontsize="small", frameon=False)  # fmt: skip
    fig.tight_layout()
    fig.suptitle(title if title is not None else " / ".join(metrics), y=1.0, va="bottom")
