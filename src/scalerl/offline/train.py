"""The offline training loop: SAC + behaviour cloning on a fixed dataset.

The dataset becomes one on-device replay buffer shared by every seed; the seeds' agent states
carry a leading axis and one jitted call runs `updates_per_call` updates of all seeds with
`lax.scan` inside `jax.vmap`. Evaluation runs in the real environment; the run directory has
the online layout (config.json, metrics.csv, tb/, checkpoint.msgpack) plus offline.json. The
step axis of an offline run counts gradient updates (there are no environment frames).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np

import scalerl
from scalerl.agents.actor_critic import ActorCritic
from scalerl.agents.state import SACState, take_seed
from scalerl.analysis.plots import plot_learning_curve
from scalerl.buffers.replay import ReplayState, replay_from_numpy, replay_sample_many
from scalerl.config import OfflineConfig, TrainConfig, offline_updates, seed_list, validate_offline
from scalerl.datasets import Dataset, load_any, validate_dataset
from scalerl.envs import env_info, make_env, suite_preset
from scalerl.errors import CheckpointError, ConfigError, TrainingError
from scalerl.offline.scores import normalized_score, reference_range
from scalerl.offline.warmup import warm_seed_states
from scalerl.seed_axis import vmap_seeds
from scalerl.train.checkpoint import load_checkpoint, read_checkpoint_meta, save_checkpoint
from scalerl.train.compile_cache import enable_compilation_cache
from scalerl.train.evaluate import evaluate_batch, make_policy
from scalerl.train.logging import Logger, MeanAccumulator, nonfinite_loss
from scalerl.train.progress import FirstCalls, Progress, start_message, summary_every
from scalerl.train.resume import clean_partial_writes
from scalerl.train.setup import (
    CHECKPOINT_NAME,
    CURVE_NAME,
    absolute,
    build_agent,
    config_from_dict,
    config_to_dict,
    create_run_dir,
    job_group,
    open_logger,
    resolve,
    safe_name,
    seed_configs,
    write_config,
)

OFFLINE_NAME = "offline.json"


@dataclass
class OfflineSeed:
    """Host-side pieces of one seed: its (derived) config, run directory, eval env, logger."""

    cfg: TrainConfig
    run_dir: Path
    eval_env: gym.Env
    logger: Logger
    acc: MeanAccumulator = field(default_factory=MeanAccumulator)
    last_eval: float = math.nan


@dataclass
class OfflineRun:
    """Every seed of one offline job, the shared dataset buffer and the agent's static parts."""

    cfg: OfflineConfig
    train_cfg: TrainConfig
    sac: ActorCritic
    seeds: list[OfflineSeed]
    buffer: ReplayState
    total: int
    ref: tuple[float, float] | None
    info: dict[str, Any]
    policy: Any = None

    def __post_init__(self) -> None:
        self.policy = make_policy(self.sac)

    def meta(self, seed: OfflineSeed, updates: int) -> dict[str, Any]:
        return {
            "agent_step": updates,
            "env_step": updates,
            "updates": updates,
            "config": config_to_dict(seed.cfg),
            "acc": seed.acc.state(),
            "scalerl_version": scalerl.__version__,
        }

    def checkpoint(self, states: SACState, updates: int, name: str = CHECKPOINT_NAME) -> None:
        for i, seed in enumerate(self.seeds):
            save_checkpoint(seed.run_dir / name, take_seed(states, i), self.meta(seed, updates))

    def evaluate(self, states: SACState, updates: int) -> None:
        envs = [s.eval_env for s in self.seeds]
        results = evaluate_batch(envs, self.policy, states, self.cfg.eval_episodes)
        for seed, result in zip(self.seeds, results, strict=True):
            metrics = result.metrics()
            if self.ref is not None:
                score = normalized_score(metrics["eval/return"], self.ref)
                metrics["eval/normalized_return"] = score
            seed.last_eval = metrics["eval/return"]
            seed.logger.log(metrics, updates)
            plot_learning_curve(seed.run_dir / "metrics.csv", seed.run_dir / CURVE_NAME)

    def close(self) -> None:
        for seed in self.seeds:
            seed.logger.close()
            seed.eval_env.close()


# ------------------------------------------------------------------------------ entry points


