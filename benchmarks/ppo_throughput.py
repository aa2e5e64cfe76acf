"""PPO throughput: the fully jitted loop vs a Python per-step loop over the same gymnax env.

Prints one JSON line per (env, seeds): environment steps per second of
`scalerl.train.ppo_fused.make_chunk_many` (rollout, GAE and all epochs in one `lax.scan`,
vmapped over seeds) and of the same PPO driven from Python (one jitted `act` + one jitted
vmapped env step per step, one jitted `PPO.learn` per rollout, seeds one after another), and
their ratio. Both use the same agent, env and CleanRL defaults (4 envs x 128 steps, 4x4
minibatches). Compilation and one warm-up call are excluded from the timing.

    python benchmarks/ppo_throughput.py                      # CartPole and Breakout, 1 and 8 seeds
    python benchmarks/ppo_throughput.py --envs gymnax:CartPole-v1 --seeds 1 --iters 2  # smoke
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp

from scalerl.agents.ppo import Trajectory, make_ppo
from scalerl.agents.ppo_net import ActionSpec
from scalerl.config_ppo import ppo_preset
from scalerl.envs.jax_envs import make_jax_env
from scalerl.train import ppo_fused


def fused_rate(agent, env, seeds: int, iters: int) -> float:
    """Env steps/s of the fused loop (all seeds vmapped), `iters` iterations per call."""
    states, carries = ppo_fused.init_seeds(agent, env, list(range(seeds)))
    chunk = ppo_fused.make_chunk_many(agent, env, iters)
    states, carries, (m, _) = chunk(states, carries)  # compile + warm-up
    jax.block_until_ready(m)
    start = time.perf_counter()
    states, carries, (m, _) = chunk(states, carries)
    jax.block_until_ready(m)
    return iters * agent.cfg.batch_size * seeds / (time.perf_counter() - start)


def python_rate(agent, env, seeds: int, iters: int) -> float:
    """Env steps/s of a Python loop: per step one jitted act and one jitted env step."""
    act, learn = jax.jit(agent.act), jax.jit(agent.learn)
    step = jax.jit(env.step_batch)
    n = agent.cfg.num_envs

    def run(seed: int, count: int) -> None:
        state = agent.init(jax.random.PRNGKey(seed))
        carry = ppo_fused.env_init(env, jax.random.PRNGKey(seed + 1), n)
        env_state, obs, key = carry.env_state, carry.obs, carry.key
        for _ in range(count):
            rows = []
            for _ in range(agent.cfg.num_steps):
                rng, act_key = jax.random.split(state.rng)
                key, env_key = jax.random.split(key)
                state = state.replace(rng=rng)
                stored, action, log_prob, value = act(state, obs, act_key)
                env_state, out = step(jax.random.split(env_key, n), env_state, action)
                rows.append((obs, stored, log_prob, value, out.reward, out.terminated,
                             out.truncated, out.final_obs))  # fmt: skip
                obs = out.obs
            cols = [jnp.stack(c) for c in zip(*rows, strict=True)]
            state, metrics = learn(state, Trajectory(*cols))
        jax.block_until_ready(metrics)

    run(0, 1)  # compile + warm-up
    start = time.perf_counter()
    for seed in range(seeds):
        run(seed, iters)
    return iters * agent.cfg.batch_size * seeds / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--envs", nargs="+", default=["gymnax:CartPole-v1", "gymnax:Breakout-MinAtar"]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--iters", type=int, default=10, help="timed PPO iterations per seed")
    parser.add_argument("--agent", default="mlp", help="network preset (mlp, simba, simbav2)")
    args = parser.parse_args()
    for env_id in args.envs:
        env = make_jax_env(env_id)
        cfg = ppo_preset(args.agent)
        action = ActionSpec(env.discrete, env.num_actions)
        agent = make_ppo(cfg, env.obs_dim, action, 1_000)
        for seeds in args.seeds:
            fused = fused_rate(agent, env, seeds, args.iters)
            python = python_rate(agent, env, seeds, args.iters)
            print(json.dumps({
                "bench": "ppo_throughput", "env": env_id, "agent": args.agent, "seeds": seeds,
                "iters": args.iters, "fused_steps_per_s": round(fused, 1),
                "python_steps_per_s": round(python, 1), "ratio": round(fused / python, 2),
                "backend": jax.default_backend(),
            }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
