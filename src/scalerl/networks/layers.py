"""Building blocks: hyperspherical layers (SimbaV2) and pre-LayerNorm residual blocks (SimBa).

Equations follow Lee et al., "Hyperspherical Normalization for Scalable Deep Reinforcement
Learning" (SimbaV2, ICML 2025) §4 and Lee et al., "SimBa" (ICLR 2025) §4; the implementation
details follow the SimbaV2 paper (Lee et al. 2025, §4) and SimBa (Lee et al. 2024, §4).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

NORM_EPS = 1e-8
"""Floor on the Euclidean norm in l2normalize."""
RELU_EPS = 1e-8
"""Added to every unit after the ReLU in the HyperMLP, preventing an all-zero vector."""
PROJECTED_MODULE = "hyper_dense"
"""Kernels under modules of this name are projected onto the unit sphere."""


def l2normalize(x: jax.Array, axis: int = -1) -> jax.Array:
    """x / max(||x||, 1e-8) along `axis`."""
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
    return x / jnp.maximum(norm, NORM_EPS)


class HyperDense(nn.Module):
    """Bias-free linear map whose fan-in weight vectors live on the unit sphere (SimbaV2 eq. 4).

    The kernel is initialised orthogonally; the agent projects it (`project_kernels`) once after
    init and after every optimizer step, so each output unit's weight vector has unit norm.
    """

    features: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = nn.initializers.orthogonal(scale=1.0, column_axis=0)
        dense = nn.Dense(
            self.features, use_bias=False, kernel_init=init, dtype=self.dtype, name=PROJECTED_MODULE
        )
        return dense(x)


class Scaler(nn.Module):
    """Learnable per-channel scale with a decoupled effective learning rate (SimbaV2 eq. 5).

    The parameter theta starts at `scale_value`; the forward pass multiplies by
    theta * init_value / scale_value, so the effective value starts at `init_value` while
    Adam's step size acts on theta's magnitude.
    """

    dim: int
    init_value: float = 1.0
    scale_value: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        theta = self.param("scaler", nn.initializers.constant(self.scale_value), (self.dim,))
        return theta.astype(x.dtype) * x * (self.init_value / self.scale_value)


class HyperEmbedder(nn.Module):
    """Shift, project to the sphere, embed, scale, normalise (SimbaV2 §4.1)."""

    width: int
    scaler_init: float
    scaler_scale: float
    c_shift: float = 3.0
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shift = jnp.full((*x.shape[:-1], 1), self.c_shift, dtype=x.dtype)
        x = l2normalize(jnp.concatenate([x, shift], axis=-1))
        u = HyperDense(self.width, dtype=self.dtype, name="w")(x)
        u = Scaler(self.width, self.scaler_init, self.scaler_scale, name="scaler")(u)
        return l2normalize(u)


class HyperMLP(nn.Module):
    """Inverted-bottleneck MLP on the sphere: dense(4h) -> Scaler -> ReLU+eps -> dense(h) -> l2."""

    width: int
    hidden: int
    scaler_init: float
    scaler_scale: float
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        v = HyperDense(self.hidden, dtype=self.dtype, name="w1")(z)
        v = Scaler(self.hidden, self.scaler_init, self.scaler_scale, name="scaler")(v)
        v = nn.relu(v) + RELU_EPS
        v = HyperDense(self.width, dtype=self.dtype, name="w2")(v)
        return l2normalize(v)


class HyperLERPBlock(nn.Module):
    """Residual block as a LERP on the sphere: l2(z + alpha * (MLP(z) - z)) (SimbaV2 eq. 7).

    The block MLP uses expansion 4 and divides both Scaler constants by sqrt(4).
    """

    width: int
    scaler_init: float
    scaler_scale: float
    alpha_init: float
    alpha_scale: float
    expansion: int = 4
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        root = math.sqrt(self.expansion)
        m = HyperMLP(
            self.width,
            self.width * self.expansion,
            self.scaler_init / root,
            self.scaler_scale / root,
            dtype=self.dtype,
            name="mlp",
        )(z)
        alpha = Scaler(self.width, self.alpha_init, self.alpha_scale, name="alpha_scaler")
        out = l2normalize(z + alpha(m - z))
        self.sow("intermediates", "features", out)
        return out


class ResidualBlock(nn.Module):
    """SimBa pre-LayerNorm residual feed-forward block: h + W2 relu(W1 LN(h)) (SimBa §4).

    `hidden_norm=True` inserts a LayerNorm between W1 and the ReLU and drops W1's bias (NaP step
    1); W1 is then named `dense_0_pn` so NaP can find and project it.
    """

    width: int
    expansion: int = 4
    hidden_norm: bool = False
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        he = nn.initializers.he_normal()
        y = nn.LayerNorm(dtype=self.dtype)(h)
        if self.hidden_norm:
            y = nn.Dense(
                self.width * self.expansion,
                False,
                kernel_init=he,
                dtype=self.dtype,
                name="dense_0_pn",
            )(y)
            y = nn.LayerNorm(dtype=self.dtype, name="norm_0")(y)
        else:
            y = nn.Dense(self.width * self.expansion, kernel_init=he, dtype=self.dtype)(y)
        y = nn.Dense(self.width, kernel_init=he, dtype=self.dtype)(nn.relu(y))
        out = h + y
        self.sow("intermediates", "features", out)
        return out


class PreNormDense(nn.Module):
    """Dense (named `dense_pn`) followed by LayerNorm `norm`: a NaP-projectable pair.

    The bias is dropped when `use_bias=False` (NaP: LayerNorm's offset plays its role).
    """

    features: int
    use_bias: bool = True
    scale: float = math.sqrt(2.0)
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = nn.initializers.orthogonal(self.scale)
        dense = nn.Dense(
            self.features, self.use_bias, kernel_init=init, dtype=self.dtype, name="dense_pn"
        )
        return nn.LayerNorm(dtype=self.dtype, name="norm")(dense(x))


class MultiSkipBlock(nn.Module):
    """r(h) = LN(W2 relu(LN(W1 relu(h) + b1)) + b2) (Castanyer et al. 2025 §4.1)."""

    width: int
    use_bias: bool = True
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        y = PreNormDense(self.width, self.use_bias, dtype=self.dtype, name="fc1")(nn.relu(h))
        return PreNormDense(self.width, self.use_bias, dtype=self.dtype, name="fc2")(nn.relu(y))
