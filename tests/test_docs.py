"""User-facing text stands alone, and every command the README and docs show parses.

The commands of README.md and docs/**.md code blocks go through `scalerl.cli.main` with the
training, evaluation and plotting back-ends replaced by stubs: parsing and validation run for
real, no work is done.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from scalerl.cli import main
from scalerl.config import TrainConfig, validate_offline, validate_train

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
INTERNAL = re.compile(r"\bspec\b\W{0,3}(§|\d)|\.\./shared|shared/(spec|reference)|\bspec:", re.I)
"""References to documents a user of the package does not have."""
STUBBED = {"train", "evaluate", "plot", "plasticity", "sweep", "report", "offline", "dataset",
           "envs", "simplicity"}  # fmt: skip
"""Commands whose back-ends the `stubs` fixture replaces (others would do real work)."""
HELP = ["train", "train --algo ppo", "train --algo dqn", "train --algo pqn", "evaluate", "plot",
        "plasticity",
        "sweep", "report", "offline", "dataset export", "dataset collect", "envs",
        "simplicity"]  # fmt: skip


def doc_commands() -> list[tuple[str, str]]:
    """(file, command) of every `scalerl ...` line in a fenced code block of README and docs."""
    out = []
    for path in DOCS:
        for block in re.findall(r"```[a-z]*\n(.*?)```", path.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip().removeprefix("$ ")
                line = line.replace("$a", "mlp")  # the loop variable of shell `for a in mlp ...`
                if line.startswith("scalerl ") and "...same" not in line:
                    out.append((path.relative_to(ROOT).as_posix(), line))
    return out


@pytest.fixture
def stubs(monkeypatch):
    """Replace every command's back-end; record the parsed configs."""
    seen: list = []

    def record(value, result=()):
        seen.append(value)
        return result

    def train_seeds(cfg):
        validate_train(cfg)
        return record(cfg, [])

    def train_offline(cfg):
        validate_offline(cfg)
        return record(cfg, [])

    def train_ppo(cfg):
        from scalerl.config_ppo import validate_ppo_train

        validate_ppo_train(cfg)
        return record(cfg, [])

    def train_dqn(cfg):
        from scalerl.config_dqn import validate_dqn_train

        validate_dqn_train(cfg)
        return record(cfg, [])

    def train_pqn(cfg):
        from scalerl.config_pqn import validate_pqn_train

        validate_pqn_train(cfg)
        return record(cfg, [])

    def sweep(args):
        from scalerl.sweep import spec_from_args

        record(spec_from_args(args) if args.grid is None else args)

    result = SimpleNamespace(metrics=lambda: {"eval/return": 0.0, "eval/return_std": 0.0})
    dataset = _Dataset()
    patches = {
        "scalerl.train.loop.train_seeds": train_seeds,
        "scalerl.train.loop.resume": lambda dirs: record(dirs, []),
        "scalerl.train.ppo_run.train_ppo": train_ppo,
        "scalerl.train.ppo_run.resume_ppo": lambda dirs: record(dirs, []),
        "scalerl.train.dqn_run.train_dqn": train_dqn,
        "scalerl.train.dqn_run.resume_dqn": lambda dirs: record(dirs, []),
        "scalerl.train.dqn_run.is_run": lambda run: "dqn-" in str(run),
        "scalerl.train.pqn_run.train_pqn": train_pqn,
        "scalerl.train.pqn_run.resume_pqn": lambda dirs: record(dirs, []),
        "scalerl.train.setup.read_config": lambda run: TrainConfig(),
        "scalerl.offline.train.train_offline": train_offline,
        "scalerl.offline.train.resume_offline": lambda dirs: record(dirs, []),
        "scalerl.train.evaluate.evaluate_run": lambda *a: record(a, result),
        "scalerl.train.video.record_run": lambda *a: record(a, "video.mp4"),
        "scalerl.analysis.health_plot.plot_health": lambda *a: record(a, "health.png"),
        "scalerl.analysis.report.write_report": lambda *a, **k: record(a, "report.md"),
        "scalerl.plasticity.digits.main": record,
        "scalerl.science.simplicity_report.main": record,
        "scalerl.sweep.run_from_args": sweep,
        "scalerl.envs.listing.list_envs": lambda *a: record(a, []),
        "scalerl.offline.collect.export_buffer": lambda run: record(run, _Dataset([0])),
        "scalerl.offline.collect.collect": lambda run, spec: record(spec, dataset),
        "scalerl.datasets.save_any": lambda path, data, fmt: record(fmt, path),
    }
    for target, stub in patches.items():
        monkeypatch.setattr(target, stub)
    return seen


class _Dataset(list):
    def episode_returns(self) -> np.ndarray:
        return np.zeros(1)


@pytest.mark.parametrize(("doc", "command"), doc_commands())
def test_documented_commands_parse(doc, command, stubs, capsys):
    args = [a for a in shlex.split(command, comments=True)[1:] if a != "..."]
    if args[0] not in STUBBED and not {"--help", "--version"} & set(args):
        pytest.skip(f"no stub for `scalerl {args[0]}`: add its back-end to the stubs fixture")
    try:
        code = main(args)
    except SystemExit as exit_:  # --help
        code = exit_.code
    assert code == 0, f"{doc}: `{command}` was rejected: {capsys.readouterr().err}"
    assert "--help" in args or "--version" in args or stubs, f"{doc}: `{command}` did nothing"


def test_readme_options_exist():
    """Every --option the README names is an option of some command."""
    helps = " ".join(_help(c.split()) for c in ["", *HELP])
    options = set(re.findall(r"(--[a-z][a-z0-9-]*)", (ROOT / "README.md").read_text()))
    options -= {"--logdir", "--no-deps"}  # tensorboard's and pip's
    missing = sorted(o for o in options if not re.search(re.escape(o) + r"\b", helps))
    assert not missing, f"README names options no command has: {missing}"


@pytest.mark.parametrize("command", HELP)
def test_help_cites_no_internal_documents(command):
    text = _help(command.split())
    assert "--" in text and not INTERNAL.search(text), INTERNAL.search(text)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_cite_no_internal_documents(path):
    hits = [line for line in path.read_text().splitlines() if INTERNAL.search(line)]
    assert not hits, f"{path.name} cites internal documents: {hits[:5]}"


def test_version(capsys):
    assert main(["--version"]) == 0
    assert re.fullmatch(r"scalerl \d+\.\d+\.\d+\n", capsys.readouterr().out)


def _help(args: list[str]) -> str:
    import contextlib
    import io
    import os

    buffer = io.StringIO()
    os.environ["COLUMNS"] = "200"
    with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
        main([*args, "--help"] if args else ["--help"])
    return buffer.getvalue()


UNINSTALLABLE = re.compile(r"pip install ['\"]?scalerl\[")
"""`pip install "scalerl[extra]"`: scalerl is on no package index, so this cannot work."""


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_install_extras_from_a_checkout_or_wheel(path):
    assert not UNINSTALLABLE.search(path.read_text())


def test_help_and_missing_wandb_error_say_how_to_install_it(tmp_path, monkeypatch):
    import sys

    from scalerl.errors import ScalerlError
    from scalerl.train.logging import Logger

    assert not UNINSTALLABLE.search(" ".join(_help(c.split()) for c in HELP))
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` fails
    with pytest.raises(ScalerlError, match=r'pip install wandb .*pip install -e "\.\[wandb\]"'):
        Logger(tmp_path, "x", "Pendulum-v1", 0, tensorboard=False, wandb_project="p")
