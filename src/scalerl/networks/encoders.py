"""Feature encoders of the three network families: SimbaV2, SimBa and a plain MLP."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from scalerl.config import simbav2_alpha_init, simbav2_alpha_scale, simbav2_scaler_init
from scalerl.networks.layers import HyperEmbedder, HyperLERPBlock, ResidualBlock


class SimbaV2Encoder(nn.Module):
    """HyperEmbedder followed by L HyperLERP blocks (SimbaV2 §4, spec 1.5-1.6, constants 1.10)."""

    width: int
    depth: int
    c_shift: float = 3.0
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        s = simbav2_scaler_init(self.width)
        z = HyperEmbedder(self.width, s, s, self.c_shift, dtype=self.dtype, name="embedder")(x)
        alpha_init = simbav2_alpha_init(self.depth)
        alpha_scale = simbav2_alpha_scale(self.width)
        for i in range(self.depth):
            block = HyperLERPBlock(
                self.width, s, s, alpha_init, alpha_scale, dtype=self.dtype, name=f"block_{i}"
            )
            z = block(z)
        return z


class SimbaEncoder(nn.Module):
    """Dense embedding, L pre-LN residual blocks, final LayerNorm (SimBa §4, spec 5.1)."""

    width: int
    depth: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = nn.initializers.orthogonal(1.0)
        h = nn.Dense(self.width, kernel_init=init, dtype=self.dtype, name="embedder")(x)
        for i in range(self.depth):
            h = ResidualBlock(self.width, dtype=self.dtype, name=f"block_{i}")(h)
        return nn.LayerNorm(dtype=self.dtype, name="final_norm")(h)


class MLPEncoder(nn.Module):
    """`depth` x (Dense(width), ReLU) with orthogonal sqrt(2) init: the usual SAC baseline."""

    width: int
    depth: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = nn.initializers.orthogonal(math.sqrt(2.0))
        for i in range(self.depth):
            x = nn.relu(
                nn.Dense(self.width, kernel_init=init, dtype=self.dtype, name=f"dense_{i}")(x)
            )
            self.sow("intermediates", f"features_{i}", x)
        return x


def make_encoder(
    kind: str, width: int, depth: int, c_shift: float, dtype: jnp.dtype | None
) -> nn.Module:
    """The encoder of a network family, named `encoder` (call inside a compact method)."""
    if kind == "simbav2":
        return SimbaV2Encoder(width, depth, c_shift, dtype=dtype, name="encoder")
    if kind == "simba":
        return SimbaEncoder(width, depth, dtype=dtype, name="encoder")
    if kind == "mlp":
        return MLPEncoder(width, depth, dtype=dtype, name="encoder")
    raise ValueError(f"unknown network kind {kind!r}")
