"""PQN throughput: environment steps per second of the fully jitted PQN loop on MinAtar.

Prints one JSON line per (env, seeds): environment steps per second of
`scalerl.train.ppo_fused.make_chunk_many` driving the PQN agent (rollout, Q(λ) targets and all
epochs in one `lax.scan`, vmapped over seeds), with the environment's preset (MinAtar: 128
envs x 32 steps, 2 epochs x 32 minibatches, the MinAtar CNN). Compilation and one warm-up
call are excluded from the timing. `--num-envs/--num-steps/--num-minibatches` shrink the
rollout for a smoke run; `--torso none --trunk mlp` measures the flat-frame MLP instead of the
CNN; `--trunk mlp --width 512 --depth 8` a deep, wide trunk on the CNN (the stable-gradients
reproduction of docs/agents/pqn.md); `--optimizer kron` its Kron variant.

    python benchmarks/pqn_throughput.py                           # Breakout-MinAtar, 1 and 8 seeds
    python benchmarks/pqn_throughput.py --seeds 1 --iters 1 --num-envs 4 --num-steps 8 \
        --num-minibatches 2                                       # smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import jax
from ppo_throughput import fused_rate  # the same timing of the fused loop (this folder)

from scalerl.config_pqn import PQNTrainConfig, pqn_preset, resolve_torso
from scalerl.envs.jax_envs import make_jax_env
from scalerl.train.pqn_run import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", nargs="+", default=["gymnax:Breakout-MinAtar"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--iters", type=int, default=10, help="timed PQN iterations per call")
    parser.add_argument("--trunk", default=None, help="dense trunk (default: the preset's)")
    parser.add_argument("--torso", default=None, help="conv torso, or none (flat frames)")
    parser.add_argument("--width", type=int, default=None, help="trunk width")
    parser.add_argument("--depth", type=int, default=None, help="trunk layers or blocks")
    parser.add_argument("--num-envs", type=int, default=None)
    parser.add_argument("--num-steps", type=int, default=None)
    parser.add_argument("--num-minibatches", type=int, default=None)
    parser.add_argument("--optimizer", default=None, help="radam|adam|adamw|kron (default: preset)")
    args = parser.parse_args()
    sizes = {
        k: v
        for k, v in {
            "num_envs": args.num_envs, "num_steps": args.num_steps,
            "num_minibatches": args.num_minibatches, "trunk": args.trunk, "torso": args.torso,
            "width": args.width, "depth": args.depth, "optimizer": args.optimizer,
        }.items()
        if v is not None
    }  # fmt: skip
    for env_id in args.envs:
        agent_cfg = dataclasses.replace(pqn_preset(env_id), **sizes)
        cfg = PQNTrainConfig(env=env_id, env_steps=10**7, agent=agent_cfg)
        env = make_jax_env(env_id)
        agent = build(cfg, env)
        for seeds in args.seeds:
            rate = fused_rate(agent, env, seeds, args.iters)
            print(json.dumps({
                "bench": "pqn_throughput", "env": env_id,
                "torso": resolve_torso(agent_cfg.torso, env_id), "trunk": agent_cfg.trunk,
                "width": agent_cfg.width, "depth": agent_cfg.depth,
                "optimizer": agent_cfg.optimizer,
                "seeds": seeds, "num_envs": agent_cfg.num_envs, "num_steps": agent_cfg.num_steps,
                "iters": args.iters, "fused_steps_per_s": round(rate, 1),
                "backend": jax.default_backend(),
            }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
