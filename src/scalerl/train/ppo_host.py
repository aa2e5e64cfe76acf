"""PPO on Gymnasium / DMC / MuJoCo ids: a host loop over a Gymnasium vector env.

The host steps `num_envs` environments (in-process or in worker processes) and calls the
jitted `act` per step and the jitted `PPO.learn` once per rollout, so the update is the same
pure function the fused loop scans. Vector envs reset finished episodes in the same step
(Gymnasium's SAME_STEP autoreset), which hands over the final observation for bootstrapping
truncated episodes.

Several seeds run one after the other in one process, each exactly as if alone. Exact resume:
a vector env's simulator state cannot be saved, but simulators are deterministic given their
seed and actions, so a resume point stores every action the vector env received and a resume
replays them into a freshly seeded vector env (the off-policy loop's method), which restores the
environments, observations and episode tallies exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from scalerl.agents.ppo import PPO, PPOState, Trajectory, make_ppo
from scalerl.agents.ppo_net import ActionSpec
from scalerl.config_ppo import PPOConfig, PPOTrainConfig, iterations_per_log, num_iterations
from scalerl.envs.make import make_env
from scalerl.envs.suites import suite_preset
from scalerl.errors import EnvError
from scalerl.train.ppo_checkpoint import load_point, save_point, shared_step


def make_vector_env(cfg: PPOTrainConfig, seed: int) -> gym.vector.VectorEnv:
    """`num_envs` copies of `cfg.env` (scalerl's wrapper stack), seeds seed, seed+1, ..."""
    kwargs = {"action_repeat": cfg.action_repeat, "max_episode_steps": cfg.max_episode_steps}
    fns = [(lambda i=i: make_env(cfg.env, seed + i, **kwargs)) for i in range(cfg.agent.num_envs)]
    mode = gym.vector.AutoresetMode.SAME_STEP
    if cfg.vector == "async":
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)


def final_observations(next_obs: np.ndarray, info: dict) -> np.ndarray:
    """The observation each action reached: `final_obs` where an episode ended, else next_obs."""
    out = np.array(next_obs, copy=True)
    if "final_obs" in info:
        for i in np.flatnonzero(info["_final_obs"]):
            out[i] = info["final_obs"][i]
    return out


@dataclasses.dataclass
class Tally:
    """Per-env running episode returns/lengths and the finished episodes since the last log."""

    ret: np.ndarray
    length: np.ndarray
    returns: list[float] = dataclasses.field(default_factory=list)
    lengths: list[float] = dataclasses.field(default_factory=list)

    def add(self, reward: np.ndarray, done: np.ndarray) -> None:
        self.ret += reward
        self.length += 1
        for i in np.flatnonzero(done):
            self.returns.append(float(self.ret[i]))
            self.lengths.append(float(self.length[i]))
        self.ret[done] = 0.0
        self.length[done] = 0

    def pop(self) -> dict[str, float]:
        out = {"train/episodes": float(len(self.returns))}
        if self.returns:
            out["train/episode_return"] = float(np.mean(self.returns))
            out["train/episode_length"] = float(np.mean(self.lengths))
            out["eval/return"] = out["train/episode_return"]  # see ppo_fused.summarize
        self.returns, self.lengths = [], []
        return out


def collect(
    agent: PPO, act: Any, state: PPOState, venv: Any, obs: np.ndarray, tally: Tally
) -> tuple[PPOState, Trajectory, np.ndarray, np.ndarray]:
    """One rollout of `num_steps` vector steps.

    Returns:
        (state with its new rng, trajectory, next observations, the environment actions
        (T, N, A) the vector env received).
    """
    steps: list[tuple] = []
    sent: list[np.ndarray] = []
    for _ in range(agent.cfg.num_steps):
        rng, key = jax.random.split(state.rng)
        state = state.replace(rng=rng)
        stored, action, log_prob, value = jax.device_get(act(state, obs, key))
        action = np.asarray(action)
        next_obs, reward, term, trunc, info = venv.step(action)
        reward = np.asarray(reward, np.float32)
        steps.append(
            (obs, stored, log_prob, value, reward, term, trunc, final_observations(next_obs, info))
        )
        sent.append(action)
        tally.add(reward, np.logical_or(term, trunc))
        obs = next_obs
    cols = [np.stack(c) for c in zip(*steps, strict=True)]
    traj = Trajectory(*(jnp.asarray(c, jnp.float32) for c in cols))
    return state, traj, obs, np.stack(sent)


