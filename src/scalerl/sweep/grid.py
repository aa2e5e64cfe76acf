"""Sweep grids: envs (or suite names) x agent presets x overrides x seeds -> named run configs.

A grid comes from a small YAML file (`SweepSpec.from_yaml`) or from command-line options
(`SweepSpec.from_options`); `expand` turns it into one `RunSpec` per run, each with a readable,
deterministic name and a validated `TrainConfig` (see docs/sweeps.md).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scalerl.config import (
    AGENTS,
    AgentConfig,
    PlasticityConfig,
    TrainConfig,
    agent_preset,
    seed_list,
    validate_train,
)
from scalerl.envs.make import check_continuous_id
from scalerl.envs.suites import TASK_LISTS, suite_preset
from scalerl.errors import ConfigError
from scalerl.sweep.algos import algo_configs, build_config

RESERVED = ("env", "seed", "seeds", "num_seeds", "name", "run_root", "progress", "agent")
"""TrainConfig/AgentConfig fields a grid sets itself (use `envs`, `seeds`, `agents`)."""

GRID_KEYS = ("name", "out_dir", "envs", "seeds", "agents", "overrides", "base", "algo")
"""Top-level keys of a grid YAML file."""

_NONE = ("none", "null", "~")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _field_types(
    owners: dict[str, type] | None = None, reserved: tuple[str, ...] = RESERVED
) -> dict[str, tuple[str, Any]]:
    """Override key -> (owner: 'train' | 'agent' | 'plasticity', resolved type)."""
    owners = owners or {"train": TrainConfig, "agent": AgentConfig, "plasticity": PlasticityConfig}
    out: dict[str, tuple[str, Any]] = {}
    for owner, cls in owners.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name not in reserved and f.name != "plasticity":
                out[f.name] = (owner, hints[f.name])
    return out


FIELDS: dict[str, tuple[str, Any]] = _field_types()
"""Every key a grid may override or fix, with the config that owns it and its type."""


@functools.cache
def fields_of(algo: str | None = None) -> dict[str, tuple[str, Any]]:
    """`FIELDS` of the off-policy algorithms (None) or of an algorithm with its own loop (ppo:
    the fields of `PPOTrainConfig`, `PPOConfig` and `PlasticityConfig`)."""
    if algo is None:
        return FIELDS
    configs = algo_configs(algo)
    owners = {"train": configs.train, "agent": configs.agent, "plasticity": PlasticityConfig}
    return _field_types(owners, (*RESERVED, "algo"))


def parse_value(key: str, text: str, algo: str | None = None) -> Any:
    """Parse `text` to the type of config field `key` (int/float/bool/str/Path/Literal/None) of
    the configs of `algo` (None: the off-policy algorithms; see `fields_of`).

    Raises:
        ConfigError: unknown key (the message lists the valid fields) or unparsable value.
    """
    fields = fields_of(algo)
    if key in RESERVED:
        raise ConfigError(f"{key!r} is set by the grid itself; use its envs/seeds/agents entries")
    if key == "algo" and algo is not None:
        raise ConfigError("'algo' is set by the grid itself; use its algo entry (--algo)")
    if key not in fields:
        raise ConfigError(f"unknown sweep key {key!r}; valid keys: {', '.join(sorted(fields))}")
    kinds = _kinds(fields[key][1])
    if text.strip().lower() in _NONE and type(None) in kinds:
        return None
    for kind in kinds:
        try:
            return _parse_as(kind, text.strip())
        except ValueError:
            continue
    raise ConfigError(f"cannot parse {key}={text!r} as {_type_name(fields[key][1])}")


def _kinds(tp: Any) -> list[Any]:
    """The alternatives of a type: `int | None` -> [int, NoneType]; other types -> [tp]."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return list(typing.get_args(tp))
    return [tp]


def _parse_as(kind: Any, text: str) -> Any:
    """Parse one alternative; ValueError when `text` does not fit it."""
    if typing.get_origin(kind) is Literal:
        if text not in typing.get_args(kind):
            raise ValueError(text)
        return text
    if kind is bool:
        if text.lower() not in _TRUE + _FALSE:
            raise ValueError(text)
        return text.lower() in _TRUE
    if kind is int:
        number = float(text)
        if not number.is_integer():
            raise ValueError(text)
        return int(text) if re.fullmatch(r"[+-]?[\d_]+", text) else int(number)
    if kind in (float, str, Path):
        return kind(text)
    raise ValueError(text)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(typing.get_args(tp))
    return " | ".join(getattr(k, "__name__", str(k)) for k in _kinds(tp))


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its directory name, its full config and the grid values that made it."""

    name: str
    """Run directory name under the sweep directory, e.g. mlp-Pendulum-v1-utd=2-s0."""
    config: TrainConfig | Any
    """Validated run config (run_root = the sweep directory, one seed, no progress bar):
    a `TrainConfig`, or the run config of the grid's `algo` (`PPOTrainConfig`)."""
    params: dict[str, str]
    """Grid coordinates: env, agent, seed and each override key -> value as written."""
    cell: str = ""
    """The run's (environment, configuration) cell: its name without the seed suffix."""


