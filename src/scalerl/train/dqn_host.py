"""DQN on ale:<Game> and Gymnasium ids: a host loop over a Gymnasium vector env.

The host steps `num_envs` environments (`envs.discrete.make_discrete_env`: Atari preprocessing
for ale: ids) and calls jitted functions for acting, the replay write and `DQN.learn`, the same
pure functions the fused gymnax loop scans. Vector envs reset finished episodes in the same step
(Gymnasium's SAME_STEP autoreset), which hands over the final observation for bootstrapping
truncated episodes. Atari agents learn from clipped rewards while the logged episode returns
(`train/episode_return`, `eval/return`) are unclipped game scores (`info["raw_reward"]`).
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

from scalerl.agents.dqn import DQN, DQNState, make_dqn
from scalerl.buffers.prioritized import Priorities, priorities_init, priorities_write
from scalerl.buffers.vec_replay import (
    Step,
    VecReplay,
    vec_replay_add,
    vec_replay_init,
    vec_replay_sample,
)
from scalerl.config_dqn import DQNTrainConfig, buffer_rows, num_rounds, rounds_per_log
from scalerl.config_dqn import warmup_rounds as warmup
from scalerl.envs.discrete import make_discrete_env
from scalerl.errors import ConfigError, EnvError
from scalerl.train.checkpoint import save_checkpoint
from scalerl.train.dqn_fused import sample_and_learn
from scalerl.train.ppo_host import Tally, final_observations
from scalerl.train.setup import CHECKPOINT_NAME


def make_vector_env(cfg: DQNTrainConfig, seed: int) -> gym.vector.VectorEnv:
    """`num_envs` copies of `cfg.env`, seeds seed, seed+1, ... (SAME_STEP autoreset)."""
    fns = [
        (lambda i=i: make_discrete_env(cfg.env, seed + i, max_episode_steps=cfg.max_episode_steps))
        for i in range(cfg.agent.num_envs)
    ]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def game_scores(reward: np.ndarray, info: dict) -> np.ndarray:
    """Unclipped rewards of a vector step: info["raw_reward"] when the env reports it."""
    if "raw_reward" in info:
        return np.asarray(info["raw_reward"], np.float32)
    return reward


Replay = tuple[VecReplay, Priorities | None]
"""The host loop's replay and its priorities (None with uniform sampling)."""


@dataclasses.dataclass
class HostFns:
    """Jitted pieces of the host loop (built once per run)."""

    act: Any
    add: Any
    learn: Any
    health: Any


def host_fns(agent: DQN) -> HostFns:
    """jit(act with a key split from the state), jit(replay write), jit(sample + learn),
    jit(health diagnostics on a replay batch)."""
    c = agent.cfg

    def act(state: DQNState, obs: jax.Array):
        rng, key = jax.random.split(state.rng)
        n = obs.shape[0]
        action = agent.act(state, obs, key)
        return state.replace(rng=rng, env_steps=state.env_steps + n), action

    def learn(state: DQNState, buffer: VecReplay, pr: Priorities | None):
        return sample_and_learn(agent, state, buffer, pr)

    def add(buffer: VecReplay, pr: Priorities | None, step: Step):
        pr = None if pr is None else priorities_write(pr, buffer.ptr)
        return vec_replay_add(buffer, step), pr

    def health(state: DQNState, buffer: VecReplay, key: jax.Array):
        return agent.health(state, vec_replay_sample(buffer, key, c.batch_size, c.n_step, c.gamma))

    add = jax.jit(add, donate_argnums=(0, 1))
    return HostFns(jax.jit(act), add, jax.jit(learn), jax.jit(health))


def empty_replay(agent: DQN, venv: gym.vector.VectorEnv) -> Replay:
    """A replay shaped like the vector env's observations (uint8 frames stay uint8), and its
    priorities when prioritised."""
    space = venv.single_observation_space
    n, rows = agent.cfg.num_envs, buffer_rows(agent.cfg)
    obs = jnp.zeros((n, *space.shape), space.dtype)
    zeros = jnp.zeros((n,), jnp.float32)
    example = Step(obs, zeros.astype(jnp.int32), zeros, zeros, zeros, obs)
    pr = priorities_init(rows, n) if agent.cfg.prioritized else None
    return vec_replay_init(rows, example), pr