def replay(venv: Any, seed: int, actions: np.ndarray, tally: Tally) -> np.ndarray:
    """Bring a freshly made vector env to where `actions` (steps, N, A) left it: reset with
    `seed`, step every logged action (the episode tallies follow); returns the observations."""
    obs, _ = venv.reset(seed=seed)
    for action in actions:
        obs, reward, term, trunc, _ = venv.step(action)
        tally.add(np.asarray(reward, np.float32), np.logical_or(term, trunc))
    tally.returns, tally.lengths = [], []
    return obs


# ----------------------------------------------------------------------------- entry points


def train_host(cfg: PPOTrainConfig, seeds: int | list[int]) -> list[Path]:
    """PPO on a Gymnasium id for every seed, one after the other; returns the run directories.

    Each seed's run equals a single-seed run of that seed bit for bit (nothing is shared).
    """
    from scalerl.train.ppo_run import seed_config, seed_run_dirs, write_ppo_config

    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    probe = HostRun.open(dataclasses.replace(cfg, seed=seeds[0]), None)  # bad ids fail early
    probe.close()
    dirs = seed_run_dirs(cfg, seeds)
    for d, s in zip(dirs, seeds, strict=True):
        write_ppo_config(d, seed_config(cfg, s, d))
    for d, s in zip(dirs, seeds, strict=True):
        HostRun.open(seed_config(cfg, s, d), d).start()
    return dirs


def resume_host(run_dirs: list[Path]) -> list[Path]:
    """Continue host-loop runs exactly from their newest resume points, one after the other
    (a run killed before its first one starts again from step 0)."""
    from scalerl.train.ppo_run import read_ppo_config

    for d in run_dirs:
        HostRun.open(read_ppo_config(d), Path(d)).resume()
    return list(run_dirs)


@dataclasses.dataclass(frozen=True)
class Compiled:
    """An agent and its jitted act, learn and health functions."""

    agent: PPO
    act: Any
    learn: Any
    health: Any


@functools.lru_cache(maxsize=4)
def compiled(cfg: PPOConfig, obs_dim: int, action: ActionSpec, iterations: int) -> Compiled:
    """The agent of these settings with its jitted functions, shared by the seeds of a process
    (so they compile once)."""
    agent = make_ppo(cfg, obs_dim, action, iterations)
    return Compiled(agent, jax.jit(agent.act), jax.jit(agent.learn), jax.jit(agent.health))


def agent_iterations(host: HostRun) -> int:
    """Iterations of the run (the learning-rate schedule's horizon)."""
    return num_iterations(host.cfg, host.repeat)


@dataclasses.dataclass
class Position:
    """Where the loop is: agent state, observations, episode tallies, rollouts done, the log of
    every action the vector env received (rows of completed rollouts are filled)."""

    state: PPOState
    obs: np.ndarray
    tally: Tally
    iteration: int
    actions: np.ndarray


@dataclasses.dataclass
class HostRun:
    """One seed's host loop: vector env, agent, run directory."""

    cfg: PPOTrainConfig
    run_dir: Path | None
    venv: Any
    agent: PPO
    repeat: int

    @classmethod
    def open(cls, cfg: PPOTrainConfig, run_dir: Path | None) -> HostRun:
        """The vector env of `cfg.seed` and its agent.

        Raises:
            EnvError: unknown id or discrete actions.
        """
        venv = make_vector_env(cfg, cfg.seed)
        space = venv.single_action_space
        if not isinstance(space, gym.spaces.Box):
            venv.close()
            raise EnvError(f"{cfg.env}: PPO's Gymnasium loop needs continuous actions; use gymnax:")
        repeat = cfg.action_repeat or suite_preset(cfg.env).action_repeat
        obs_dim = int(venv.single_observation_space.shape[0])
        action = ActionSpec(False, int(space.shape[0]))
        agent = compiled(cfg.agent, obs_dim, action, num_iterations(cfg, repeat)).agent
        return cls(cfg, run_dir, venv, agent, repeat)

    def close(self) -> None:
        self.venv.close()

    @property
    def frames(self) -> int:
        """Environment frames per rollout (action repeat included)."""
        return self.cfg.agent.batch_size * self.repeat

    def _empty_log(self) -> np.ndarray:
        total = num_iterations(self.cfg, self.repeat) * self.cfg.agent.num_steps
        shape = (total, self.cfg.agent.num_envs, self.agent.action.n)
        return np.zeros(shape, np.float32)

    def _fresh(self) -> Position:
        seed, n = self.cfg.seed, self.cfg.agent.num_envs
        state = self.agent.init(jax.random.PRNGKey(seed))
        obs, _ = self.venv.reset(seed=seed)
        return Position(state, obs, Tally(np.zeros(n), np.zeros(n)), 0, self._empty_log())

    def start(self) -> None:
        """Train from scratch."""
        self._run(self._fresh(), None)

    def resume(self) -> None:
        """Continue from the newest resume point: agent state from the checkpoint, vector env
        by replaying the action log into freshly seeded environments."""
        from scalerl.train.resume import restart_note

        step = shared_step([self.run_dir])
        if step is None:
            restart_note([self.run_dir])
            self._run(self._fresh(), -1)
            return
        pos = self._fresh()
        steps = self.cfg.agent.num_steps

        def template(meta: dict) -> dict:
            return {"state": pos.state, "actions": pos.actions[: meta["iteration"] * steps]}

        tree, meta = load_point(self.run_dir, step, template)
        done = np.asarray(tree["actions"])
        pos.actions[: len(done)] = done
        pos.obs = replay(self.venv, self.cfg.seed, done, pos.tally)
        pos.state = jax.tree_util.tree_map(jnp.asarray, tree["state"])
        pos.iteration = int(meta["iteration"])
        self._run(pos, int(meta["env_step"]))

    def _run(self, pos: Position, resume_step: int | None) -> None:
        from scalerl.train.ppo_run import open_loggers

        (logger,) = open_loggers(self.cfg, [self.run_dir], [self.cfg.seed], resume_step)
        try:
            HostLoop(self, logger).run(pos)
        finally:
            logger.close()
            self.close()


