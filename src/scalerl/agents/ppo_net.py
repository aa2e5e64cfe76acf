"""PPO's networks: a policy and a value network, or one shared trunk with both heads.

Parameters are a dict keyed by network ("actor" and "value", or "shared"); inside each, the
encoder is named `encoder` and the output layer(s) `head`, so the role labels of
`plasticity.roles` (and with them NaP, L2-init and last-layer resets) apply per network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from scalerl.networks.encoders import make_encoder
from scalerl.networks.heads import CategoricalPolicyHead, GaussianPolicyHead, ScalarValueHead


@dataclass(frozen=True)
class ActionSpec:
    """The action space as PPO sees it: `n` discrete actions, or `n` dimensions in [-1, 1]."""

    discrete: bool
    n: int


@dataclass(frozen=True)
class NetSpec:
    """Encoder settings shared by the PPO networks."""

    kind: str
    c_shift: float = 3.0
    hidden_norm: bool = False
    nap: bool = False
    state_dependent_std: bool = False
    log_std_init: float = 0.0


def _encoder(spec: NetSpec, width: int, depth: int) -> nn.Module:
    return make_encoder(spec.kind, width, depth, spec.c_shift, None, spec.hidden_norm, spec.nap)


def _policy_head(spec: NetSpec, action: ActionSpec, width: int, name: str) -> nn.Module:
    hyper = spec.kind == "simbav2"
    if action.discrete:
        return CategoricalPolicyHead(action.n, hyper, width, name=name)
    return GaussianPolicyHead(
        action.n, hyper, width, spec.state_dependent_std, spec.log_std_init, name=name
    )


class PolicyNet(nn.Module):
    """obs -> logits (discrete) or (mean, log_std) (continuous)."""

    spec: NetSpec
    action: ActionSpec
    width: int
    depth: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> Any:
        z = _encoder(self.spec, self.width, self.depth)(obs)
        return _policy_head(self.spec, self.action, self.width, "head")(z)


class ValueNet(nn.Module):
    """obs -> V(obs) (...,)."""

    spec: NetSpec
    width: int
    depth: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        z = _encoder(self.spec, self.width, self.depth)(obs)
        return ScalarValueHead(self.spec.kind == "simbav2", self.width, name="head")(z)


class SharedHeads(nn.Module):
    """The policy and value heads of a shared trunk, grouped under one `head` module."""

    spec: NetSpec
    action: ActionSpec
    width: int

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[Any, jax.Array]:
        pi = _policy_head(self.spec, self.action, self.width, "policy")(z)
        value = ScalarValueHead(self.spec.kind == "simbav2", self.width, name="value")(z)
        return pi, value


class SharedNet(nn.Module):
    """obs -> (policy output, V(obs)) from one encoder."""

    spec: NetSpec
    action: ActionSpec
    width: int
    depth: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[Any, jax.Array]:
        z = _encoder(self.spec, self.width, self.depth)(obs)
        return SharedHeads(self.spec, self.action, self.width, name="head")(z)


def make_networks(
    spec: NetSpec, action: ActionSpec, shared: bool, actor: tuple[int, int], value: tuple[int, int]
) -> dict[str, nn.Module]:
    """{"shared": SharedNet} or {"actor": PolicyNet, "value": ValueNet}; sizes: (width, depth)."""
    if shared:
        return {"shared": SharedNet(spec, action, *actor)}
    return {"actor": PolicyNet(spec, action, *actor), "value": ValueNet(spec, *value)}


def apply_networks(nets: dict[str, nn.Module], params: dict, obs: jax.Array) -> tuple[Any, Any]:
    """(policy output, value) of `obs` under `params` (a dict with the keys of `nets`)."""
    if "shared" in nets:
        return nets["shared"].apply({"params": params["shared"]}, obs)
    pi = nets["actor"].apply({"params": params["actor"]}, obs)
    return pi, nets["value"].apply({"params": params["value"]}, obs)


def init_networks(nets: dict[str, nn.Module], key: jax.Array, obs_dim: int) -> dict:
    """Parameters of every network, each from its own key."""
    obs = jnp.zeros((1, obs_dim), jnp.float32)
    keys = jax.random.split(key, len(nets))
    return {
        name: net.init(k, obs)["params"] for (name, net), k in zip(nets.items(), keys, strict=True)
    }
