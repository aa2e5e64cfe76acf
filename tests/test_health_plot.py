"""Tests for scalerl.analysis.health_plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scalerl.analysis.health_plot import (
    health_curves,
    panel_metrics,
    plot_health,
    resolve_net,
    run_networks,
)
from scalerl.cli import main
from scalerl.errors import ScalerlError
from scalerl.train.logging import CsvSink

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = (0, 1000, 2000, 3000)


def _write_run(
    run_dir: Path, seeds: tuple[int, ...], health: bool = True, nets: tuple[str, ...] = ("critic",)
) -> Path:
    """A run directory whose metrics.csv holds every seed's rows (value = step/1000 + seed)."""
    for seed in seeds:
        sink = CsvSink(run_dir / "metrics.csv", run_dir.name, "cheetah_run", seed)
        for step in STEPS:
            x = step / 1000 + seed
            metrics = {"eval/return": 100 * x, "train/critic_loss": 1.0 / (1 + x)}
            for net in nets if health else ():
                metrics |= {m: x for m in panel_metrics(net)[1:]}
            sink.write(metrics, env_step=step)
        sink.close()
    return run_dir


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000


def test_panel_metrics_names() -> None:
    assert panel_metrics("actor") == [
        "eval/return",
        "health/actor/feature_norm",
        "health/actor/param_norm",
        "health/actor/grad_norm",
        "health/actor/elr_grad_ratio",
    ]


def test_health_curves_average_seeds(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "simbav2", seeds=(0, 2))
    curves = health_curves(run)
    assert set(curves) == set(panel_metrics("critic"))
    steps, mean, std = curves["health/critic/param_norm"]
    np.testing.assert_array_equal(steps, STEPS)
    np.testing.assert_allclose(mean, [1.0, 2.0, 3.0, 4.0])  # mean of seed 0 and seed 2 rows
    np.testing.assert_allclose(std, 1.0)
    np.testing.assert_allclose(curves["eval/return"][1], [100.0, 200.0, 300.0, 400.0])


def test_plot_health_two_runs_writes_png_and_svg(tmp_path: Path) -> None:
    runs = [_write_run(tmp_path / "runs" / "a", (0, 1)), _write_run(tmp_path / "runs" / "b", (0,))]
    out = plot_health(runs, tmp_path / "plots" / "health.png", labels=["SimbaV2", "SimBa"])
    assert out == tmp_path / "plots" / "health.png"
    _assert_png(out)
    assert out.with_suffix(".svg").read_text().lstrip().startswith("<?xml")


def test_run_without_health_metrics_still_plots(tmp_path: Path) -> None:
    bare = _write_run(tmp_path / "bare", (0,), health=False)
    assert set(health_curves(bare)) == {"eval/return"}
    _assert_png(plot_health([bare], tmp_path / "bare.png"))
    full = _write_run(tmp_path / "full", (0,))
    _assert_png(plot_health([bare, full / "metrics.csv"], tmp_path / "mixed.png", net="critic"))


def test_run_without_health_rows_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bare = _write_run(tmp_path / "bare", (0,), health=False)
    full = _write_run(tmp_path / "full", (0,))
    plot_health([bare, full], tmp_path / "mixed.png")
    err = capsys.readouterr().err
    assert "bare has no health/critic/* rows" in err and "full" not in err
    assert main(["plot", str(bare), "--out", str(tmp_path / "cli.png")]) == 0
    assert "bare has no health/critic/* rows" in capsys.readouterr().err


def _write_config(run_dir: Path, algo: str | None, shared_trunk: bool = False) -> Path:
    """The keys of config.json that name a run's networks (off-policy runs have no "algo")."""
    data = {"env": "cheetah_run", "agent": {"shared_trunk": shared_trunk}}
    (run_dir / "config.json").write_text(json.dumps(data | ({"algo": algo} if algo else {})))
    return run_dir


