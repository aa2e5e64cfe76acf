"""Kron over vmapped seeds: the refit decision reduced over the seeds axis vs a plain vmap.

Prints one JSON line per refit probability: milliseconds per Kron update of all seeds, the
optimizer alone (a `lax.scan` of `--steps` updates) on the parameters of the PQN Q network of
the stable-gradients reproduction (MinAtar conv torso, msr trunk 4 blocks x 256, Breakout
shapes), mapped with `scalerl.seed_axis.vmap_seeds` and with a plain `jax.vmap`, and their ratio.
Under a plain vmap the batched decision turns `lax.cond` into a select that refits every seed
at every step. The two variants alternate `--repeats` times; each figure is the fastest.

    python benchmarks/kron_seeds.py                      # p = 0.03 (the schedule's floor) and 1
    python benchmarks/kron_seeds.py --steps 2 --repeats 1 --seeds 2   # smoke

The figures in docs/plasticity/kron.md come from one pinned single-threaded process
(`XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" taskset -c 0`).
On two cores without pinning, the smoke run did not finish within 200 s here (not investigated).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import jax
import jax.numpy as jnp

from scalerl.config_pqn import PQNTrainConfig, pqn_preset
from scalerl.envs.jax_envs import make_jax_env
from scalerl.plasticity.kron import kron
from scalerl.seed_axis import vmap_seeds
from scalerl.train.pqn_run import build

ENV = "gymnax:Breakout-MinAtar"


def repeat(tree, n: int):
    """`tree` stacked `n` times on a new leading axis."""
    return jax.tree_util.tree_map(lambda x: jnp.stack([x] * n), tree)


def q_params(seeds: int):
    """The Q network's parameters, and them stacked `seeds` times."""
    agent_cfg = dataclasses.replace(pqn_preset(ENV), trunk="msr", width=256, depth=4)
    agent = build(PQNTrainConfig(env=ENV, env_steps=10**6, agent=agent_cfg), make_jax_env(ENV))
    params = agent.init(jax.random.PRNGKey(0)).net.params
    return params, repeat(params, seeds)


def scanned(opt, steps: int):
    """(grads, state) -> (state, sum of the directions) after `steps` updates with the same
    gradients (the sum keeps the preconditioned directions live)."""

    def body(carry, _):
        state, total, grads = carry
        dirs, state = opt.update(grads, state)
        return (state, jax.tree_util.tree_map(jnp.add, total, dirs), grads), None

    def run(grads, state):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, grads)
        return jax.lax.scan(body, (state, zeros, grads), None, length=steps)[0][:2]

    return run


def ms_per_update(fn, grads, state, steps: int) -> float:
    jax.block_until_ready(fn(grads, state))
    start = time.perf_counter()
    jax.block_until_ready(fn(grads, state))
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50, help="updates per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probs", nargs="+", type=float, default=[0.03, 1.0])
    args = parser.parse_args()
    params, grads = q_params(args.seeds)
    for p in args.probs:
        opt = kron(1e-4, precond_update_prob=lambda c, p=p: jnp.full_like(c, p, jnp.float32))
        state = repeat(opt.init(params), args.seeds)
        run = scanned(opt, args.steps)
        fns = {"seed_axis": jax.jit(vmap_seeds(run)), "plain_vmap": jax.jit(jax.vmap(run))}
        best = {k: float("inf") for k in fns}
        for _ in range(args.repeats):
            for name, fn in fns.items():
                best[name] = min(best[name], ms_per_update(fn, grads, state, args.steps))
        print(json.dumps({
            "bench": "kron_seeds", "seeds": args.seeds, "refit_prob": p,
            "ms_seed_axis": round(best["seed_axis"], 1),
            "ms_plain_vmap": round(best["plain_vmap"], 1),
            "speedup": round(best["plain_vmap"] / best["seed_axis"], 2),
            "backend": jax.default_backend(),
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
