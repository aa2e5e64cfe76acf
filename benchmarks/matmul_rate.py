"""Measures this machine's fp32 matmul rate with jitted `jnp.matmul`.

The shapes are the ones the SimbaV2 critic multiplies at batch 256: the two matmuls of a
512-wide residual block (expansion 4x), one of a 128-wide block, and a weight gradient x.T @ dy
(contraction over the batch, as in the backward pass); and the 256-wide plain-MLP hidden layer.
A large square matmul shows the peak rate
the CPU reaches when the matrices are big enough to keep every core busy.

Prints one JSON line per shape and a final summary line with the maximum rate:

    python benchmarks/matmul_rate.py [--min-seconds 2.0]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
from machine import busy_cpu_seconds, cpu_model, other_cores

#: (name, m, k, n, transpose_a): an (m, k) @ (k, n) product; with transpose_a the left operand
#: is stored as (k, m) and transposed inside the jitted function, as in a weight gradient
#: x.T @ dy (contraction over the batch).
SHAPES: tuple[tuple[str, int, int, int, bool], ...] = (
    ("critic-expand", 256, 512, 2048, False),
    ("critic-contract", 256, 2048, 512, False),
    ("critic-small", 256, 128, 512, False),
    ("critic-wgrad", 512, 256, 2048, True),
    ("mlp-hidden", 256, 256, 256, False),
    ("mlp-wgrad", 256, 256, 256, True),
    ("square-2048", 2048, 2048, 2048, False),
)


def _inputs(m: int, k: int, n: int, transpose_a: bool) -> tuple[jax.Array, jax.Array]:
    """Random float32 operands: (m, k) or, with `transpose_a`, (k, m), and (k, n)."""
    key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(key_a, (k, m) if transpose_a else (m, k), jnp.float32)
    b = jax.random.normal(key_b, (k, n), jnp.float32)
    return a, b


def _transposed_matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """a.T @ b (XLA folds the transpose into the dot's contraction dimensions)."""
    return jnp.matmul(a.T, b)


def _time_matmul(
    a: jax.Array, b: jax.Array, transpose_a: bool, min_seconds: float
) -> tuple[int, float]:
    """Runs the jitted matmul repeatedly for at least `min_seconds`.

    Args:
        a: Left operand.
        b: Right operand.
        transpose_a: Multiply by the transpose of `a`.
        min_seconds: Minimum wall time to measure.

    Returns:
        (number of calls, elapsed seconds).
    """
    matmul = jax.jit(_transposed_matmul if transpose_a else jnp.matmul)
    for _ in range(3):  # compile and warm up
        matmul(a, b).block_until_ready()
    calls, start = 0, time.perf_counter()
    while True:
        matmul(a, b).block_until_ready()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and calls >= 3:
            return calls, elapsed


def measure(
    name: str, m: int, k: int, n: int, transpose_a: bool, min_seconds: float
) -> dict[str, object]:
    """Measures one shape.

    Args:
        name: Label of the shape.
        m: Rows of the product.
        k: Contraction dimension.
        n: Columns of the product.
        transpose_a: The left operand is stored (k, m) and transposed.
        min_seconds: Minimum wall time to measure.

    Returns:
        A JSON-serialisable record with the rate in GFLOP/s (2*m*k*n flops per matmul).
    """
    a, b = _inputs(m, k, n, transpose_a)
    cpu_before = busy_cpu_seconds()
    calls, elapsed = _time_matmul(a, b, transpose_a, min_seconds)
    others = other_cores(cpu_before, busy_cpu_seconds(), elapsed)
    flops = 2.0 * m * k * n
    return {
        "shape": name,
        "m": m,
        "k": k,
        "n": n,
        "transpose_a": transpose_a,
        "calls": calls,
        "ms_per_call": round(1e3 * elapsed / calls, 4),
        "gflops": round(flops * calls / elapsed / 1e9, 2),
        "other_cpu_cores": others,
    }


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--min-seconds", type=float, default=2.0, help="wall time to measure per shape"
    )
    return parser.parse_args()


def main() -> None:
    """Measures every shape and prints the JSON lines."""
    args = _parse_args()
    rates = []
    for name, m, k, n, transpose_a in SHAPES:
        record = measure(name, m, k, n, transpose_a, args.min_seconds)
        rates.append(record["gflops"])
        print(json.dumps(record), flush=True)
    summary = {
        "max_gflops": max(rates),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
