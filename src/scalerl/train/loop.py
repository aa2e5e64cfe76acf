"""The online training loop: the only place where env, buffer, agent and logger meet.

Any number of seeds train in one process: the agent states and replay buffers carry a leading
seed axis and one jitted, vmapped call per agent step updates all of them (one seed is the
special case N = 1). Each seed has its own environments, RNG stream and run directory, in the
same format as a single run.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
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
from scalerl.buffers.replay import Transition, replay_init
from scalerl.config import TrainConfig, seed_list
from scalerl.datasets import Dataset
from scalerl.envs import env_info, make_env, make_vector_env
from scalerl.envs.jax_envs import is_jax_env
from scalerl.errors import CheckpointError, ScalerlError
from scalerl.offline.finetune import initial_state, load_preload, preload_buffer, preload_rows
from scalerl.train.ac_fused_run import resume_fused, train_fused
from scalerl.train.checkpoint import save_checkpoint
from scalerl.train.compile_cache import enable_compilation_cache
from scalerl.train.evaluate import evaluate_batch, make_policy
from scalerl.train.hooks import Hooks, crossed
from scalerl.train.logging import Logger, MeanAccumulator, diverged, nonfinite_loss
from scalerl.train.profile import Profiler
from scalerl.train.progress import FirstCalls, Progress, start_message, summary_every
from scalerl.train.resume import (
    ActionLog,
    LoopCounters,
    clean_partial_writes,
    counters_from_meta,
    has_resume_point,
    load_resume,
    restart_note,
    resume_template,
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
    read_config,
    replay_capacity,
    resolve,
    seed_configs,
    write_config,
)
from scalerl.train.step import StepCache, UpdateSchedule
from scalerl.train.vector import (
    final_observations,
    single_env_view,
    total_agent_steps,
    with_env_axis,
)
from scalerl.train.video import check_rendering, maybe_record, seed_policy


@dataclass
class Window:
    """Counters since the last log point, for perf/ metrics."""

    start: float = field(default_factory=time.perf_counter)
    steps: int = 0
    updates: int = 0

    def exclude(self, seconds: float) -> None:
        """Leave `seconds` (e.g. a compilation) out of the rates."""
        self.start += seconds

    def rates(self, action_repeat: int) -> dict[str, float]:
        dt = max(time.perf_counter() - self.start, 1e-9)
        return {
            "perf/updates_per_s": self.updates / dt,
            "perf/env_steps_per_s": self.steps * action_repeat / dt,
        }


@dataclass
class SeedRun:
    """Host-side pieces of one seed: its config, run directory, environments and logger.

    With `num_envs` > 1, `env` is a vector env and the episode counters are arrays (one entry
    per environment).
    """

    cfg: TrainConfig
    run_dir: Path
    env: Any
    eval_env: gym.Env
    logger: Logger | None
    actions: ActionLog
    acc: MeanAccumulator = field(default_factory=MeanAccumulator)
    episode_return: Any = 0.0
    episode_length: Any = 0
    last_eval: float = math.nan
    last_train: float = math.nan
    """Return of the last finished training episode (for the progress display)."""

    def __post_init__(self) -> None:
        if self.cfg.num_envs > 1:
            self.episode_return = np.zeros(self.cfg.num_envs)
            self.episode_length = np.zeros(self.cfg.num_envs, np.int64)

    def step(self, obs: np.ndarray, action: np.ndarray) -> tuple[tuple, np.ndarray]:
        """Step the training env(s); (transition row, observation(s) to act on next)."""
        if self.cfg.num_envs > 1:
            return self._step_vector(obs, action)
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        row = (obs, action, reward, terminated, truncated, next_obs)
        self.episode_return += float(reward)
        self.episode_length += 1
        if terminated or truncated:
            self.end_episode()
            next_obs, _ = self.env.reset()
        return row, next_obs

    def _step_vector(self, obs: np.ndarray, action: np.ndarray) -> tuple[tuple, np.ndarray]:
        """Step every environment; an ended episode's row ends in its true last observation."""
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        row = (obs, action, reward, terminated, truncated, final_observations(next_obs, info))
        self.episode_return += reward
        self.episode_length += 1
        for i in np.flatnonzero(np.logical_or(terminated, truncated)):
            self.end_episode(i)
        return row, next_obs

    def replay(self, actions: np.ndarray) -> np.ndarray:
        """Bring a freshly made env to the state after `actions`; the obs to act on next."""
        obs, _ = self.env.reset()
        for action in actions:
            _, obs = self.step(obs, action)
        return obs

    def end_episode(self, i: int | None = None) -> None:
        """Log the finished episode (of environment `i` with several environments)."""
        ret, length = self.episode_return, self.episode_length
        if i is not None:
            ret, length = float(ret[i]), int(length[i])
        self.last_train = ret
        self.acc.add({"train/episode_return": ret, "train/episode_length": length})
        if i is None:
            self.episode_return, self.episode_length = 0.0, 0
        else:
            self.episode_return[i], self.episode_length[i] = 0.0, 0

    def meta(self, agent_step: int) -> dict[str, Any]:
        return {
            "agent_step": agent_step,
            "env_step": agent_step * self.cfg.action_repeat,
            "config": config_to_dict(self.cfg),
            "scalerl_version": scalerl.__version__,
        }

    def checkpoint(self, state: SACState, agent_step: int, name: str = CHECKPOINT_NAME) -> None:
        state = single_env_view(state, self.cfg.num_envs)
        save_checkpoint(self.run_dir / name, state, self.meta(agent_step))

    def save_resume(self, tree: dict[str, Any], counters: LoopCounters) -> None:
        """Full-state checkpoint of this seed (see `train.resume`)."""
        tree = tree | {"actions": self.actions.upto(counters.t)}
        episode = [np.asarray(self.episode_return).tolist(),
                   np.asarray(self.episode_length).tolist()]  # fmt: skip
        extra = {"episode": episode, "acc": self.acc.state()}
        save_resume(self.run_dir, tree, counters, self.meta(counters.t) | extra)

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()
        self.env.close()
        self.eval_env.close()


