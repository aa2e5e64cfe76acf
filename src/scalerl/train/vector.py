"""Several environments per seed (`--num-envs N`): the per-environment parts of the state.

Everything the agent learns is shared by a seed's environments; only what follows one episode
is per environment: the running discounted return behind SimbaV2's reward scale (Lee et al.
2025, section 4.1; `reward_stats.ret` gains a trailing axis of N, and every agent step merges
all N into the return statistics) and TD3/DDPG's coloured-noise sequence (`extras["noise"]`
gains an environment axis: environment i starts at row i L / N of the drawn sequence and draws
its own sequence at its own episode ends). The agent checkpoint that `scalerl evaluate` and
`--init-from` read keeps the single-environment layout (the first environment's).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from scalerl.agents.state import SACState


def with_env_axis(state: SACState, num_envs: int) -> SACState:
    """`state` (any leading seed axes) with one running return per environment (zeros).

    The identity for one environment, so single-environment runs keep their exact state.
    """
    if num_envs == 1:
        return state
    stats = state.reward_stats
    ret = jnp.zeros((*jnp.shape(stats.ret), num_envs), jnp.float32)
    state = state.replace(reward_stats=stats.replace(ret=ret))
    if "noise" not in state.extras:
        return state
    return state.replace(
        extras=state.extras | {"noise": _noise_per_env(state.extras["noise"], num_envs)}
    )


def _noise_per_env(noise: dict[str, Any], num_envs: int) -> dict[str, Any]:
    """One coloured-noise state per environment: the drawn sequence, entered at rows i L / N."""
    seq, idx = noise["seq"], noise["idx"]
    length = seq.shape[-2]
    seqs = jnp.broadcast_to(seq[..., None, :, :], (*seq.shape[:-2], num_envs, *seq.shape[-2:]))
    offsets = jnp.arange(num_envs, dtype=jnp.int32) * length // num_envs
    return {"seq": seqs, "idx": (idx[..., None] + offsets) % length}


def single_env_view(state: Any, num_envs: int) -> Any:
    """The single-environment layout of one seed's state (the first environment's return), as
    the agent checkpoint stores it."""
    if num_envs == 1:
        return state
    stats = state.reward_stats
    state = state.replace(reward_stats=stats.replace(ret=np.asarray(stats.ret)[..., 0]))
    if "noise" not in state.extras:
        return state
    noise = state.extras["noise"]
    first = {"seq": np.asarray(noise["seq"])[..., 0, :, :], "idx": np.asarray(noise["idx"])[..., 0]}
    return state.replace(extras=state.extras | {"noise": first})


def total_agent_steps(agent_steps: int, num_envs: int) -> int:
    """Agent steps a run makes: the budget's agent steps rounded down to whole loop steps of
    `num_envs` environments."""
    return agent_steps // num_envs * num_envs


def final_observations(next_obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """The true next observations of a vector step: the reset observations replaced by each
    ended episode's last one (``info["final_obs"]``), so a truncated transition bootstraps
    from where its episode stopped and none leads into the next episode."""
    ended = info.get("_final_obs")
    if ended is None or not np.any(ended):
        return next_obs
    out = np.array(next_obs, copy=True)
    out[ended] = np.stack(info["final_obs"][ended])
    return out
