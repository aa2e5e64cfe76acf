"""Plasticity interventions as pieces of the SAC agent.

Everything here is a pure function of parameter pytrees, so the SAC update stays one jitted
function. Interventions that run on every update (NaP projection, L2-init, Hare & Tortoise) live
inside `SAC.update`; periodic ones that need a fresh initialisation (resets, Shrink & Perturb,
ReDo) are pure functions the training loop calls between steps, because initialising under
`vmap` deadlocks XLA on CPU for some shapes (see `SAC.init_many`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from scalerl.config import AgentConfig, PlasticityConfig
from scalerl.plasticity import hare_tortoise, nap, regularizers, resets
from scalerl.plasticity.kron import kron
from scalerl.plasticity.roles import label_params, mask_for

NETS = ("actor", "critic")
"""The networks every intervention applies to (the temperature is a scalar, left alone)."""


def net_labels(module: Any, *inputs: jax.Array) -> Any:
    """Role labels (`plasticity.roles`) of a module's parameters, from shapes only."""
    shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), *inputs)
    return label_params(shapes["params"])


def make_net_optimizer(
    cfg: AgentConfig, schedule: optax.Schedule, labels: Any, batch_dims: int
) -> optax.GradientTransformation:
    """Adam / AdamW / Kron for one network, followed by the NaP projection when enabled.

    Under NaP, weight decay skips the projected kernels (the projection would undo it); otherwise
    AdamW decays every parameter (SimBa).
    """
    pc = cfg.plasticity
    mask = regularizers.decoupled_decay_mask(labels) if pc.nap else None
    if cfg.optimizer == "adamw":
        base = optax.adamw(schedule, 0.9, 0.999, 1e-8, weight_decay=cfg.weight_decay, mask=mask)
    elif cfg.optimizer == "kron":
        base = kron(schedule, weight_decay=cfg.weight_decay, weight_decay_mask=mask)
    else:
        base = optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-8)
    if not pc.nap:
        return base
    norm_labels = labels if pc.nap_norm_mode == "joint_project" else None
    project = nap.nap_transform(None, nap.nap_mask(labels), pc.nap_every, batch_dims, norm_labels)
    return optax.chain(base, project)


def init_extras(pc: PlasticityConfig, actor_params: Any, critic_params: Any) -> dict[str, Any]:
    """Intervention state kept in `SACState.extras`: initial weights and the tortoise."""
    nets = {"actor": actor_params, "critic": critic_params}
    extras: dict[str, Any] = {}
    if pc.l2_init > 0:
        extras["init"] = nets
    if pc.hare_tortoise:
        extras["tortoise"] = nets
    return extras


def penalty(pc: PlasticityConfig, params: Any, labels: Any, init: Any | None) -> jax.Array:
    """Loss terms of L2-init and NaP's decay of LayerNorm scale/offset (mode decay_to_init)."""
    total = jnp.float32(0.0)
    if pc.l2_init > 0 and init is not None:
        mask = mask_for(labels, "kernel", "hidden_kernel", "output_kernel")
        total += pc.l2_init * regularizers.l2_init_penalty(params, init, mask)
    if pc.nap and pc.nap_norm_mode == "decay_to_init":
        total += nap.decay_to_init_penalty(params, labels, pc.nap_norm_decay)
    return total


def hare_tortoise_step(
    pc: PlasticityConfig, nets: dict[str, Any], target: Any, extras: dict[str, Any], step: Any
) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """Tortoise EMA after the update (eq. 6); hare and target reset to it every R (eq. 7).

    Args:
        pc: plasticity settings (hare_tortoise must be on).
        nets: {"actor": params, "critic": params} after this update (the hare).
        target: target critic parameters.
        extras: intervention state holding "tortoise".
        step: 0-based index of this update (global, never per-task).

    Returns:
        (nets, target, extras) after the EMA and a possible reset.
    """
    tortoise = hare_tortoise.tortoise_update(extras["tortoise"], nets, pc.ht_momentum)
    nets = hare_tortoise.hare_reset(nets, tortoise, step, pc.ht_reset_every)
    due = hare_tortoise.reset_due(step, pc.ht_reset_every)
    target = jax.tree_util.tree_map(lambda t, h: jnp.where(due, h, t), target, tortoise["critic"])
    return nets, target, extras | {"tortoise": tortoise}


def reset_due(pc: PlasticityConfig, updates_before: int, updates_after: int) -> bool:
    """Whether a multiple of reset_every lies in (before, after] and resets are still allowed."""
    if pc.reset == "none" or pc.reset_every <= 0:
        return False
    if pc.reset_stop_after is not None and updates_after > pc.reset_stop_after:
        return False
    return updates_after // pc.reset_every > updates_before // pc.reset_every


def head_mask(params: Any) -> Any:
    """True on the output heads' leaves (the 'last layers' of a reset)."""
    return resets.path_mask(params, [("head",)])


def _all_true(params: Any) -> Any:
    return jax.tree_util.tree_map(lambda _: True, params)


def reset_net(pc: PlasticityConfig, net: Any, fresh: Any) -> tuple[Any, Any]:
    """One network's (params, opt_state) after a periodic reset toward `fresh`.

    `full` takes the fresh parameters and optimizer state (SR-SAC; the old optimizer state is
    kept with reset_opt_state=False); `last_layers` re-draws the output head; `shrink_perturb`
    sets theta <- lambda theta + sigma phi (eq. 8) everywhere. Otherwise reset_opt_state zeroes
    the Adam moments of the touched leaves.
    """
    if pc.reset == "full":
        return fresh.params, fresh.opt_state if pc.reset_opt_state else net.opt_state
    if pc.reset == "last_layers":
        mask = head_mask(net.params)
        params = resets.hard_reset(net.params, fresh.params, mask)
    else:
        mask = _all_true(net.params)
        params = resets.shrink_perturb(
            net.params, fresh.params, pc.reset_shrink, pc.reset_perturb, mask
        )
    opt_state = (
        resets.zero_adam_moments(net.opt_state, mask) if pc.reset_opt_state else (net.opt_state)
    )
    return params, opt_state


def reset_target(pc: PlasticityConfig, target: Any, fresh_target: Any) -> Any:
    """The target critic after a reset: re-drawn like the online critic."""
    if pc.reset == "full":
        return fresh_target
    if pc.reset == "last_layers":
        return resets.hard_reset(target, fresh_target, head_mask(target))
    mask = _all_true(target)
    return resets.shrink_perturb(target, fresh_target, pc.reset_shrink, pc.reset_perturb, mask)