@dataclass
class Run:
    """All seeds of one training job and the agent's static parts (the state stays a pytree)."""

    cfg: TrainConfig
    sac: ActorCritic
    seeds: list[SeedRun]
    policy: Any
    counters: LoopCounters = field(default_factory=LoopCounters)
    preload: Dataset | None = None
    """The --preload-dataset (validated against the env), or None."""
    profiler: Profiler = field(default_factory=lambda: Profiler(False))
    """Phase timers of --profile (inactive otherwise)."""
    clock: float = field(default_factory=time.perf_counter)
    """When this process's part of the run started (`wall_s` counts from it)."""

    def wall_s(self) -> float:
        """Wall-clock seconds of the run so far: earlier processes (up to the checkpoint this one
        resumed from) and this one."""
        return self.counters.wall_s + time.perf_counter() - self.clock

    def env_step(self, agent_step: int) -> int:
        return agent_step * self.cfg.action_repeat

    def evaluate(self, states: SACState, agent_step: int) -> None:
        with self.profiler.phase("eval"):
            self._evaluate(states, agent_step)

    def _evaluate(self, states: SACState, agent_step: int) -> None:
        envs = [s.eval_env for s in self.seeds]
        results = evaluate_batch(envs, self.policy, states, self.cfg.eval_episodes)
        self.counters.eval_resets += self.cfg.eval_episodes
        wall = {"perf/wall_time_s": self.wall_s()}
        for seed_run, result in zip(self.seeds, results, strict=True):
            metrics = result.metrics() | wall
            seed_run.last_eval = metrics["eval/return"]
            seed_run.logger.log(metrics, self.env_step(agent_step))
            plot_learning_curve(seed_run.run_dir / "metrics.csv", seed_run.run_dir / CURVE_NAME)

    def record(self, states: SACState, agent_step: int) -> None:
        """One deterministic episode per seed to <run>/videos/ (every `video_every` steps)."""
        with self.profiler.phase("video"):
            self._record(states, agent_step)

    def _record(self, states: SACState, agent_step: int) -> None:
        for i, seed_run in enumerate(self.seeds):
            policy = seed_policy(self.policy, states, i)
            cfg = seed_run.cfg
            limits = {
                "action_repeat": cfg.action_repeat,
                "max_episode_steps": cfg.max_episode_steps,
            }
            maybe_record(seed_run.run_dir, cfg.env, cfg.seed, policy, agent_step,
                         cfg.video_every, **limits)  # fmt: skip

    def checkpoint(self, states: SACState, buffers: Any, actions: np.ndarray) -> None:
        """The agent checkpoint (for evaluate) and the full resume checkpoint of every seed."""
        with self.profiler.phase("checkpoint"):
            self._checkpoint(states, buffers, actions)

    def _checkpoint(self, states: SACState, buffers: Any, actions: np.ndarray) -> None:
        self.counters.wall_s, self.clock = self.wall_s(), time.perf_counter()
        for i, seed_run in enumerate(self.seeds):  # resume point first: see `_never_saved`
            state = take_seed(states, i)
            tree = {"agent": state, "buffer": take_seed(buffers, i), "next_action": actions[i]}
            seed_run.save_resume(tree, self.counters)
            seed_run.checkpoint(state, self.counters.t)


