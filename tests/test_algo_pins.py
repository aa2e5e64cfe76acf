"""Bit-level pins of SAC, TD3 and DDPG: fixed-seed updates give exactly the recorded results.

Each case builds an agent from a fully explicit config (every field set here, so changes of
presets or suite defaults do not move the pins), runs init, a few normaliser observations,
five jitted updates (`update_many`) on deterministic synthetic batches, acting, exploration
and, for some cases, health diagnostics, a reset or ReDo. The SHA-256 of every resulting
parameter, optimizer-state and output leaf is compared with `tests/pins/algo_pins.json`. One
short Pendulum-v1 run through the real training loop is pinned the same way.

Hashes are compared exactly only on the platform (jax version, CPU architecture and vector
extensions) they were recorded on: XLA's CPU code differs between vector extensions, so floats
may differ in the last bit elsewhere. On every platform, per-part sums must match to 1e-4.

Re-record (after a change that is meant to move the numbers, e.g. a loss fix):

    PYTHONPATH=$PWD/src python tests/test_algo_pins.py --record
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.agents.sac import make_sac
from scalerl.buffers.replay import Batch
from scalerl.config import AgentConfig, PlasticityConfig, TrainConfig

PIN_FILE = Path(__file__).parent / "pins" / "algo_pins.json"
OBS_DIM, ACT_DIM, BATCH, UPDATES = 5, 2, 16, 5

OFF = {
    "hidden_norm": False,
    "nap": False,
    "nap_every": 1,
    "nap_norm_mode": "free",
    "nap_norm_decay": 1e-3,
    "l2_init": 0.0,
    "hare_tortoise": False,
    "ht_momentum": 0.999,
    "ht_reset_every": 20_000,
    "ht_eval": "tortoise",
    "ht_act": "hare",
    "reset": "none",
    "reset_every": 0,
    "reset_shrink": 0.8,
    "reset_perturb": 0.2,
    "reset_opt_state": True,
    "reset_same_init": False,
    "reset_stop_after": None,
    "redo_every": 0,
    "redo_tau": 0.1,
}
"""Every plasticity field, all interventions off."""

COMMON = {
    "n_step": 1,
    "batch_size": BATCH,
    "tau": 0.005,
    "gamma": 0.99,
    "lr_decay_fraction": 1.0,
    "lr_schedule": "linear",
    "lr_warmup": 1_000,
    "g_max": 5.0,
    "c_shift": 3.0,
    "bc_alpha": 0.0,
    "algo": "sac",
    "expl_noise": 0.1,
    "noise_color": 0.0,
    "noise_horizon": 1000,
    "target_noise": 0.2,
    "target_noise_clip": 0.5,
    "policy_delay": 2,
    "precision": "fp32",
}

FAMILIES = {
    "simbav2": {
        "agent": "simbav2",
        "actor_width": 16,
        "actor_depth": 1,
        "critic_width": 32,
        "critic_depth": 1,
        "critic_head": "categorical",
        "num_bins": 21,
        "optimizer": "adam",
        "lr_init": 1e-4,
        "lr_end": 5e-5,
        "weight_decay": 0.0,
        "temp_init": 0.01,
        "target_entropy_coef": -0.5,
        "normalize_obs": True,
        "normalize_reward": True,
        "project_weights": True,
    },
    "simba": {
        "agent": "simba",
        "actor_width": 16,
        "actor_depth": 1,
        "critic_width": 32,
        "critic_depth": 1,
        "critic_head": "scalar",
        "num_bins": 101,
        "optimizer": "adamw",
        "lr_init": 1e-4,
        "lr_end": 1e-4,
        "weight_decay": 1e-2,
        "temp_init": 0.01,
        "target_entropy_coef": -0.5,
        "normalize_obs": True,
        "normalize_reward": False,
        "project_weights": False,
    },
    "mlp": {
        "agent": "mlp",
        "actor_width": 32,
        "actor_depth": 2,
        "critic_width": 32,
        "critic_depth": 2,
        "critic_head": "scalar",
        "num_bins": 101,
        "optimizer": "adam",
        "lr_init": 3e-4,
        "lr_end": 3e-4,
        "weight_decay": 0.0,
        "temp_init": 1.0,
        "target_entropy_coef": -1.0,
        "normalize_obs": False,
        "normalize_reward": False,
        "project_weights": False,
    },
}


def agent_config(family: str, use_cdq: bool, plasticity: dict | None = None, **kw) -> AgentConfig:
    """A fully explicit agent config: every field of AgentConfig and PlasticityConfig set."""
    pc = PlasticityConfig(**(OFF | (plasticity or {})))
    return AgentConfig(**(COMMON | FAMILIES[family] | {"use_cdq": use_cdq} | kw), plasticity=pc)


@dataclass(frozen=True)
class Case:
    """One pinned agent: its config and the extra pure functions to exercise."""

    cfg: AgentConfig
    explore_steps: int = 2
    extras: tuple[str, ...] = field(default=())
    """Any of "health", "reset", "redo"."""
    slow: bool = False
    """Run only with the slow tests."""


CASES = {
    "sac_simbav2": Case(agent_config("simbav2", False)),
    "td3_mlp_bc": Case(
        agent_config("mlp", True, {"reset": "full", "reset_every": 5}, algo="td3", bc_alpha=0.1),
        extras=("reset", "health"),
    ),
    "ddpg_mlp_coloured": Case(
        agent_config("mlp", False, algo="ddpg", noise_color=1.0, noise_horizon=4),
        explore_steps=6,
    ),
    "sac_simbav2_cdq_ht_l2_bc": Case(
        agent_config(
            "simbav2",
            True,
            {"hare_tortoise": True, "ht_reset_every": 3, "l2_init": 1e-3},
            bc_alpha=0.1,
        ),
        slow=True,
    ),
    "sac_simba_nap": Case(
        agent_config(
            "simba",
            True,
            {"nap": True, "nap_norm_mode": "decay_to_init", "reset": "shrink_perturb"},
        ),
        extras=("reset",),
        slow=True,
    ),
    "sac_mlp": Case(
        agent_config("mlp", True, {"redo_every": 5}), extras=("redo", "health"), slow=True
    ),
    "td3_simba": Case(agent_config("simba", True, algo="td3", policy_delay=3), slow=True),
    "ddpg_simba": Case(agent_config("simba", True, algo="ddpg", expl_noise=0.2), slow=True),
}
"""Fast cases cover each algorithm once (SimbaV2 SAC, MLP TD3 and DDPG); slow ones the other
networks and interventions."""


# ---------------------------------------------------------------------- fingerprints


def fingerprint(tree: Any) -> str:
    """SHA-256 over every leaf's path, dtype, shape and bytes."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def sums(tree: Any) -> list[float]:
    """(sum, sum of absolute values) over every numeric leaf, in float64."""
    leaves = [np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves(tree)]
    return [float(sum(x.sum() for x in leaves)), float(sum(np.abs(x).sum() for x in leaves))]


