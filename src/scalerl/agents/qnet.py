"""Q networks for discrete actions, shared by the value-based agents (DQN, PQN).

One module maps observations to per-action values: frames (N, H, W, C) go through a conv torso
(`scalerl.networks.cnn`) and optional dense trunk; flat vectors go through a dense encoder
(`scalerl.networks.encoders`). The head gives one Q value per action, or, with ``num_atoms > 1``,
logits over a fixed support per action (C51, Bellemare et al. 2017 §4). ``dueling=True`` splits
the head into a state value and mean-centred advantages (Wang et al. 2016, eq. 9); with C51 the
split is applied to the logits, as in Rainbow (Hessel et al. 2018 §3).

Parameters are ``torso/...`` and ``encoder/...`` for the body and ``head/...`` for the outputs,
so the role labels of `scalerl.plasticity.roles` (NaP, L2-init, resets, ReDo) apply unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

from scalerl.networks.cnn import TorsoConfig, conv_body
from scalerl.networks.encoders import make_encoder
from scalerl.networks.heads import QHead


@dataclass(frozen=True)
class QNetSpec:
    """Architecture of a Q network."""

    kind: str = "mlp"
    """Dense trunk: mlp, simba, simbav2 or msr (on frames: after the conv torso)."""
    width: int = 256
    """Width of the dense trunk."""
    depth: int = 2
    """Layers (mlp) or residual blocks (simba, simbav2, msr) of the dense trunk."""
    torso: str | None = None
    """Conv torso for frame observations (nature, impala, minatar); None for flat vectors."""
    layer_norm: bool = False
    """LayerNorm before every hidden nonlinearity (PQN, Gallici et al. 2025 §4)."""
    nap: bool = False
    """Normalize-and-Project layout: norms everywhere, redundant biases dropped."""
    dueling: bool = False
    """Dueling head: Q = V + A - mean(A) (Wang et al. 2016, eq. 9)."""
    num_atoms: int = 1
    """1 = one scalar Q per action; > 1 = C51 logits over that many atoms."""
    c_shift: float = 3.0
    """SimbaV2 input shift constant (only for kind simbav2)."""
    conv_impl: str = "auto"
    """Conv code of the torso (`scalerl.networks.cnn.resolve_conv_impl`)."""


class QHeads(nn.Module):
    """Q values (..., A) or C51 logits (..., A, atoms), plain or dueling."""

    num_actions: int
    num_atoms: int
    dueling: bool
    hyper: bool
    width: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        n, atoms = self.num_actions, self.num_atoms
        adv = QHead(n * atoms, self.hyper, self.width, self.dtype, name="q")(z)
        adv = adv.reshape(adv.shape[:-1] + (n, atoms))
        if self.dueling:
            value = QHead(atoms, self.hyper, self.width, self.dtype, name="value")(z)
            adv = value[..., None, :] + adv - adv.mean(axis=-2, keepdims=True)
        return adv[..., 0] if atoms == 1 else adv


class QNetwork(nn.Module):
    """obs -> Q values (..., num_actions), or C51 logits (..., num_actions, num_atoms)."""

    spec: QNetSpec
    num_actions: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        s = self.spec
        if s.torso is not None:
            ln = s.layer_norm or s.nap
            cfg = TorsoConfig(s.torso, ln, s.kind, s.width, s.depth, conv_impl=s.conv_impl)
            z = conv_body(cfg, obs, self.dtype)
        else:
            encoder = make_encoder(
                s.kind, s.width, s.depth, s.c_shift, self.dtype, s.layer_norm, s.nap
            )
            z = encoder(obs)
        hyper = s.kind == "simbav2"
        heads = QHeads(
            self.num_actions, s.num_atoms, s.dueling, hyper, s.width, self.dtype, name="head"
        )
        return heads(z)