def train_offline(cfg: OfflineConfig) -> list[Path]:
    """Train every seed of `cfg` on its dataset; returns the run directories.

    Raises:
        ScalerlError: invalid config, unreadable or mismatched dataset, unknown env id (all
            before any work), or a non-finite loss (after saving checkpoint_nan.msgpack).
    """
    validate_offline(cfg)
    enable_compilation_cache()
    dataset = load_any(cfg.dataset)
    run = _open_run(cfg, dataset, None)
    states = _initial_states(run, dataset)
    return _execute(run, states, 0)


def resume_offline(run_dirs: list[Path]) -> list[Path]:
    """Continue interrupted offline runs (the seeds of one job together) from checkpoint.msgpack.

    Raises:
        ScalerlError: not an offline run directory, or no usable checkpoint.
    """
    cfgs = [read_offline_config(d) for d in run_dirs]
    seeds = ",".join(str(c.seed) for c in cfgs)
    cfg = dataclasses.replace(cfgs[0], seeds=seeds if len(cfgs) > 1 else None, num_seeds=1)
    enable_compilation_cache()
    dataset = load_any(cfg.dataset)
    run = _open_run(cfg, dataset, list(run_dirs))
    states, updates = _restore_states(run)
    return _execute(run, states, updates)


def read_offline_config(run_dir: Path) -> OfflineConfig:
    """The OfflineConfig of an offline run directory (from offline.json)."""
    path = Path(run_dir) / OFFLINE_NAME
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not an offline run directory (no {OFFLINE_NAME})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{path} is not valid JSON ({err}); the run is intact: restore the file from a "
            "backup (config.json next to it holds the resolved training config)"
        ) from None
    return config_from_dict(data["config"], OfflineConfig)


def _execute(run: OfflineRun, states: SACState, start: int) -> list[Path]:
    print(start_message([s.run_dir for s in run.seeds], run.cfg.tensorboard), flush=True)
    try:
        _run_loop(run, states, start)
    finally:
        run.close()
    return [s.run_dir for s in run.seeds]


# ------------------------------------------------------------------------------ setup


def _resolved_env(cfg: OfflineConfig, dataset: Dataset) -> tuple[str, int | None, int | None]:
    """Env id, action repeat and episode limit: flags, else dataset metadata, else presets."""
    meta = dataset.metadata
    env = cfg.env or meta.get("env_id")
    if not env:
        raise ConfigError(f"dataset {cfg.dataset} names no environment; pass --env ID")
    repeat = cfg.action_repeat or meta.get("action_repeat")
    limit = cfg.max_episode_steps or meta.get("max_episode_steps")
    return str(env), repeat, limit


def as_train_config(cfg: OfflineConfig, dataset: Dataset, rows: int) -> TrainConfig:
    """The resolved TrainConfig of an offline run (written to config.json, so `scalerl evaluate`
    and `scalerl train --init-from` treat offline runs like online ones).

    env_steps is set so that the derived LR decay length is `lr_decay_fraction` of the offline
    updates (one update per "agent step").

    Args:
        cfg: The offline config.
        dataset: Its dataset (metadata may name the env, action repeat and episode limit).
        rows: Number of transitions the dataset yields (`len(to_transitions()["reward"])`).
    """
    env, repeat, limit = _resolved_env(cfg, dataset)
    updates = offline_updates(rows, cfg.agent.batch_size, cfg.epochs)
    preset = suite_preset(env)
    repeat, limit = repeat or preset.action_repeat, limit or preset.max_episode_steps
    train = TrainConfig(
        env=env,
        seed=cfg.seed,
        seeds=cfg.seeds,
        num_seeds=cfg.num_seeds,
        env_steps=updates * repeat,
        utd=1.0,
        warmup_steps=1,
        buffer_capacity=rows,
        action_repeat=repeat,
        max_episode_steps=limit,
        eval_every=cfg.eval_every,
        eval_episodes=cfg.eval_episodes,
        log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every,
        health_every=0,
        name=cfg.name or _default_name(cfg, env),
        run_root=cfg.run_root,
        tensorboard=cfg.tensorboard,
        wandb_project=cfg.wandb_project,
        progress=cfg.progress,
        agent=cfg.agent,
    )
    return resolve(train)


