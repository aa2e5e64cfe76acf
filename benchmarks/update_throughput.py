"""Steady-state gradient updates per second through the real fused train step.

Each call of the step is what one agent step of `scalerl train` does after warm-up: store a
transition in the on-device replay buffer, sample `utd` batches and run `utd` SAC updates in a
`lax.scan`, update the normalisers and act; then the action and metrics are fetched to the host
with `jax.device_get`, as the training loop does. The environment is replaced by random
transitions, so the number measured is the learner's ceiling on this machine.

Prints one JSON line per configuration (see benchmarks/README.md for the fields):

    python benchmarks/update_throughput.py                       # every configuration
    python benchmarks/update_throughput.py --configs simbav2-small --min-seconds 5
    python benchmarks/update_throughput.py --configs mlp --seeds 4
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from machine import busy_cpu_seconds, cpu_model, other_cores

from scalerl.agents.actor_critic import ActorCritic
from scalerl.agents.sac import make_sac
from scalerl.agents.state import SACState
from scalerl.buffers.replay import (
    ReplayState,
    Transition,
    replay_add_batch,
    replay_init,
    replay_sample,
)
from scalerl.config import agent_preset, replace
from scalerl.train.step import make_train_step

StepFn = Callable[..., tuple[SACState, ReplayState, jax.Array, dict[str, jax.Array]]]


@dataclass(frozen=True)
class BenchConfig:
    """One network configuration to measure.

    Attributes:
        name: Label printed in the JSON line.
        agent: Agent preset ("simbav2", "simba" or "mlp").
        critic_width: Critic hidden width.
        critic_depth: Critic residual blocks (SimbaV2/SimBa) or hidden layers (MLP).
        actor_width: Actor hidden width.
        actor_depth: Actor residual blocks or hidden layers.
        use_cdq: Clipped double Q (two critics) instead of one critic.
    """

    name: str
    agent: str
    critic_width: int
    critic_depth: int
    actor_width: int
    actor_depth: int
    use_cdq: bool


CONFIGS: dict[str, BenchConfig] = {
    c.name: c
    for c in (
        BenchConfig("simbav2-default", "simbav2", 512, 2, 128, 1, False),
        BenchConfig("simbav2-small", "simbav2", 128, 2, 64, 1, False),
        BenchConfig("mlp", "mlp", 256, 2, 256, 2, True),
        BenchConfig("simba-default", "simba", 512, 2, 128, 1, False),
    )
}


# ---------------------------------------------------------------------------------- machine info


def machine_info() -> dict[str, Any]:
    """JAX version, backend, CPU model, core count and the current load average."""
    return {
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


# ---------------------------------------------------------------------------------- setup


def build_agent(spec: BenchConfig, args: argparse.Namespace) -> ActorCritic:
    """Builds the SAC agent of a configuration with the preset's other defaults.

    Args:
        spec: The configuration.
        args: Parsed command line (batch size and dimensions).

    Returns:
        The agent.
    """
    cfg = replace(
        agent_preset(spec.agent),
        gamma=0.99,
        use_cdq=spec.use_cdq,
        critic_width=spec.critic_width,
        critic_depth=spec.critic_depth,
        actor_width=spec.actor_width,
        actor_depth=spec.actor_depth,
        batch_size=args.batch_size,
        precision=args.precision,
    )
    return make_sac(cfg, args.obs_dim, args.action_dim, decay_steps=1_000_000)


def random_transitions(
    rng: np.random.Generator, lead: tuple[int, ...], obs_dim: int, act_dim: int
) -> Transition:
    """Host (numpy) random transitions with leading shape `lead` (`()` for a single one).

    About one transition in a thousand ends its episode (terminated or truncated).

    Args:
        rng: Numpy generator.
        lead: Leading shape of every field.
        obs_dim: Observation dimension.
        act_dim: Action dimension.

    Returns:
        A `Transition` of float32 numpy arrays.
    """
    f32 = np.float32
    return Transition(
        obs=rng.standard_normal(lead + (obs_dim,), f32),
        action=rng.uniform(-1.0, 1.0, lead + (act_dim,)).astype(f32),
        reward=rng.uniform(0.0, 1.0, lead).astype(f32),
        terminated=(rng.random(lead) < 1e-3).astype(f32),
        truncated=(rng.random(lead) < 1e-3).astype(f32),
        next_obs=rng.standard_normal(lead + (obs_dim,), f32),
    )


def filled_buffer(
    rng: np.random.Generator, sac: ActorCritic, capacity: int, fill: int
) -> ReplayState:
    """A replay buffer holding `fill` random transitions.

    Args:
        rng: Numpy generator.
        sac: The agent (for the dimensions).
        capacity: Buffer capacity.
        fill: Number of random transitions to write.

    Returns:
        The buffer on the default device.
    """
    buffer = replay_init(capacity, sac.obs_dim, sac.action_dim)
    rows = random_transitions(rng, (fill,), sac.obs_dim, sac.action_dim)
    return jax.jit(replay_add_batch, donate_argnums=0)(buffer, rows)


def stack(trees: list[Any]) -> Any:
    """Stacks pytrees of identical structure along a new leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def setup(
    sac: ActorCritic, args: argparse.Namespace, rng: np.random.Generator
) -> tuple[StepFn, SACState, ReplayState]:
    """The train step, agent states and buffers, all with a leading seed axis of `args.seeds`.

    As in the training loop, even one seed is a stack of one: `sac.init_many` and buffers stacked
    with `jax.tree.map`. If `make_train_step` returns an unbatched step it is wrapped in
    `jax.jit(jax.vmap(step))` with state and buffer donated.

    Args:
        sac: The agent.
        args: Parsed command line.
        rng: Numpy generator for the buffer contents.

    Returns:
        (step, states, buffers).
    """
    step = make_train_step(sac, args.utd, random_action=False)
    buffers = [filled_buffer(rng, sac, args.capacity, args.fill) for _ in range(args.seeds)]
    # init_many, not jax.vmap(sac.init): vmapped QR initialisers deadlock in XLA CPU.
    states = sac.init_many(jax.random.split(jax.random.PRNGKey(0), args.seeds))
    return step, states, stack(buffers)