@dataclass(frozen=True)
class SweepSpec:
    """A grid of runs; checked when built (unknown keys and bad values raise ConfigError)."""

    envs: tuple[str, ...]
    """Environment ids or task-list names (dmc-easy, dmc-hard, mujoco, myosuite, hbench, ...)."""
    seeds: tuple[int, ...] = (0,)
    """Seeds; every configuration runs once per seed."""
    agents: tuple[str, ...] = ("simbav2",)
    """Agent presets; each run starts from its preset's defaults."""
    overrides: dict[str, list[str]] = field(default_factory=dict)
    """Swept fields: key -> values (as text), e.g. {"utd": ["1", "2", "4", "8"]}."""
    base: dict[str, str] = field(default_factory=dict)
    """Fixed fields for every run (not in run names), e.g. {"env_steps": "200000"}."""
    name: str = "sweep"
    """Sweep name: the sweep directory is out_dir/name."""
    out_dir: Path = Path("runs")
    """Directory holding the sweep directory."""
    algo: str | None = None
    """Algorithm with its own options and loop (ppo); None: the off-policy algorithms of
    `scalerl train` (sac by default; sweep them with the `algo` key)."""

    def __post_init__(self) -> None:
        _check_spec(self)

    @property
    def sweep_dir(self) -> Path:
        """The directory holding every run of the sweep, and sweep.json."""
        return Path(self.out_dir) / self.name

    @classmethod
    def from_yaml(cls, path: str | Path) -> SweepSpec:
        """Read a grid file (keys: name, out_dir, envs, seeds, agents, overrides, base)."""
        return cls.from_options(**load_grid(path))

    @classmethod
    def from_options(
        cls,
        envs: str | list[str] | tuple[str, ...] = (),
        seeds: int | str | list[int] | tuple[int, ...] = 0,
        agents: str | list[str] | tuple[str, ...] = ("simbav2",),
        overrides: dict[str, Any] | list[str] | tuple[str, ...] | None = None,
        base: dict[str, Any] | list[str] | tuple[str, ...] | None = None,
        name: str = "sweep",
        out_dir: str | Path = "runs",
        algo: str | None = None,
    ) -> SweepSpec:
        """Build a grid from loose values, as YAML or the command line give them.

        Seeds "0-2" or [0, 1, 2]; overrides ["utd=1,2"] or {"utd": [1, 2]}; base
        ["env_steps=100000"] or {"env_steps": 100000}; envs and agents a list or "a,b";
        algo "ppo" or None.
        """
        return cls(
            envs=_as_tuple(envs),
            seeds=_parse_seeds(seeds),
            agents=_as_tuple(agents),
            overrides={
                k: [_text(v) for v in _as_tuple(vs)] for k, vs in parse_pairs(overrides).items()
            },
            base={k: _text(v) for k, v in parse_pairs(base).items()},
            name=str(name),
            out_dir=Path(out_dir),
            algo=None if algo is None else str(algo),
        )


def _check_spec(spec: SweepSpec) -> None:
    if not spec.envs or not spec.seeds or not spec.agents:
        raise ConfigError("a sweep needs at least one env, one seed and one agent (--envs ...)")
    if spec.algo is not None:
        algo_configs(spec.algo)  # unknown algo: ConfigError
    for agent in spec.agents:
        if agent not in AGENTS:
            raise ConfigError(f"unknown agent {agent!r}; choose from {', '.join(AGENTS)}")
    if not re.fullmatch(r"[A-Za-z0-9_.=-]+", spec.name):
        raise ConfigError(f"sweep name {spec.name!r} must be letters, digits and _ . = - only")
    for key, values in spec.overrides.items():
        if not values or len(set(values)) != len(values):
            raise ConfigError(f"override {key} needs distinct values, got {values}")
        for value in values:
            parse_value(key, value, spec.algo)
    for key, value in spec.base.items():
        parse_value(key, value, spec.algo)
    if set(spec.base) & set(spec.overrides):
        raise ConfigError(
            f"keys {sorted(set(spec.base) & set(spec.overrides))} are both swept "
            "and fixed; keep each in one of overrides/base"
        )


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple):
        return tuple(value)
    return (value,)