def train(cfg: TrainConfig) -> Path:
    """Train one agent online; returns its run directory (see docs/outputs.md)."""
    return train_seeds(dataclasses.replace(cfg, seeds=None, num_seeds=1))[0]


def train_seeds(cfg: TrainConfig) -> list[Path]:
    """Train every seed of `seed_list(cfg)` in one process; returns their run directories.

    Raises:
        ScalerlError: invalid config or env id (before any work), non-finite env values, or a
            non-finite loss (after saving that seed's state to checkpoint_nan.msgpack).
    """
    cfg = resolve(cfg)
    enable_compilation_cache()
    if is_jax_env(cfg.env):
        return train_fused(cfg)
    run, first = _start_fresh(cfg)
    return _execute(run, lambda: first)


def _start_fresh(cfg: TrainConfig) -> tuple[Run, tuple]:
    """Open a new run and its initial state; a bad input found on the way (a dataset or
    checkpoint to start from, a taken name) removes the directories this call created."""
    created: list[Path] = []
    run = None
    try:
        run = _open_run(cfg, [None] * len(seed_list(cfg)), created)
        with run.profiler.phase("setup"):
            return run, _initial(run)
    except ScalerlError:
        for seed_run in run.seeds if run else []:
            seed_run.close()
        for run_dir in created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def resume(run_dirs: list[Path]) -> list[Path]:
    """Continue interrupted runs from their newest usable resume checkpoints (exactly).

    Several directories must be the seeds of one `--seeds` job (same config but the seed). A
    run killed before its first checkpoint restarts from step 0 (the same result, exactly);
    temporary files of a checkpoint write cut short are deleted first.

    Raises:
        ScalerlError: not a run directory, or no usable resume checkpoint.
    """
    cfgs = [read_config(d) for d in run_dirs]
    seeds = ",".join(str(c.seed) for c in cfgs)
    cfg = dataclasses.replace(cfgs[0], seeds=seeds if len(cfgs) > 1 else None, num_seeds=1)
    enable_compilation_cache()
    if is_jax_env(cfg.env):
        return resume_fused(cfg, cfgs, list(run_dirs))
    run = _open_run(cfg, list(run_dirs))
    return _execute(run, lambda: _setup(run, _restore))


def _setup(run: Run, start: Any) -> Any:
    with run.profiler.phase("setup"):
        return start(run)


def _execute(run: Run, start: Any) -> list[Path]:
    print(start_message([s.run_dir for s in run.seeds], run.cfg.tensorboard), flush=True)
    try:
        _run_loop(run, *start())
        if run.profiler.enabled:
            _write_profile(run)
    finally:
        for seed_run in run.seeds:
            seed_run.close()
    return [s.run_dir for s in run.seeds]


def _write_profile(run: Run) -> None:
    """--profile: the phase table into every seed's run directory, and on stdout."""
    for seed_run in run.seeds:
        table = run.profiler.write(seed_run.run_dir)
    print(f"scalerl: time by phase (all seeds together; {len(run.seeds)} seed(s)):\n{table}")


