"""Actor and (ensemble) critic modules assembled from an encoder and a head."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from scalerl.networks.encoders import make_encoder
from scalerl.networks.heads import TanhGaussianHead, ValueHead


class Actor(nn.Module):
    """Policy network: observation -> (mean, log_std) of a tanh-Gaussian."""

    kind: str
    width: int
    depth: int
    action_dim: int
    c_shift: float = 3.0
    dtype: jnp.dtype | None = None
    hidden_norm: bool = False
    nap: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        args = (self.c_shift, self.dtype, self.hidden_norm, self.nap)
        z = make_encoder(self.kind, self.width, self.depth, *args)(obs)
        head = TanhGaussianHead(
            self.action_dim, self.kind == "simbav2", self.width, self.dtype, name="head"
        )
        return head(z)


class Critic(nn.Module):
    """One Q-network: (observation, action) -> value logits (num_bins) or scalar (num_bins=1)."""

    kind: str
    width: int
    depth: int
    num_bins: int
    c_shift: float = 3.0
    dtype: jnp.dtype | None = None
    hidden_norm: bool = False
    nap: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        args = (self.c_shift, self.dtype, self.hidden_norm, self.nap)
        z = make_encoder(self.kind, self.width, self.depth, *args)(x)
        head = ValueHead(self.num_bins, self.kind == "simbav2", self.width, self.dtype, name="head")
        return head(z)