@dataclasses.dataclass
class HostLoop:
    """Rollout, learn; log every `iterations_per_log` rollouts (with health diagnostics of the
    last rollout before its update) and checkpoint at log points."""

    host: HostRun
    logger: Any
    jitted: Any = None

    def run(self, pos: Position) -> None:
        """Iterations pos.iteration + 1 .. the run's last."""
        cfg, frames = self.host.cfg, self.host.frames
        total, per = self.schedule()
        learn, health = self.update_fns()
        steps, last_ckpt = cfg.agent.num_steps, pos.iteration
        t0, sums, count = time.perf_counter(), {}, 0
        while pos.iteration < total:
            state, traj, sent = self.collect(pos)
            it = pos.iteration + 1
            pos.actions[(it - 1) * steps : it * steps] = sent
            log_now = it % per == 0 or it == total
            diag = jax.device_get(health(state, traj)) if log_now and cfg.health else {}
            pos.state, metrics = learn(state, traj)
            pos.iteration, count = it, count + 1
            for k, v in jax.device_get(metrics).items():
                sums[k] = sums.get(k, 0.0) + float(v)
            if not log_now:
                continue
            summary = {k: v / count for k, v in sums.items()} | pos.tally.pop()
            summary |= {k: float(v) for k, v in diag.items()}
            summary["perf/env_steps_per_second"] = count * frames / (time.perf_counter() - t0)
            self._log(summary, it)
            every = cfg.checkpoint_every
            if it == total or (every and (it - last_ckpt) * frames >= every):
                self._checkpoint(pos)
                last_ckpt = it
            t0, sums, count = time.perf_counter(), {}, 0

    def schedule(self) -> tuple[int, int]:
        """(iterations of the run, iterations per log point)."""
        cfg, repeat = self.host.cfg, self.host.repeat
        return num_iterations(cfg, repeat), iterations_per_log(cfg, repeat)

    def update_fns(self) -> tuple[Any, Any]:
        """The jitted (learn, health) of the run's agent."""
        agent = self.host.agent
        self.jitted = compiled(self.host.cfg.agent, agent.obs_dim, agent.action,
                               agent_iterations(self.host))  # fmt: skip
        return self.jitted.learn, self.jitted.health

    def collect(self, pos: Position) -> tuple[Any, Any, np.ndarray]:
        """One rollout from `pos` (advances its observations and tally): (state, trajectory,
        the actions the environments received)."""
        state, traj, pos.obs, sent = collect(self.host.agent, self.jitted.act, pos.state,
                                             self.host.venv, pos.obs, pos.tally)  # fmt: skip
        return state, traj, sent

    def _log(self, summary: dict[str, float], iteration: int) -> None:
        from scalerl.train.ppo_run import progress_line

        env_step = iteration * self.host.frames
        self.logger.log(summary, env_step)
        if self.host.cfg.progress:
            print(progress_line(self.host.cfg.seed, env_step, summary))

    def _checkpoint(self, pos: Position) -> None:
        """Resume point {"state", "actions" so far} and agent checkpoint."""
        state = jax.device_get(pos.state)
        steps = pos.iteration * self.host.cfg.agent.num_steps
        tree = {"state": state, "actions": pos.actions[:steps]}
        meta = {"iteration": pos.iteration, "env_step": pos.iteration * self.host.frames}
        save_point(self.host.run_dir, state, tree, meta | {"algo": self.host.cfg.algo})