def _open_seed(
    cfg: TrainConfig, run_dir: Path | None, group: str | None = None, created: list | None = None
) -> SeedRun:
    """Environments, run directory and logger of one seed.

    With `run_dir` (resume), the logger is opened by `_restore_seed` once the step to resume
    from is known.
    """
    kwargs = {"action_repeat": cfg.action_repeat, "max_episode_steps": cfg.max_episode_steps}
    if cfg.num_envs == 1:
        env = make_env(cfg.env, cfg.seed, **kwargs)
    else:
        env = make_vector_env(cfg.env, cfg.seed, cfg.num_envs, **kwargs,
                              asynchronous=cfg.async_envs)  # fmt: skip
    eval_env = make_env(cfg.env, cfg.seed, **kwargs)
    logger = None
    if run_dir is None:
        run_dir = create_run_dir(cfg)
        if created is not None:
            created.append(run_dir)
        write_config(run_dir, cfg)
        logger = open_logger(cfg, run_dir, None, group=group)
    else:
        clean_partial_writes(run_dir)
    steps = agent_steps(cfg) // cfg.num_envs
    actions = ActionLog(steps, env_info(env)[1], cfg.num_envs)
    return SeedRun(cfg, run_dir, env, eval_env, logger, actions)


def _open_run(cfg: TrainConfig, run_dirs: list[Path | None], created: list | None = None) -> Run:
    """Every seed's envs, directory and logger, the agent and the checked preload dataset.

    Args:
        cfg: The resolved config of the job.
        run_dirs: Existing run directories to resume (one per seed), or None to create them.
        created: Collects the directories created here.
    """
    if cfg.video_every:
        check_rendering(cfg.env)  # fail now, not hours into the run
    configs = seed_configs(cfg)
    group = job_group(configs)
    opened = zip(configs, run_dirs, strict=True)
    seeds = [_open_seed(c, d, group, created) for c, d in opened]
    obs_dim, action_dim = env_info(seeds[0].env)
    sac = build_agent(cfg, obs_dim, action_dim)
    preload = load_preload(cfg, obs_dim, action_dim)
    profiler = Profiler(cfg.profile)
    return Run(cfg, sac, seeds, make_policy(sac), preload=preload, profiler=profiler)


def _initial(run: Run) -> tuple[SACState, Any, np.ndarray, np.ndarray]:
    """Stacked states and buffers, first observations, first (uniform random) actions."""
    sac, seeds = run.sac, seed_list(run.cfg)
    states = sac.init_many(np.stack([jax.random.PRNGKey(s) for s in seeds]))
    states = initial_state(sac, states, run.cfg.init_from, run.preload)
    states = with_env_axis(states, run.cfg.num_envs)
    one = preload_buffer(replay_init(_capacity(run), sac.obs_dim, sac.action_dim), run.preload)
    buffers = jax.tree_util.tree_map(lambda x: np.stack([np.asarray(x)] * len(seeds)), one)
    obs = np.stack([s.env.reset()[0] for s in run.seeds])
    rngs = [np.random.default_rng(s) for s in seeds]
    shape = sac.action_dim if run.cfg.num_envs == 1 else (run.cfg.num_envs, sac.action_dim)
    actions = np.stack([r.uniform(-1.0, 1.0, shape) for r in rngs])
    run.evaluate(states, 0)
    return states, buffers, obs, actions


def _capacity(run: Run) -> int:
    return replay_capacity(run.cfg, preload_rows(run.preload))


def _restore(run: Run) -> tuple[SACState, Any, np.ndarray, np.ndarray]:
    """The stacked state of the newest resume checkpoints; envs replayed to that point."""
    if _never_saved(run):
        return _restart(run)
    template = resume_template(run.sac, _capacity(run))
    loaded = [load_resume(s.run_dir, template) for s in run.seeds]
    counters = [counters_from_meta(meta) for _, meta in loaded]
    if len({c.t for c in counters}) != 1:
        raise CheckpointError("the seeds' newest resume checkpoints are at different steps; "
                              "resume each run directory on its own")  # fmt: skip
    run.counters = counters[0]
    obs = [
        _restore_seed(run, s, tree, meta) for s, (tree, meta) in zip(run.seeds, loaded, strict=True)
    ]
    trees = [tree for tree, _ in loaded]
    stack = lambda *xs: np.stack([np.asarray(x) for x in xs])  # noqa: E731
    states = jax.tree_util.tree_map(stack, *[t["agent"] for t in trees])
    buffers = jax.tree_util.tree_map(stack, *[t["buffer"] for t in trees])
    actions = np.stack([np.asarray(t["next_action"]) for t in trees])
    return states, buffers, np.stack(obs), actions


