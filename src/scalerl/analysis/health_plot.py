"""The network-health panel of SimbaV2's analysis figure, for scalerl runs.

One subplot each for the return, feature norm, parameter norm, gradient norm and effective
learning rate against environment frames, one line per run (mean ± std over the seeds a run
directory holds). The health metrics are those of :func:`scalerl.metrics.network_health`,
logged under ``health/<net>/``; see ``docs/metrics.md``.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from scalerl.analysis.plots import (  # noqa: E402
    Curve,
    label_axes,
    mark_empty,
    seed_statistics,
)
from scalerl.errors import ScalerlError  # noqa: E402
from scalerl.train.logging import METRICS_CSV_NAME, read_metrics_csv  # noqa: E402

PANELS: tuple[tuple[str, str], ...] = (
    ("eval/return", "return"),
    ("health/{net}/feature_norm", "feature norm"),
    ("health/{net}/param_norm", "parameter norm"),
    ("health/{net}/grad_norm", "gradient norm"),
    ("health/{net}/elr_grad_ratio", "effective learning rate"),
)
"""(metric key template, panel title) of every subplot, left to right."""

SeedStats = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(steps, mean, std)`` across seeds, as returned by :func:`seed_statistics`."""

VALUE_NETS = ("critic", "value", "shared", "q")
"""Networks drawn by default, first one a run has: the off-policy critic, PPO's value network,
PPO's shared actor-value trunk, or the Q network of DQN and PQN."""

OFF_POLICY_NETS = ("critic", "actor")
"""Networks of the off-policy (SAC, TD3, DDPG) agents."""


def panel_metrics(net: str = "critic") -> list[str]:
    """The metric keys plotted for network ``net`` (e.g. ``"critic"``, ``"actor"``, ``"value"``)."""
    return [template.format(net=net) for template, _ in PANELS]


def _metrics_file(run: Path) -> Path:
    """A run directory's ``metrics.csv`` (a path to the CSV itself is accepted too)."""
    run = Path(run)
    return run if run.is_file() else run / METRICS_CSV_NAME