def _text(value: Any) -> str:
    """YAML scalars as text (None -> 'None', True -> 'true') for `parse_value`."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def load_grid(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a grid YAML file (keys checked, values not yet parsed)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        reason = " ".join(str(err).split())
        raise ConfigError(
            f"cannot read grid file {path} ({reason}); fix it or pass --envs"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"grid file {path} must be a mapping with keys {', '.join(GRID_KEYS)}")
    unknown = sorted(set(data) - set(GRID_KEYS))
    if unknown:
        raise ConfigError(f"grid file {path}: unknown keys {unknown}; use {', '.join(GRID_KEYS)}")
    return data


def parse_pairs(items: dict[str, Any] | list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """`{"utd": [1, 2]}` or `["utd=1,2"]` -> {"utd": ...}; a key given twice raises."""
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"cannot parse {item!r}; write key=value or key=v1,v2")
        if key.strip() in out:
            raise ConfigError(f"{key.strip()} is given twice; list all its values once")
        out[key.strip()] = value
    return out


def _parse_seeds(seeds: int | str | list[int] | tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(seeds, list | tuple):
        seeds = ",".join(str(s) for s in seeds)
    return tuple(seed_list(TrainConfig(seeds=str(seeds))))


def expand_envs(envs: tuple[str, ...]) -> list[str]:
    """Env ids with task-list names (dmc-easy, mujoco, ...) replaced by their tasks, in order."""
    out: list[str] = []
    for env in envs:
        for task in TASK_LISTS.get(env, (env,)):
            if task not in out:
                out.append(task)
    return out


def expand(spec: SweepSpec) -> list[RunSpec]:
    """Every run of the grid, seed-major (all configurations of seed 0 first, then seed 1, ...).

    Raises:
        ConfigError/EnvError: an invalid combination or env id, before any run starts.
    """
    keys = list(spec.overrides)
    runs = []
    for seed, agent, env in itertools.product(spec.seeds, spec.agents, expand_envs(spec.envs)):
        for values in itertools.product(*spec.overrides.values()):
            swept = dict(zip(keys, values, strict=True))
            runs.append(_run_spec(spec, env, agent, seed, swept))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ConfigError(
            "two runs of the grid get the same name; make env/override values "
            "differ in letters, digits, _ . or -"
        )
    return runs


def cell_name(env: str, agent: str, swept: dict[str, str], algo: str | None = None) -> str:
    """[<algo>-]<agent>-<env>-<key>=<value>-...: the name of one (environment, configuration)
    cell (the algo prefix for algorithms with their own loop, e.g. ppo)."""
    parts = ([algo] if algo else []) + [agent, env] + [f"{k}={v}" for k, v in swept.items()]
    return "-".join(re.sub(r"[^A-Za-z0-9_.=-]+", "-", p) for p in parts)


def run_name(
    env: str, agent: str, seed: int, swept: dict[str, str], algo: str | None = None
) -> str:
    """[<algo>-]<agent>-<env>-<key>=<value>-...-s<seed>, characters safe for a directory name."""
    return f"{cell_name(env, agent, swept, algo)}-s{seed}"


def _run_spec(spec: SweepSpec, env: str, agent: str, seed: int, swept: dict[str, str]) -> RunSpec:
    values = {k: parse_value(k, v, spec.algo) for k, v in (spec.base | swept).items()}
    groups: dict[str, dict[str, Any]] = {"train": {}, "agent": {}, "plasticity": {}}
    for key, value in values.items():
        groups[fields_of(spec.algo)[key][0]][key] = value
    if spec.algo is not None:
        return _separate_run_spec(spec, env, agent, seed, swept, groups)
    preset = agent_preset(agent)
    plasticity = dataclasses.replace(preset.plasticity, **groups["plasticity"])
    agent_cfg = dataclasses.replace(preset, plasticity=plasticity, **groups["agent"])
    name = run_name(env, agent, seed, swept)
    fixed = {"run_root": spec.sweep_dir, "progress": False, "seeds": None, "num_seeds": 1}
    cfg = TrainConfig(env=env, seed=seed, name=name, agent=agent_cfg, **groups["train"], **fixed)
    validate_train(cfg)
    check_continuous_id(env)
    suite_preset(env)
    params = {"env": env, "agent": agent, "seed": str(seed)} | swept
    return RunSpec(name=name, config=cfg, params=params, cell=cell_name(env, agent, swept))


def _separate_run_spec(
    spec: SweepSpec, env: str, agent: str, seed: int, swept: dict[str, str], groups: dict
) -> RunSpec:
    """The run of an algorithm with its own loop (`spec.algo`, e.g. ppo)."""
    name = run_name(env, agent, seed, swept, spec.algo)
    fixed = {"run_root": spec.sweep_dir, "progress": False, "seeds": None, "num_seeds": 1}
    cfg = build_config(str(spec.algo), env, agent, seed, groups, fixed | {"name": name})
    params = {"algo": str(spec.algo), "env": env, "agent": agent, "seed": str(seed)} | swept
    cell = cell_name(env, agent, swept, spec.algo)
    return RunSpec(name=name, config=cfg, params=params, cell=cell)