def _never_saved(run: Run) -> bool:
    """Whether no seed wrote any checkpoint (a kill before the first one).

    A run with an agent checkpoint but no resume point (written by an older scalerl, or its
    resume/ deleted) is not restarted: that would drop its metrics.
    """
    written = [has_resume_point(s.run_dir) or (s.run_dir / CHECKPOINT_NAME).exists()
               for s in run.seeds]  # fmt: skip
    return not any(written)


def _restart(run: Run) -> tuple[SACState, Any, np.ndarray, np.ndarray]:
    """A run killed before its first resume checkpoint starts again from step 0.

    Everything is a function of the seed, so this reaches the uninterrupted run's result
    exactly; what the killed process logged is dropped.
    """
    restart_note([seed_run.run_dir for seed_run in run.seeds])
    for seed_run in run.seeds:
        seed_run.logger = open_logger(seed_run.cfg, seed_run.run_dir, -1)
    return _initial(run)


def _restore_seed(run: Run, seed_run: SeedRun, tree: dict, meta: dict) -> np.ndarray:
    """Replay one seed's envs and restore its episode counters and metric accumulator."""
    obs = seed_run.replay(np.asarray(tree["actions"]))
    seed_run.actions.actions[: len(tree["actions"])] = np.asarray(tree["actions"])
    for _ in range(run.counters.eval_resets):
        seed_run.eval_env.reset()
    ret, length = meta["episode"]
    if run.cfg.num_envs > 1:
        ret, length = np.asarray(ret, np.float64), np.asarray(length, np.int64)
    seed_run.episode_return, seed_run.episode_length = ret, length
    seed_run.acc.load_state(meta["acc"])
    seed_run.logger = open_logger(seed_run.cfg, seed_run.run_dir, int(meta["env_step"]))
    return obs


def _env_step(run: Run, obs: np.ndarray, actions: np.ndarray) -> tuple[Transition, np.ndarray]:
    """Step every seed's env; the transitions (with final observations) and the obs to act on."""
    rows, act_obs = [], []
    for seed_run, o, a in zip(run.seeds, obs, actions, strict=True):
        seed_run.actions.record(run.counters.t + run.cfg.num_envs, a)
        row, next_obs = seed_run.step(o, a)
        rows.append(row)
        act_obs.append(next_obs)
    cols = [np.asarray(c, np.float32) for c in zip(*rows, strict=True)]
    return Transition(*cols), np.stack(act_obs).astype(np.float32)


def _progress(run: Run) -> Progress:
    """The run's progress display, in environment frames (the unit of --env-steps)."""
    cfg, repeat = run.cfg, run.cfg.action_repeat
    every = summary_every(agent_steps(cfg), cfg.log_every) * repeat
    total = total_agent_steps(agent_steps(cfg), cfg.num_envs) * repeat
    return Progress(total, run.counters.t * repeat, "frame", cfg.progress, every)


def _show(run: Run, progress: Progress, t: int) -> None:
    train = [s.last_train for s in run.seeds]
    progress.update(run.env_step(t), train, [s.last_eval for s in run.seeds])


