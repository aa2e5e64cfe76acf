"""DQN on ale:<Game> and Gymnasium ids: a host loop over a Gymnasium vector env.

The host steps `num_envs` environments (`envs.discrete.make_discrete_env`: Atari preprocessing
for ale: ids) and calls jitted functions for acting, the replay write and `DQN.learn`, the same
pure functions the fused gymnax loop scans. Vector envs reset finished episodes in the same step
(Gymnasium's SAME_STEP autoreset), which hands over the final observation for bootstrapping
truncated episodes. Atari agents learn from clipped rewards while the logged episode returns
(`train/episode_return`, `eval/return`) are unclipped game scores (`info["raw_reward"]`).
Evaluation episodes run in separate environments (`train.dqn_evaluate`).

Exact resume (the method of PPO's host loop): a resume point holds the agent state, the replay
buffer and every action the vector env received; a resume rebuilds the vector env, resets it
with the run seed and replays the actions, which restores the emulators, observations and
episode tallies exactly.
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
from scalerl.buffers.memory import check_memory
from scalerl.buffers.prioritized import Priorities, priorities_init, priorities_write
from scalerl.buffers.vec_replay import (
    Step,
    VecReplay,
    replay_nbytes,
    vec_replay_add,
    vec_replay_init,
    vec_replay_sample,
)
from scalerl.config_dqn import DQNTrainConfig, buffer_rows, eval_due, num_rounds, rounds_per_log
from scalerl.config_dqn import warmup_rounds as warmup
from scalerl.envs.ale import ALE_PREFIX
from scalerl.envs.discrete import make_discrete_env
from scalerl.errors import ConfigError, EnvError
from scalerl.train.checkpoint import load_checkpoint, read_checkpoint_meta, save_checkpoint
from scalerl.train.dqn_evaluate import eval_key, eval_seeds, host_episodes, make_eval_envs
from scalerl.train.dqn_fused import sample_and_learn
from scalerl.train.ppo_host import Tally, final_observations
from scalerl.train.resume import (
    checkpoint_path,
    clean_partial_writes,
    list_checkpoints,
    prune_resume,
    restart_note,
)
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
    act_eval: Any


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
    return HostFns(jax.jit(act), add, jax.jit(learn), jax.jit(health), jax.jit(agent.act_eval))


def replay_layout(agent: DQN, venv: gym.vector.VectorEnv, env_id: str) -> tuple[Step, int]:
    """(one vector step shaped like the vector env's observations, frames deduplicated: the
    Atari stack depth with `dedup_frames` on ale: ids, else 0)."""
    space = venv.single_observation_space
    n = agent.cfg.num_envs
    obs = jnp.zeros((n, *space.shape), space.dtype)
    zeros = jnp.zeros((n,), jnp.float32)
    example = Step(obs, zeros.astype(jnp.int32), zeros, zeros, zeros, obs)
    stack = space.shape[-1] if agent.cfg.dedup_frames and env_id.startswith(ALE_PREFIX) else 0
    return example, stack


def empty_replay(agent: DQN, venv: gym.vector.VectorEnv, env_id: str) -> Replay:
    """An empty replay (uint8 frames stay uint8; Atari stacks deduplicated with
    `dedup_frames`), and its priorities when prioritised."""
    rows = buffer_rows(agent.cfg)
    pr = priorities_init(rows, agent.cfg.num_envs) if agent.cfg.prioritized else None
    return vec_replay_init(rows, *replay_layout(agent, venv, env_id)), pr


def collect(
    fns: HostFns, state: DQNState, replay: Replay, venv, obs: np.ndarray, tally: Tally, steps: int
) -> tuple[DQNState, Replay, np.ndarray, np.ndarray]:
    """`steps` ε-greedy vector steps, each written to the replay and tallied (game scores);
    also returns the actions (steps, N) the vector env received."""
    sent = []
    for _ in range(steps):
        state, action = fns.act(state, obs)
        action = np.asarray(action)
        next_obs, reward, term, trunc, info = venv.step(action)
        reward = np.asarray(reward, np.float32)
        step = Step(obs, action, reward, term.astype(np.float32), trunc.astype(np.float32),
                    final_observations(next_obs, info))  # fmt: skip
        replay = fns.add(*replay, jax.tree_util.tree_map(jnp.asarray, step))
        tally.add(game_scores(reward, info), term | trunc)
        sent.append(action)
        obs = next_obs
    return state, replay, obs, np.stack(sent)


def replay_actions(venv, seed: int, actions: np.ndarray, tally: Tally) -> np.ndarray:
    """Bring a freshly made vector env to where `actions` (steps, N) left it: reset with
    `seed`, step every logged action (the running episode tallies follow); returns the
    observations."""
    obs, _ = venv.reset(seed=seed)
    for action in actions:
        obs, reward, term, trunc, info = venv.step(action)
        tally.add(game_scores(np.asarray(reward, np.float32), info), term | trunc)
    tally.returns, tally.lengths = [], []
    return obs


def host_agent(cfg: DQNTrainConfig, obs_space: gym.Space, action_space: gym.Space) -> DQN:
    """The DQN agent of a host-loop run, after checking the spaces.

    Raises:
        EnvError: non-Discrete actions. ConfigError: --torso does not match the observations.
    """
    if not isinstance(action_space, gym.spaces.Discrete):
        raise EnvError(f"{cfg.env} has {type(action_space).__name__} actions; DQN needs Discrete")
    shape = tuple(obs_space.shape)
    if (cfg.agent.torso is not None) != (len(shape) == 3):
        raise ConfigError(
            f"{cfg.env} observations have shape {shape}: use --torso with frames only "
            "(--preset atari / classic)"
        )
    return make_dqn(cfg.agent, shape, int(action_space.n))


@dataclasses.dataclass
class Position:
    """Where the loop is: agent state, replay, observations, episode tallies, rounds done, and
    the log of every action the vector env received (rows of completed rounds are filled)."""

    state: DQNState
    replay: Replay
    obs: np.ndarray
    tally: Tally
    round: int
    actions: np.ndarray


@dataclasses.dataclass
class HostRun:
    """One seed's host loop: config (seed set), run directory, vector env and agent."""

    cfg: DQNTrainConfig
    run_dir: Path
    venv: gym.vector.VectorEnv
    agent: DQN

    @classmethod
    def open(cls, cfg: DQNTrainConfig, run_dir: Path | None) -> HostRun:
        """The vector env of `cfg.seed` and its agent (a bad id or option, or a replay bigger
        than the available memory, fails here)."""
        venv = make_vector_env(cfg, cfg.seed)
        try:
            agent = host_agent(cfg, venv.single_observation_space, venv.single_action_space)
            nbytes = replay_nbytes(buffer_rows(cfg.agent), *replay_layout(agent, venv, cfg.env))
            check_memory(nbytes, "--buffer-capacity")
        except Exception:
            venv.close()
            raise
        return cls(cfg, run_dir, venv, agent)

    def fresh(self, allocate: bool = True) -> Position:
        """Step 0: initial agent state, empty replay, seeded reset, empty action log; without
        `allocate` the replay is only its shapes (a template for loading a resume point)."""
        cfg, n = self.cfg, self.cfg.agent.num_envs
        state = self.agent.init(jax.random.PRNGKey(cfg.seed))
        obs, _ = self.venv.reset(seed=cfg.seed)
        log = np.zeros((num_rounds(cfg) * cfg.agent.train_every, n), np.int32)
        tally = Tally(np.zeros(n), np.zeros(n))
        make = lambda: empty_replay(self.agent, self.venv, cfg.env)  # noqa: E731
        replay = make() if allocate else jax.eval_shape(make)
        return Position(state, replay, obs, tally, 0, log)

    def resume(self) -> None:
        """Continue from the newest resume point (from step 0 when there is none)."""
        clean_partial_writes(self.run_dir)
        points = list_checkpoints(self.run_dir)
        if not points:
            restart_note([self.run_dir])
            self.run(self.fresh(), -1)
            return
        pos = self.fresh(allocate=False)  # the loaded replay is the only copy in memory
        meta = read_checkpoint_meta(points[0])
        done = meta["round"] * self.cfg.agent.train_every
        tree, _ = load_checkpoint(points[0], resume_tree(pos, done))
        pos.actions[:done] = np.asarray(tree["actions"])
        pos.obs = replay_actions(self.venv, self.cfg.seed, pos.actions[:done], pos.tally)
        pos.state = jax.tree_util.tree_map(jnp.asarray, tree["state"])
        buffer = jax.tree_util.tree_map(jnp.asarray, tree["buffer"])
        pr = tree.get("priorities")
        pos.replay = (buffer, None if pr is None else jax.tree_util.tree_map(jnp.asarray, pr))
        pos.round = int(meta["round"])
        self.run(pos, int(meta["env_step"]))

    def run(self, pos: Position, resume_step: int | None) -> None:
        """Rounds pos.round + 1 .. num_rounds, then close everything."""
        from scalerl.train.dqn_run import open_loggers

        cfg = self.cfg
        (logger,) = open_loggers(cfg, [self.run_dir], [cfg.seed], resume_step)
        eval_envs = make_eval_envs(cfg, cfg.seed) if cfg.eval_every else []
        try:
            HostLoop(self, logger, eval_envs).run(pos)
        finally:
            logger.close()
            self.venv.close()
            for env in eval_envs:
                env.close()


