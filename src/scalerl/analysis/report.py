"""Benchmark reports: normalised scores, aggregate metrics, figures and a comparison with the paper.

:func:`write_report` (``scalerl report``, see docs/reports.md) loads scalerl runs and, optionally,
the SimbaV2 reference CSVs into one tidy table (one row per run, task and evaluation step),
normalises returns per suite, aggregates them with stratified bootstrap intervals
(Agarwal et al. 2021, :mod:`scalerl.analysis.aggregate`) and writes ``report.md``, ``scores.csv``
and PNG + SVG figures.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from scalerl.analysis.aggregate import (  # noqa: E402
    AGGREGATES,
    bootstrap_mean_ci,
    stratified_bootstrap_cis,
)
from scalerl.analysis.plots import (  # noqa: E402
    normalise_env_name,
)
from scalerl.analysis.reference_data import is_reference_name, reference_frame  # noqa: E402
from scalerl.analysis.report_figures import (  # noqa: E402
    REFERENCE_SUFFIX,
    aggregate_figure,
    learning_curves_figure,
    per_task,
    scaling_figure,
)
from scalerl.envs.suites import TASK_LISTS, reference_scores, suite_of  # noqa: E402
from scalerl.errors import ConfigError, ScalerlError  # noqa: E402
from scalerl.train.logging import METRICS_CSV_NAME, load_metrics  # noqa: E402
from scalerl.train.setup import CONFIG_NAME, config_to_dict, read_config  # noqa: E402

try:
    import pandas as pd
except ImportError:  # pragma: no cover - pandas is a dev extra
    pd = None

PathLike = str | Path
METRIC_COLUMNS: dict[str, str] = {
    "eval/return": "return",
    "avg_return": "return",
    "eval/success": "success",
    "avg_success": "success",
}
"""Evaluation metric (scalerl name or reference name) -> column of the tidy table."""
COLUMNS: tuple[str, ...] = tuple(
    "label algo source task env_name suite domain seed env_step return success score "
    "critic_width utd reset run".split()
)
"""Columns of the tidy table returned by :func:`load_runs` and :func:`load_reference`."""
RUN_KEYS: list[str] = ["label", "task", "run", "seed"]
"""Columns identifying one learning curve (one seed of one run on one task)."""
DOMAIN_SUITE: dict[str, str] = {
    "dmc-easy": "dmc",
    "dmc-hard": "dmc",
    "mujoco": "mujoco",
    "myosuite": "myosuite",
    "hbench": "hbench",
}
"""Task lists of :data:`scalerl.envs.suites.TASK_LISTS` used as domains, and their suite."""
LABEL_IGNORED = frozenset(
    "seed seeds num_seeds name run_root env progress tensorboard wandb_project log_every "
    "checkpoint_every health_every health_batch".split()
)
"""Config fields never used to tell runs apart in labels."""


def _require_pandas() -> None:
    """Raises ScalerlError when pandas is missing."""
    if pd is None:
        raise ScalerlError(
            "reports need pandas, which is not installed; reinstall scalerl (pip install -e .)"
        )


# --------------------------------------------------------------------------------------------
# Tasks, suites and normalised scores (docs/reports.md)
# --------------------------------------------------------------------------------------------


def _task_key(name: str) -> str:
    """Env name without suite prefix, case, '_'/'-' difference and version suffix."""
    return re.sub(r"-v\d+$", "", normalise_env_name(name))


_DOMAINS = {_task_key(t): d for d in DOMAIN_SUITE for t in TASK_LISTS[d]}


@lru_cache(maxsize=4096)
def task_domain(env_name: str) -> tuple[str, str]:
    """Suite and domain of a task, in any spelling (``dmc:dog-run``, ``h1_sit_hard_v0``).

    Args:
        env_name: An environment id or a reference-file task name.

    Returns:
        ``(suite, domain)``: the domain is a SimbaV2 task list (dmc-easy, dmc-hard, mujoco,
        myosuite, hbench) when the task is in one, else the suite of
        :func:`scalerl.envs.suites.suite_of`, or ``("other", "other")`` if it cannot tell.
    """
    domain = _DOMAINS.get(_task_key(env_name))
    if domain is not None:
        return DOMAIN_SUITE[domain], domain
    try:
        suite = suite_of(env_name)
    except ScalerlError:
        suite = "other"
    return suite, suite


def normalized_score(task: str, ret: Any, success: Any = np.nan) -> Any:
    """Per-suite normalised score used by the SimbaV2 paper.

    DMC: ``R / 1000``; MuJoCo: ``(R - R_random) / (R_TD3 - R_random)``; HumanoidBench:
    ``(R - R_random) / (R_success - R_random)`` (constants from
    :func:`scalerl.envs.suites.reference_scores`); MyoSuite: the success rate. Other tasks have
    no normalisation (nan).

    Args:
        task: The task in any spelling.
        ret: Average evaluation return(s).
        success: Success rate(s) (only used for MyoSuite).

    Returns:
        The score(s): a float for scalar input, else an array.
    """
    suite, _ = task_domain(task)
    ret = np.asarray(ret, np.float64)
    bounds = reference_scores(task) if suite in ("mujoco", "hbench") else None
    if suite == "dmc":
        out = ret / 1000.0
    elif suite == "myosuite":
        out = np.broadcast_to(np.asarray(success, np.float64), ret.shape).copy()
    elif bounds is not None:
        out = (ret - bounds[0]) / (bounds[1] - bounds[0])
    else:
        out = np.full(ret.shape, np.nan)
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------------------------
# Loading runs and reference results
# --------------------------------------------------------------------------------------------


def find_metrics_files(paths: Sequence[PathLike]) -> list[Path]:
    """The ``metrics.csv`` of every run under ``paths`` (run dirs, sweep dirs or CSV files).

    Raises:
        ScalerlError: If a path does not exist or no metrics.csv is found.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise ScalerlError(
                f"{path} does not exist; pass run directories, a sweep "
                "directory or metrics.csv files"
            )
        files += [path] if path.is_file() else sorted(path.rglob(METRICS_CSV_NAME))
    if not files:
        names = ", ".join(map(str, paths)) or "(no paths)"
        raise ScalerlError(f"no runs found under {names}: no {METRICS_CSV_NAME} in them")
    return list(dict.fromkeys(files))


