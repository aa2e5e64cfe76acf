"""Plasticity interventions inside PPO, built on the shared toolkit (`scalerl.plasticity`).

Per gradient step: NaP's projection (last link of the optimizer chain, Lyle et al. 2024 §3),
L2-init (Kumar et al. 2023) and NaP's norm decay as loss terms, and Hare & Tortoise
(Lee et al. 2024, eq. 6-7). After each rollout's update: periodic resets (Nikishin et al. 2022),
of all weights, of the output heads, or Shrink & Perturb (Ash & Adams 2020, eq. 8). Resets move
toward a second initialisation drawn at the start (or the initial weights with
reset_same_init), because drawing one inside the fused, vmapped loop is not possible on CPU.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from scalerl.agents import interventions
from scalerl.agents.state import NetState, apply_gradients
from scalerl.config import PlasticityConfig
from scalerl.plasticity import hare_tortoise, nap, regularizers, resets
from scalerl.plasticity.kron import kron


def make_optimizer(cfg: Any, schedule: optax.Schedule, labels: Any) -> optax.GradientTransformation:
    """clip_by_global_norm -> Adam / AdamW / RAdam / Kron -> NaP projection (each when enabled).

    RAdam (Liu et al. 2020) is the optimizer of PQN (Gallici et al. 2025).

    Under NaP, weight decay skips the projected kernels (the projection would undo it).
    """
    pc = cfg.plasticity
    mask = regularizers.decoupled_decay_mask(labels) if pc.nap else None
    if cfg.optimizer == "adamw":
        base = optax.adamw(schedule, eps=cfg.adam_eps, weight_decay=cfg.weight_decay, mask=mask)
    elif cfg.optimizer == "radam":
        base = optax.radam(schedule, eps=cfg.adam_eps)
    elif cfg.optimizer == "kron":
        base = kron(schedule, weight_decay=cfg.weight_decay, weight_decay_mask=mask)
    else:
        base = optax.adam(schedule, eps=cfg.adam_eps)
    chain = [optax.clip_by_global_norm(cfg.max_grad_norm)] if cfg.max_grad_norm > 0 else []
    chain.append(base)
    if pc.nap:
        norm_labels = labels if pc.nap_norm_mode == "joint_project" else None
        chain.append(nap.nap_transform(None, nap.nap_mask(labels), pc.nap_every, 0, norm_labels))
    return optax.chain(*chain)


def init_extras(pc: PlasticityConfig, params: Any, fresh: NetState | None) -> dict[str, Any]:
    """Intervention state: initial weights (L2-init), the tortoise, the reset target."""
    extras: dict[str, Any] = {}
    if pc.l2_init > 0:
        extras["init"] = params
    if pc.hare_tortoise:
        extras["tortoise"] = params
    if fresh is not None:
        extras["fresh"] = fresh
    return extras


def penalty(pc: PlasticityConfig, params: Any, labels: Any, extras: dict) -> jax.Array:
    """L2-init and NaP norm-decay loss terms (0 when both are off)."""
    return interventions.penalty(pc, params, labels, extras.get("init"))


def hare_tortoise_step(
    pc: PlasticityConfig, params: Any, extras: dict, step: jax.Array
) -> tuple[Any, dict]:
    """Tortoise EMA after the step (eq. 6); the hare is reset to it every ht_reset_every (eq. 7)."""
    tortoise = hare_tortoise.tortoise_update(extras["tortoise"], params, pc.ht_momentum)
    params = hare_tortoise.hare_reset(params, tortoise, step, pc.ht_reset_every)
    return params, extras | {"tortoise": tortoise}


def reset_due(pc: PlasticityConfig, before: jax.Array, after: jax.Array) -> jax.Array:
    """True when a multiple of reset_every lies in (before, after] and resets are allowed."""
    every = max(pc.reset_every, 1)
    due = after // every > before // every
    if pc.reset_stop_after is not None:
        due = jnp.logical_and(due, after <= pc.reset_stop_after)
    return due


def reset_net(pc: PlasticityConfig, net: NetState, fresh: NetState, names: tuple) -> NetState:
    """The network after a reset toward `fresh`: full, last layers (every `head`) or S&P."""
    if pc.reset == "full":
        return NetState(fresh.params, fresh.opt_state if pc.reset_opt_state else net.opt_state)
    if pc.reset == "last_layers":
        mask = resets.path_mask(net.params, [(name, "head") for name in names])
        params = resets.hard_reset(net.params, fresh.params, mask)
    else:
        mask = jax.tree_util.tree_map(lambda _: True, net.params)
        params = resets.shrink_perturb(
            net.params, fresh.params, pc.reset_shrink, pc.reset_perturb, mask
        )
    opt_state = resets.zero_adam_moments(net.opt_state, mask) if pc.reset_opt_state else None
    return NetState(params, net.opt_state if opt_state is None else opt_state)


def maybe_reset(pc: PlasticityConfig, state: Any, before: jax.Array, names: tuple) -> Any:
    """`state` with its network reset when a reset falls in this rollout's gradient steps."""
    if pc.reset == "none" or pc.reset_every <= 0:
        return state
    due = reset_due(pc, before, state.updates)
    new = reset_net(pc, state.net, state.extras["fresh"], names)
    net = jax.tree_util.tree_map(lambda n, o: jnp.where(due, n, o), new, state.net)
    return state.replace(net=net)


# ----------------------------------------------------------------------------- minibatch epochs


def minibatch_step(agent: Any, state: Any, mb: Any) -> tuple[Any, dict[str, jax.Array]]:
    """One optimizer step of `agent.loss` on a minibatch, then the projection (NaP) and the
    Hare & Tortoise step; `updates` counts it (PPO and PQN share this)."""
    grads, info = jax.grad(agent.loss, has_aux=True)(state.net.params, state, mb)
    net = apply_gradients(agent.tx, state.net, grads, agent._project)
    info["train/grad_norm"] = optax.global_norm(grads)
    extras = state.extras
    if agent.cfg.plasticity.hare_tortoise:
        params, extras = hare_tortoise_step(agent.cfg.plasticity, net.params, extras, state.updates)
        net = net.replace(params=params)
    return state.replace(net=net, updates=state.updates + 1, extras=extras), info


def shuffled_epoch(agent: Any, state: Any, batch: Any) -> tuple[Any, dict[str, jax.Array]]:
    """One pass over `batch` in `agent.cfg.num_minibatches` shuffled minibatches (a
    `lax.scan` of `agent.grad_step`); the permutation key comes from `state.rng`."""
    rng, key = jax.random.split(state.rng)
    perm = jax.random.permutation(key, jax.tree_util.tree_leaves(batch)[0].shape[0])
    m = agent.cfg.num_minibatches

    def split(x: jax.Array) -> jax.Array:
        return x[perm].reshape((m, -1, *x.shape[1:]))

    minibatches = jax.tree_util.tree_map(split, batch)
    return jax.lax.scan(agent.grad_step, state.replace(rng=rng), minibatches)
