"""JAX-native environments (gymnax, Craftax-Classic, Brax) as pure reset/step functions.

Ids: `gymnax:<id>` (every id of `gymnax.registered_envs`, e.g. gymnax:CartPole-v1,
gymnax:Breakout-MinAtar), `craftax:Craftax-Classic-Symbolic-v1` and `brax:<env>[-<backend>]`
(see `scalerl.envs.brax_env`). Every step resets finished
episodes automatically and reports `terminated` (a true end: no bootstrap) and `truncated`
(the time limit: bootstrap from `final_obs`) separately. Observations are flattened to float32
vectors; continuous actions are taken in [-1, 1] and rescaled to the space's bounds.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from scalerl.envs.brax_env import (
    BRAX_EPISODE_STEPS,
    BRAX_INSTALL,
    BRAX_PREFIX,
    make_brax,
    parse_brax_id,
)
from scalerl.errors import EnvError

GYMNAX_PREFIX = "gymnax:"
CRAFTAX_PREFIX = "craftax:"
CRAFTAX_IDS = ("Craftax-Classic-Symbolic-v1",)
"""Craftax ids served (the full Craftax env takes very long to compile on CPU)."""
CRAFTAX_RESET_RATIO = 16
"""Craftax environments per generated new world in a batched step (the Craftax baselines' 16)."""
INSTALL = {
    "gymnax": 'pip install -e ".[gymnax]" in a checkout (gymnax 1.0.1 and six)',
    "craftax": 'pip install -e ".[craftax]" in a checkout (craftax 1.6.1)',
    "craftax.craftax_env": 'pip install -e ".[craftax]" in a checkout (craftax 1.6.1)',
    "brax": BRAX_INSTALL,
}
GYMNAX_IDS = (
    "CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
    "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar", "Catch-bsuite", "DeepSea-bsuite", "MemoryChain-bsuite",
    "UmbrellaChain-bsuite", "DiscountingChain-bsuite", "MNISTBandit-bsuite",
    "SimpleBandit-bsuite", "FourRooms-misc", "MetaMaze-misc", "PointRobot-misc",
    "BernoulliBandit-misc", "GaussianBandit-misc", "Reacher-misc", "Swimmer-misc", "Pong-misc",
    "FrozenLake-misc",
)  # fmt: skip
"""gymnax 1.0.1's registered ids (listed by `scalerl envs` without importing gymnax)."""
GYMNAX_CONTINUOUS = (
    "Pendulum-v1", "MountainCarContinuous-v0", "PointRobot-misc", "Reacher-misc", "Swimmer-misc",
)  # fmt: skip
"""gymnax ids with continuous actions (SAC, TD3 and DDPG train them in their fused loop)."""


def is_jax_env(env_id: str) -> bool:
    """Whether `env_id` names a JAX-native environment (gymnax:, craftax: or brax: prefix)."""
    return env_id.startswith((GYMNAX_PREFIX, CRAFTAX_PREFIX, BRAX_PREFIX))


def is_continuous_jax_env(env_id: str) -> bool:
    """Whether `env_id` is a brax: id or a gymnax id with continuous actions."""
    if env_id.startswith(BRAX_PREFIX):
        return True
    return env_id.startswith(GYMNAX_PREFIX) and env_id[len(GYMNAX_PREFIX) :] in GYMNAX_CONTINUOUS


def validate_jax_id(env_id: str) -> None:
    """Raise EnvError for a JAX-native id whose name is unknown (without importing its package)."""
    if env_id.startswith(BRAX_PREFIX):
        parse_brax_id(env_id)
        return
    prefix, known = (
        (GYMNAX_PREFIX, GYMNAX_IDS) if env_id.startswith(GYMNAX_PREFIX) else
        (CRAFTAX_PREFIX, CRAFTAX_IDS)
    )  # fmt: skip
    if env_id[len(prefix) :] not in known:
        raise EnvError(f"unknown id {env_id!r}; choose one of: {', '.join(known)}")


@dataclass(frozen=True)
class StepOut:
    """What one auto-resetting step returns besides the new environment state."""

    obs: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    info: dict[str, jax.Array]


jax.tree_util.register_dataclass(
    StepOut, data_fields=["obs", "reward", "terminated", "truncated", "final_obs", "info"],
    meta_fields=[],
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class JaxEnv:
    """A pure, auto-resetting environment: `reset(key)` and `step(key, state, action)`.

    Attributes:
        env_id: the scalerl id.
        env: the gymnax / Craftax environment object (or a Brax env behind `BraxAdapter`).
        params: its environment parameters.
        obs_dim: size of the flattened observation.
        discrete: discrete actions (else continuous in [-1, 1]).
        num_actions: number of discrete actions, or the action dimension.
        low, high: bounds of continuous actions (None for discrete).
        info_keys: per-episode info reported at episode ends (Craftax achievements).
        reset_ratio: environments per generated new episode in `step_batch` (1: one each).
    """

    env_id: str
    env: Any
    params: Any
    obs_dim: int
    discrete: bool
    num_actions: int
    low: Any = None
    high: Any = None
    info_keys: tuple[str, ...] = ()
    reset_ratio: int = 1

    def reset(self, key: jax.Array) -> tuple[Any, jax.Array]:
        """(environment state, flat observation) of a new episode."""
        obs, state = self.env.reset_env(key, self.params)
        return state, _flat(obs)

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> tuple[Any, StepOut]:
        """One step; a finished episode is replaced by a new one (its last observation is
        `final_obs`)."""
        key_step, key_reset = jax.random.split(key)
        stepped = self._advance(key_step, state, action)
        return _replace_finished(stepped, self.reset(key_reset))

    def step_batch(self, keys: jax.Array, states: Any, actions: jax.Array) -> tuple[Any, StepOut]:
        """`step` of N environments at once (leading axis N of every argument).

        With `reset_ratio` 1 this is `vmap(step)`: every environment draws its own new episode.
        With `reset_ratio` r > 1 only ceil(N / r) new episodes are generated per step and the
        j-th environment that finished takes new episode j mod ceil(N / r) (the optimistic
        resets of the Craftax baselines, Matthews et al. 2024): generating a Craftax world costs
        far more than a step, and under `vmap` a reset is computed whether or not it is used.
        Starts repeat only when more than ceil(N / r) episodes end in the same step.
        """
        if self.reset_ratio == 1:
            return jax.vmap(self.step)(keys, states, actions)
        split = jax.vmap(jax.random.split)(keys)
        stepped = jax.vmap(self._advance)(split[:, 0], states, actions)
        count = -(-keys.shape[0] // self.reset_ratio)
        fresh = jax.vmap(self.reset)(split[:count, 1])
        end = jnp.logical_or(stepped[1].terminated, stepped[1].truncated)
        pick = (jnp.cumsum(end) - 1) % count
        fresh = jax.tree_util.tree_map(lambda x: x[pick], fresh)
        return jax.vmap(_replace_finished)(stepped, fresh)

    def _advance(self, key: jax.Array, state: Any, action: jax.Array) -> tuple[Any, StepOut]:
        """One step without the reset: (stepped state, StepOut with obs = final_obs)."""
        obs_st, state_st, reward, done, info = self.env.step_env(
            key, state, self._env_action(action), self.params
        )
        terminated, truncated = self._split_done(state_st, jnp.asarray(done))
        final = _flat(obs_st)
        kept = {k: jnp.asarray(info[k], jnp.float32) for k in self.info_keys}
        reward = jnp.asarray(reward, jnp.float32)
        return state_st, StepOut(final, reward, terminated, truncated, final, kept)

    def _env_action(self, action: jax.Array) -> jax.Array:
        if self.discrete:
            return action
        return self.low + (action + 1.0) * 0.5 * (self.high - self.low)

    def _split_done(self, state: Any, done: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(terminated, truncated) of a step whose env reported `done`."""
        if self.env_id.startswith(CRAFTAX_PREFIX):
            from craftax.craftax_classic.game_logic import is_game_over

            alive_params = self.params.replace(max_timesteps=2**30)
            terminated = jnp.logical_and(done, is_game_over(state, alive_params))
            return terminated, jnp.logical_and(done, jnp.logical_not(terminated))
        truncated = self.env.is_truncated(state, self.params)
        return done, jnp.logical_and(truncated, jnp.logical_not(done))


def _replace_finished(stepped: tuple[Any, StepOut], fresh: tuple[Any, jax.Array]):
    """Swap a finished episode's state and observation for the new episode's."""
    state_st, out = stepped
    state_re, obs_re = fresh
    end = jnp.logical_or(out.terminated, out.truncated)
    new_state = jax.tree_util.tree_map(lambda r, s: jax.lax.select(end, r, s), state_re, state_st)
    return new_state, dataclasses.replace(out, obs=jnp.where(end, obs_re, out.final_obs))


def _flat(obs: Any) -> jax.Array:
    return jnp.asarray(obs, jnp.float32).reshape(-1)


def _import(module: str, env_id: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise EnvError(
            f"environment {env_id!r} needs the '{module}' package; {INSTALL[module]}"
        ) from None


def make_jax_env(env_id: str, max_episode_steps: int | None = None) -> JaxEnv:
    """The JAX-native environment of a `gymnax:`, `craftax:` or `brax:` id.

    Args:
        env_id: the id.
        max_episode_steps: a gymnax or Brax episode limit replacing the environment's own (None
            keeps it).

    Raises:
        EnvError: unknown id or missing package.
    """
    if env_id.startswith(CRAFTAX_PREFIX):
        return _make_craftax(env_id)
    if env_id.startswith(BRAX_PREFIX):
        return _wrap(env_id, *make_brax(env_id, max_episode_steps))
    if not env_id.startswith(GYMNAX_PREFIX):
        raise EnvError(
            f"{env_id!r} is not a JAX-native id; use gymnax:<id>, craftax:<id> or brax:<env>"
        )
    gymnax = _import("gymnax", env_id)
    name = env_id[len(GYMNAX_PREFIX) :]
    if name not in gymnax.registered_envs:
        known = ", ".join(sorted(set(gymnax.registered_envs)))
        raise EnvError(f"unknown gymnax id {name!r}; choose one of: {known}")
    env, params = gymnax.make(name)
    if max_episode_steps is not None:
        params = params.replace(max_steps_in_episode=max_episode_steps)
    return _wrap(env_id, env, params)


def episode_limit(env_id: str) -> int:
    """The episode limit (steps) of a gymnax or Brax id's default parameters."""
    if env_id.startswith(BRAX_PREFIX):
        return BRAX_EPISODE_STEPS
    return int(make_jax_env(env_id).params.max_steps_in_episode)


def _wrap(
    env_id: str, env: Any, params: Any, info_keys: tuple[str, ...] = (), reset_ratio: int = 1
) -> JaxEnv:
    obs, _ = jax.eval_shape(env.reset_env, jax.random.PRNGKey(0), params)
    obs_dim = int(obs.size)
    space = env.action_space(params)
    if hasattr(space, "n"):
        return JaxEnv(
            env_id,
            env,
            params,
            obs_dim,
            True,
            int(space.n),
            info_keys=info_keys,
            reset_ratio=reset_ratio,
        )
    low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), space.shape)
    high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), space.shape)
    dim = int(max(1, jnp.asarray(low).size))
    return JaxEnv(env_id, env, params, obs_dim, False, dim, low.reshape(dim), high.reshape(dim))


def craftax_achievements() -> tuple[str, ...]:
    """Info keys of Craftax-Classic's 22 achievements (`Achievements/<name>`)."""
    from craftax.craftax_classic.constants import Achievement

    return tuple(f"Achievements/{a.name.lower()}" for a in Achievement)


def check_jax_env(env_id: str) -> None:
    """Build `env_id`, reset it and take one step (raises on failure)."""
    env = make_jax_env(env_id)
    state, _ = env.reset(jax.random.PRNGKey(0))
    action = jnp.int32(0) if env.discrete else jnp.zeros((env.num_actions,))
    env.step(jax.random.PRNGKey(1), state, action)


def _make_craftax(env_id: str) -> JaxEnv:
    name = env_id[len(CRAFTAX_PREFIX) :]
    if name not in CRAFTAX_IDS:
        raise EnvError(f"unknown craftax id {name!r}; choose one of: {', '.join(CRAFTAX_IDS)}")
    craftax_env = _import("craftax.craftax_env", env_id)
    env = craftax_env.make_craftax_env_from_name(name, auto_reset=False)
    return _wrap(env_id, env, env.default_params, craftax_achievements(), CRAFTAX_RESET_RATIO)
