"""Output heads: tanh-Gaussian policy, categorical and scalar value."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from scalerl.networks.layers import HyperDense, Scaler

LOG_STD_MIN = -10.0
LOG_STD_MAX = 2.0


def squash_log_std(raw: jax.Array) -> jax.Array:
    """Map an unbounded output into (LOG_STD_MIN, LOG_STD_MAX) with tanh."""
    return LOG_STD_MIN + (LOG_STD_MAX - LOG_STD_MIN) * 0.5 * (1.0 + jnp.tanh(raw))


class HyperLinear(nn.Module):
    """Two linear maps with a Scaler (init 1) between them, plus a bias: a SimbaV2 head."""

    hidden: int
    features: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        y = HyperDense(self.hidden, dtype=self.dtype, name="w1")(z)
        y = Scaler(self.hidden, 1.0, 1.0, name="scaler")(y)
        y = HyperDense(self.features, dtype=self.dtype, name="w2")(y)
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return y + bias.astype(y.dtype)


class TanhGaussianHead(nn.Module):
    """Mean and squashed log-std of a tanh-Gaussian policy.

    `hyper=True` is SimbaV2's linear head on the sphere; otherwise one orthogonal
    Dense per output (SimBa, MLP).
    """

    action_dim: int
    hyper: bool
    width: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        if self.hyper:
            mean = HyperLinear(self.width, self.action_dim, self.dtype, name="mean")(z)
            raw = HyperLinear(self.width, self.action_dim, self.dtype, name="std")(z)
        else:
            init = nn.initializers.orthogonal(1.0)
            mean = nn.Dense(self.action_dim, kernel_init=init, dtype=self.dtype, name="mean")(z)
            raw = nn.Dense(self.action_dim, kernel_init=init, dtype=self.dtype, name="std")(z)
        mean = mean.astype(jnp.float32)
        return mean, squash_log_std(raw.astype(jnp.float32))


class ValueHead(nn.Module):
    """Critic output: logits over `num_bins` (categorical) or a scalar."""

    num_bins: int
    hyper: bool
    width: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        if self.hyper:
            out = HyperLinear(self.width, self.num_bins, self.dtype, name="value")(z)
        else:
            init = nn.initializers.orthogonal(1.0)
            out = nn.Dense(self.num_bins, kernel_init=init, dtype=self.dtype, name="value")(z)
        return out.astype(jnp.float32)


# ------------------------------------------------------------------ on-policy and value-based heads

PPO_POLICY_INIT = 0.01
"""Orthogonal init scale of plain policy outputs (CleanRL / PureJaxRL PPO: near-uniform start)."""


def _linear(features: int, hyper: bool, width: int, scale: float, dtype, name: str) -> nn.Module:
    """SimbaV2's HyperLinear head (on the sphere) or one orthogonal Dense with init `scale`."""
    if hyper:
        return HyperLinear(width, features, dtype, name=name)
    init = nn.initializers.orthogonal(scale)
    return nn.Dense(features, kernel_init=init, dtype=dtype, name=name)


class GaussianPolicyHead(nn.Module):
    """Mean and log-std of a diagonal Gaussian policy (PPO, Schulman et al. 2017 §6.1).

    `state_dependent_std=False` learns one log-std per action dimension, independent of the
    state (the PPO paper's and CleanRL's choice); otherwise a second output predicts it. The
    log-std starts at `log_std_init` and is clipped to [LOG_STD_MIN, LOG_STD_MAX].
    """

    action_dim: int
    hyper: bool
    width: int
    state_dependent_std: bool = False
    log_std_init: float = 0.0
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        args = (self.hyper, self.width, PPO_POLICY_INIT, self.dtype)
        mean = _linear(self.action_dim, *args, name="mean")(z).astype(jnp.float32)
        if self.state_dependent_std:
            raw = _linear(self.action_dim, *args, name="std")(z).astype(jnp.float32)
        else:
            raw = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
            raw = jnp.broadcast_to(raw, mean.shape)
        return mean, jnp.clip(raw + self.log_std_init, LOG_STD_MIN, LOG_STD_MAX)


class CategoricalPolicyHead(nn.Module):
    """Logits of a categorical policy over `num_actions` discrete actions (discrete PPO)."""

    num_actions: int
    hyper: bool
    width: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        args = (self.hyper, self.width, PPO_POLICY_INIT, self.dtype)
        return _linear(self.num_actions, *args, name="logits")(z).astype(jnp.float32)


class ScalarValueHead(nn.Module):
    """State value V(s) as a scalar per input: shape (...,) (PPO's critic)."""

    hyper: bool
    width: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        out = _linear(1, self.hyper, self.width, 1.0, self.dtype, name="value")(z)
        return out[..., 0].astype(jnp.float32)


class QHead(nn.Module):
    """One Q value per discrete action, shape (..., num_actions) (DQN, Mnih et al. 2015)."""

    num_actions: int
    hyper: bool
    width: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        out = _linear(self.num_actions, self.hyper, self.width, 1.0, self.dtype, name="q")(z)
        return out.astype(jnp.float32)
