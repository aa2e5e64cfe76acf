"""PPO on Gymnasium / DMC / MuJoCo ids: a host loop over a Gymnasium vector env.

The host steps `num_envs` environments (in-process or in worker processes) and calls the
jitted `act` per step and the jitted `PPO.learn` once per rollout, so the update is the same
pure function the fused loop scans. Vector envs reset finished episodes in the same step
(Gymnasium's SAME_STEP autoreset), which hands over the final observation for bootstrapping
truncated episodes.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from scalerl.agents.ppo import PPO, PPOState, Trajectory, make_ppo
from scalerl.agents.ppo_net import ActionSpec
from scalerl.config_ppo import PPOTrainConfig, iterations_per_log, num_iterations
from scalerl.envs.make import make_env
from scalerl.envs.suites import suite_preset
from scalerl.errors import EnvError
from scalerl.train.checkpoint import save_checkpoint
from scalerl.train.setup import CHECKPOINT_NAME


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
) -> tuple[PPOState, Trajectory, np.ndarray]:
    """One rollout of `num_steps` vector steps; returns the state (new rng), trajectory, obs."""
    steps: list[tuple] = []
    for _ in range(agent.cfg.num_steps):
        rng, key = jax.random.split(state.rng)
        state = state.replace(rng=rng)
        stored, action, log_prob, value = jax.device_get(act(state, obs, key))
        next_obs, reward, term, trunc, info = venv.step(np.asarray(action))
        reward = np.asarray(reward, np.float32)
        steps.append(
            (obs, stored, log_prob, value, reward, term, trunc, final_observations(next_obs, info))
        )
        tally.add(reward, np.logical_or(term, trunc))
        obs = next_obs
    cols = [np.stack(c) for c in zip(*steps, strict=True)]
    traj = Trajectory(*(jnp.asarray(c, jnp.float32) for c in cols))
    return state, traj, obs


def train_host(cfg: PPOTrainConfig, seed: int) -> list[Path]:
    """One seed of PPO on a Gymnasium id; returns its run directory."""
    from scalerl.train.ppo_run import open_loggers, seed_run_dirs, write_ppo_config

    venv = make_vector_env(cfg, seed)
    space = venv.single_action_space
    if not isinstance(space, gym.spaces.Box):
        raise EnvError(f"{cfg.env}: PPO's Gymnasium loop needs continuous actions; use gymnax:")
    repeat = cfg.action_repeat or suite_preset(cfg.env).action_repeat
    obs_dim = int(venv.single_observation_space.shape[0])
    action = ActionSpec(False, int(space.shape[0]))
    agent = make_ppo(cfg.agent, obs_dim, action, num_iterations(cfg, repeat))
    (run_dir,) = seed_run_dirs(cfg, [seed])
    write_ppo_config(run_dir, dataclasses.replace(cfg, seed=seed, seeds=None, num_seeds=1))
    (logger,) = open_loggers(cfg, [run_dir], [seed])
    try:
        _loop(cfg, agent, venv, seed, repeat, logger, run_dir)
    finally:
        logger.close()
        venv.close()
    return [run_dir]


def _loop(cfg, agent: PPO, venv, seed: int, repeat: int, logger, run_dir: Path) -> None:
    """Rollout, learn, log every `iterations_per_log` rollouts; checkpoint at the end."""
    from scalerl.train.ppo_run import progress_line

    state = agent.init(jax.random.PRNGKey(seed))
    act, learn = jax.jit(agent.act), jax.jit(agent.learn)
    obs, _ = venv.reset(seed=seed)
    n = cfg.agent.num_envs
    tally = Tally(np.zeros(n), np.zeros(n))
    per, total = iterations_per_log(cfg, repeat), num_iterations(cfg, repeat)
    frames = cfg.agent.batch_size * repeat
    t0, sums = time.perf_counter(), {}
    for it in range(1, total + 1):
        state, traj, obs = collect(agent, act, state, venv, obs, tally)
        state, metrics = learn(state, traj)
        for k, v in jax.device_get(metrics).items():
            sums[k] = sums.get(k, 0.0) + float(v)
        if it % per == 0 or it == total:
            count = per if it % per == 0 else it % per
            summary = {k: v / count for k, v in sums.items()} | tally.pop()
            summary["perf/env_steps_per_second"] = count * frames / (time.perf_counter() - t0)
            logger.log(summary, it * frames)
            if cfg.progress:
                print(progress_line(seed, it * frames, summary))
            t0, sums = time.perf_counter(), {}
    meta = {"iteration": total, "env_step": total * frames, "algo": "ppo"}
    save_checkpoint(run_dir / CHECKPOINT_NAME, state, meta)