def resume_tree(pos: Position, steps: int) -> dict:
    """What a resume point holds: agent state, replay (+ priorities), first `steps` actions."""
    tree = {"state": pos.state, "buffer": pos.replay[0], "actions": pos.actions[:steps]}
    if pos.replay[1] is not None:
        tree["priorities"] = pos.replay[1]
    return tree


@dataclasses.dataclass
class HostLoop:
    """Rounds of `train_every` vector steps and `utd` updates; log every `rounds_per_log`
    rounds (with health diagnostics and, when due, an evaluation) and checkpoint at log
    points."""

    host: HostRun
    logger: Any
    eval_envs: list

    def run(self, pos: Position) -> None:
        cfg, fns = self.host.cfg, host_fns(self.host.agent)
        per, total, warm = rounds_per_log(cfg), num_rounds(cfg), warmup(cfg)
        steps, every = cfg.agent.train_every, cfg.checkpoint_every
        last_log = last_ckpt = pos.round
        t0, sums, count = time.perf_counter(), {}, 0
        while pos.round < total:
            pos.state, pos.replay, pos.obs, sent = collect(
                fns, pos.state, pos.replay, self.host.venv, pos.obs, pos.tally, steps
            )
            r = pos.round = pos.round + 1
            pos.actions[(r - 1) * steps : r * steps] = sent
            if r > warm:
                pos.state, pr, metrics = fns.learn(pos.state, *pos.replay)
                pos.replay = (pos.replay[0], pr)
                for k, v in jax.device_get(metrics).items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
            if r % per and r != total:
                continue
            summary = {k: v / max(count, 1) for k, v in sums.items()}
            summary |= self._episodes(pos, fns, last_log)
            if cfg.health and r > warm:
                diag = fns.health(pos.state, pos.replay[0], jax.random.PRNGKey(r))
                summary |= {k: float(v) for k, v in jax.device_get(diag).items()}
            summary["perf/env_steps_per_second"] = (
                (r - last_log) * cfg.agent.steps_per_round / (time.perf_counter() - t0)
            )
            self._log(summary, r)
            if r == total or (every and (r - last_ckpt) * cfg.agent.steps_per_round >= every):
                self._checkpoint(pos)
                last_ckpt = r
            last_log, t0, sums, count = r, time.perf_counter(), {}, 0

    def _episodes(self, pos: Position, fns: HostFns, last_log: int) -> dict[str, float]:
        """Training episode statistics, and an evaluation when one is due (eval/...); without
        evaluation, eval/return repeats the training return."""
        cfg, out = self.host.cfg, pos.tally.pop()
        if not self.eval_envs:
            return out
        out.pop("eval/return", None)
        step, before = pos.round * cfg.agent.steps_per_round, last_log * cfg.agent.steps_per_round
        if eval_due(cfg, before, step, pos.round == num_rounds(cfg)):
            seeds, key = eval_seeds(cfg.seed, step, cfg.eval_episodes), eval_key(cfg.seed, step)
            out |= host_episodes(fns.act_eval, pos.state, self.eval_envs, seeds, key).metrics()
        return out

    def _log(self, summary: dict[str, float], r: int) -> None:
        from scalerl.train.dqn_run import progress_line

        env_step = r * self.host.cfg.agent.steps_per_round
        self.logger.log(summary, env_step)
        if self.host.cfg.progress:
            print(progress_line(self.host.cfg.seed, env_step, summary))

    def _checkpoint(self, pos: Position) -> None:
        """Resume point (state, replay, actions so far), then the agent checkpoint."""
        run_dir, cfg = self.host.run_dir, self.host.cfg
        done = pos.round * cfg.agent.train_every
        tree = jax.device_get(resume_tree(pos, done))
        meta = {"round": pos.round, "env_step": pos.round * cfg.agent.steps_per_round}
        meta["algo"] = "dqn"
        save_checkpoint(checkpoint_path(run_dir, meta["env_step"]), tree, meta)
        prune_resume(run_dir)
        save_checkpoint(run_dir / CHECKPOINT_NAME, {"state": tree["state"]}, meta)


def train_host(cfg: DQNTrainConfig, seed: int) -> list[Path]:
    """One seed of DQN on an ale: or Gymnasium id; returns its run directory."""
    from scalerl.train.dqn_run import run_dirs, write_dqn_config

    cfg = dataclasses.replace(cfg, seed=seed, seeds=None, num_seeds=1)
    host = HostRun.open(cfg, None)
    try:
        (run_dir,) = run_dirs(cfg, [seed])
        write_dqn_config(run_dir, cfg)
    except Exception:
        host.venv.close()
        raise
    host.run_dir = run_dir
    host.run(host.fresh(), None)
    return [run_dir]


def resume_host(cfg: DQNTrainConfig, run_dir: Path) -> list[Path]:
    """Continue a host-loop run exactly from its newest resume point."""
    HostRun.open(cfg, Path(run_dir)).resume()
    return [Path(run_dir)]