def _config_networks(run: Path) -> tuple[str, ...] | None:
    """Networks named by the run's ``config.json`` (beside ``metrics.csv``); None if unknown."""
    try:
        data = json.loads((_metrics_file(run).parent / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if "algo" not in data:  # off-policy runs keep their algorithm inside the agent config
        return OFF_POLICY_NETS
    if data["algo"] == "ppo":
        return ("shared",) if data.get("agent", {}).get("shared_trunk") else ("actor", "value")
    if data["algo"] in ("dqn", "pqn"):
        return ("q",)
    return None


def _logged_networks(rows: list[dict[str, Any]]) -> tuple[str, ...] | None:
    """Networks with ``health/<net>/<metric>`` rows, sorted; None if there are none."""
    metrics = {row["metric"] for row in rows}
    nets = {m.split("/")[1] for m in metrics if m.startswith("health/") and m.count("/") == 2}
    return tuple(sorted(nets)) or None


def run_networks(run: Path, rows: list[dict[str, Any]] | None = None) -> tuple[str, ...] | None:
    """The networks a run has: from its ``config.json`` (off-policy: critic, actor; PPO: actor,
    value, or shared), else those its ``health/<net>/*`` rows name; None if neither tells.

    Args:
        run: A run directory or its ``metrics.csv``.
        rows: The run's metric rows, if already read (read when needed otherwise).
    """
    nets = _config_networks(run)
    if nets is None:
        nets = _logged_networks(read_metrics_csv(_metrics_file(run)) if rows is None else rows)
    return nets


def resolve_net(run: Path, net: str | None, rows: list[dict[str, Any]] | None = None) -> str:
    """The network to draw for ``run``: ``net`` if the run has it, or by default (``None``) the
    run's value network (critic, value or shared, the first it has; critic if unknown).

    Raises:
        ScalerlError: The run does not have ``net``; the message lists the networks it has.
    """
    nets = run_networks(run, rows)
    if net is None:
        have = nets or ("critic",)
        return next((n for n in VALUE_NETS if n in have), have[0])
    if nets is not None and net not in nets:
        raise ScalerlError(
            f"{run} has no network {net!r}; its networks are {', '.join(nets)}: pass --net "
            f"{' or --net '.join(nets)}, or leave --net out to draw its value network"
        )
    return net


def _seed_curves(rows: list[dict[str, Any]], metric: str) -> list[Curve]:
    """One curve per (env_name, seed) of ``metric``; a step logged twice keeps its last value."""
    points: dict[tuple[str, int], dict[int, float]] = defaultdict(dict)
    for row in rows:
        if row["metric"] == metric:
            points[(row["env_name"], row["seed"])][row["env_step"]] = row["value"]
    return [_as_curve(steps) for steps in points.values()]


def _as_curve(points: dict[int, float]) -> Curve:
    """Turns ``{step: value}`` into step-sorted float arrays."""
    steps = sorted(points)
    return np.asarray(steps, np.float64), np.asarray([points[s] for s in steps], np.float64)


def health_curves(run: Path, net: str | None = None) -> dict[str, SeedStats]:
    """Mean and std over seeds of every panel metric a run logged.

    Args:
        run: A run directory (holding ``metrics.csv``) or the CSV itself.
        net: Which network's health metrics (``"critic"``, ``"actor"``, ``"value"``,
            ``"shared"``); ``None`` = the run's value network (:func:`resolve_net`).

    Returns:
        ``{metric: (steps, mean, std)}`` for the panel metrics present in the run.

    Raises:
        ScalerlError: If the metrics file is missing or malformed, or the run has no ``net``.
    """
    return _net_health(run, net)[1]


def _net_health(run: Path, net: str | None) -> tuple[str, dict[str, SeedStats]]:
    """``(resolved network, health_curves(run, network))``."""
    rows = read_metrics_csv(_metrics_file(run))
    net = resolve_net(run, net, rows)
    curves = {metric: _seed_curves(rows, metric) for metric in panel_metrics(net)}
    return net, {metric: seed_statistics(c) for metric, c in curves.items() if c}


def warn_missing_health(
    names: Sequence[str], runs: Sequence[dict[str, SeedStats]], net: str | Sequence[str]
) -> list[str]:
    """Names the runs that logged no ``health/<net>/*`` row, on stderr; returns their names.

    ``net`` is one network for all runs or one per run."""
    nets = [net] * len(runs) if isinstance(net, str) else list(net)
    missing = []
    for name, run, n in zip(names, runs, nets, strict=True):
        if not {m for m in panel_metrics(n) if m.startswith("health/")} & run.keys():
            hint = "train with --health-every > 0 to log them; it is drawn in the return panel only"
            print(f"scalerl: warning: {name} has no health/{n}/* rows ({hint})", file=sys.stderr)
            missing.append(name)
    return missing


def _format_axes(ax: Axes, title: str, metric: str) -> None:
    """Titles an axes and labels x with environment frames in engineering notation."""
    ax.set_title(title, fontsize="medium")
    label_axes(ax, metric, fontsize="small")


def _mark_missing(ax: Axes, metric: str) -> None:
    """Writes a note in the middle of a panel whose metric no run logged."""
    mark_empty(ax, metric, note="not logged", fontsize="small")


def _draw_panel(
    ax: Axes, key: str, runs: list[dict[str, SeedStats]], colors: list[str], metric: str
) -> None:
    """Draws every run's mean curve (and its std band) of panel ``key`` on ``ax``; ``metric``
    names it when no run logged it."""
    for run, color in zip(runs, colors, strict=True):
        if key not in run:
            continue
        steps, mean, std = run[key]
        ax.plot(steps, mean, color=color, lw=1.8, marker="." if len(steps) < 3 else "")
        ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, lw=0)
    if not ax.has_data():
        _mark_missing(ax, metric)


def _resolve_labels(run_dirs: Sequence[Path], labels: Sequence[str] | None) -> list[str]:
    """The curve labels: the given ones, or each run directory's name."""
    if labels is None:
        return [Path(d).name if not Path(d).is_file() else Path(d).parent.name for d in run_dirs]
    if len(labels) != len(run_dirs):
        raise ScalerlError(f"got {len(labels)} labels for {len(run_dirs)} run directories")
    return [str(label) for label in labels]


def _save_png_and_svg(fig: Any, out: Path) -> Path:
    """Writes ``out`` as PNG and the same stem as SVG, closes the figure, returns the PNG path."""
    png = Path(out).with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120, bbox_inches="tight")
    fig.savefig(png.with_suffix(".svg"), bbox_inches="tight")
    plt.close(fig)
    return png