def test_actor_panel_of_run_without_actor_rows_is_empty_not_failing(tmp_path: Path) -> None:
    run = _write_config(_write_run(tmp_path / "run", (0,)), algo=None)  # off-policy: has an actor
    assert set(health_curves(run, net="actor")) == {"eval/return"}
    _assert_png(plot_health([run], tmp_path / "actor.png", net="actor"))


def test_networks_of_a_run(tmp_path: Path) -> None:
    sac = _write_config(_write_run(tmp_path / "sac", (0,), health=False), algo=None)
    ppo = _write_config(_write_run(tmp_path / "ppo", (0,), health=False), algo="ppo")
    shared = _write_config(_write_run(tmp_path / "shared", (0,)), "ppo", shared_trunk=True)
    logged = _write_run(tmp_path / "logged", (0,), nets=("actor", "value"))  # no config.json
    bare = _write_run(tmp_path / "bare", (0,), health=False)
    assert run_networks(sac) == ("critic", "actor") and resolve_net(sac, None) == "critic"
    assert run_networks(ppo) == ("actor", "value") and resolve_net(ppo, None) == "value"
    assert run_networks(shared) == ("shared",) and resolve_net(shared, None) == "shared"
    for algo in ("dqn", "pqn"):
        q = _write_config(_write_run(tmp_path / algo, (0,), health=False), algo=algo)
        assert run_networks(q) == ("q",) and resolve_net(q, None) == "q"
    assert run_networks(logged / "metrics.csv") == ("actor", "value")
    assert resolve_net(logged / "metrics.csv", None) == "value"
    assert run_networks(bare) is None and resolve_net(bare, None) == "critic"
    assert resolve_net(bare, "q") == "q"  # networks unknown: any name is drawn (empty panels)


def test_ppo_run_plots_its_value_network_by_default(tmp_path: Path, capsys) -> None:
    ppo = _write_config(_write_run(tmp_path / "ppo", (0, 1), nets=("actor", "value")), "ppo")
    curves = health_curves(ppo)
    assert set(curves) == set(panel_metrics("value"))
    np.testing.assert_allclose(curves["health/value/grad_norm"][1], [0.5, 1.5, 2.5, 3.5])
    assert main(["plot", str(ppo), "--out", str(tmp_path / "ppo.png")]) == 0
    _assert_png(tmp_path / "ppo.png")
    sac = _write_config(_write_run(tmp_path / "sac", (0,)), algo=None)
    svg = plot_health([sac, ppo], tmp_path / "mixed.png").with_suffix(".svg").read_text()
    assert "sac [critic]" in svg and "ppo [value]" in svg  # legend says which network is drawn
    assert "network health (critic/value)" in svg
    assert "warning" not in capsys.readouterr().err  # each run found its own network's rows


def test_missing_network_is_a_one_line_error_listing_the_run_networks(tmp_path: Path, capsys):
    ppo = _write_config(_write_run(tmp_path / "ppo", (0,), nets=("actor", "value")), "ppo")
    assert main(["plot", str(ppo), "--out", str(tmp_path / "x.png")] + ["--net", "critic"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no network 'critic'; its networks are actor, value" in err
    assert "--net actor or --net value" in err and not (tmp_path / "x.png").exists()
    logged = _write_run(tmp_path / "logged", (0,))  # no config: the logged networks count
    with pytest.raises(ScalerlError, match="no network 'actor'; its networks are critic"):
        plot_health([logged], tmp_path / "y.png", net="actor")


def test_bad_inputs_raise(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "run", (0,))
    with pytest.raises(ScalerlError, match="labels"):
        plot_health([run], tmp_path / "x.png", labels=["a", "b"])
    with pytest.raises(ScalerlError, match="at least one"):
        plot_health([], tmp_path / "x.png")
    with pytest.raises(ScalerlError, match="no metrics file"):
        plot_health([tmp_path / "missing"], tmp_path / "x.png")