def _default_name(cfg: OfflineConfig, env: str) -> str:
    base = f"{cfg.agent.agent}-offline-{safe_name(env)}-{time.strftime('%Y%m%d-%H%M%S')}"
    return base if len(seed_list(cfg)) > 1 else f"{base}-s{cfg.seed}"


def _open_run(cfg: OfflineConfig, dataset: Dataset, run_dirs: list[Path] | None) -> OfflineRun:
    rows = dataset.to_transitions()
    train_cfg = as_train_config(cfg, dataset, len(rows["reward"]))
    configs = seed_configs(train_cfg)
    dirs = run_dirs or [None] * len(configs)
    if run_dirs:
        configs = [dataclasses.replace(c, name=d.name) for c, d in zip(configs, dirs, strict=True)]
    envs = [_make_eval_env(c) for c in configs]
    obs_dim, action_dim = env_info(envs[0])
    validate_dataset(dataset, obs_dim, action_dim, name=str(cfg.dataset))
    sac = build_agent(train_cfg, obs_dim, action_dim)
    total = train_cfg.env_steps // train_cfg.action_repeat
    ref = reference_range(train_cfg.env, dataset.metadata, cfg.ref_min_score, cfg.ref_max_score)
    info = _dataset_info(cfg, dataset, rows, total, ref)
    opened = zip(configs, dirs, envs, strict=True)
    seeds = [_open_seed(c, d, e, cfg, info, job_group(configs)) for c, d, e in opened]
    buffer = replay_from_numpy(rows, len(rows["reward"]))
    return OfflineRun(cfg, train_cfg, sac, seeds, buffer, total, ref, info)


def _make_eval_env(cfg: TrainConfig) -> gym.Env:
    limits = {"action_repeat": cfg.action_repeat, "max_episode_steps": cfg.max_episode_steps}
    return make_env(cfg.env, cfg.seed, **limits)


def _dataset_info(
    cfg: OfflineConfig, dataset: Dataset, rows: dict, total: int, ref: Any
) -> dict[str, Any]:
    """What offline.json records about the dataset and the budget."""
    returns = dataset.episode_returns()
    return {
        "dataset": str(Path(cfg.dataset).resolve()),
        "dataset_rows": len(dataset),
        "transitions": int(len(rows["reward"])),
        "episodes": int(len(returns)),
        "data_return_mean": float(np.mean(returns)) if len(returns) else None,
        "updates": total,
        "ref_scores": list(ref) if ref else None,
    }


def _open_seed(
    cfg: TrainConfig,
    run_dir: Path | None,
    env: gym.Env,
    offline: OfflineConfig,
    info: dict,
    group: str | None = None,
) -> OfflineSeed:
    """Create (or reopen, on resume) one seed's run directory and logger."""
    resume_step = None
    if run_dir is None:
        run_dir = create_run_dir(cfg)
        write_config(run_dir, cfg)
        one = dataclasses.replace(offline, seed=cfg.seed, seeds=None, num_seeds=1, name=cfg.name)
        one = dataclasses.replace(one, dataset=absolute(one.dataset))
        record = {"config": config_to_dict(one), "dataset": info}
        (run_dir / OFFLINE_NAME).write_text(json.dumps(record, indent=2) + "\n")
    else:
        clean_partial_writes(run_dir)
        resume_step = int(read_checkpoint_meta(run_dir / CHECKPOINT_NAME)["updates"])
    logger = open_logger(cfg, run_dir, resume_step, f"{cfg.agent.agent}-offline", group)
    return OfflineSeed(cfg, run_dir, env, logger)


def _initial_states(run: OfflineRun, dataset: Dataset) -> SACState:
    """Fresh stacked states whose normalisers are warmed up on the dataset."""
    seeds = seed_list(run.train_cfg)
    states = run.sac.init_many(np.stack([jax.random.PRNGKey(s) for s in seeds]))
    return warm_seed_states(run.sac, states, dataset)


