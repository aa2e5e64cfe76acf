"""Convolutional torsos for pixel observations: Nature-DQN, IMPALA ResNet and MinAtar.

* Nature-DQN (Mnih et al. 2015, "Human-level control through deep reinforcement learning",
  Methods "Model architecture"): conv 32 8x8/4, conv 64 4x4/2, conv 64 3x3/1 (VALID), dense 512.
* IMPALA ResNet (Espeholt et al. 2018, "IMPALA", Fig. 3 right): three stages of 16, 32, 32
  channels; each stage is a 3x3/1 conv, a 3x3/2 max-pool and two residual blocks
  ``x + conv(relu(conv(relu(x))))``; then ReLU, flatten and dense 256.
* MinAtar (Young & Tian 2019, "MinAtar", §4): one conv 16 3x3/1 (VALID) and dense 128.

Every layer is labelled for `scalerl.plasticity.roles` by its name. The torso is one flat
module (call it ``torso``) whose convolutions are direct children, so key paths are
``torso/<layer>/kernel``. With ``layer_norm=True`` each conv and the dense layer are followed by
a LayerNorm over the channel axis (PQN, Gallici et al. 2025 §4; NaP step 1, Lyle et al. 2024
§4) and lose their bias; they are then named ``<layer>_pn`` with the norm ``<layer>_norm``, so
their kernels get the role ``hidden_kernel`` that NaP projects. A LayerNorm over channels at
every position makes the whole conv kernel scale-invariant (see docs/plasticity/nap.md).

Post-activation features are sown into ``intermediates`` as ``features_<layer>``
(``features_conv_0``, ..., ``features_dense``; IMPALA: ``features_block_s{i}_b{j}``, the ReLU inside
residual block j of stage i, and ``features_dense``), shaped (N, H, W, C) for convolutions:
channels are units, batch and spatial positions are samples (`scalerl.metrics.activity`,
`scalerl.plasticity.redo.conv_links`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from scalerl.networks.encoders import make_encoder

TorsoKind = Literal["nature", "impala", "minatar"]
TORSO_KINDS: tuple[str, ...] = ("nature", "impala", "minatar")
TRUNK_KINDS: tuple[str, ...] = ("none", "mlp", "simba", "simbav2", "msr")
PIXEL_SCALE = 1.0 / 255.0
"""uint8 frames are multiplied by this, mapping [0, 255] to [0, 1] (Mnih et al. 2015)."""


@dataclasses.dataclass(frozen=True)
class TorsoConfig:
    """A convolutional torso and the optional dense trunk on its flattened features."""

    kind: TorsoKind = "nature"
    """Conv torso: nature (Mnih et al. 2015), impala (Espeholt et al. 2018) or minatar."""
    layer_norm: bool = False
    """LayerNorm over channels before every nonlinearity, biases dropped (PQN; needed by NaP)."""
    trunk: str = "none"
    """Dense trunk on the flat conv features (mlp, simba, simbav2, msr); none = torso's dense."""
    trunk_width: int = 512
    """Width of the dense trunk (ignored when trunk is none)."""
    trunk_depth: int = 1
    """Layers (mlp) or residual blocks (simba, simbav2, msr) of the dense trunk."""
    dense_features: int | None = None
    """Width of the torso's dense layer; None = paper's (nature 512, impala 256, minatar 128)."""


DENSE_FEATURES = {"nature": 512, "impala": 256, "minatar": 128}
"""Width of each torso's final dense layer in its paper."""


def scale_frames(x: jax.Array) -> jax.Array:
    """Frames as float32: uint8 pixels scaled to [0, 1], other dtypes cast unchanged."""
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) * PIXEL_SCALE
    return x.astype(jnp.float32)


