"""The CPU "digits plasticity" benchmark: runner, summary table and plot (spec plasticity.md §6).

Protocol A (§6.1) measures trainability: K tasks of random labels on the 1,797 digits images,
end-of-task accuracy on the task's own examples. Protocol B (§6.2) is a warm-start smoke test;
`warmstart` is the full warm-start experiment over a (p, q) grid (module `warmstart`).
Data live in `digits_data`, the network, variants and fused training loops in `digits_train`.

Example:
    results = run_benchmark(("base", "ln", "nap"), seeds=3, num_tasks=40)
    print(format_table(results))
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import jax
import numpy as np

from scalerl.errors import ConfigError
from scalerl.plasticity.digits_data import ProtocolBData, load_digits_data, protocol_b_split
from scalerl.plasticity.digits_train import (
    VARIANTS,
    Base,
    HareTortoise,
    Learner,
    ShrinkPerturb,
    Variant,
    accuracy,
    eval_params,
    init_state,
    make_learner,
    make_protocol_a,
    make_variant,
    task_end,
    train_steps,
)
from scalerl.plasticity.warmstart import METHODS as WARMSTART_METHODS
from scalerl.plasticity.warmstart_report import plot_gap_heatmap, run_warmstart, table_warmstart

Protocol = Literal["A", "B", "warmstart"]
PROTOCOL_B_METHODS: dict[str, tuple[Variant, bool]] = {
    "cold": (Base(), False),
    "warm": (Base(), True),
    "hare_tortoise": (HareTortoise(momentum=0.999, reset_every=500), True),
    "shrink_perturb": (ShrinkPerturb(shrink=0.4, perturb_scale=0.1), True),
}
"""Protocol-B methods (§6.2): (variant, whether phase 1 runs before phase 2)."""
DEFAULTS: dict[str, dict[str, Any]] = {
    "A": {"variants": tuple(VARIANTS), "seeds": 3, "width": 128, "batch_size": 128, "steps": 400},
    "B": {"variants": tuple(PROTOCOL_B_METHODS), "seeds": 5, "width": 256, "batch_size": 64,
          "steps": 2000},
    "warmstart": {"variants": tuple(WARMSTART_METHODS), "seeds": 5, "width": 256,
                  "batch_size": 64, "steps": 2000},
}  # fmt: skip
"""Spec settings per protocol (§6.1, §6.2), used for every `None` field of `DigitsConfig`."""


@dataclasses.dataclass(frozen=True)
class DigitsConfig:
    """One benchmark run (`scalerl plasticity`, docs/plasticity/benchmark.md); `None` means the
    protocol's default."""

    protocol: Protocol = "A"
    """A: random-label trainability; B: warm-start smoke test; warmstart: warm start on p % of
    the data with q % noisy labels vs from scratch (docs/plasticity/benchmark.md)."""
    variants: tuple[str, ...] | None = None
    """Variants to run (A: base ln nap reset hare_tortoise shrink_perturb; B: cold warm
    hare_tortoise shrink_perturb; warmstart: plain reset shrink_perturb hare_tortoise nap);
    None runs all of them."""
    seeds: int | None = None
    """Independent seeds, trained in parallel with vmap (A: 3, B and warmstart: 5)."""
    num_tasks: int = 40
    """Protocol A: number of random-label tasks K."""
    steps: int | None = None
    """A: Adam steps per task (400); B and warmstart: Adam steps per phase (2000)."""
    width: int | None = None
    """Hidden width W of the 64-W-W-10 MLP (A: 128, B and warmstart: 256)."""
    lr: float = 1e-3
    """Adam learning rate (β = (0.9, 0.999), ε = 1e-8)."""
    batch_size: int | None = None
    """Batch size, sampled with replacement (A: 128, B and warmstart: 64)."""
    seed: int = 0
    """Base seed: seed i of a run uses fold_in(PRNGKey(seed), i); B's split uses PRNGKey(seed)."""
    out_dir: str | None = None
    """If set, write results.json, table.md and the plot (A: accuracy_per_task.png,
    warmstart: gap_heatmap.png) there."""
    warm_fractions: tuple[float, ...] = (0.1, 0.5)
    """warmstart: p, fractions of the 1,200 training images used in phase 1."""
    label_noise: tuple[float, ...] = (0.0, 0.5)
    """warmstart: q, fractions of the phase-1 labels moved to another class."""


@dataclasses.dataclass(frozen=True)
class VariantResult:
    """Per-seed metrics of one variant and its wall-clock time (compile included)."""

    name: str
    metrics: dict[str, np.ndarray]
    """A: task-end metrics, each (seeds, tasks); B: `eval/test_accuracy` of shape (seeds,);
    warmstart: `eval/test_accuracy` of shape (cells, seeds)."""
    seconds: float
    """Wall-clock seconds of the jitted run of all seeds, compilation included."""


@dataclasses.dataclass(frozen=True)
class BenchmarkResults:
    """Results of `run_benchmark`: one row per variant, plus the settings used."""

    protocol: Protocol
    rows: tuple[VariantResult, ...]
    settings: dict[str, Any]