def _by_panel(curves: dict[str, SeedStats], net: str) -> dict[str, SeedStats]:
    """A run's curves keyed by panel template (``health/{net}/...``) instead of metric."""
    metrics = dict(zip(panel_metrics(net), (t for t, _ in PANELS), strict=True))
    return {metrics[m]: stats for m, stats in curves.items()}


def plot_health(
    run_dirs: Sequence[Path],
    out: Path,
    net: str | None = None,
    labels: Sequence[str] | None = None,
) -> Path:
    """Draws the network-health panel of SimbaV2's analysis figure for several runs.

    Subplots: ``eval/return``, ``health/<net>/feature_norm``, ``.../param_norm``,
    ``.../grad_norm`` and ``.../elr_grad_ratio`` against environment frames; one line per run,
    the mean over the seeds (and environments) found in its ``metrics.csv``, with a ±std band.
    A metric no run logged gives an empty panel with a note; a run without health rows is named
    on stderr and marked in the legend. With ``net=None`` each run shows its value network
    (off-policy critic, PPO value or shared network); runs drawing different networks say which
    in the legend.

    Args:
        run_dirs: Run directories (``runs/<name>/`` holding ``metrics.csv``), or the CSVs.
        out: Output path; the PNG is written at ``out`` with suffix ``.png`` and an SVG beside it.
        net: Network whose health is shown (``"critic"``, ``"actor"``, ``"value"``,
            ``"shared"``); ``None`` = each run's value network.
        labels: Legend label per run; defaults to the run directory names.

    Returns:
        The PNG path.

    Raises:
        ScalerlError: If no run is given, the labels do not match the runs, a metrics file
            is missing or malformed, or a run does not have ``net`` (the message lists its
            networks).
    """
    if not run_dirs:
        raise ScalerlError("plot_health needs at least one run directory")
    names = _resolve_labels(run_dirs, labels)
    nets, curves = zip(*[_net_health(Path(d), net) for d in run_dirs], strict=True)
    missing = set(warn_missing_health(names, curves, nets))
    if len(set(nets)) > 1:
        names = [f"{n} [{k}]" for n, k in zip(names, nets, strict=True)]
    names = [f"{n} (no health rows)" if n in missing else n for n in names]
    runs = [_by_panel(c, k) for c, k in zip(curves, nets, strict=True)]
    shown = "/".join(dict.fromkeys(nets))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = [palette[i % len(palette)] for i in range(len(runs))]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(3.6 * len(PANELS), 3.3), squeeze=False)
    for ax, (template, title) in zip(axes[0], PANELS, strict=True):
        metric = template.format(net=nets[0] if len(set(nets)) == 1 else "<net>")
        _format_axes(ax, title, metric)
        _draw_panel(ax, template, runs, colors, metric)
    handles = [Line2D([], [], color=c, lw=2.0, label=n) for n, c in zip(names, colors, strict=True)]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncols=min(5, len(handles)), fontsize="small", frameon=False)  # fmt: skip
    fig.suptitle(f"network health ({shown})", y=1.0, va="bottom")
    fig.tight_layout()
    return _save_png_and_svg(fig, out)