# ---------------------------------------------------------------------------------- FLOPs


def _kernel_weights(params: Any) -> int:
    """Number of matmul weights (leaves named "kernel"): multiply-adds per example per forward."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return sum(x.size for path, x in leaves if getattr(path[-1], "key", None) == "kernel")


def analytic_flops(sac: ActorCritic, state: SACState) -> float:
    """Matmul FLOPs of one update, counting 2 flops per weight per example per forward.

    Actor step: actor forward+backward (3 A) and critic forward+input-gradient (2 C); target:
    actor and target-critic forwards (A + C); critic step: forward+backward (3 C). In total
    4 A + 6 C, with A and C the forward FLOPs (C over the whole ensemble). Element-wise work
    (normalisation, projections, Adam) is ignored.

    Args:
        sac: The agent.
        state: A single-seed agent state.

    Returns:
        Estimated FLOPs per update.
    """
    per_weight = 2.0 * sac.cfg.batch_size
    actor = per_weight * _kernel_weights(state.actor.params)
    critic = per_weight * _kernel_weights(state.critic.params)
    return 4.0 * actor + 6.0 * critic


def xla_flops(sac: ActorCritic, state: SACState, buffer: ReplayState) -> float | None:
    """FLOPs of one `sac.update` from XLA's cost analysis of the compiled update, if available.

    Args:
        sac: The agent.
        state: A single-seed agent state (not donated).
        buffer: A single-seed filled buffer to sample one batch from.

    Returns:
        The 'flops' entry of the cost analysis, or None if XLA does not provide it.
    """
    batch = replay_sample(buffer, jax.random.PRNGKey(1), sac.cfg.batch_size, sac.cfg.n_step)
    try:
        cost = jax.jit(sac.update).lower(state, batch).compile().cost_analysis()
    except Exception:  # the XLA count is optional: fall back to the analytic estimate
        return None
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else None
    flops = cost.get("flops") if isinstance(cost, dict) else None
    return float(flops) if flops is not None and flops > 0 else None


def flops_per_update(
    sac: ActorCritic, state: SACState, buffer: ReplayState, use_xla: bool
) -> tuple[float, str, float]:
    """FLOPs of one update: XLA's count if wanted and available, else the analytic estimate.

    Args:
        sac: The agent.
        state: Agent states with a leading seed axis.
        buffer: Filled buffers with a leading seed axis.
        use_xla: Ask XLA (costs one extra compilation of `sac.update`).

    Returns:
        (flops, source, analytic flops) with source "xla_cost_analysis" or "analytic".
    """
    state, buffer = jax.tree.map(lambda x: x[0], (state, buffer))
    analytic = analytic_flops(sac, state)
    flops = xla_flops(sac, state, buffer) if use_xla else None
    if flops is None:
        return analytic, "analytic", analytic
    return flops, "xla_cost_analysis", analytic


# ---------------------------------------------------------------------------------- timing


def _next_obs(transition: Transition) -> np.ndarray:
    """The observation to act on next (the true next observation; resets are not simulated)."""
    return transition.next_obs


def call_step(
    step: StepFn,
    state: SACState,
    buffer: ReplayState,
    rng: np.random.Generator,
    lead: tuple[int, ...],
    dims: tuple[int, int],
) -> tuple[SACState, ReplayState]:
    """One agent step as the training loop does it: a host transition in, action and metrics out.

    Args:
        step: The jitted train step, vmapped over seeds.
        state: Agent states (donated).
        buffer: Replay buffers (donated).
        rng: Numpy generator for the transitions.
        lead: `(seeds,)`.
        dims: (obs_dim, action_dim).

    Returns:
        The new (state, buffer).
    """
    transition = random_transitions(rng, lead, *dims)
    state, buffer, action, metrics = step(state, buffer, transition, _next_obs(transition))
    jax.device_get((action, metrics))
    return state, buffer


def timed_calls(
    run: Callable[[SACState, ReplayState], tuple[SACState, ReplayState]],
    state: SACState,
    buffer: ReplayState,
    min_seconds: float,
    calls: int | None,
) -> tuple[int, float]:
    """Calls `run` for exactly `calls` calls, or until at least `min_seconds` have passed.

    Args:
        run: One agent step, (state, buffer) -> (state, buffer).
        state: Agent state after warm-up.
        buffer: Buffer after warm-up.
        min_seconds: Minimum wall time when `calls` is None.
        calls: Fixed number of calls, or None.

    Returns:
        (number of calls, elapsed seconds).
    """
    done, start = 0, time.perf_counter()
    while True:
        state, buffer = run(state, buffer)
        done += 1
        elapsed = time.perf_counter() - start
        if (calls is not None and done >= calls) or (calls is None and elapsed >= min_seconds):
            return done, elapsed


def warm_up_and_time(
    run: Callable[[SACState, ReplayState], tuple[SACState, ReplayState]],
    state: SACState,
    buffer: ReplayState,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Compiles (first call), warms up, then times `run`.

    Args:
        run: One agent step, (state, buffer) -> (state, buffer).
        state: Fresh agent state.
        buffer: Filled buffer.
        args: Parsed command line (warm-up calls, minimum seconds, fixed calls).

    Returns:
        calls, seconds, compile_s and other_cpu_cores (cores other processes kept busy while
        timing; near 0 on an otherwise idle machine).
    """
    start = time.perf_counter()
    state, buffer = run(state, buffer)
    compile_s = time.perf_counter() - start
    for _ in range(args.warmup_calls):
        state, buffer = run(state, buffer)
    cpu_before = busy_cpu_seconds()
    calls, elapsed = timed_calls(run, state, buffer, args.min_seconds, args.calls)
    others = other_cores(cpu_before, busy_cpu_seconds(), elapsed)
    return {
        "calls": calls,
        "seconds": round(elapsed, 3),
        "compile_s": round(compile_s, 2),
        "other_cpu_cores": others,
    }


