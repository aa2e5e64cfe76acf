"""Scalar-output networks built from scalerl's encoders, and their random initialisations.

Each architecture is an encoder of `scalerl.networks.encoders` (or, for `residual`, SimBa's
residual blocks without LayerNorm) followed by the scalar value head of its family, so the
measured function is the one a critic computes at initialisation.
"""

from __future__ import annotations

from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from scalerl.errors import ConfigError
from scalerl.networks.encoders import make_encoder
from scalerl.networks.heads import ValueHead
from scalerl.networks.projection import project_kernels

ARCHS: dict[str, str] = {
    "mlp": "Dense-ReLU stack (orthogonal √2 init): the usual SAC critic torso",
    "mlp-ln": "mlp with LayerNorm before every ReLU (hidden_norm)",
    "residual": "SimBa without its LayerNorms: Dense embedding, blocks h + W2 relu(W1 h)",
    "simba": "SimBa encoder: pre-LN residual blocks and a final LayerNorm (SimBa §4)",
    "simbav2": "SimbaV2 encoder on the hypersphere with its HyperLinear head (SimbaV2 §4)",
    "msr": "multi-skip residual MLP with LayerNorms (Castanyer et al. 2025 §4.1)",
}
"""Architectures of `scalerl simplicity`, by name."""
Init = Literal["uniform", "default"]
Params = Any


class PlainResidualBlock(nn.Module):
    """h + W2 relu(W1 h): SimBa's residual block (§4) with its LayerNorm removed."""

    width: int
    expansion: int = 4

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        he = nn.initializers.he_normal()
        y = nn.relu(nn.Dense(self.width * self.expansion, kernel_init=he)(h))
        return h + nn.Dense(self.width, kernel_init=he)(y)


class PlainResidualEncoder(nn.Module):
    """Orthogonal Dense embedding and `depth` plain residual blocks (no normalisation)."""

    width: int
    depth: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = nn.Dense(self.width, kernel_init=nn.initializers.orthogonal(1.0), name="embedder")(x)
        for i in range(self.depth):
            h = PlainResidualBlock(self.width, name=f"block_{i}")(h)
        return h


class ScalarNet(nn.Module):
    """Encoder of architecture `arch` and its family's scalar value head: R^d -> R."""

    arch: str
    width: int
    depth: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.arch == "residual":
            z = PlainResidualEncoder(self.width, self.depth, name="encoder")(x)
        else:
            kind = "mlp" if self.arch == "mlp-ln" else self.arch
            z = make_encoder(kind, self.width, self.depth, 3.0, None, self.arch == "mlp-ln")(x)
        head = ValueHead(1, self.arch == "simbav2", self.width, name="head")
        return head(z)[..., 0]


def check_archs(archs: tuple[str, ...]) -> None:
    """Raises ConfigError naming the known architectures if one of `archs` is unknown."""
    unknown = [a for a in archs if a not in ARCHS]
    if unknown or not archs:
        raise ConfigError(
            f"unknown architecture(s) {unknown or '(none given)'}; choose from {', '.join(ARCHS)}"
        )


def uniform_dense(params: Params, key: jax.Array, amplitude: float) -> Params:
    """Every Dense kernel and bias redrawn i.i.d. uniform in [−A, A] (Teney et al. §3).

    A leaf is redrawn when its module holds a `kernel` (Dense layers); LayerNorm scales and
    offsets and SimbaV2's scalers keep their initial values.
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, len(leaves))
    dense = {path[:-1] for path, _ in leaves if getattr(path[-1], "key", None) == "kernel"}
    out = [
        jax.random.uniform(k, leaf.shape, leaf.dtype, -amplitude, amplitude)
        if path[:-1] in dense
        else leaf
        for (path, leaf), k in zip(leaves, keys, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, out)


def init_params(
    net: ScalarNet, key: jax.Array, input_dim: int, init: Init, amplitude: float
) -> Params:
    """A random initialisation of `net`: its own initialisers, or uniform Dense weights.

    SimbaV2's hyperspherical kernels are then projected to unit-norm fan-in vectors, as the
    agent does after every initialisation and update (SimbaV2 §4.2), so under `uniform` its
    function does not depend on A.
    """
    k_init, k_uniform = jax.random.split(key)
    params = net.init(k_init, jnp.zeros((1, input_dim)))
    if init == "uniform":
        params = uniform_dense(params, k_uniform, amplitude)
    return project_kernels(params)
