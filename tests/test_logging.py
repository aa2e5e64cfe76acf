"""Tests for scalerl.train.logging: CSV/TensorBoard sinks, reader, Logger, MeanAccumulator."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from scalerl.errors import ScalerlError
from scalerl.train.logging import (
    CSV_HEADER,
    INDEXED_CSV_HEADER,
    CsvSink,
    Logger,
    MeanAccumulator,
    WandbSink,
    load_metrics,
    read_metrics_csv,
)

REFERENCE_CSV = Path("/work/shared/reference/simbav2-results/simbaV2_utd2.csv")


def _read_tb_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Parses every event file under ``tb_dir`` (TFRecord framing) into {tag: [(step, value)]}."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(tb_dir.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_csv_sink_writes_exact_header_and_rows(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "metrics.csv", "sac", "cheetah-run", 3)
    sink.write({"train/loss": 0.5, "eval/return": np.float32(12.25)}, env_step=1000)
    sink.write({"train/loss": float("nan")}, env_step=2000)
    sink.close()
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines == [
        "exp_name,env_name,seed,metric,env_step,value",
        "sac,cheetah-run,3,train/loss,1000,0.5",
        "sac,cheetah-run,3,eval/return,1000,12.25",
        "sac,cheetah-run,3,train/loss,2000,nan",
    ]
    rows = read_metrics_csv(tmp_path / "metrics.csv")
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert rows[1] == {
        "index": 1,
        "exp_name": "sac",
        "env_name": "cheetah-run",
        "seed": 3,
        "metric": "eval/return",
        "env_step": 1000,
        "value": 12.25,
    }
    assert math.isnan(rows[2]["value"])


def test_csv_rows_are_flushed_before_close(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "metrics.csv", "sac", "walker-walk", 0)
    sink.write({"eval/return": 7.0}, env_step=5)
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 2
    sink.close()


def test_csv_index_continues_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    first = CsvSink(path, "sac", "walker-walk", 1)
    first.write({"a": 1.0, "b": 2.0}, env_step=10)
    first.close()
    second = CsvSink(path, "sac", "walker-walk", 1)
    second.write({"a": 3.0}, env_step=20)
    second.close()
    rows = read_metrics_csv(path)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert [(r["metric"], r["env_step"], r["value"]) for r in rows] == [
        ("a", 10, 1.0),
        ("b", 10, 2.0),
        ("a", 20, 3.0),
    ]
    assert path.read_text().count(CSV_HEADER) == 1


def test_metrics_csv_has_no_unnamed_index_column(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    sink = CsvSink(tmp_path / "metrics.csv", "sac", "e", 1)
    sink.write({"eval/return": 3.0}, env_step=10)
    sink.close()
    df = pd.read_csv(tmp_path / "metrics.csv")
    assert list(df.columns) == ["exp_name", "env_name", "seed", "metric", "env_step", "value"]


def test_old_indexed_csv_is_read_and_continued_with_its_index(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(INDEXED_CSV_HEADER + "\n0,sac,e,1,a,10,1.0\n1,sac,e,1,b,20,2.0\n")
    sink = CsvSink(path, "sac", "e", 1)
    sink.write({"c": 5.0}, env_step=30)
    sink.close()
    assert path.read_text().splitlines()[-1] == "2,sac,e,1,c,30,5.0"
    rows = read_metrics_csv(path)
    assert [(r["index"], r["metric"], r["env_step"]) for r in rows] == [
        (0, "a", 10), (1, "b", 20), (2, "c", 30)
    ]  # fmt: skip
    Logger(tmp_path, "sac", "e", 1, tensorboard=False, resume_step=10).close()
    assert [r["metric"] for r in read_metrics_csv(path)] == ["a"]


def test_csv_reopen_drops_half_written_row(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(CSV_HEADER + "\nsac,e,1,a,10,1.0\nsac,e,1,b,1")
    sink = CsvSink(path, "sac", "e", 1)
    sink.write({"c": 5.0}, env_step=20)
    sink.close()
    rows = read_metrics_csv(path)
    assert [(r["index"], r["metric"]) for r in rows] == [(0, "a"), (1, "c")]


def test_csv_reopen_rejects_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("step,loss\n1,2\n")
    with pytest.raises(ScalerlError, match="not a scalerl metrics file"):
        CsvSink(path, "sac", "e", 1)


def test_reader_loads_reference_csv() -> None:
    rows = read_metrics_csv(REFERENCE_CSV)
    assert len(rows) == 13540
    assert set(rows[0]) == {"index", "exp_name", "env_name", "seed", "metric", "env_step", "value"}
    assert rows[0]["exp_name"] == "simbaV2_utd2"
    assert rows[0]["env_name"] == "h1-pole-v0"
    assert rows[0]["seed"] == 9000
    assert rows[1]["env_step"] == 100000
    assert rows[0]["value"] == pytest.approx(34.269159082720236)
    assert {r["metric"] for r in rows} <= {"avg_return", "avg_success"}


def test_load_metrics_returns_dataframe() -> None:
    pytest.importorskip("pandas")
    df = load_metrics(REFERENCE_CSV)
    assert list(df.columns) == ["exp_name", "env_name", "seed", "metric", "env_step", "value"]
    assert len(df) == 13540
    assert df["env_step"].max() == 1_000_000


def test_reader_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ScalerlError, match="no metrics file"):
        read_metrics_csv(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ScalerlError, match="not a metrics CSV"):
        read_metrics_csv(tmp_path / "bad.csv")


def test_logger_writes_csv_and_tensorboard(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with Logger(run_dir, "sac", "hopper-hop", 2) as logger:
        logger.log({"train/critic_loss": 1.5, "eval/return": np.float64(250.0)}, env_step=100)
        logger.log({"train/critic_loss": float("inf")}, env_step=200)
    rows = read_metrics_csv(run_dir / "metrics.csv")
    assert [(r["metric"], r["env_step"], r["value"]) for r in rows] == [
        ("train/critic_loss", 100, 1.5),
        ("eval/return", 100, 250.0),
        ("train/critic_loss", 200, math.inf),
    ]
    scalars = _read_tb_scalars(run_dir / "tb")
    assert scalars["eval/return"] == [(100, 250.0)]
    assert scalars["train/critic_loss"] == [(100, 1.5), (200, math.inf)]


def test_logger_without_tensorboard_has_no_tb_dir(tmp_path: Path) -> None:
    logger = Logger(tmp_path, "sac", "e", 0, tensorboard=False)
    logger.log({"eval/return": 1.0}, env_step=1)
    logger.close()
    logger.close()  # idempotent
    assert not (tmp_path / "tb").exists()
    assert len(read_metrics_csv(tmp_path / "metrics.csv")) == 1


def test_wandb_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(__import__("sys").modules, "wandb", None)
    with pytest.raises(ScalerlError, match=r'pip install -e "\.\[wandb\]"'):
        WandbSink("proj", "run", tmp_path)


def test_mean_accumulator() -> None:
    acc = MeanAccumulator()
    acc.add({"loss": 1.0, "q": np.array([1.0, 3.0]), "_private": 100.0})
    acc.add({"loss": np.float32(2.0), "q": np.array(4.0)})
    acc.add({"loss": 6.0})
    assert acc.means() == {"loss": 3.0, "q": 3.0}
    acc.reset()
    assert acc.means() == {}
    acc.add({"x": float("nan")})
    acc.add({"x": 1.0})
    assert math.isnan(acc.means()["x"])


class _FakeWandb:
    """Stands in for the `wandb` module: records every init call's kwargs and logged steps."""

    def __init__(self) -> None:
        self.inits: list[dict] = []
        self.steps: list[int] = []

    def init(self, **kwargs):
        self.inits.append(kwargs)
        fake = self

        class _Run:
            def log(self, values, step):
                fake.steps.append(step)

            def finish(self):
                pass

        return _Run()


def test_wandb_groups_and_resumes_by_stored_id(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    fake = _FakeWandb()
    monkeypatch.setitem(__import__("sys").modules, "wandb", fake)
    for seed in (0, 1):
        Logger(tmp_path / f"s{seed}", "sac", "e", seed, tensorboard=False,
               wandb_project="p", wandb_group="job").close()  # fmt: skip
    Logger(tmp_path / "s0", "sac", "e", 0, tensorboard=False, wandb_project="p",
           resume_step=0).close()  # fmt: skip
    first, second, resumed = fake.inits
    assert first["group"] == second["group"] == resumed["group"] == "job"
    assert first["id"] != second["id"] and resumed["id"] == first["id"]
    assert {init["resume"] for init in fake.inits} == {"allow"}
    assert (first["project"], first["name"]) == ("p", "sac-e-s0")