def _wide(path: Path) -> Any:
    """One row per (exp_name, task, seed, env_step) with return/success columns.

    A (task, seed, step, metric) logged twice keeps its last value: a resumed run may repeat
    steps, and several reference files repeat whole blocks of rows (see docs/reports.md).
    `path` may also be the short name of a shipped reference file (`analysis.reference_data`).
    """
    shipped = not Path(path).is_file() and is_reference_name(str(path))
    long = _shipped(path) if shipped else load_metrics(path)
    long = long[long["metric"].isin(list(METRIC_COLUMNS))]
    index = ["exp_name", "env_name", "task", "seed", "env_step"]
    if long.empty:  # a run that has not evaluated yet
        return pd.DataFrame(columns=[*index, "return", "success"])
    long = long.assign(metric=long["metric"].map(METRIC_COLUMNS))
    long["task"] = long["env_name"].map(normalise_env_name)
    long["env_name"] = long.groupby(["exp_name", "task"])["env_name"].transform("first")
    long = long.drop_duplicates([*index, "metric"], keep="last")
    wide = long.pivot(index=index, columns="metric", values="value").reset_index()
    wide.columns.name = None
    return wide.reindex(columns=[*index, "return", "success"])


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    """Nested config dict -> {leaf field: value} (agent and plasticity fields at top level)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(_flatten(value) if isinstance(value, dict) else {key: value})
    return flat


def _run_config(run_dir: Path) -> dict[str, Any]:
    """Flattened ``config.json`` of a run; {} without one. Falls back to the raw JSON when the
    file was written by another scalerl version (read_config rejects it)."""
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        return {}
    try:
        return _flatten(config_to_dict(read_config(run_dir)))
    except ConfigError:
        try:
            return _flatten(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}


def _load_run(metrics: Path) -> tuple[Any, dict[str, Any]]:
    """A run's evaluation rows with config columns, and its flattened config."""
    df, config = _wide(metrics), _run_config(metrics.parent)
    df["algo"] = config.get("agent", df["exp_name"])
    for field in ("critic_width", "utd", "reset"):
        df[field] = config.get(field, np.nan)
    df["run"], df["source"] = str(metrics.parent), "run"
    return df, config