def seed_keys(seed: int, seeds: int) -> jax.Array:
    """Keys of shape (seeds, 2): seed i is fold_in(PRNGKey(seed), i), the same for every variant."""
    base = jax.random.PRNGKey(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(np.arange(seeds))


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    """`fn(*args)` with every output array ready, and the wall-clock seconds it took."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return jax.device_get(out), time.perf_counter() - start


def run_protocol_a(name: str, keys: jax.Array, settings: dict[str, Any]) -> VariantResult:
    """Protocol A (§6.1) for the variant called `name` over all seed keys at once."""
    variant = make_variant(name)
    learner = make_learner(variant, settings["width"], settings["lr"], settings["batch_size"])
    run = make_protocol_a(learner, settings["num_tasks"], settings["steps"])
    x, _ = load_digits_data()
    (metrics, _), seconds = timed(run, keys, x)
    return VariantResult(variant.name, {k: np.asarray(v) for k, v in metrics.items()}, seconds)


def protocol_b_accuracy(
    learner: Learner, warm: bool, key: jax.Array, data: ProtocolBData, steps: int
) -> jax.Array:
    """Test accuracy of one seed of protocol B (§6.2); Adam is re-initialised per phase."""
    k_init, k_phase1, k_boundary, k_phase2 = jax.random.split(key, 4)
    state = init_state(learner, k_init)
    if warm:
        state = train_steps(learner, state, data.x_phase1, data.y_phase1, k_phase1, steps)
        state = task_end(learner, state, k_boundary)
        state = state.replace(opt_state=learner.opt.init(state.params))
    state = train_steps(learner, state, data.x_train, data.y_train, k_phase2, steps)
    return accuracy(learner.model, eval_params(state), data.x_test, data.y_test)


def run_protocol_b(method: str, keys: jax.Array, settings: dict[str, Any]) -> VariantResult:
    """Protocol B (§6.2) for one method over all seed keys; the split is fixed by `seed`."""
    if method not in PROTOCOL_B_METHODS:
        raise ValueError(f"unknown protocol-B method {method!r}; use {sorted(PROTOCOL_B_METHODS)}")
    variant, warm = PROTOCOL_B_METHODS[method]
    learner = make_learner(variant, settings["width"], settings["lr"], settings["batch_size"])
    data = protocol_b_split(jax.random.PRNGKey(settings["seed"]))

    def one(key: jax.Array, d: ProtocolBData) -> jax.Array:
        return protocol_b_accuracy(learner, warm, key, d, settings["steps"])

    acc, seconds = timed(jax.jit(jax.vmap(one, in_axes=(0, None))), keys, data)
    return VariantResult(method, {"eval/test_accuracy": np.asarray(acc)}, seconds)


def check_grid(cfg: DigitsConfig) -> None:
    """ConfigError unless every warm-start fraction p is in (0, 1] and every noise q in [0, 1]."""
    p_ok = cfg.warm_fractions and all(0.0 < p <= 1.0 for p in cfg.warm_fractions)
    q_ok = cfg.label_noise and all(0.0 <= q <= 1.0 for q in cfg.label_noise)
    if not (p_ok and q_ok):
        raise ConfigError(
            f"need --warm-fractions in (0, 1] and --label-noise in [0, 1], got "
            f"{cfg.warm_fractions} and {cfg.label_noise}"
        )


def resolve(cfg: DigitsConfig) -> dict[str, Any]:
    """The run settings of `cfg`, with every `None` replaced by its protocol default."""
    if cfg.protocol not in DEFAULTS:
        raise ConfigError(f"unknown protocol {cfg.protocol!r}; use --protocol A, B or warmstart")
    check_grid(cfg)
    settings = dataclasses.asdict(cfg)
    for name, value in DEFAULTS[cfg.protocol].items():
        settings[name] = value if settings[name] is None else settings[name]
    settings["variants"] = tuple(settings["variants"])
    known = {"A": VARIANTS, "B": PROTOCOL_B_METHODS, "warmstart": WARMSTART_METHODS}[cfg.protocol]
    unknown = [v for v in settings["variants"] if v not in known]
    if unknown:
        raise ConfigError(
            f"unknown variants {unknown} for protocol {cfg.protocol}; choose --variants from "
            f"{' '.join(known)}"
        )
    return settings


def run_benchmark(
    variants: Sequence[str] | None = None,
    seeds: int | None = None,
    num_tasks: int = 40,
    protocol: Protocol = "A",
    width: int | None = None,
    out_dir: str | Path | None = None,
    **overrides: Any,
) -> BenchmarkResults:
    """Run `protocol` for every variant and optionally save results, table and plot (§6).

    Args:
        variants: Variant names (protocol A: `VARIANTS`; B: `PROTOCOL_B_METHODS`); None = all.
        seeds: Seeds per variant (None: 3 for A, 5 for B); trained in parallel with `vmap`.
        num_tasks: Number of random-label tasks (protocol A only).
        protocol: "A" (trainability, §6.1) or "B" (warm-start smoke test, §6.2).
        width: Hidden width (None: 128 for A, 256 for B).
        out_dir: If given, `save_results` writes there.
        **overrides: Any other `DigitsConfig` field (`steps`, `lr`, `batch_size`, `seed`).

    Returns:
        The per-variant results; summarise them with `format_table`.
    """
    variants = tuple(variants) if variants is not None else None
    out = None if out_dir is None else str(out_dir)
    cfg = DigitsConfig(protocol, variants, seeds, num_tasks, width=width, out_dir=out, **overrides)
    settings = resolve(cfg)
    keys = seed_keys(settings["seed"], settings["seeds"])
    if protocol == "warmstart":
        rows = tuple(run_warmstart(settings["variants"], keys, settings))
    else:
        run = run_protocol_a if protocol == "A" else run_protocol_b
        rows = tuple(run(name, keys, settings) for name in settings["variants"])
    results = BenchmarkResults(protocol, rows, settings)
    if out is not None:
        save_results(results, Path(out))
    return results


# --- summaries, table, plot -----------------------------------------------------------------


def summarise(row: VariantResult, window: int = 5) -> dict[str, float]:
    """Table entries of a protocol-A row: means over seeds of the first/last `window` tasks."""
    m = row.metrics
    first, last = slice(0, window), slice(-window, None)
    norm = m["health/hidden_kernel_norm"]
    return {
        "acc_first": float(m["eval/accuracy"][:, first].mean()),
        "acc_last": float(m["eval/accuracy"][:, last].mean()),
        "dead_last": float(m["health/dead_fraction"][:, last].mean()),
        "dormant_last": float(m["health/dormant_ratio"][:, last].mean()),
        "norm_first": float(norm[:, 0].mean()),
        "norm_last": float(norm[:, -1].mean()),
        "seconds": row.seconds,
    }


def table_a(results: BenchmarkResults) -> list[str]:
    """Markdown rows of the protocol-A table (§6.1)."""
    lines = [
        "| variant | acc, first 5 tasks | acc, last 5 tasks | dead (last 5) "
        "| dormant τ=0.1 (last 5) | hidden ‖W‖, first → last | time (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results.rows:
        s = summarise(row)
        lines.append(
            f"| {row.name} | {s['acc_first']:.3f} | {s['acc_last']:.3f} | {s['dead_last']:.1%} "
            f"| {s['dormant_last']:.1%} | {s['norm_first']:.2f} → {s['norm_last']:.2f} "
            f"| {s['seconds']:.1f} |"
        )
    return lines


def table_b(results: BenchmarkResults) -> list[str]:
    """Markdown rows of the protocol-B table (§6.2): test accuracy mean ± std over seeds."""
    lines = ["| method | test accuracy | ± std | time (s) |", "| --- | --- | --- | --- |"]
    for row in results.rows:
        acc = row.metrics["eval/test_accuracy"]
        lines.append(f"| {row.name} | {acc.mean():.4f} | {acc.std():.4f} | {row.seconds:.1f} |")
    return lines


def format_table(results: BenchmarkResults) -> str:
    """The results as a Markdown table (protocol A: §6.1 columns; protocol B: test accuracy)."""
    tables = {"A": table_a, "B": table_b, "warmstart": table_warmstart}
    lines = tables[results.protocol](results)
    return "\n".join(lines) + "\n"


def plot_accuracy_per_task(results: BenchmarkResults, path: str | Path) -> None:
    """End-of-task accuracy vs task, one line per variant: mean over seeds, band = min..max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for row in results.rows:
        acc = row.metrics["eval/accuracy"]
        tasks = np.arange(1, acc.shape[1] + 1)
        line = ax.plot(tasks, acc.mean(axis=0), label=row.name)[0]
        ax.fill_between(tasks, acc.min(axis=0), acc.max(axis=0), alpha=0.2, color=line.get_color())
    ax.axhline(0.1, color="grey", linestyle=":", label="chance")
    ax.set(xlabel="task", ylabel="end-of-task accuracy", ylim=(0, 1), title="digits, protocol A")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_results(results: BenchmarkResults, out_dir: Path) -> None:
    """Write results.json (settings, per-seed metrics), table.md and, for A, the plot."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {
        r.name: {"seconds": r.seconds, "metrics": {k: v.tolist() for k, v in r.metrics.items()}}
        for r in results.rows
    }
    payload = {"protocol": results.protocol, "settings": results.settings, "rows": rows}
    (out_dir / "results.json").write_text(json.dumps(payload, indent=1))
    (out_dir / "table.md").write_text(format_table(results))
    if results.protocol == "A":
        plot_accuracy_per_task(results, out_dir / "accuracy_per_task.png")
    if results.protocol == "warmstart":
        plot_gap_heatmap(results, out_dir / "gap_heatmap.png")


def main(cfg: DigitsConfig) -> BenchmarkResults:
    """Entry point for `scalerl plasticity`: run, print the Markdown table, return results."""
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    results = run_benchmark(**fields)
    print(format_table(results), end="")
    return results