def summarise(parts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"hashes": {part: sha}, "sums": {part: [sum, abs sum]}} of named result trees."""
    parts = jax.device_get(parts)
    return {
        "hashes": {k: fingerprint(v) for k, v in parts.items()},
        "sums": {k: sums(v) for k, v in parts.items()},
    }


VECTOR_FLAGS = ("avx", "amx", "fma", "f16c")
"""Prefixes of the CPU flags XLA may compile for: machines that differ in any of them (e.g.
AVX-512 FP16 or AMX on Sapphire Rapids) may differ in the last bit."""


def platform_key() -> str:
    """jax/jaxlib versions, CPU architecture and the vector extensions XLA compiles for."""
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        line = next(x for x in text.splitlines() if x.startswith("flags"))
        have = set(line.split(":", 1)[1].split())
        flags = ",".join(sorted(f for f in have if f.startswith(VECTOR_FLAGS)))
    except (OSError, StopIteration):
        pass
    import jaxlib

    return f"jax {jax.__version__}/jaxlib {jaxlib.__version__}/{platform.machine()}/{flags}"


# ---------------------------------------------------------------------- the pinned runs


def synthetic_batches(n: int) -> Batch:
    """n deterministic batches (leading axis n) with some terminations and n-step discounts."""
    k = jax.random.split(jax.random.PRNGKey(42), 5)
    shape = (n, BATCH)
    return Batch(
        obs=2.0 * jax.random.normal(k[0], (*shape, OBS_DIM)) + 0.5,
        action=jax.random.uniform(k[1], (*shape, ACT_DIM), minval=-1.0, maxval=1.0),
        reward=jax.random.normal(k[2], shape),
        next_obs=2.0 * jax.random.normal(k[3], (*shape, OBS_DIM)) + 0.5,
        terminated=(jax.random.uniform(k[4], shape) < 0.1).astype(jnp.float32),
        discount=jnp.where(jnp.arange(BATCH) % 3 == 0, 0.99**2, 0.99) * jnp.ones(shape),
    )


def observations(n: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """n deterministic (obs, reward, done) triples for the normalisers."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(7))
    obs = 3.0 * jax.random.normal(k1, (n, OBS_DIM)) - 1.0
    reward = jax.random.normal(k2, (n,)) + 0.5
    done = (jnp.arange(n) % 3 == 2).astype(jnp.float32)
    return obs, reward, done