def _finished(metrics: Path, df: Any, config: dict[str, Any]) -> bool:
    """Whether a run evaluated at the end of its budget (True when its config does not say).

    Online runs log against environment frames and evaluate at the last agent step; offline
    runs (with ``offline.json``) log against updates, ``env_steps / action_repeat`` in all.
    """
    budget = config.get("env_steps")
    if budget is None or df.empty:
        return budget is None
    repeat = int(config.get("action_repeat") or 1)
    offline = (metrics.parent / "offline.json").is_file()
    end = budget // repeat if offline else budget // repeat * repeat
    return int(df["env_step"].max()) >= end


def _warn_skipped(paths: Sequence[Path], why: str) -> None:
    """Names the runs left out of a report on stderr."""
    for path in paths:
        print(f"scalerl: warning: skipping {path.parent} ({why})", file=sys.stderr)


def _select_runs(loaded: list[tuple[Path, Any, dict]]) -> list[tuple[Any, dict]]:
    """The runs a report uses, each skipped one named on stderr.

    Runs with no evaluation yet are skipped; unfinished runs are skipped when at least one run
    finished (a sweep still running is reported on its finished runs; runs that are all still
    going are reported at the step they all reached).
    """
    evaluated = [(path, df, cfg) for path, df, cfg in loaded if not df.empty]
    _warn_skipped([path for path, df, _ in loaded if df.empty], "no evaluation yet")
    done = [_finished(*run) for run in evaluated]
    if any(done) and not all(done):
        left = [run[0] for run, ok in zip(evaluated, done, strict=True) if not ok]
        _warn_skipped(left, "unfinished: its last evaluation is before the end of its budget")
        evaluated = [run for run, ok in zip(evaluated, done, strict=True) if ok]
    return [(df, cfg) for _, df, cfg in evaluated]


