"""The algorithms by name, and the one place that dispatches on `AgentConfig.algo`."""

from __future__ import annotations

from scalerl.agents.actor_critic import ActorCritic
from scalerl.agents.ddpg import DDPG
from scalerl.agents.sac import SAC
from scalerl.agents.td3 import TD3
from scalerl.config import AgentConfig
from scalerl.errors import ConfigError

ALGORITHMS: dict[str, type[ActorCritic]] = {"sac": SAC, "td3": TD3, "ddpg": DDPG}
"""Off-policy actor-critic algorithms, keyed by `AgentConfig.algo`."""


def make_agent(
    cfg: AgentConfig, obs_dim: int, action_dim: int, decay_steps: int = 1
) -> ActorCritic:
    """Build the agent `cfg.algo` names from a resolved config.

    Args:
        cfg: agent config with gamma and use_cdq resolved (see `scalerl.train.setup.resolve`).
        obs_dim: observation size d_o.
        action_dim: action size d_a (actions in [-1, 1]).
        decay_steps: length of the learning-rate decay in updates.

    Raises:
        ValueError: gamma or use_cdq is still None (auto).
        ConfigError: unknown algorithm.
    """
    if cfg.gamma is None or cfg.use_cdq is None:
        raise ValueError("resolve gamma and use_cdq before make_agent (see train.setup)")
    if cfg.algo not in ALGORITHMS:
        names = ", ".join(ALGORITHMS)
        raise ConfigError(f"unknown algo {cfg.algo!r}; choose one of {names}")
    return ALGORITHMS[cfg.algo].build(cfg, obs_dim, action_dim, decay_steps)
