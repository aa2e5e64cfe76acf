"""DQN throughput: environment steps per second of the fused gymnax loop and the ALE host loop.

Prints one JSON line per figure:

* `fused`: `scalerl.train.dqn_fused.make_chunk_many` on a gymnax id (MinAtar preset: one
  update per step, batch 32), all seeds vmapped, `--rounds` rounds per call;
* `host`: the Atari host loop (`scalerl.train.dqn_host`, atari preset: Nature torso, one update
  every 4 agent steps) on `ale:Pong`, one seed, `--host-rounds` rounds.

The replay is filled before timing; compilation and one warm-up call are excluded. Rates count
agent steps (Atari: 4 emulator frames each).

    python benchmarks/dqn_throughput.py                                        # full sizes
    python benchmarks/dqn_throughput.py --seeds 1 --rounds 8 --host-rounds 4   # smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import jax
import numpy as np

from scalerl.agents.dqn import make_dqn
from scalerl.config_dqn import DQNTrainConfig, dqn_preset
from scalerl.envs.jax_envs import make_jax_env
from scalerl.train import dqn_fused, dqn_host
from scalerl.train.ppo_host import Tally


def fused_rate(env_id: str, seeds: int, rounds: int) -> float:
    """Agent steps/s of the fused loop on a gymnax id, all seeds vmapped."""
    env = make_jax_env(env_id)
    cfg = dataclasses.replace(dqn_preset("minatar"), buffer_capacity=10_000)
    agent = make_dqn(cfg, dqn_fused.frame_shape(env), env.num_actions)
    states, carries = dqn_fused.init_seeds(agent, env, list(range(seeds)))
    warm = dqn_fused.make_chunk_many(agent, env, cfg.batch_size, learn=False)
    states, carries, _ = warm(states, carries)
    chunk = dqn_fused.make_chunk_many(agent, env, rounds, learn=True)
    states, carries, (m, _) = chunk(states, carries)  # compile + warm-up
    jax.block_until_ready(m)
    start = time.perf_counter()
    states, carries, (m, _) = chunk(states, carries)
    jax.block_until_ready(m)
    return rounds * cfg.steps_per_round * seeds / (time.perf_counter() - start)


def host_rate(env_id: str, rounds: int) -> float:
    """Agent steps/s of the host loop (one seed), acting, replay writes and updates."""
    agent_cfg = dataclasses.replace(dqn_preset("atari"), buffer_capacity=10_000)
    cfg = DQNTrainConfig(env=env_id, agent=agent_cfg)
    venv = dqn_host.make_vector_env(cfg, 0)
    shape = tuple(venv.single_observation_space.shape)
    agent = make_dqn(agent_cfg, shape, int(venv.single_action_space.n))
    fns = dqn_host.host_fns(agent)
    state, replay = agent.init(jax.random.PRNGKey(0)), dqn_host.empty_replay(agent, venv)
    obs, _ = venv.reset(seed=0)
    tally = Tally(np.zeros(1), np.zeros(1))
    state, replay, obs, _ = dqn_host.collect(fns, state, replay, venv, obs, tally, 64)
    state, _, m = fns.learn(state, *replay)  # compile + warm-up
    jax.block_until_ready(m)
    start = time.perf_counter()
    for _ in range(rounds):
        state, replay, obs, _ = dqn_host.collect(fns, state, replay, venv, obs, tally, 4)
        state, _, m = fns.learn(state, *replay)
    jax.block_until_ready(m)
    venv.close()
    return rounds * agent_cfg.steps_per_round / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="gymnax:Breakout-MinAtar")
    parser.add_argument("--ale", default="ale:Pong")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--rounds", type=int, default=2000, help="timed fused rounds")
    parser.add_argument("--host-rounds", type=int, default=500, help="timed host rounds")
    args = parser.parse_args()
    backend = jax.default_backend()
    for seeds in args.seeds:
        rate = fused_rate(args.env, seeds, args.rounds)
        print(json.dumps({
            "bench": "dqn_throughput", "loop": "fused", "env": args.env, "seeds": seeds,
            "rounds": args.rounds, "env_steps_per_s": round(rate, 1), "backend": backend,
        }), flush=True)  # fmt: skip
    rate = host_rate(args.ale, args.host_rounds)
    print(json.dumps({
        "bench": "dqn_throughput", "loop": "host", "env": args.ale, "seeds": 1,
        "rounds": args.host_rounds, "env_steps_per_s": round(rate, 1), "backend": backend,
    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
