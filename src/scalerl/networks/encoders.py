"""Feature encoders of the three network families: SimbaV2, SimBa and a plain MLP."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from scalerl.config import simbav2_alpha_init, simbav2_alpha_scale, simbav2_scaler_init
from scalerl.networks.layers import (
    HyperEmbedder,
    HyperLERPBlock,
    MultiSkipBlock,
    PreNormDense,
    ResidualBlock,
)


class SimbaV2Encoder(nn.Module):
    """HyperEmbedder followed by L HyperLERP blocks (SimbaV2 §4)."""

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
    """Dense embedding, L pre-LN residual blocks, final LayerNorm (SimBa §4)."""

    width: int
    depth: int
    hidden_norm: bool = False
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = nn.initializers.orthogonal(1.0)
        h = nn.Dense(self.width, kernel_init=init, dtype=self.dtype, name="embedder")(x)
        for i in range(self.depth):
            block = ResidualBlock(
                self.width, hidden_norm=self.hidden_norm, dtype=self.dtype, name=f"block_{i}"
            )
            h = block(h)
        return nn.LayerNorm(dtype=self.dtype, name="final_norm")(h)


class MLPEncoder(nn.Module):
    """`depth` x (Dense(width), ReLU) with orthogonal sqrt(2) init: the usual SAC baseline.

    `hidden_norm=True` puts a LayerNorm between each Dense and its ReLU and drops the Dense bias
    (NaP step 1); the Dense layers are then named `dense_{i}_pn`.
    """

    width: int
    depth: int
    hidden_norm: bool = False
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = nn.initializers.orthogonal(math.sqrt(2.0))
        for i in range(self.depth):
            if self.hidden_norm:
                x = PreNormDense(self.width, False, dtype=self.dtype, name=f"dense_{i}_pn")(x)
            else:
                x = nn.Dense(self.width, kernel_init=init, dtype=self.dtype, name=f"dense_{i}")(x)
            x = nn.relu(x)
            self.sow("intermediates", f"features_{i}", x)
        return x


class MultiSkipEncoder(nn.Module):
    """Multi-skip residual MLP (Castanyer et al. 2025 §4.1).

    h_0 = LN(W_0 x + b_0); h_l = r_l(h_{l-1}) + h_{l-1} + h_0 (local and global skip);
    y = LN(W_out h_L + b_out). Every kernel feeds a LayerNorm, so NaP can project all of them;
    `hidden_norm` is inherent. Under NaP (`use_bias=False`) the biases are dropped.
    """

    width: int
    depth: int
    use_bias: bool = True
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h0 = PreNormDense(self.width, self.use_bias, dtype=self.dtype, name="embed")(x)
        h = h0
        for i in range(self.depth):
            block = MultiSkipBlock(self.width, self.use_bias, dtype=self.dtype, name=f"block_{i}")
            h = block(h) + h + h0
            self.sow("intermediates", "features", h)
        return PreNormDense(self.width, self.use_bias, dtype=self.dtype, name="out")(h)


def make_encoder(
    kind: str,
    width: int,
    depth: int,
    c_shift: float,
    dtype: jnp.dtype | None,
    hidden_norm: bool = False,
    nap: bool = False,
) -> nn.Module:
    """The encoder of a network family, named `encoder` (call inside a compact method).

    `hidden_norm` adds LayerNorm before each hidden nonlinearity (MLP, SimBa); `nap` implies it
    and drops the biases made redundant by the norms.
    """
    hidden_norm = hidden_norm or nap
    if kind == "simbav2":
        return SimbaV2Encoder(width, depth, c_shift, dtype=dtype, name="encoder")
    if kind == "simba":
        return SimbaEncoder(width, depth, hidden_norm, dtype=dtype, name="encoder")
    if kind == "mlp":
        return MLPEncoder(width, depth, hidden_norm, dtype=dtype, name="encoder")
    if kind == "msr":
        return MultiSkipEncoder(width, depth, not nap, dtype=dtype, name="encoder")
    raise ValueError(f"unknown network kind {kind!r}")
