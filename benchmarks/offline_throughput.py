"""Offline update throughput: `scalerl offline`'s fused chunk vs one jitted update per call.

Prints one JSON line per (config, updates per call): gradient updates per second of
`scalerl.offline.train.make_chunk(sac, k)` (k batches sampled on device from a dataset-sized
buffer, then a `lax.scan` of k SAC+BC updates). k = 1 is the official offline loop's pattern (one
jitted update per Python iteration, batch from the buffer each time); k = 1000 is scalerl's
default `--updates-per-call`.

    python benchmarks/offline_throughput.py --configs simbav2-small mlp --calls-per-k 1 1000
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from scalerl.agents.sac import make_sac
from scalerl.buffers.replay import replay_from_numpy
from scalerl.config import offline_preset, replace
from scalerl.offline.train import make_chunk

CONFIGS = {
    "simbav2-default": ("simbav2", {}),
    "simbav2-small": ("simbav2", {"critic_width": 128, "actor_width": 64}),
    "mlp": ("mlp", {}),
}


def _buffer(rows: int, obs_dim: int, action_dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    data = {
        "obs": rng.normal(size=(rows, obs_dim)),
        "action": rng.uniform(-1, 1, (rows, action_dim)),
        "reward": rng.normal(size=rows),
        "terminated": np.zeros(rows),
        "truncated": np.zeros(rows),
        "next_obs": rng.normal(size=(rows, obs_dim)),
    }
    return replay_from_numpy(data, rows)


def measure(name: str, k: int, args: argparse.Namespace) -> dict:
    """Updates per second of k-update calls, after one compile call and one warm-up call."""
    agent, sizes = CONFIGS[name]
    cfg = replace(offline_preset(agent), gamma=0.995, use_cdq=True, **sizes)
    sac = make_sac(cfg, args.obs_dim, args.action_dim, decay_steps=100_000)
    states = sac.init_many(np.stack([jax.random.PRNGKey(0)]))
    buffer = _buffer(args.rows, args.obs_dim, args.action_dim)
    chunk = make_chunk(sac, k)
    for _ in range(2):
        states, metrics = chunk(states, buffer)
    jax.block_until_ready(metrics)
    calls = max(1, args.updates // k)
    start = time.perf_counter()
    for _ in range(calls):
        states, metrics = chunk(states, buffer)
        jax.device_get(metrics)  # the loop reads metrics after every call
    seconds = time.perf_counter() - start
    rate = round(calls * k / seconds, 2)
    return {"config": name, "updates_per_call": k, "updates": calls * k, "updates_per_s": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["simbav2-small", "mlp"])
    parser.add_argument("--calls-per-k", nargs="+", type=int, default=[1, 1000], dest="ks")
    parser.add_argument("--updates", type=int, default=2000, help="timed updates per row")
    parser.add_argument("--rows", type=int, default=100_000, help="dataset transitions")
    parser.add_argument("--obs-dim", type=int, default=17)  # hopper/walker2d-sized
    parser.add_argument("--action-dim", type=int, default=6)
    args = parser.parse_args()
    for name in args.configs:
        for k in args.ks:
            print(json.dumps(measure(name, k, args)), flush=True)


if __name__ == "__main__":
    main()
