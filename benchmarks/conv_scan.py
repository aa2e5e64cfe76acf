"""Conv torsos inside ``lax.scan``: XLA's convolution against `PatchConv` (patches + matmul).

Times one jitted call of a ``lax.scan`` over N gradient steps (SGD on a squared TD-like error)
of a small Q-network: a `ConvTorso` of each kind, then a dense head with `--actions` outputs.
Prints one JSON line per (torso, impl) with the best of `--repeats` timed calls (after one
compiling call) and, on every line, ``xla_over_patches``: the ratio of the two impls' times
for that torso (> 1 means patches are faster).

    python benchmarks/conv_scan.py                              # all torsos, N = 8, batch 32
    python benchmarks/conv_scan.py --torsos minatar --steps 64 --batch 32
    python benchmarks/conv_scan.py --torsos impala --frame 64 64 3

The frames are random uint8 of each torso's usual size (84x84x4 for nature and impala,
10x10x4 for minatar) unless `--frame` is given.
"""

from __future__ import annotations

import argparse
import json
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

from scalerl.networks.cnn import TORSO_KINDS, ConvTorso

FRAMES = {"nature": (84, 84, 4), "impala": (84, 84, 4), "minatar": (10, 10, 4)}
"""Default frame shape (H, W, C) per torso."""


class SmallQ(nn.Module):
    """Conv torso with its paper's dense layer, then one linear Q value per action."""

    kind: str
    impl: str
    actions: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dense = {"nature": 512, "impala": 256, "minatar": 128}[self.kind]
        z = ConvTorso(self.kind, dense_features=dense, conv_impl=self.impl, name="torso")(x)
        return nn.Dense(self.actions, name="head")(z)


def make_run(net: SmallQ, lr: float = 1e-4):
    """Jitted ``(params, frames (N, B, H, W, C), targets (N, B, A)) -> params`` over N steps."""

    def loss(params, x, y):
        return jnp.mean((net.apply(params, x) - y) ** 2)

    def step(params, batch):
        grads = jax.grad(loss)(params, *batch)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), None

    return jax.jit(lambda params, xs, ys: jax.lax.scan(step, params, (xs, ys))[0])


def time_scan(kind: str, impl: str, args: argparse.Namespace) -> dict:
    """Best wall time (ms) of `args.repeats` calls of the scan, plus the compile call's time."""
    frame = tuple(args.frame) if args.frame else FRAMES[kind]
    net = SmallQ(kind, impl, args.actions)
    kx, ky, kp = jax.random.split(jax.random.key(args.seed), 3)
    xs = jax.random.randint(kx, (args.steps, args.batch, *frame), 0, 256).astype(jnp.uint8)
    ys = jax.random.normal(ky, (args.steps, args.batch, args.actions))
    params = net.init(kp, xs[0])
    run = make_run(net)
    start = time.perf_counter()
    jax.block_until_ready(run(params, xs, ys))
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        jax.block_until_ready(run(params, xs, ys))
        best = min(best, time.perf_counter() - start)
    return {
        "torso": kind,
        "impl": impl,
        "frame": list(frame),
        "steps": args.steps,
        "batch": args.batch,
        "backend": jax.default_backend(),
        "ms": round(best * 1e3, 2),
        "ms_per_step": round(best * 1e3 / args.steps, 3),
        "first_call_s": round(first, 2),
    }


def parse_args() -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--torsos", nargs="+", default=list(TORSO_KINDS), choices=TORSO_KINDS)
    p.add_argument("--impls", nargs="+", default=["xla", "patches"], choices=["xla", "patches"])
    p.add_argument("--steps", type=int, default=8, help="gradient steps per scan (N)")
    p.add_argument("--batch", type=int, default=32, help="frames per gradient step")
    p.add_argument("--actions", type=int, default=6, help="Q values per frame")
    p.add_argument("--frame", type=int, nargs=3, help="H W C for every torso (default: usual)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls; the best is reported")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    for kind in args.torsos:
        rows = [time_scan(kind, impl, args) for impl in args.impls]
        ms = {row["impl"]: row["ms"] for row in rows}
        ratio = round(ms["xla"] / ms["patches"], 2) if len(ms) == 2 else None
        for row in rows:
            print(json.dumps({**row, "xla_over_patches": ratio}), flush=True)


if __name__ == "__main__":
    main()