class ConvTorso(nn.Module):
    """One of the three torsos, flat: convs are direct children (module docstring).

    Input (N, H, W, C) frames (uint8 are scaled to [0, 1]); output (N, D) features: after the
    dense layer and its ReLU when `dense_features` is set, else the flattened conv features.
    """

    kind: TorsoKind = "nature"
    layer_norm: bool = False
    dense_features: int | None = 512
    dtype: jnp.dtype | None = None

    def _layer(
        self,
        x: jax.Array,
        name: str,
        features: int,
        kernel: int,
        stride: int,
        padding: str = "VALID",
    ) -> jax.Array:
        """Conv (+ LayerNorm when `layer_norm`), no nonlinearity."""
        init = nn.initializers.orthogonal(math.sqrt(2.0))
        conv_name = f"{name}_pn" if self.layer_norm else name
        x = nn.Conv(
            features,
            (kernel, kernel),
            (stride, stride),
            padding,
            use_bias=not self.layer_norm,
            kernel_init=init,
            dtype=self.dtype,
            name=conv_name,
        )(x)
        return nn.LayerNorm(dtype=self.dtype, name=f"{name}_norm")(x) if self.layer_norm else x

    def _relu(self, x: jax.Array, name: str) -> jax.Array:
        """ReLU, sown as the post-activation features of layer `name`."""
        x = nn.relu(x)
        self.sow("intermediates", f"features_{name}", x)
        return x

    def _dense(self, x: jax.Array) -> jax.Array:
        """Flatten, then the torso's dense layer and ReLU (if `dense_features`)."""
        x = x.reshape((x.shape[0], -1))
        if self.dense_features is None:
            return x
        init = nn.initializers.orthogonal(math.sqrt(2.0))
        name = "dense_pn" if self.layer_norm else "dense"
        x = nn.Dense(
            self.dense_features, not self.layer_norm, dtype=self.dtype, kernel_init=init, name=name
        )(x)
        if self.layer_norm:
            x = nn.LayerNorm(dtype=self.dtype, name="dense_norm")(x)
        return self._relu(x, "dense")

    def _nature(self, x: jax.Array) -> jax.Array:
        for i, (features, kernel, stride) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
            x = self._relu(self._layer(x, f"conv_{i}", features, kernel, stride), f"conv_{i}")
        return x

    def _impala(self, x: jax.Array) -> jax.Array:
        for s, channels in enumerate((16, 32, 32)):
            x = self._layer(x, f"s{s}_conv", channels, 3, 1, "SAME")
            x = nn.max_pool(x, (3, 3), (2, 2), "SAME")
            for b in range(2):
                y = self._layer(nn.relu(x), f"s{s}_b{b}_conv_0", channels, 3, 1, "SAME")
                y = self._relu(y, f"block_s{s}_b{b}")
                x = x + self._layer(y, f"s{s}_b{b}_conv_1", channels, 3, 1, "SAME")
        return nn.relu(x)

    def _minatar(self, x: jax.Array) -> jax.Array:
        return self._relu(self._layer(x, "conv_0", 16, 3, 1), "conv_0")

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"ConvTorso needs (N, H, W, C) frames, got shape {x.shape}")
        body = {"nature": self._nature, "impala": self._impala, "minatar": self._minatar}
        return self._dense(body[self.kind](scale_frames(x)))


def make_torso(cfg: TorsoConfig, dtype: jnp.dtype | None = None) -> ConvTorso:
    """The torso of `cfg`, named ``torso`` (call inside a compact method).

    With a dense trunk the torso ends at the flattened conv features (the trunk's first layer
    takes the dense layer's place, as in Castanyer et al. 2025 §4.1); without one it keeps the
    paper's dense layer.
    """
    if cfg.kind not in TORSO_KINDS:
        raise ValueError(f"unknown torso {cfg.kind!r}; use one of {TORSO_KINDS}")
    dense = cfg.dense_features or DENSE_FEATURES[cfg.kind]
    dense = dense if cfg.trunk == "none" else None
    return ConvTorso(cfg.kind, cfg.layer_norm, dense, dtype=dtype, name="torso")


def conv_body(cfg: TorsoConfig, x: jax.Array, dtype: jnp.dtype | None = None) -> jax.Array:
    """Torso, then the dense trunk (named ``encoder``) if any: call inside a compact method.

    The trunk is `scalerl.networks.encoders.make_encoder`'s network; with ``layer_norm`` it
    gets ``hidden_norm`` too. Parameters land in the caller's scope as ``torso/...`` and
    ``encoder/...``, so plasticity roles, `mlp_links` and `sown_features` apply unchanged.
    """
    if cfg.trunk not in TRUNK_KINDS:
        raise ValueError(f"unknown trunk {cfg.trunk!r}; use one of {TRUNK_KINDS}")
    z = make_torso(cfg, dtype)(x)
    if cfg.trunk == "none":
        return z
    trunk = make_encoder(cfg.trunk, cfg.trunk_width, cfg.trunk_depth, 3.0, dtype, cfg.layer_norm)
    return trunk(z)


class ConvNetwork(nn.Module):
    """Stand-alone feature network: `conv_body` as a module (groups ``torso``, ``encoder``)."""

    cfg: TorsoConfig = TorsoConfig()
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return conv_body(self.cfg, x, self.dtype)
