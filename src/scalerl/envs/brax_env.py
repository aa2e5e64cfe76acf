"""Brax environments (generalized, positional, spring or MJX physics) behind gymnax's interface.

Ids: `brax:<env>` (Brax's default physics backend, `generalized`) or `brax:<env>-<backend>`
with backend one of `generalized`, `positional`, `spring`, `mjx`, e.g. `brax:ant`,
`brax:inverted_pendulum-positional`, `brax:halfcheetah-mjx` (Freeman et al. 2021; MJX is
MuJoCo's JAX port). The adapter counts steps for the episode limit (1000 by default, as in
Brax's training wrappers) and reports Brax's `done` (e.g. an unhealthy Ant) as a termination;
reaching the limit is a truncation. Actions are in [-1, 1], Brax's own range.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from scalerl.errors import EnvError

BRAX_PREFIX = "brax:"
BRAX_ENVS = (
    "ant", "fast", "halfcheetah", "hopper", "humanoid", "humanoidstandup", "inverted_pendulum",
    "inverted_double_pendulum", "pusher", "reacher", "walker2d",
)  # fmt: skip
"""Brax 0.14.2's registered environments (listed by `scalerl envs` without importing Brax),
except `swimmer`, whose fluid model (`brax.fluid`) calls `jnp.clip(a_min=...)`, an argument
jax 0.10.2 no longer has."""
BRAX_BACKENDS = ("generalized", "positional", "spring", "mjx")
"""Brax physics pipelines; `generalized` is Brax's default."""
BRAX_EPISODE_STEPS = 1000
"""Episode limit of Brax's training wrappers (`brax.envs.create(episode_length=1000)`)."""
BRAX_INSTALL = 'pip install -e ".[brax]" in a checkout (brax 0.14.2, mujoco-mjx 3.17.0)'


@struct.dataclass
class BraxParams:
    """The only environment parameter: the episode limit in steps."""

    max_steps_in_episode: int = BRAX_EPISODE_STEPS


@dataclass(frozen=True)
class Box:
    """A continuous action space with gymnax's `low`, `high` and `shape`."""

    low: float
    high: float
    shape: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class BraxAdapter:
    """gymnax's `reset_env` / `step_env` / `is_truncated` / `action_space` over a Brax env.

    The environment state is (Brax State, steps taken in the episode).
    """

    env: Any

    def reset_env(self, key: jax.Array, params: BraxParams) -> tuple[jax.Array, Any]:
        state = _strong(self.env.reset(key))
        return state.obs, (state, jnp.int32(0))

    def step_env(
        self, key: jax.Array, state: Any, action: jax.Array, params: BraxParams
    ) -> tuple[jax.Array, Any, jax.Array, jax.Array, dict]:
        del key  # Brax's physics step is deterministic
        brax_state, steps = state
        brax_state = _strong(self.env.step(brax_state, action))
        steps = steps + 1
        # As in gymnax 1.0.1: `done` is the termination, the limit is `is_truncated`'s.
        return brax_state.obs, (brax_state, steps), brax_state.reward, brax_state.done > 0.5, {}

    def is_truncated(self, state: Any, params: BraxParams) -> jax.Array:
        return state[1] >= params.max_steps_in_episode

    def action_space(self, params: BraxParams) -> Box:
        return Box(-1.0, 1.0, (int(self.env.action_size),))


def _strong(tree: Any) -> Any:
    """Every leaf as an array of an explicit dtype: Brax steps may return Python floats (a
    constant reward) where reset returns arrays, which `lax.select` and scan carries reject."""
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.asarray(x).dtype), tree)


def parse_brax_id(env_id: str) -> tuple[str, str]:
    """(environment name, backend) of a `brax:` id.

    Raises:
        EnvError: unknown environment or backend.
    """
    name, _, backend = env_id[len(BRAX_PREFIX) :].partition("-")
    backend = backend or "generalized"
    if name not in BRAX_ENVS:
        raise EnvError(f"unknown brax environment {name!r}; choose one of: {', '.join(BRAX_ENVS)}")
    if backend not in BRAX_BACKENDS:
        raise EnvError(
            f"unknown brax backend {backend!r} in {env_id!r}; use brax:<env>-<backend> with "
            f"backend one of: {', '.join(BRAX_BACKENDS)}"
        )
    return name, backend


def make_brax(env_id: str, max_episode_steps: int | None = None) -> tuple[BraxAdapter, BraxParams]:
    """The gymnax-style (environment, parameters) of a `brax:` id."""
    name, backend = parse_brax_id(env_id)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # mujoco.mjx prints that warp is absent
            from brax import envs
    except ImportError:
        raise EnvError(f"environment {env_id!r} needs the 'brax' package; {BRAX_INSTALL}") from None
    with warnings.catch_warnings():  # Brax 0.14 warns on every load that MJX is maintained
        warnings.simplefilter("ignore", UserWarning)
        env = envs.get_environment(name, backend=backend)
    return BraxAdapter(env), BraxParams(max_episode_steps or BRAX_EPISODE_STEPS)
