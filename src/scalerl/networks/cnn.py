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

Convolution code (``conv_impl``): on the CPU backend XLA runs a convolution's gradient inside
``lax.scan`` many times slower than outside one, and the fused PQN/DQN loops update inside a
scan. `PatchConv` computes the same convolution as static-slice image patches times one matrix,
with `nn.Conv`'s parameter names, shapes and initialisers, so every path above is unchanged.
``auto`` (the default) picks patches on CPU and XLA's convolution on GPU/TPU. Measured with
``benchmarks/conv_scan.py`` (scan of 8 SGD steps, batch 32, busy 2-core CPU, so only the ratios
are indicative): xla / patches = 3.6 (minatar, 25.5 vs 7.1 ms), 8.0 (nature, 5.7 vs 0.72 s),
8.2 (impala, 90.5 vs 11.1 s); patches win for every kind, so `AUTO_PATCHES_ON_CPU` is all True.
`jax.lax.conv_general_dilated_patches` was slower than slices in the scan (MinAtar 17 vs 2.2 ms,
Nature 740 vs 481 ms for the bare conv stack), so slices are used.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype

from scalerl.networks.encoders import make_encoder

TorsoKind = Literal["nature", "impala", "minatar"]
ConvImpl = Literal["auto", "xla", "patches"]
CONV_IMPLS: tuple[str, ...] = ("auto", "xla", "patches")
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
    conv_impl: ConvImpl = "auto"
    """Conv code: xla (lax conv), patches (`PatchConv`), auto (patches on CPU, else xla)."""


DENSE_FEATURES = {"nature": 512, "impala": 256, "minatar": 128}
"""Width of each torso's final dense layer in its paper."""


def scale_frames(x: jax.Array) -> jax.Array:
    """Frames as float32: uint8 pixels scaled to [0, 1], other dtypes cast unchanged."""
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) * PIXEL_SCALE
    return x.astype(jnp.float32)


AUTO_PATCHES_ON_CPU: dict[str, bool] = {"nature": True, "impala": True, "minatar": True}
"""Per torso kind, whether ``conv_impl="auto"`` picks patches on CPU (measured, module doc)."""


def resolve_conv_impl(impl: str, kind: str, backend: str | None = None) -> str:
    """``xla`` or ``patches`` for `impl` on `backend` (default: `jax.default_backend()`).

    ``auto`` means patches on the CPU backend when `AUTO_PATCHES_ON_CPU` says so for `kind`,
    and XLA's convolution elsewhere (GPU and TPU convolutions are fast inside ``lax.scan``).
    """
    if impl not in CONV_IMPLS:
        raise ValueError(f"unknown conv_impl {impl!r}; use one of {CONV_IMPLS}")
    if impl != "auto":
        return impl
    backend = jax.default_backend() if backend is None else backend
    return "patches" if backend == "cpu" and AUTO_PATCHES_ON_CPU.get(kind, False) else "xla"


def conv_pads(
    spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int], padding: str
) -> list[tuple[int, int]]:
    """(low, high) zero padding per spatial axis, as `jax.lax.conv_general_dilated` pads."""
    if padding not in ("VALID", "SAME"):
        raise ValueError(f"PatchConv supports padding VALID or SAME, got {padding!r}")
    return [tuple(p) for p in jax.lax.padtype_to_pads(spatial, kernel, strides, padding)]


def extract_patches(
    x: jax.Array, kernel: Sequence[int], strides: Sequence[int], padding: str
) -> jax.Array:
    """(..., H, W, C) -> (..., H', W', kh*kw*C) patches, ordered (row, column, channel).

    Built from kh*kw static strided slices and one concatenation, so the gradient is pads
    and adds; the order matches a (kh, kw, C, F) kernel reshaped to (kh*kw*C, F).
    """
    (kh, kw), (sh, sw) = kernel, strides
    pads = conv_pads(x.shape[-3:-1], kernel, strides, padding)
    if any(lo or hi for lo, hi in pads):
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 3) + pads + [(0, 0)])
    h, w = x.shape[-3:-1]
    rows, cols = (h - kh) // sh + 1, (w - kw) // sw + 1
    taps = [
        x[..., i : i + sh * (rows - 1) + 1 : sh, j : j + sw * (cols - 1) + 1 : sw, :]
        for i in range(kh)
        for j in range(kw)
    ]
    return jnp.concatenate(taps, axis=-1)


class PatchConv(nn.Module):
    """2-D convolution as image patches (static slices) times one matrix: a drop-in `nn.Conv`.

    Same parameters as ``nn.Conv`` (``kernel`` (kh, kw, C, F) and optional ``bias`` (F,)),
    same initialisers, dtype promotion and VALID/SAME padding, and the same outputs to float
    tolerance. On CPU, XLA runs a convolution's gradient inside ``lax.scan`` many times slower
    than outside; slices and a matmul avoid that (numbers in the module docstring).
    """

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: str = "VALID"
    use_bias: bool = True
    dtype: jnp.dtype | None = None
    param_dtype: jnp.dtype = jnp.float32
    precision: jax.lax.PrecisionLike = None
    kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (*self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", self.kernel_init, shape, self.param_dtype)
        bias = None
        if self.use_bias:
            bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
        x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
        patches = extract_patches(x, self.kernel_size, self.strides, self.padding)
        y = jnp.dot(patches, kernel.reshape(-1, self.features), precision=self.precision)
        return y if bias is None else y + bias


class ConvTorso(nn.Module):
    """One of the three torsos, flat: convs are direct children (module docstring).

    Input (N, H, W, C) frames (uint8 are scaled to [0, 1]); output (N, D) features: after the
    dense layer and its ReLU when `dense_features` is set, else the flattened conv features.
    """

    kind: TorsoKind = "nature"
    layer_norm: bool = False
    dense_features: int | None = 512
    dtype: jnp.dtype | None = None
    conv_impl: ConvImpl = "auto"

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
        conv = PatchConv if resolve_conv_impl(self.conv_impl, self.kind) == "patches" else nn.Conv
        x = conv(
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
    return ConvTorso(
        cfg.kind, cfg.layer_norm, dense, dtype=dtype, conv_impl=cfg.conv_impl, name="torso"
    )


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