def measure(spec: BenchConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Builds, warms up and times one configuration.

    Args:
        spec: The configuration.
        args: Parsed command line.

    Returns:
        The JSON record of the configuration.
    """
    load_before = [round(x, 2) for x in os.getloadavg()]
    rng = np.random.default_rng(0)
    sac = build_agent(spec, args)
    step, state, buffer = setup(sac, args, rng)
    flops, source, analytic = flops_per_update(sac, state, buffer, args.flops == "xla")
    lead = (args.seeds,)

    def run(s: SACState, b: ReplayState) -> tuple[SACState, ReplayState]:
        return call_step(step, s, b, rng, lead, (sac.obs_dim, sac.action_dim))

    timing = warm_up_and_time(run, state, buffer, args)
    updates_per_s = timing["calls"] * args.utd * args.seeds / timing["seconds"]
    record = _record(spec, sac, args, updates_per_s, flops, source)
    extra = {"flops_analytic": analytic, "loadavg_before": load_before}
    return record | timing | extra | machine_info()


def _record(
    spec: BenchConfig,
    sac: ActorCritic,
    args: argparse.Namespace,
    updates_per_s: float,
    flops: float,
    source: str,
) -> dict[str, Any]:
    """The main fields of a configuration's JSON line."""
    return {
        "config": spec.name,
        "agent": spec.agent,
        "critic_width": spec.critic_width,
        "critic_depth": spec.critic_depth,
        "actor_width": spec.actor_width,
        "actor_depth": spec.actor_depth,
        "batch_size": sac.cfg.batch_size,
        "utd": args.utd,
        "use_cdq": spec.use_cdq,
        "obs_dim": sac.obs_dim,
        "action_dim": sac.action_dim,
        "seeds": args.seeds,
        "precision": args.precision,
        "updates_per_s": round(updates_per_s, 2),
        "updates_per_s_per_seed": round(updates_per_s / args.seeds, 2),
        "ms_per_update": round(1e3 / updates_per_s, 3),
        "flops_per_update": flops,
        "flops_source": source,
        "gflops_achieved": round(flops * updates_per_s / 1e9, 2),
    }


# ---------------------------------------------------------------------------------- CLI


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    add("--obs-dim", type=int, default=24, help="observation dimension (walker: 24)")
    add("--action-dim", type=int, default=6, help="action dimension (walker: 6)")
    add("--batch-size", type=int, default=256)
    add("--utd", type=int, default=2, help="updates per train-step call")
    add("--seeds", type=int, default=1, help="vmap the step over this many seeds")
    add("--capacity", type=int, default=100_000, help="replay buffer capacity")
    add("--fill", type=int, default=10_000, help="random transitions stored before timing")
    add("--warmup-calls", type=int, default=5, help="calls after compilation, not timed")
    add("--min-seconds", type=float, default=10.0, help="time each config at least this long")
    add("--calls", type=int, default=None, help="time exactly this many calls instead")
    add("--flops", choices=("xla", "analytic"), default="xla", help="FLOPs-per-update source")
    add("--precision", choices=("fp32", "bf16"), default="fp32", help="matmul precision")
    args = parser.parse_args()
    if min(args.utd, args.seeds, args.fill, args.batch_size) < 1 or args.fill > args.capacity:
        parser.error("--utd, --seeds, --batch-size and --fill must be >= 1, --fill <= --capacity")
    return args


def main() -> None:
    """Measures every selected configuration and prints one JSON line each."""
    args = _parse_args()
    for name in args.configs:
        record = measure(CONFIGS[name], args)
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
