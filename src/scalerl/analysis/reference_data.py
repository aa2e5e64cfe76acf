"""The SimbaV2 paper's reference curves, shipped with the package in a compact form.

The SimbaV2 authors published their per-run evaluation curves (Lee et al., ICML 2025; the
`results/` folder of github.com/dojeon-ai/SimbaV2, Apache-2.0) as long-format CSVs
(`exp_name, env_name, seed, metric, env_step, value`). scalerl ships every file of that folder in
one compressed `.npz` (about 2 MB): string columns as codes into small tables, seed and env_step
as int32, value as float64 (exactly the CSVs' values; identical files are stored once).
`scalerl report --reference` takes a file's short name: its path in that folder, lower case,
`_` -> `-`, without `.csv` (`simbav2-utd2`, `baseline/sac`, `scaling/utd/simba-utd4-reset`;
`reference_names()` lists them).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from scalerl.errors import ScalerlError

ARCHIVE = "reference_curves.npz"
"""File name of the archive in the package's data directory."""

COLUMNS = ("exp_name", "env_name", "seed", "metric", "env_step", "value")
"""Columns of a reference CSV after its unnamed index column."""

STRING_COLUMNS = ("exp_name", "env_name", "metric")


def short_name(relative: str) -> str:
    """The short name of a results file (`scaling/utd/simbaV2_utd1.csv` ->
    `scaling/utd/simbav2-utd1`)."""
    return relative.removesuffix(".csv").lower().replace("_", "-")


def archive_path() -> Path:
    """Path of the shipped archive (inside the installed package)."""
    return Path(str(resources.files("scalerl") / "data" / ARCHIVE))


@lru_cache(maxsize=1)
def _index() -> dict[str, Any]:
    path = archive_path()
    if not path.is_file():
        raise ScalerlError(f"the reference curves are missing from the package ({path}); reinstall")
    with np.load(path) as data:
        return json.loads(bytes(data["index"]).decode())


def reference_names() -> list[str]:
    """Short names of every shipped reference file."""
    return sorted(_index()["names"])


def is_reference_name(text: str) -> bool:
    """Whether `text` is a shipped reference file's short name."""
    return text in _index()["names"]


def reference_columns(name: str) -> dict[str, np.ndarray]:
    """The columns of one shipped reference file, in the CSV's row order.

    Raises:
        ScalerlError: unknown name (the message lists the valid ones).
    """
    index = _index()
    if name not in index["names"]:
        raise ScalerlError(
            f"unknown reference {name!r}; pass a CSV path or one of: {', '.join(reference_names())}"
        )
    key = index["names"][name]
    with np.load(archive_path()) as data:
        out = {}
        for col in COLUMNS:
            raw = data[f"{key}/{col}"]
            out[col] = np.asarray(index["tables"][col])[raw] if col in STRING_COLUMNS else raw
    return out


def reference_frame(name: str) -> Any:
    """One shipped reference file as a pandas DataFrame with the CSV's columns."""
    import pandas as pd

    return pd.DataFrame(reference_columns(name), columns=list(COLUMNS))


# ----------------------------------------------------------------------------- building


def build_archive(results_dir: Path, out: Path) -> dict[str, str]:
    """Pack every CSV under `results_dir` into the archive `out` (identical files stored once).

    Returns:
        Short name -> stored key.
    """
    import pandas as pd

    files = sorted(Path(results_dir).rglob("*.csv"))
    frames = {f: pd.read_csv(f, index_col=0) for f in files}
    tables = {c: sorted({str(v) for df in frames.values() for v in df[c]}) for c in STRING_COLUMNS}
    arrays: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}
    for path, df in frames.items():
        key = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
        names[short_name(path.relative_to(results_dir).as_posix())] = key
        arrays |= _encode(key, df, tables)
    index = json.dumps({"names": names, "tables": tables}).encode()
    np.savez_compressed(out, index=np.frombuffer(index, np.uint8), **arrays)
    return names


def _encode(key: str, df: Any, tables: dict[str, list[str]]) -> dict[str, np.ndarray]:
    codes = {c: {s: i for i, s in enumerate(t)} for c, t in tables.items()}
    out = {f"{key}/{c}": np.array([codes[c][str(v)] for v in df[c]], np.uint16) for c in codes}
    out[f"{key}/seed"] = df["seed"].to_numpy(np.int32)
    out[f"{key}/env_step"] = df["env_step"].to_numpy(np.int32)
    out[f"{key}/value"] = df["value"].to_numpy(np.float64)
    return out


if __name__ == "__main__":  # python -m scalerl.analysis.reference_data RESULTS_DIR
    import sys

    target = Path(__file__).resolve().parents[1] / "data" / ARCHIVE
    print(f"{len(build_archive(Path(sys.argv[1]), target))} files -> {target}")
