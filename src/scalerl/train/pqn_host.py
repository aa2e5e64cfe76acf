"""PQN on ALE ids (`ale:Pong`): a host loop over a Gymnasium vector of `envs.ale` environments.

The host steps `num_envs` preprocessed Atari environments (uint8 84x84x4 frames, Machado et
al. 2018 protocol, rewards clipped to their sign for training) and calls the jitted `act`
per step and the jitted `PQN.learn` once per rollout, the same pure update the fused loop
scans. Frames stay uint8 on the host and on the device (the conv torso scales them). The
budget and the logs count agent steps x frame skip (emulator frames); logged returns are
game scores (`info["raw_reward"]`). Health metrics (`health/q/...`) of the last rollout before
its update at every log point, as the fused loop logs them.

Several seeds run one after the other in one process, sharing one compilation, each exactly as
if alone. Exact resume works as in PPO's host loop (`train.ppo_host`): a resume point stores the
agent state and every action the vector env received; a resume replays the actions into a
freshly seeded vector env (ALE is deterministic given its seed and actions, sticky actions
included), which restores the emulators, frame stacks and episode tallies.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from scalerl.agents.ppo import Trajectory
from scalerl.agents.pqn import PQN, PQNState, make_pqn
from scalerl.config_pqn import PQNConfig, PQNTrainConfig, resolve_torso
from scalerl.envs.ale import AtariOptions, make_ale_env
from scalerl.train.ppo_host import (
    Compiled,
    HostLoop,
    HostRun,
    Position,
    Tally,
    final_observations,
)


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


class RawScores:
    """A vector env whose step reward is the game score (`info["raw_reward"]`), so PPO's
    `replay` restores episode tallies of game scores."""

    def __init__(self, venv: Any) -> None:
        self.venv = venv

    def reset(self, **kwargs: Any) -> tuple:
        return self.venv.reset(**kwargs)

    def step(self, action: np.ndarray) -> tuple:
        obs, _, term, trunc, info = self.venv.step(action)
        return obs, info["raw_reward"], term, trunc, info


@functools.lru_cache(maxsize=4)
def compiled(
    cfg: PQNConfig, shape: tuple[int, ...], num_actions: int, iterations: int, torso: str
) -> Compiled:
    """The agent of these settings with its jitted act, learn and health, shared by the seeds
    of a process (so they compile once)."""
    agent = make_pqn(cfg, shape, num_actions, iterations, torso)
    return Compiled(agent, jax.jit(agent.act), jax.jit(agent.learn), jax.jit(agent.health))


def ale_agent(cfg: PQNTrainConfig, env: Any) -> Compiled:
    """The compiled agent of a run on `env` (one Atari env or a vector of them); without a
    torso the network sees the flattened frames."""
    obs_space = getattr(env, "single_observation_space", env.observation_space)
    act_space = getattr(env, "single_action_space", env.action_space)
    torso = resolve_torso(cfg.agent.torso, cfg.env)
    shape = tuple(obs_space.shape) if torso != "none" else (int(np.prod(obs_space.shape)),)
    total, _ = host_iterations(cfg)
    return compiled(cfg.agent, shape, int(act_space.n), total, torso)


# ----------------------------------------------------------------------------- entry points


def train_ale(cfg: PQNTrainConfig, seeds: list[int]) -> list[Path]:
    """PQN on an `ale:` id for every seed, one after the other; returns the run directories."""
    from scalerl.train.pqn_run import seed_run_dirs, write_seed_configs

    dirs = seed_run_dirs(cfg, seeds)
    for d, one in zip(dirs, write_seed_configs(cfg, dirs, seeds), strict=True):
        AleRun.open(one, d).start()
    return dirs


def resume_ale(run_dirs: list[Path]) -> list[Path]:
    """Continue ALE runs exactly from their newest resume points, one after the other (a run
    killed before its first one starts again from step 0)."""
    from scalerl.train.pqn_run import read_pqn_config

    for d in run_dirs:
        AleRun.open(read_pqn_config(d), Path(d)).resume()
    return list(run_dirs)


@dataclasses.dataclass
class AleRun(HostRun):
    """One seed's host loop: vector env, compiled agent, run directory. Resume is PPO's
    (`HostRun.resume`), with the replay tallying game scores."""

    jitted: Compiled | None = None

    @classmethod
    def open(cls, cfg: PQNTrainConfig, run_dir: Path) -> AleRun:
        venv = make_ale_vector(cfg.env, cfg.agent.num_envs, cfg.seed)
        jitted = ale_agent(cfg, venv)
        return cls(cfg, run_dir, venv, jitted.agent, AtariOptions().frame_skip, jitted)

    def _fresh(self) -> Position:
        seed, n = self.cfg.seed, self.cfg.agent.num_envs
        state = self.agent.init(jax.random.PRNGKey(seed))
        obs, _ = self.venv.reset(seed=seed)
        total, _ = host_iterations(self.cfg)
        actions = np.zeros((total * self.cfg.agent.num_steps, n), np.int32)
        return Position(state, obs, Tally(np.zeros(n), np.zeros(n)), 0, actions)

    def resume(self) -> None:
        """Continue from the newest resume point (agent state from the checkpoint, vector env
        by replaying the action log)."""
        self.venv = RawScores(self.venv)  # `_run` unwraps it after the replay
        super().resume()

    def _run(self, pos: Position, resume_step: int | None) -> None:
        from scalerl.train.pqn_run import open_loggers

        if isinstance(self.venv, RawScores):
            self.venv = self.venv.venv
        (logger,) = open_loggers(self.cfg, [self.run_dir], [self.cfg.seed], resume_step)
        try:
            AleLoop(self, logger).run(pos)
        finally:
            logger.close()
            self.venv.close()


class AleLoop(HostLoop):
    """PPO's host loop (rollout, learn, log, resume points) with PQN's rollouts and update."""

    def schedule(self) -> tuple[int, int]:
        """(rollouts of the run, rollouts per log point)."""
        return host_iterations(self.host.cfg)

    def update_fns(self) -> tuple[Any, Any]:
        """The jitted (learn, health) of the run's agent."""
        return self.host.jitted.learn, self.host.jitted.health

    def collect(self, pos: Position) -> tuple[Any, Any, np.ndarray]:
        """One rollout from `pos`: (state, trajectory, the actions sent)."""
        jitted = self.host.jitted
        state, traj, pos.obs = collect(jitted.agent, jitted.act, pos.state, self.host.venv,
                                       pos.obs, pos.tally)  # fmt: skip
        return state, traj, np.asarray(traj.action)