def collect(
    fns: HostFns, state: DQNState, replay: Replay, venv, obs: np.ndarray, tally: Tally, steps: int
) -> tuple[DQNState, Replay, np.ndarray]:
    """`steps` ε-greedy vector steps, each written to the replay and tallied (game scores)."""
    for _ in range(steps):
        state, action = fns.act(state, obs)
        action = np.asarray(action)
        next_obs, reward, term, trunc, info = venv.step(action)
        reward = np.asarray(reward, np.float32)
        step = Step(obs, action, reward, term.astype(np.float32), trunc.astype(np.float32),
                    final_observations(next_obs, info))  # fmt: skip
        replay = fns.add(*replay, jax.tree_util.tree_map(jnp.asarray, step))
        tally.add(game_scores(reward, info), term | trunc)
        obs = next_obs
    return state, replay, obs


def train_host(cfg: DQNTrainConfig, seed: int) -> list[Path]:
    """One seed of DQN on an ale: or Gymnasium id; returns its run directory."""
    from scalerl.train.dqn_run import open_loggers, run_dirs, write_dqn_config

    venv = make_vector_env(cfg, seed)
    space = venv.single_action_space
    if not isinstance(space, gym.spaces.Discrete):
        venv.close()
        raise EnvError(f"{cfg.env} has {type(space).__name__} actions; DQN needs Discrete")
    shape = tuple(venv.single_observation_space.shape)
    if (cfg.agent.torso is not None) != (len(shape) == 3):
        venv.close()
        raise ConfigError(
            f"{cfg.env} observations have shape {shape}: use --torso with frames only "
            "(--preset atari / classic)"
        )
    agent = make_dqn(cfg.agent, shape, int(space.n))
    (run_dir,) = run_dirs(cfg, [seed])
    write_dqn_config(run_dir, dataclasses.replace(cfg, seed=seed, seeds=None, num_seeds=1))
    (logger,) = open_loggers(cfg, [run_dir], [seed])
    try:
        _loop(cfg, agent, venv, seed, logger, run_dir)
    finally:
        logger.close()
        venv.close()
    return [run_dir]


def _loop(cfg: DQNTrainConfig, agent: DQN, venv, seed: int, logger, run_dir: Path) -> None:
    """Rounds of `train_every` vector steps and `utd` updates; log; save the agent state at
    the end (without the replay, which would be gigabytes of Atari frames)."""
    from scalerl.train.dqn_run import progress_line

    fns = host_fns(agent)
    state, replay = agent.init(jax.random.PRNGKey(seed)), empty_replay(agent, venv)
    obs, _ = venv.reset(seed=seed)
    n = cfg.agent.num_envs
    tally = Tally(np.zeros(n), np.zeros(n))
    per, total, warm = rounds_per_log(cfg), num_rounds(cfg), warmup(cfg)
    steps = cfg.agent.steps_per_round
    t0, sums, count = time.perf_counter(), {}, 0
    for r in range(1, total + 1):
        state, replay, obs = collect(fns, state, replay, venv, obs, tally, cfg.agent.train_every)
        if r > warm:
            state, pr, metrics = fns.learn(state, *replay)
            replay = (replay[0], pr)
            for k, v in jax.device_get(metrics).items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += 1
        if r % per == 0 or r == total:
            summary = {k: v / max(count, 1) for k, v in sums.items()} | tally.pop()
            if cfg.health and r > warm:
                diag = fns.health(state, replay[0], jax.random.PRNGKey(r))
                summary |= {k: float(v) for k, v in jax.device_get(diag).items()}
            elapsed = time.perf_counter() - t0
            summary["perf/env_steps_per_second"] = (r % per or per) * steps / elapsed
            logger.log(summary, r * steps)
            if cfg.progress:
                print(progress_line(seed, r * steps, summary))
            t0, sums, count = time.perf_counter(), {}, 0
    meta = {"round": total, "env_step": total * steps, "algo": "dqn"}
    save_checkpoint(run_dir / CHECKPOINT_NAME, {"state": state}, meta)  # no replay: no resume


def resume_host(cfg: DQNTrainConfig, run_dir: Path) -> list[Path]:
    """Host-loop runs cannot resume exactly (emulator states are not checkpointed)."""
    raise ConfigError(
        f"{run_dir}: resume is available for gymnax: DQN runs only; "
        "start the ale:/Gymnasium run again"
    )