def _restore_states(run: OfflineRun) -> tuple[SACState, int]:
    """The stacked states of the seeds' checkpoints and the update count to continue from."""
    template = run.sac.init(jax.random.PRNGKey(0))
    loaded = [load_checkpoint(s.run_dir / CHECKPOINT_NAME, template) for s in run.seeds]
    steps = {int(meta["updates"]) for _, meta in loaded}
    if len(steps) != 1:
        raise CheckpointError("the seeds' checkpoints are at different updates; resume each alone")
    updates = steps.pop()
    evals = updates // run.cfg.eval_every + 1  # at update 0 and every eval_every since
    for seed, (_, meta) in zip(run.seeds, loaded, strict=True):
        seed.acc.load_state(meta["acc"])
        for _ in range(evals * run.cfg.eval_episodes):  # eval envs only draw at reset
            seed.eval_env.reset()
    stack = lambda *xs: np.stack([np.asarray(x) for x in xs])  # noqa: E731
    return jax.tree_util.tree_map(stack, *[s for s, _ in loaded]), updates


# ------------------------------------------------------------------------------ the loop


def make_chunk(sac: ActorCritic, num_updates: int):
    """Jitted `num_updates` SAC updates of every seed on batches from one shared buffer.

    Returns:
        chunk(states, buffer) -> (states, metrics averaged over the updates), states with a
        leading seed axis; the buffer is not batched.
    """

    def one(state: SACState, buffer: ReplayState) -> tuple[SACState, dict]:
        rng, key = jax.random.split(state.rng)
        cfg = sac.cfg
        batches = replay_sample_many(
            buffer, key, num_updates, cfg.batch_size, cfg.n_step, sac.gamma
        )
        return sac.update_many(state.replace(rng=rng), batches)

    return jax.jit(vmap_seeds(one, in_axes=(0, None)), donate_argnums=(0,))


def chunk_size(cfg: OfflineConfig) -> int:
    """Updates per jitted call: divides every cadence, so log/eval points fall on call ends."""
    size = math.gcd(cfg.eval_every, cfg.log_every, cfg.updates_per_call)
    return math.gcd(size, cfg.checkpoint_every) if cfg.checkpoint_every else size


def _run_loop(run: OfflineRun, states: SACState, start: int) -> None:
    cfg, size, fns = run.cfg, chunk_size(run.cfg), {}
    if start == 0:
        run.evaluate(states, 0)
    every = summary_every(run.total, cfg.log_every)
    progress = Progress(run.total, start, "update", cfg.progress, every)
    call = FirstCalls(progress)
    window, u = time.perf_counter(), start
    while u < run.total:
        k = min(size, run.total - u)
        fns.setdefault(k, make_chunk(run.sac, k))
        (states, metrics), compile_s = call(k, fns[k], states, run.buffer)
        window += compile_s
        u += k
        _record(run, states, jax.device_get(metrics), u)
        if u % cfg.log_every == 0 or u == run.total:
            rate = {"perf/updates_per_s": cfg.log_every / (time.perf_counter() - window)}
            _log(run, rate, u)
            window = time.perf_counter()
        _eval_and_checkpoint(run, states, u)
        progress.update(u, (), [s.last_eval for s in run.seeds])
    progress.close()


def _eval_and_checkpoint(run: OfflineRun, states: SACState, u: int) -> None:
    if u % run.cfg.eval_every == 0 or u == run.total:
        run.evaluate(states, u)
        run.checkpoint(states, u)
    elif run.cfg.checkpoint_every and u % run.cfg.checkpoint_every == 0:
        run.checkpoint(states, u)


def _record(run: OfflineRun, states: SACState, metrics: dict, u: int) -> None:
    """Accumulate each seed's metrics; stop on a non-finite loss (state saved first)."""
    for i, seed in enumerate(run.seeds):
        values = {k: v[i] for k, v in metrics.items()}
        bad = nonfinite_loss(values)
        if bad is not None:  # the non-finite row is written, then the run stops
            seed.logger.log({k: float(np.mean(v)) for k, v in values.items()}, u)
            run.checkpoint(states, u, "checkpoint_nan.msgpack")
            raise TrainingError(
                f"{bad} became {values[bad]} by update {u} (seed {seed.cfg.seed}); state "
                f"saved to checkpoint_nan.msgpack; try a lower learning rate or check the data"
            )
        seed.acc.add(values)


def _log(run: OfflineRun, perf: dict[str, float], u: int) -> None:
    for seed in run.seeds:
        seed.logger.log(seed.acc.means() | perf, u)
        seed.acc.reset()