def _run_loop(run: Run, states: SACState, buffers: Any, obs: np.ndarray, actions: Any) -> None:
    """Loop steps of `num_envs` agent steps each until the budget; `t` counts agent steps."""
    cfg, c, n = run.cfg, run.counters, run.cfg.num_envs
    total = total_agent_steps(agent_steps(cfg), n)
    schedule, window = UpdateSchedule(cfg.utd * n), Window()
    cache = StepCache(run.sac, n)
    schedule.counter = c.utd_counter
    hooks = Hooks(cfg, run.sac, seed_list(cfg))
    hooks.fresh_draws = c.fresh_draws
    progress = _progress(run)
    call, prof = FirstCalls(progress), run.profiler
    for t in range(c.t + n, total + 1, n):
        with prof.phase("env"):
            transitions, obs = _env_step(run, obs, actions)
        warm = t < cfg.warmup_steps
        num_updates = 0 if warm else schedule.next()
        step_fn = cache.get(num_updates, random_action=warm)
        with prof.phase("update"):
            out, compile_s = call((num_updates, warm), step_fn, states, buffers, transitions, obs)
            states, buffers, actions, metrics = prof.sync(out)
        prof.move("update", "compile", compile_s)
        window.exclude(compile_s)
        with prof.phase("log"):
            actions, metrics = jax.device_get((actions, metrics))
            _record(run, states, metrics, t)
        with prof.phase("hooks"):
            after = c.updates + num_updates
            states, info = prof.sync(hooks.after_updates(states, buffers, c.updates, after, t))
        _log_each(run, info, t)
        c.t, c.updates = t, c.updates + num_updates
        c.utd_counter, c.fresh_draws = schedule.counter, hooks.fresh_draws
        if cfg.health_every and crossed(cfg.health_every, t - n, t) and c.updates > 0:
            with prof.phase("hooks"):
                health = hooks.health(states, buffers, t)
            _log_each(run, health, t)
        window.steps, window.updates = window.steps + n, window.updates + num_updates
        if crossed(cfg.log_every, t - n, t):
            with prof.phase("log"):
                _log(run, window.rates(cfg.action_repeat), t)
            window = Window()
        _periodic(run, (states, buffers, actions), t, total)
        if crossed(100, t - n, t) or t == total:
            with prof.phase("log"):
                _show(run, progress, t)
    progress.close()


def _periodic(run: Run, loop_state: tuple, t: int, total: int) -> None:
    """Videos, evaluations and checkpoints due at agent step `t` (those whose interval the loop
    step that ended there crossed)."""
    cfg, n, (states, buffers, actions) = run.cfg, run.cfg.num_envs, loop_state
    due = lambda every: crossed(every, t - n, t)  # noqa: E731
    if cfg.video_every and due(cfg.video_every):
        run.record(states, t)
    if due(cfg.eval_every) or t == total:
        if evaluation_due(t, total, cfg.warmup_steps):
            run.evaluate(states, t)
        run.checkpoint(states, buffers, actions)
    elif cfg.checkpoint_every and due(cfg.checkpoint_every):
        run.checkpoint(states, buffers, actions)


def evaluation_due(t: int, total: int, warmup_steps: int) -> bool:
    """Whether an evaluation point at agent step t (a multiple of eval_every, or the last step)
    evaluates: not during the random warm-up (t < warmup_steps), as the official SimbaV2 loop,
    which evaluates at step 0 and then only once updates have begun; the last step always."""
    return t >= warmup_steps or t == total


def _record(run: Run, states: SACState, metrics: dict[str, np.ndarray], t: int) -> None:
    """Accumulate each seed's update metrics; stop on a non-finite loss."""
    for i, seed_run in enumerate(run.seeds):
        seed_metrics = {k: v[i] for k, v in metrics.items()}
        _check_losses(seed_run, states, i, seed_metrics, t)
        seed_run.acc.add(seed_metrics)


def _log_each(run: Run, per_seed: list[dict[str, float]], t: int) -> None:
    with run.profiler.phase("log"):
        for seed_run, metrics in zip(run.seeds, per_seed, strict=True):
            if metrics:
                seed_run.logger.log(metrics, run.env_step(t))


def _log(run: Run, perf: dict[str, float], t: int) -> None:
    for seed_run in run.seeds:
        seed_run.logger.log(seed_run.acc.means() | perf, run.env_step(t))
        seed_run.acc.reset()


def _check_losses(
    seed_run: SeedRun, states: SACState, i: int, metrics: dict[str, Any], t: int
) -> None:
    """Stop on a non-finite loss: save seed i's state and name the loss (no silent divergence)."""
    key = nonfinite_loss(metrics)
    if key is not None:
        if seed_run.logger is not None:  # the non-finite row is written, then the run stops
            row = {k: float(np.mean(v)) for k, v in metrics.items() if not k.startswith("_")}
            seed_run.logger.log(row, t * seed_run.cfg.action_repeat)
        seed_run.checkpoint(take_seed(states, i), t, "checkpoint_nan.msgpack")
        saved = seed_run.run_dir / "checkpoint_nan.msgpack"
        raise diverged(key, metrics[key], t * seed_run.cfg.action_repeat, seed_run.cfg.seed, saved)
