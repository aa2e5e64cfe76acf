"""PQN on ALE ids (`ale:Pong`): a host loop over a Gymnasium vector of `envs.ale` environments.

The host steps `num_envs` preprocessed Atari environments (uint8 84x84x4 frames, Machado et
al. 2018 protocol, rewards clipped to their sign for training) and calls the jitted `act`
per step and the jitted `PQN.learn` once per rollout, the same pure update the fused loop
scans. Frames stay uint8 on the host and on the device (the conv torso scales them). The
budget and the logs count agent steps x frame skip (emulator frames); logged returns are
game scores (`info["raw_reward"]`). One seed per process; checkpoint at the end (no resume).
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

from scalerl.agents.ppo import Trajectory
from scalerl.agents.pqn import PQN, PQNState, make_pqn
from scalerl.config_pqn import PQNTrainConfig, resolve_torso
from scalerl.envs.ale import AtariOptions, make_ale_env
from scalerl.train.checkpoint import save_checkpoint
from scalerl.train.ppo_host import Tally, final_observations
from scalerl.train.setup import CHECKPOINT_NAME, CONFIG_NAME, config_to_dict


def make_ale_vector(env_id: str, num_envs: int, seed: int) -> gym.vector.VectorEnv:
    """`num_envs` preprocessed Atari envs (seeds seed, seed+1, ...), reset in the same step."""
    fns = [(lambda i=i: make_ale_env(env_id, seed + i)) for i in range(num_envs)]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def frames_per_iteration(cfg: PQNTrainConfig) -> int:
    """Emulator frames of one rollout: num_envs x num_steps x frame skip."""
    return cfg.agent.batch_size * AtariOptions().frame_skip


def host_iterations(cfg: PQNTrainConfig) -> tuple[int, int]:
    """(rollouts of the run, rollouts between log points), each at least 1."""
    per_frames = frames_per_iteration(cfg)
    total = max(1, cfg.env_steps // per_frames)
    return total, max(1, min(-(-cfg.log_every // per_frames), total))


def collect(
    agent: PQN, act: Any, state: PQNState, venv: Any, obs: np.ndarray, tally: Tally
) -> tuple[PQNState, Trajectory, np.ndarray]:
    """One rollout of `num_steps` vector steps (uint8 frames kept), tallying game scores."""
    steps: list[tuple] = []
    for _ in range(agent.cfg.num_steps):
        rng, key = jax.random.split(state.rng)
        state = state.replace(rng=rng)
        action, _, _, _ = jax.device_get(act(state, obs.reshape(len(obs), -1), key))
        next_obs, reward, term, trunc, info = venv.step(np.asarray(action))
        final = final_observations(next_obs, info)
        steps.append((obs, action, np.asarray(reward, np.float32), term, trunc, final))
        tally.add(np.asarray(info["raw_reward"], np.float64), np.logical_or(term, trunc))
        obs = next_obs
    o, a, r, te, tr, nx = (np.stack(c) for c in zip(*steps, strict=True))
    t, n = r.shape
    zeros = jnp.zeros((t, n), jnp.float32)
    traj = Trajectory(
        jnp.asarray(o.reshape(t, n, -1)), jnp.asarray(a), zeros, zeros, jnp.asarray(r),
        jnp.asarray(te), jnp.asarray(tr), jnp.asarray(nx.reshape(t, n, -1)),
    )  # fmt: skip
    return state, traj, obs


def train_ale(cfg: PQNTrainConfig, seed: int) -> list[Path]:
    """One seed of PQN on an `ale:` id; returns its run directory."""
    import json

    from scalerl.train.pqn_run import open_loggers, seed_run_dirs

    venv = make_ale_vector(cfg.env, cfg.agent.num_envs, seed)
    shape = tuple(venv.single_observation_space.shape)
    total, _ = host_iterations(cfg)
    torso = resolve_torso(cfg.agent.torso, cfg.env)
    agent = make_pqn(cfg.agent, shape, int(venv.single_action_space.n), total, torso)
    (run_dir,) = seed_run_dirs(cfg, [seed])
    one = dataclasses.replace(cfg, seed=seed, seeds=None, num_seeds=1)
    (run_dir / CONFIG_NAME).write_text(json.dumps(config_to_dict(one), indent=2) + "\n")
    (logger,) = open_loggers(cfg, [run_dir], [seed])
    try:
        _loop(cfg, agent, venv, seed, logger, run_dir)
    finally:
        logger.close()
        venv.close()
    return [run_dir]


def _loop(cfg: PQNTrainConfig, agent: PQN, venv: Any, seed: int, logger, run_dir: Path) -> None:
    """Rollout, learn, log every few rollouts; checkpoint at the end."""
    from scalerl.train.ppo_run import progress_line

    state = agent.init(jax.random.PRNGKey(seed))
    act, learn = jax.jit(agent.act), jax.jit(agent.learn)
    obs, _ = venv.reset(seed=seed)
    n = cfg.agent.num_envs
    tally = Tally(np.zeros(n), np.zeros(n))
    total, per = host_iterations(cfg)
    frames = frames_per_iteration(cfg)
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
    meta = {"iteration": total, "env_step": total * frames, "algo": "pqn"}
    save_checkpoint(run_dir / CHECKPOINT_NAME, state, meta)