def label_value(value: Any) -> str:
    """A config value in a label: integer-valued floats as integers (``utd=1``, not ``1.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _labels(df: Any, configs: dict[str, dict[str, Any]]) -> Any:
    """exp_name plus every config field that differs between runs of one exp_name and task."""
    table = pd.DataFrame([{**cfg, "run": run} for run, cfg in configs.items()])
    table = table.drop(columns=[c for c in table.columns if c in LABEL_IGNORED])
    keys = df[["run", "exp_name", "task"]].drop_duplicates().merge(table, on="run", how="left")
    by_task = keys.groupby(["exp_name", "task"])
    fields = [c for c in table.columns if c != "run" and by_task[c].nunique(dropna=False).max() > 1]
    names = {
        row["run"]: " ".join(
            [row["exp_name"], *(f"{f}={label_value(row[f])}" for f in sorted(fields))]
        )
        for row in keys.to_dict("records")
    }
    return df["run"].map(names)


def _add_scores(df: Any) -> Any:
    """Adds task, suite, domain and the normalised score; orders the columns."""
    domains = df["env_name"].map(task_domain)
    df["suite"], df["domain"] = domains.str[0], domains.str[1]
    df["score"] = np.nan
    for env_name, rows in df.groupby("env_name").groups.items():
        part = df.loc[rows]
        df.loc[rows, "score"] = normalized_score(env_name, part["return"], part["success"])
    df["critic_width"] = pd.to_numeric(df["critic_width"]).astype("Int64")
    return df.reindex(columns=list(COLUMNS)).reset_index(drop=True)


def load_runs(paths: Sequence[PathLike]) -> Any:
    """Loads scalerl runs into the tidy table (one row per run, task, seed and eval step).

    Args:
        paths: Run directories, directories holding run directories (searched recursively,
            e.g. a sweep directory) or ``metrics.csv`` files. ``eval/return`` and
            ``eval/success`` rows are kept; config fields come from each run's config.json.
            Runs with no evaluation yet, and unfinished runs when some run finished, are
            left out with a warning on stderr naming them.

    Returns:
        A pandas DataFrame with the columns :data:`COLUMNS`. ``label`` is the run's exp_name
        (the agent) followed by every config field whose value differs between runs of the
        same agent and task (e.g. ``simbav2 utd=4``), ``reset`` the periodic-reset kind.

    Raises:
        ScalerlError: If pandas is missing, no runs are found, or the runs hold no evaluation.
    """
    _require_pandas()
    files = find_metrics_files(paths)
    loaded = [(path, *_load_run(path)) for path in files]
    loaded = [(path, df[df["return"].notna() | df["success"].notna()], c) for path, df, c in loaded]
    loaded = _select_runs(loaded)
    if not loaded:
        raise ScalerlError(
            f"no evaluation results (eval/return) in {len(files)} run(s); "
            "wait for the first evaluation or check the paths"
        )
    df = pd.concat([frame for frame, _ in loaded], ignore_index=True)
    df["label"] = _labels(df, {frame["run"].iloc[0]: cfg for frame, cfg in loaded})
    return _add_scores(df)


def _reference_config(exp_name: str) -> dict[str, Any]:
    """algo, critic_width, utd and reset parsed from a reference exp_name (simbaV2_utd4_reset)."""
    width, utd = re.search(r"cwidth(\d+)", exp_name), re.search(r"utd(\d+)", exp_name)
    return {
        "algo": re.sub(r"_(utd\d+|cwidth\d+|reset)", "", exp_name),
        "critic_width": int(width.group(1)) if width else np.nan,
        "utd": float(utd.group(1)) if utd else np.nan,
        "reset": "periodic" if exp_name.endswith("_reset") else "none",
    }


def _shipped(name: Path) -> Any:
    """A shipped reference file in the long layout of `load_metrics`."""
    frame = reference_frame(str(name))
    return frame.astype({"seed": int, "env_step": int, "value": float})


def _load_reference_file(path: Path) -> Any:
    """One reference CSV (or the short name of a shipped one) in the tidy layout."""
    if not path.is_file() and not is_reference_name(str(path)):
        raise ScalerlError(
            f"reference {path} not found (no such file or shipped reference); pass a CSV in "
            "the SimbaV2 results schema or a short name such as simbav2-utd2 (docs/reports.md)"
        )
    df = _wide(path)
    if df.empty:
        raise ScalerlError(
            f"reference file {path} has no avg_return/avg_success rows; pass a SimbaV2 results CSV"
        )
    config = pd.DataFrame([_reference_config(n) for n in df["exp_name"]], index=df.index)
    df = pd.concat([df, config], axis=1)
    return df.assign(label=df["exp_name"] + REFERENCE_SUFFIX, run=str(path), source="reference")


def load_reference(csv_paths: PathLike | Sequence[PathLike]) -> Any:
    """Loads reference result CSVs into the tidy table of :func:`load_runs`.

    Args:
        csv_paths: One or several CSVs in the SimbaV2 results schema, or short names of the
            shipped reference files (``simbav2-utd2``, ``baseline/sac``; see
            :func:`scalerl.analysis.reference_data.reference_names`); ``avg_return`` and
            ``avg_success`` become the ``return`` and ``success`` columns.

    Returns:
        The tidy DataFrame; ``label`` is the exp_name plus " (ref)"; ``algo``, ``utd``,
        ``critic_width`` and ``reset`` are parsed from exp_name (``simbaV2_utd4_reset``).

    Raises:
        ScalerlError: If pandas is missing, or a file is missing or not in the reference schema.
    """
    _require_pandas()
    paths = [csv_paths] if isinstance(csv_paths, str | Path) else list(csv_paths)
    if not paths:
        raise ScalerlError("no reference given; pass a CSV path or a name such as simbav2-utd2")
    return _add_scores(pd.concat([_load_reference_file(Path(p)) for p in paths], ignore_index=True))


# --------------------------------------------------------------------------------------------
# Scores at a step, aggregates, comparison table
# --------------------------------------------------------------------------------------------


def score_at(df: Any, env_step: int) -> Any:
    """Each run's evaluation at ``env_step``: its last evaluation at or before that step.

    A run that evaluates on another grid contributes its nearest earlier point (the SAC
    reference evaluates every 16 666 frames, so 1M picks 999 960); runs with no evaluation
    at or before ``env_step`` are left out. The ``env_step`` column keeps the step used.

    Args:
        df: Tidy table of :func:`load_runs` / :func:`load_reference`.
        env_step: Environment frames.

    Returns:
        One row per (label, task, run, seed).
    """
    before = df[df["env_step"] <= env_step].sort_values("env_step", kind="stable")
    return before.groupby(RUN_KEYS, sort=False).tail(1).sort_values(RUN_KEYS, kind="stable")


def aggregate_table(scores: Any, reps: int = 2000, alpha: float = 0.05, seed: int = 0) -> Any:
    """IQM, median, mean and optimality gap with stratified bootstrap CIs.

    Args:
        scores: Output of :func:`score_at`; rows without a normalised score are ignored.
        reps: Bootstrap replicates.
        alpha: One minus the confidence level.
        seed: Seed of the resampling.

    Returns:
        One row per (label, domain, metric) with estimate, lower, upper, tasks and runs;
        domain "all" pools every task (per-domain rows only when a label spans several).
    """
    valid, rows = scores[np.isfinite(scores["score"].astype(float))], []
    for label, group in valid.groupby("label", sort=True):
        domains = list(group.groupby("domain", sort=True)) if group["domain"].nunique() > 1 else []
        for domain, part in [("all", group), *domains]:
            cis = stratified_bootstrap_cis(per_task(part), AGGREGATES, reps, alpha, seed)
            size = (part["task"].nunique(), len(part))
            rows += [(label, domain, metric, *ci, *size) for metric, ci in cis.items()]
    cols = ["label", "domain", "metric", "estimate", "lower", "upper", "tasks", "runs"]
    return pd.DataFrame(rows, columns=cols)


def _task_summary(scores: Any, value: str, reps: int, seed: int) -> Any:
    """Mean and bootstrap CI over seeds of ``value`` per (label, task)."""
    rows = []
    for (label, task), group in scores.groupby(["label", "task"], sort=True):
        values = group[value].dropna().to_numpy(np.float64)
        if values.size:
            stats = [x[0] for x in bootstrap_mean_ci(values, reps, seed=seed)]
            rows.append((task, label, *stats, values.size, group["env_step"].max()))
    return pd.DataFrame(rows, columns=["task", "label", "mean", "low", "high", "n", "step"])


def comparison_table(
    runs: Any,
    reference: Any,
    env_step: int,
    value: str = "return",
    reps: int = 2000,
    seed: int = 0,
) -> Any:
    """Per-task mean ± 95 % bootstrap CI over seeds, ours against the reference.

    Args:
        runs: Tidy table of scalerl runs.
        reference: Tidy table of reference results.
        env_step: Step compared; each side uses :func:`score_at` (columns ``ours_step`` and
            ``ref_step`` show the steps actually used, the latest over seeds).
        value: Column compared: ``return`` (default), ``success`` or ``score``.
        reps: Bootstrap replicates.
        seed: Seed of the resampling.

    Returns:
        One row per (task, our label, reference label), tasks present in both only; columns
        ``task, ours, ours_mean, ours_low, ours_high, ours_n, ours_step, reference, ref_mean,
        ref_low, ref_high, ref_n, ref_step, diff`` (ours_mean - ref_mean).

    Raises:
        ScalerlError: If no task has values on both sides.
    """
    ours = _task_summary(score_at(runs, env_step), value, reps, seed)
    ref = _task_summary(score_at(reference, env_step), value, reps, seed)
    table = ours.add_prefix("ours_").merge(
        ref.add_prefix("ref_"), left_on="ours_task", right_on="ref_task"
    )
    if table.empty:
        raise ScalerlError(
            f"no common tasks with {value} at {env_step} frames between the runs "
            f"({', '.join(sorted(set(ours['task'])))}) and the reference; "
            "check the task names and --env-step"
        )
    table = table.rename(
        columns={"ours_task": "task", "ours_label": "ours", "ref_label": "reference"}
    ).drop(columns="ref_task")
    table = table.assign(diff=table["ours_mean"] - table["ref_mean"])
    return table.sort_values(["task", "ours", "reference"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def default_env_step(runs: Any) -> int:
    """The step every run has reached: the minimum over runs of their last evaluation step."""
    return int(runs.groupby(RUN_KEYS)["env_step"].max().min())


def _common_reference(runs: Any, reference: Any) -> Any:
    """Reference rows of the tasks the runs cover; ScalerlError if there are none."""
    common = set(runs["task"]) & set(reference["task"])
    if not common:
        raise ScalerlError(
            f"no common tasks between the runs ({', '.join(sorted(set(runs.task)))})"
            " and the reference files; pass a reference that covers them"
        )
    return reference[reference["task"].isin(common)]


def _save(fig: Figure, out_dir: Path, stem: str) -> Path:
    """Saves PNG and SVG, closes the figure and returns the PNG path."""
    for ext in ("png", "svg"):
        fig.savefig(out_dir / f"{stem}.{ext}", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out_dir / f"{stem}.png"


def _figures(df: Any, scores: Any, agg: Any, out_dir: Path, reps: int, seed: int) -> list[Path]:
    """Learning curves, aggregate intervals and (when a value varies) scaling figures."""
    paths = [
        _save(learning_curves_figure(df, reps=min(reps, 1000)), out_dir, "learning_curves"),
        _save(aggregate_figure(agg), out_dir, "aggregate"),
    ]
    for by in ("critic_width", "utd"):
        if scores[np.isfinite(scores["score"].astype(float))][by].nunique() > 1:
            fig = scaling_figure(scores, by, "reset", reps, seed)
            paths.append(_save(fig, out_dir, f"scaling_{by}"))
    return paths


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def _ci(estimate: float, lower: float, upper: float, digits: int = 3) -> str:
    """``estimate [lower, upper]``."""
    return f"{estimate:.{digits}f} [{lower:.{digits}f}, {upper:.{digits}f}]"


def _header_md(runs: Any, ref: Any, step: int, reps: int, seed: int) -> str:
    """Title and inputs of the report."""
    n_runs = len(runs[["run", "seed"]].drop_duplicates())
    refs = "none" if ref is None else ", ".join(f"`{p}`" for p in sorted(set(ref["run"])))
    return "\n".join(
        [
            "# scalerl report",
            "",
            f"- Runs: {n_runs} on {runs['task'].nunique()} task(s); labels: "
            + ", ".join(f"`{label}`" for label in sorted(set(runs["label"]))),
            f"- Reference: {refs}" + ("" if ref is None else " (restricted to the runs' tasks)"),
            f"- Evaluation step: {step:,} environment frames (each run's last evaluation at or "
            "before it)",
            f"- Confidence intervals: 95 % percentile, {reps} bootstrap replicates, seed {seed}",
        ]
    )


def _aggregate_md(agg: Any, scores: Any) -> str:
    """Aggregate-metric section."""
    text = [
        "## Aggregate normalised scores",
        "",
        "Per-suite normalisation as in the SimbaV2 paper (docs/reports.md): DMC R/1000; "
        "MuJoCo (R - R_random) / (R_TD3 - R_random); HumanoidBench (R - R_random) / "
        "(R_success - R_random); MyoSuite success rate. IQM, median, mean and optimality gap "
        "(gamma = 1) as in Agarwal et al. 2021 (rliable), with a stratified bootstrap over "
        "runs within each task.",
        "",
    ]
    missing = sorted(set(scores.loc[scores["score"].isna(), "task"]))
    if missing:
        text += [f"Tasks without a normalised score (left out): {', '.join(missing)}.", ""]
    if agg.empty:
        return "\n".join([*text, "No task has a normalised score."])
    rows = []
    for (label, domain), g in agg.groupby(["label", "domain"], sort=True):
        cells = {r.metric: _ci(r.estimate, r.lower, r.upper) for r in g.itertuples()}
        runs = g["runs"].iloc[0]
        rows.append(
            [label, domain, *(cells[m] for m in AGGREGATES), g["tasks"].iloc[0], _runs_cell(runs)]
        )
    table = _md_table(["label", "domain", *AGGREGATES, "tasks", "runs"], rows)
    return "\n".join([*text, table, *_one_run_note(agg["runs"])])


ONE_RUN_MARK = "1 (single run: no interval)"
"""The runs cell of an aggregate computed from one run (its interval is the point itself)."""


def _runs_cell(runs: int) -> str:
    """The runs cell of the aggregate table; a single run is flagged."""
    return ONE_RUN_MARK if runs == 1 else str(runs)


def _one_run_note(runs: Any) -> list[str]:
    """A note under a table with aggregates computed from one run."""
    if not (runs == 1).any():
        return []
    return ["", "Rows marked *single run* have one run only: their interval [x, x] is not a "
            "confidence interval. Add seeds for one."]  # fmt: skip


def _figures_md(figures: list[Path]) -> str:
    """Figure section (PNG inline, link to the SVG)."""
    text = ["## Figures", ""]
    for png in figures:
        text += [f"![{png.stem}]({png.name}) ([SVG]({png.with_suffix('.svg').name}))", ""]
    return "\n".join(text)


def task_returns_table(scores: Any, reps: int = 2000, seed: int = 0) -> Any:
    """Per (task, label): mean return over seeds with its 95 % bootstrap CI, runs and step
    (columns ``task, label, mean, low, high, n, step``), for every task, normalised or not."""
    return _task_summary(scores[scores["source"] == "run"], "return", reps, seed)


def _task_returns_md(table: Any) -> str:
    """Per-task return section (the only scores of suites without a normalisation)."""
    rows = [
        [r["task"], r["label"], _ci(r["mean"], r["low"], r["high"], 2) if r["n"] > 1
         else f"{r['mean']:.2f} (single run)", r["n"], f"{r['step']:,}"]
        for r in table.to_dict("records")
    ]  # fmt: skip
    intro = (
        "Mean return over each label's runs at the evaluation step, with a 95 % percentile "
        "bootstrap interval over runs (`task_returns.csv`)."
    )
    header = ["task", "label", "return [95% CI]", "runs", "step"]
    return "\n".join(["## Returns per task", "", intro, "", _md_table(header, rows)])


def _side_md(row: dict[str, Any], prefix: str) -> list[str]:
    """Mean [CI], n and step cells of one side of a comparison row."""
    mean, low, high = (row[f"{prefix}_{key}"] for key in ("mean", "low", "high"))
    n = row[f"{prefix}_n"]
    ci = _ci(mean, low, high, 1) if n > 1 else f"{mean:.1f} (single run)"
    return [ci, str(n), f"{row[f'{prefix}_step']:,}"]


def _comparison_md(table: Any) -> str:
    """Per-task comparison section."""
    header = ["task", "ours", "return [95% CI]", "n", "step"]
    header += ["reference", "return [95% CI]", "n", "step", "diff"]
    rows = [
        [r["task"], r["ours"], *_side_md(r, "ours"), r["reference"], *_side_md(r, "ref"),
         f"{r['diff']:+.1f}"]
        for r in table.to_dict("records")
    ]  # fmt: skip
    return "\n".join(["## Comparison with the reference", "", _md_table(header, rows)])


def write_report(
    paths: Sequence[PathLike],
    out_dir: PathLike,
    reference: PathLike | Sequence[PathLike] | None = None,
    env_step: int | None = None,
    *,
    reps: int = 2000,
    seed: int = 0,
) -> Path:
    """Writes ``report.md``, ``scores.csv``, ``aggregates.csv``, ``task_returns.csv`` (and
    ``comparison.csv``) and PNG + SVG figures to ``out_dir``.

    Args:
        paths: Run directories, sweep directories or metrics.csv files (:func:`load_runs`).
        out_dir: Output directory (created if needed).
        reference: Reference CSV(s) to compare with; restricted to the runs' tasks.
        env_step: Step at which scores are taken (:func:`score_at`); default: the last step
            every run reached (:func:`default_env_step`).
        reps: Bootstrap replicates of every interval.
        seed: Seed of the resampling.

    Returns:
        The path of ``report.md``.

    Raises:
        ScalerlError: No runs found, a reference file missing or in the wrong schema, or no
            task common to the runs and the reference.
    """
    runs = load_runs(paths)
    ref = None if not reference else _common_reference(runs, load_reference(reference))
    step = default_env_step(runs) if env_step is None else int(env_step)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    both = runs if ref is None else pd.concat([runs, ref], ignore_index=True)
    curves = both[both["env_step"] <= runs["env_step"].max()]
    scores = score_at(both, step)
    scores.to_csv(out / "scores.csv", index=False)
    agg = aggregate_table(scores, reps, seed=seed)
    agg.to_csv(out / "aggregates.csv", index=False)
    sections = [_header_md(runs, ref, step, reps, seed), _aggregate_md(agg, scores)]
    returns = task_returns_table(scores, reps, seed)
    returns.to_csv(out / "task_returns.csv", index=False)
    sections.append(_task_returns_md(returns))
    if ref is not None:
        table = comparison_table(runs, ref, step, reps=reps, seed=seed)
        table.to_csv(out / "comparison.csv", index=False)
        sections.append(_comparison_md(table))
    from scalerl.analysis.report_extras import extra_sections

    sections.append(extra_sections(curves, scores, out, reps, seed))
    from scalerl.analysis.achievements import achievement_section  # Craftax runs only

    sections.append(achievement_section(runs, out))
    sections.append(_figures_md(_figures(curves, scores, agg, out, reps, seed)))
    (out / "report.md").write_text("\n\n".join(s for s in sections if s) + "\n")
    return out / "report.md"
