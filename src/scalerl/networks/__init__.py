"""Networks: SimbaV2 (hyperspherical), SimBa (pre-LN residual) and MLP actors and critics."""

from scalerl.networks.actor_critic import Actor, Critic
from scalerl.networks.projection import is_projected_kernel, project_kernels

__all__ = ["Actor", "Critic", "is_projected_kernel", "project_kernels"]