def run_case(case: Case) -> dict[str, Any]:
    """The result trees of one pinned agent."""
    sac = make_sac(case.cfg, OBS_DIM, ACT_DIM, decay_steps=100)
    init = sac.init(jax.random.PRNGKey(0))
    batches = synthetic_batches(UPDATES)
    state, metrics = jax.jit(lambda s, b: sac.update_many(observe_all(sac, s), b))(init, batches)
    probe = jax.tree_util.tree_map(lambda x: x[0], batches)
    acts = jax.jit(lambda s, obs: act_both(sac, s, obs))(state, probe.obs)
    explore = jax.jit(sac.explore)
    explored, actions = state, []
    for i in range(case.explore_steps):
        restart = jnp.float32(i == 3)
        explored, a = explore(explored, probe.obs[i], jax.random.PRNGKey(100 + i), restart)
        actions.append(a)
    parts = {
        "init": init,
        "state": state,
        "metrics": metrics,
        "act": acts,
        "explore": {"actions": actions, "state": explored},
    }
    return parts | extra_parts(sac, case, state, probe)


def observe_all(sac: Any, state: Any) -> Any:
    """The state after observing every `observations` triple."""
    for o, r, d in zip(*observations(4), strict=True):
        state = sac.observe(state, o, r, d)
    return state


def act_both(sac: Any, state: Any, obs: jax.Array) -> dict[str, jax.Array]:
    """Deterministic and sampled actions for a batch of observations."""
    key = jax.random.PRNGKey(3)
    return {
        "deterministic": sac.act(state, obs, key, deterministic=True),
        "sampled": sac.act(state, obs, key),
    }


def extra_parts(sac: Any, case: Case, state: Any, probe: Batch) -> dict[str, Any]:
    """Health diagnostics, a reset and ReDo toward a fresh state, as the case asks."""
    fresh = sac.init(jax.random.PRNGKey(1))
    out: dict[str, Any] = {}
    if "health" in case.extras:
        out["health"] = jax.jit(sac.health)(state, probe)
    if "reset" in case.extras:
        out["reset"] = jax.jit(sac.reset)(state, fresh)
    if "redo" in case.extras:
        out["redo"] = jax.jit(sac.redo)(state, fresh, probe)
    return out


def loop_config(run_root: Path) -> TrainConfig:
    """A short Pendulum-v1 run with every budget and cadence field set explicitly."""
    agent = agent_config("mlp", True, actor_width=16, critic_width=16)
    return TrainConfig(
        env="Pendulum-v1",
        seed=3,
        seeds=None,
        num_seeds=1,
        env_steps=160,
        utd=1.0,
        warmup_steps=100,
        buffer_capacity=1_000,
        action_repeat=1,
        max_episode_steps=200,
        eval_every=1_000,
        eval_episodes=1,
        log_every=50,
        checkpoint_every=0,
        health_every=0,
        health_batch=16,
        video_every=0,
        name="pin",
        run_root=run_root,
        tensorboard=False,
        wandb_project=None,
        progress=False,
        init_from=None,
        preload_dataset=None,
        agent=agent,
    )


def run_loop(run_root: Path) -> dict[str, Any]:
    """The final agent state of a short run through the real training loop."""
    from scalerl.train.evaluate import load_run_agent
    from scalerl.train.loop import train

    _, state, _ = load_run_agent(train(loop_config(run_root)))
    return {"state": state}


# ---------------------------------------------------------------------- tests


def _compare(name: str, got: dict[str, Any]) -> None:
    pins = json.loads(PIN_FILE.read_text())
    want = pins["cases"][name]
    assert set(got["hashes"]) == set(want["hashes"]), f"{name}: parts differ"
    for part, value in want["sums"].items():
        np.testing.assert_allclose(got["sums"][part], value, rtol=1e-4, atol=1e-6, err_msg=part)
    if pins["platform"] != platform_key():
        pytest.skip(f"sums match; hashes were recorded on {pins['platform']}")
    assert got["hashes"] == want["hashes"], f"{name}: results changed bit-wise"


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] * c.slow) for n, c in CASES.items()]
)
def test_agent_updates_match_their_pins(name):
    _compare(name, summarise(run_case(CASES[name])))


@pytest.mark.slow
def test_training_loop_matches_its_pin(tmp_path):
    _compare("loop_pendulum_sac_mlp", summarise(run_loop(tmp_path)))


def record() -> None:
    """Run every case and write the pin file."""
    import tempfile

    cases = {name: summarise(run_case(case)) for name, case in CASES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        cases["loop_pendulum_sac_mlp"] = summarise(run_loop(Path(tmp)))
    PIN_FILE.parent.mkdir(exist_ok=True)
    PIN_FILE.write_text(json.dumps({"platform": platform_key(), "cases": cases}, indent=1) + "\n")
    print(f"wrote {PIN_FILE} ({len(cases)} cases)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--record", action="store_true", help="re-record tests/pins/*.json")
    if parser.parse_args().record:
        record()
    else:
        sys.exit(pytest.main([__file__, "-q"]))
