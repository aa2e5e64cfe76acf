"""`scalerl train --algo sac|td3|ddpg` on continuous gymnax and Brax ids: the fused loop's driver.

All seeds train in one process; every jitted call runs a chunk of rounds (`train.ac_fused`) up to
the next point where the host has work: a log, evaluation, checkpoint or health point, a reset
or ReDo due by update count, or the end of the warm-up. Hooks (resets, ReDo, health) are the
host loop's (`train.hooks.Hooks`), called at the chunk end where they fall due, so interventions
behave as in the host loop. Each seed's run directory has the usual layout: config.json,
metrics.csv (+ TensorBoard), the agent checkpoint that `scalerl evaluate` reads, and resume
checkpoints holding the agent state, the environments' states, the replay buffer and the
pending actions, so `scalerl train --resume` continues exactly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

import scalerl
from scalerl.agents.actor_critic import ActorCritic
from scalerl.agents.state import SACState, take_seed
from scalerl.analysis.plots import plot_learning_curve
from scalerl.config import TrainConfig
from scalerl.envs.jax_envs import JaxEnv, make_jax_env
from scalerl.errors import CheckpointError, ConfigError
from scalerl.train import ac_fused
from scalerl.train.checkpoint import save_checkpoint
from scalerl.train.hooks import Hooks, crossed
from scalerl.train.jax_episodes import fused_eval_metrics
from scalerl.train.logging import Logger, MeanAccumulator, diverged, nonfinite_loss
from scalerl.train.profile import Profiler
from scalerl.train.progress import FirstCalls, Progress, start_message, summary_every
from scalerl.train.resume import (
    LoopCounters,
    clean_partial_writes,
    counters_from_meta,
    has_resume_point,
    load_resume,
    restart_note,
    save_resume,
)
from scalerl.train.setup import (
    CHECKPOINT_NAME,
    CURVE_NAME,
    agent_steps,
    build_agent,
    config_to_dict,
    create_run_dir,
    job_group,
    open_logger,
    replay_capacity,
    seed_configs,
    write_config,
)
from scalerl.train.vector import single_env_view, total_agent_steps


def check_fused(cfg: TrainConfig) -> None:
    """Raise ConfigError for options the fused loop of a JAX-native id cannot honour."""
    refused = {
        "action_repeat > 1": cfg.action_repeat not in (None, 1),
        "--async-envs": cfg.async_envs,
        "--preload-dataset": cfg.preload_dataset is not None,
        "--video-every": cfg.video_every > 0,
    }
    for option, given in refused.items():
        if given:
            raise ConfigError(
                f"{option} is not available for {cfg.env}: JAX-native ids step inside the jitted "
                "training loop (record videos afterwards with scalerl evaluate RUN --video)"
            )
    ac_fused.round_shape(cfg.utd, cfg.num_envs)


@dataclass(frozen=True)
class Schedule:
    """Round arithmetic of a run: a round is `steps` vector steps of `num_envs` environments
    (`per_round` agent steps) with `updates` updates at its end."""

    cfg: TrainConfig
    steps: int
    updates: int

    @classmethod
    def of(cls, cfg: TrainConfig) -> Schedule:
        return cls(cfg, *ac_fused.round_shape(cfg.utd, cfg.num_envs))

    @property
    def per_round(self) -> int:
        return self.steps * self.cfg.num_envs

    @property
    def total(self) -> int:
        """Rounds of the run: the budget's agent steps in whole rounds."""
        return total_agent_steps(agent_steps(self.cfg), self.cfg.num_envs) // self.per_round

    @property
    def warm(self) -> int:
        """Rounds acting at random: those whose last agent step is below warmup_steps (the host
        loop's rule)."""
        return min(self.total, max(0, -(-self.cfg.warmup_steps // self.per_round) - 1))

    def updates_after(self, rounds: int) -> int:
        return max(0, rounds - self.warm) * self.updates

    def next_chunk(self, done: int) -> int:
        """Rounds until the next point with host work (see the module docstring)."""
        cfg, per, pc = self.cfg, self.per_round, self.cfg.agent.plasticity
        ends = [self.total] + ([self.warm] if done < self.warm else [])
        for every in (cfg.log_every, cfg.eval_every, cfg.checkpoint_every, cfg.health_every):
            if every > 0:
                ends.append(-(-(done * per // every + 1) * every // per))
        reset_every = pc.reset_every if pc.reset != "none" else 0
        for every in (reset_every, pc.redo_every):
            if every > 0 and done >= self.warm:
                before = self.updates_after(done)
                ends.append(done + -(-((before // every + 1) * every - before) // self.updates))
        return min(e for e in ends if e > done) - done


@dataclass
class FusedRun:
    """All seeds of one job on a JAX-native id: agent, environments, loggers and counters."""

    cfg: TrainConfig
    configs: list[TrainConfig]
    dirs: list[Path]
    env: JaxEnv
    sac: ActorCritic
    loggers: list[Logger] = field(default_factory=list)
    counters: LoopCounters = field(default_factory=LoopCounters)
    accs: list[MeanAccumulator] = field(default_factory=list)
    clock: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.schedule = Schedule.of(self.cfg)
        self.seeds = [c.seed for c in self.configs]
        self.hooks = Hooks(self.cfg, self.sac, self.seeds)
        self.accs = self.accs or [MeanAccumulator() for _ in self.seeds]
        self.last_eval = [math.nan] * len(self.seeds)
        self._eval = ac_fused.make_eval(self.sac, self.env, self.cfg.eval_episodes)
        self._chunks: dict[bool, Any] = {}
        self.profiler = Profiler(self.cfg.profile)
        """Phase timers of --profile ("update" holds the fused environment steps too)."""

    def wall_s(self) -> float:
        return self.counters.wall_s + time.perf_counter() - self.clock

    def run(self, states: SACState, carries: ac_fused.LoopCarry) -> None:
        """Rounds from the counters' step to the end of the budget."""
        sch, per = self.schedule, self.schedule.per_round
        done = self.counters.t // per
        progress = Progress(sch.total * per, self.counters.t, "frame", self.cfg.progress,
                            summary_every(sch.total * per, self.cfg.log_every))  # fmt: skip
        call = FirstCalls(progress)
        window = (time.perf_counter(), self.counters.t, self.counters.updates)
        while done < sch.total:
            n, warm = sch.next_chunk(done), done < sch.warm
            fn = self._chunk(warm)
            with self.profiler.phase("update"):
                out, compile_s = call(warm, fn, states, carries, np.int32(n))
                states, carries, m_sum, s_sum = self.profiler.sync(out)
            self.profiler.move("update", "compile", compile_s)
            window = (window[0] + compile_s, *window[1:])
            states, window = self._after_chunk(states, carries, done, n, (m_sum, s_sum), window)
            done += n
            progress.update(done * per, self._train_returns(), self.last_eval)
        progress.close()

    def _chunk(self, warm: bool) -> Any:
        if warm not in self._chunks:
            sch = self.schedule
            shape = (sch.steps, sch.updates)
            self._chunks[warm] = ac_fused.make_chunk_many(self.sac, self.env, shape, warm,
                                                          self.cfg.num_envs)  # fmt: skip
        return self._chunks[warm]

    def _after_chunk(self, states, carries, done: int, n: int, sums: Any, window: tuple):
        """Accumulate, apply the due hooks, log, evaluate and checkpoint after rounds
        (done, done + n]; returns the states and the (time, step, updates) where the next
        rate window starts."""
        sch, cfg, c = self.schedule, self.cfg, self.counters
        t0, t = done * sch.per_round, (done + n) * sch.per_round
        u0, u1 = sch.updates_after(done), sch.updates_after(done + n)
        with self.profiler.phase("log"):
            self._accumulate(states, jax.device_get(sums), n - max(0, sch.warm - done), t)
        with self.profiler.phase("hooks"):
            states, info = self.hooks.after_updates(states, carries.buffer, u0, u1, t)
            self._log_each(info, t)
            if cfg.health_every and crossed(cfg.health_every, t0, t) and u1 > 0:
                self._log_each(self.hooks.health(states, carries.buffer, t), t)
        c.t, c.updates, c.fresh_draws = t, u1, self.hooks.fresh_draws
        last = done + n == sch.total
        if crossed(cfg.log_every, t0, t) or last:
            now = time.perf_counter()
            dt = max(now - window[0], 1e-9)
            rates = {"perf/env_steps_per_s": (t - window[1]) / dt,
                     "perf/updates_per_s": (u1 - window[2]) / dt}  # fmt: skip
            self._log(rates, t)
            window = (now, t, u1)
        if crossed(cfg.eval_every, t0, t) or last:
            if t >= cfg.warmup_steps or last:
                self.evaluate(states, t)
            self.checkpoint(states, carries)
        elif cfg.checkpoint_every and crossed(cfg.checkpoint_every, t0, t):
            self.checkpoint(states, carries)
        return states, window

    def _accumulate(self, states, sums: Any, learn_rounds: int, t: int) -> None:
        m_sum, s_sum = sums
        for i, acc in enumerate(self.accs):
            if learn_rounds > 0 and m_sum:
                means = {k: float(v[i]) / learn_rounds for k, v in m_sum.items()}
                self._check_losses(states, i, means, t)
                acc.add(means, weight=learn_rounds)
            episodes = float(s_sum["episodes"][i])
            ep = {
                "train/episode_return": float(s_sum["return_sum"][i]) / max(episodes, 1),
                "train/episode_length": float(s_sum["length_sum"][i]) / max(episodes, 1),
            }
            acc.add(ep, weight=episodes)

    def _check_losses(self, states, i: int, means: dict[str, float], t: int) -> None:
        """Stop on a non-finite loss: save seed i's state and name the loss."""
        key = nonfinite_loss(means)
        if key is None:
            return
        self.loggers[i].log(means, t)
        path = self.dirs[i] / "checkpoint_nan.msgpack"
        save_checkpoint(path, single_env_view(take_seed(states, i), self.cfg.num_envs),
                        self._meta(i, t))  # fmt: skip
        raise diverged(key, means[key], t, self.seeds[i], path)

    def _train_returns(self) -> list[float]:
        return [acc.means().get("train/episode_return", math.nan) for acc in self.accs]

    def _log_each(self, per_seed: list[dict[str, float]], t: int) -> None:
        for logger, metrics in zip(self.loggers, per_seed, strict=True):
            if metrics:
                logger.log(metrics, t)

    def _log(self, rates: dict[str, float], t: int) -> None:
        with self.profiler.phase("log"):
            for logger, acc in zip(self.loggers, self.accs, strict=True):
                logger.log(acc.means() | rates, t)
                acc.reset()

    def evaluate(self, states: SACState, t: int) -> None:
        """Deterministic episodes of every seed (keys from the seed and step only)."""
        with self.profiler.phase("eval"):
            results = fused_eval_metrics(self._eval, states, self.seeds, t)
            for i, (logger, metrics) in enumerate(zip(self.loggers, results, strict=True)):
                self.last_eval[i] = metrics["eval/return"]
                logger.log(metrics | {"perf/wall_time_s": self.wall_s()}, t)
                plot_learning_curve(self.dirs[i] / "metrics.csv", self.dirs[i] / CURVE_NAME)

    def _meta(self, i: int, t: int) -> dict[str, Any]:
        return {"agent_step": t, "env_step": t, "config": config_to_dict(self.configs[i]),
                "scalerl_version": scalerl.__version__}  # fmt: skip

    def checkpoint(self, states: SACState, carries: ac_fused.LoopCarry) -> None:
        """Each seed's resume checkpoint (agent, environments, buffer), then its agent one."""
        with self.profiler.phase("checkpoint"):
            c = self.counters
            c.wall_s, self.clock = self.wall_s(), time.perf_counter()
            for i, run_dir in enumerate(self.dirs):
                state = take_seed(states, i)
                tree = {"agent": state, "carry": take_seed(carries, i)}
                meta = self._meta(i, c.t) | {"acc": self.accs[i].state()}
                save_resume(run_dir, tree, c, meta)
                view = single_env_view(state, self.cfg.num_envs)
                save_checkpoint(run_dir / CHECKPOINT_NAME, view, self._meta(i, c.t))

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()
        if self.profiler.enabled:
            for run_dir in self.dirs:
                table = self.profiler.write(run_dir)
            print(f"scalerl: time by phase (all seeds together; {len(self.dirs)} seed(s)):\n"
                  f"{table}")  # fmt: skip


def _build(cfg: TrainConfig) -> tuple[JaxEnv, ActorCritic]:
    env = make_jax_env(cfg.env, cfg.max_episode_steps)
    return env, build_agent(cfg, env.obs_dim, env.num_actions)


def _initial(run: FusedRun) -> tuple[SACState, ac_fused.LoopCarry]:
    cfg = run.cfg
    with run.profiler.phase("setup"):
        states, carries = ac_fused.init_seeds(run.sac, run.env, run.seeds, cfg.num_envs,
                                              replay_capacity(cfg), cfg.init_from)  # fmt: skip
    run.evaluate(states, 0)
    return states, carries


def train_fused(cfg: TrainConfig) -> list[Path]:
    """Train every seed of the resolved `cfg` (a continuous gymnax or Brax id) in the fused loop."""
    check_fused(cfg)
    env, sac = _build(cfg)
    configs = seed_configs(cfg)
    group = job_group(configs)
    dirs = [create_run_dir(c) for c in configs]
    for c, d in zip(configs, dirs, strict=True):
        write_config(d, c)
    run = FusedRun(cfg, configs, dirs, env, sac)
    run.loggers = [open_logger(c, d, None, group=group) for c, d in zip(configs, dirs, strict=True)]
    return _execute(run, lambda: _initial(run))


def resume_fused(cfg: TrainConfig, configs: list[TrainConfig], dirs: list[Path]) -> list[Path]:
    """Continue the seeds `dirs` of one fused job from their newest resume checkpoints."""
    env, sac = _build(cfg)
    run = FusedRun(cfg, configs, list(dirs), env, sac)
    for d in dirs:
        clean_partial_writes(d)
    if not any(has_resume_point(d) or (d / CHECKPOINT_NAME).exists() for d in dirs):
        restart_note(dirs)
        run.loggers = [open_logger(c, d, -1) for c, d in zip(configs, dirs, strict=True)]
        return _execute(run, lambda: _initial(run))
    return _execute(run, lambda: _restore(run))


def _restore(run: FusedRun) -> tuple[SACState, ac_fused.LoopCarry]:
    with run.profiler.phase("setup"):
        states, carries = ac_fused.init_seeds(run.sac, run.env, run.seeds[:1], run.cfg.num_envs,
                                              replay_capacity(run.cfg))  # fmt: skip
        template = {"agent": take_seed(states, 0), "carry": take_seed(carries, 0)}
        loaded = [load_resume(d, lambda meta: template) for d in run.dirs]
    counters = [counters_from_meta(meta) for _, meta in loaded]
    if len({c.t for c in counters}) != 1:
        raise CheckpointError("the seeds' newest resume checkpoints are at different steps; "
                              "resume each run directory on its own")  # fmt: skip
    run.counters = counters[0]
    for acc, (_, meta) in zip(run.accs, loaded, strict=True):
        acc.load_state(meta["acc"])
    run.loggers = [open_logger(c, d, run.counters.t)
                   for c, d in zip(run.configs, run.dirs, strict=True)]  # fmt: skip
    run.hooks.fresh_draws = run.counters.fresh_draws
    stack = lambda *xs: jax.device_put(np.stack([np.asarray(x) for x in xs]))  # noqa: E731
    trees = [tree for tree, _ in loaded]
    return (jax.tree_util.tree_map(stack, *[t["agent"] for t in trees]),
            jax.tree_util.tree_map(stack, *[t["carry"] for t in trees]))  # fmt: skip


def _execute(run: FusedRun, start: Any) -> list[Path]:
    print(start_message(run.dirs, run.cfg.tensorboard), flush=True)
    try:
        run.run(*start())
    finally:
        run.close()
    return run.dirs
