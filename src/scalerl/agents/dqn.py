"""Deep Q-Networks (Mnih et al. 2015) as pure functions on `DQNState`.

Options: double Q-learning (van Hasselt et al. 2016), n-step returns (from the replay buffer),
dueling head (Wang et al. 2016), C51 distributional head (Bellemare et al. 2017), hard or Polyak
target updates, Huber or MSE loss, ε-greedy with a linear schedule. `learn(state, batches)`
takes `utd` gradient steps on batches (U, B, ...) sampled from the replay; it is pure and
jittable, so the fused gymnax loop scans it with the environment steps and `jax.vmap`s over
seeds, and the host loop (ALE, Gymnasium) calls it jitted. Plasticity interventions reuse PPO's
wiring of the shared toolkit (`agents.ppo_plasticity`): NaP, hidden LayerNorm, L2-init, Hare &
Tortoise, resets and Shrink & Perturb; ReDo (`plasticity.redo`) recycles dormant conv channels
and dense units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from scalerl.agents import dqn_losses as dl
from scalerl.agents.epsilon import epsilon_greedy, linear_epsilon
from scalerl.agents.ppo_plasticity import (
    hare_tortoise_step,
    init_extras,
    make_optimizer,
    maybe_reset,
    penalty,
)
from scalerl.agents.qnet import QNetSpec, QNetwork
from scalerl.agents.state import NetState, SeededInit, apply_gradients, polyak
from scalerl.buffers.vec_replay import NStepBatch
from scalerl.config_dqn import DQNConfig
from scalerl.metrics.health import collect_features, network_health
from scalerl.plasticity import hare_tortoise, redo
from scalerl.plasticity.roles import label_params

Metrics = dict[str, jax.Array]
NET = "q"
"""Name of the Q network in `DQNState.net.params` ({"q": QNetwork params})."""
PRIORITY = "replay/priority"
"""Key of the new replay priorities in `learn`'s metrics (prioritised replay only)."""


@flax.struct.dataclass
class DQNState:
    """Complete DQN agent state (jit/vmap/scan friendly).

    Attributes:
        net: {"q": parameters} and the optimizer state.
        target: target-network parameters, same structure as `net.params`.
        rng: PRNG key, split on every use.
        updates: gradient steps taken (int32).
        env_steps: environment steps taken, all environments together (ε schedule; int32).
        extras: intervention state: "init" (L2-init), "tortoise" (Hare & Tortoise), "fresh"
            (reset / ReDo source: a second initialisation and its optimizer state).
    """

    net: NetState
    target: Any
    rng: jax.Array
    updates: jax.Array
    env_steps: jax.Array
    extras: Any


def qnet_spec(cfg: DQNConfig) -> QNetSpec:
    """The shared Q network's architecture of a DQN config."""
    pc = cfg.plasticity
    return QNetSpec(
        cfg.kind, cfg.width, cfg.depth, cfg.torso, pc.hidden_norm, pc.nap, cfg.dueling,
        cfg.num_atoms, conv_impl=cfg.conv_impl,
    )  # fmt: skip


@dataclass(frozen=True, eq=False)
class DQN(SeededInit):
    """A DQN agent's static parts and its pure functions. Build with `make_dqn`."""

    cfg: DQNConfig
    obs_shape: tuple[int, ...]
    num_actions: int
    net: QNetwork
    tx: optax.GradientTransformation
    labels: Any

    # ------------------------------------------------------------------ network

    def frames(self, obs: jax.Array) -> jax.Array:
        """Observations (B, ...) in the network's input shape (flat gymnax obs -> frames);
        bool observations (MinAtar in the replay) become float32."""
        if obs.dtype == jnp.bool_:
            obs = obs.astype(jnp.float32)
        if self.cfg.torso is None:
            return obs.reshape((obs.shape[0], -1))
        return obs.reshape((obs.shape[0], *self.obs_shape))

    def outputs(self, params: Any, obs: jax.Array) -> jax.Array:
        """Q values (B, A) or C51 logits (B, A, K)."""
        return self.net.apply({"params": params[NET]}, self.frames(obs))

    def q_values(self, params: Any, obs: jax.Array) -> jax.Array:
        """Q values (B, A) (C51: the expected values of the distributions)."""
        out = self.outputs(params, obs)
        return dl.c51_values(out, self.cfg.v_max) if self.cfg.num_atoms > 1 else out

    # ------------------------------------------------------------------ init

    def _init_params(self, key: jax.Array) -> Any:
        dummy = jnp.zeros((1, *self.obs_shape), jnp.float32)
        return {NET: self.net.init(key, self.frames(dummy))["params"]}

    def _init(self, key: jax.Array) -> DQNState:
        rng, net_key, fresh_key = jax.random.split(key, 3)
        params = self._init_params(net_key)
        net = NetState(params, self.tx.init(params))
        pc = self.cfg.plasticity
        fresh = None
        if pc.reset != "none" or pc.redo_every > 0:
            fresh_params = params if pc.reset_same_init else self._init_params(fresh_key)
            fresh = NetState(fresh_params, self.tx.init(fresh_params))
        state = DQNState(
            net, params, rng, jnp.int32(0), jnp.int32(0), init_extras(pc, params, fresh)
        )
        return jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), state)

    # ------------------------------------------------------------------ acting

    def epsilon(self, state: DQNState) -> jax.Array:
        """ε of the linear schedule at the state's environment step."""
        c = self.cfg
        return linear_epsilon(state.env_steps, c.eps_start, c.eps_end, c.eps_decay_steps)

    def act(self, state: DQNState, obs: jax.Array, key: jax.Array) -> jax.Array:
        """ε-greedy actions (B,) int32 for observations (B, ...)."""
        return epsilon_greedy(key, self.q_values(state.net.params, obs), self.epsilon(state))

    def act_eval(self, state: DQNState, obs: jax.Array, key: jax.Array) -> jax.Array:
        """Evaluation actions (B,): ε-greedy with the fixed ε_eval (Mnih et al. 2015, Methods)."""
        return epsilon_greedy(key, self.q_values(state.net.params, obs), self.cfg.eps_eval)

    def act_greedy(self, state: DQNState, obs: jax.Array) -> jax.Array:
        """Greedy actions (B,) int32."""
        return jnp.argmax(self.q_values(state.net.params, obs), axis=-1).astype(jnp.int32)

    # ------------------------------------------------------------------ learning

    def target_of(self, params: Any, target: Any, batch: NStepBatch) -> jax.Array:
        """Scalar targets (B,) or C51 target distributions (B, K) of a batch."""
        c = self.cfg
        next_target = self.outputs(target, batch.next_obs)
        next_online = self.outputs(params, batch.next_obs) if c.double else next_target
        args = (batch.reward, batch.discount, batch.terminated, next_target, next_online)
        if c.num_atoms > 1:
            return dl.c51_target(*args, c.double, c.v_max)
        return dl.q_target(*args, c.double)

    def loss(self, params: Any, state: DQNState, batch: NStepBatch) -> tuple[jax.Array, Metrics]:
        """TD loss (Huber / MSE, or C51 cross-entropy) plus intervention penalties."""
        y = self.target_of(params, state.target, batch)
        out = dl.select_action(self.outputs(params, batch.obs), batch.action.astype(jnp.int32))
        if self.cfg.num_atoms > 1:
            errors = dl.c51_errors(out, y)
            q, priority = dl.c51_values(out, self.cfg.v_max), errors
        else:
            errors, q = dl.td_errors(out, y, self.cfg.loss), out
            priority = jnp.abs(out - y)
        td = dl.weighted_mean(errors, batch.weight)
        total = td + penalty(self.cfg.plasticity, params, self.labels, state.extras)
        info = {"train/td_loss": td, "train/loss": total, "train/q_mean": jnp.mean(q)}
        if self.cfg.prioritized:
            info[PRIORITY] = jax.lax.stop_gradient(priority)
        return total, info

    def grad_step(self, state: DQNState, batch: NStepBatch) -> tuple[DQNState, Metrics]:
        """One optimizer step, Hare & Tortoise, then the target update."""
        grads, info = jax.grad(self.loss, has_aux=True)(state.net.params, state, batch)
        net = apply_gradients(self.tx, state.net, grads)
        info["train/grad_norm"] = optax.global_norm(grads)
        extras, pc = state.extras, self.cfg.plasticity
        if pc.hare_tortoise:
            params, extras = hare_tortoise_step(pc, net.params, extras, state.updates)
            net = net.replace(params=params)
        updates = state.updates + 1
        target = self.update_target(state.target, net.params, updates)
        if pc.hare_tortoise:  # the target follows the hare's reset to the tortoise (eq. 7)
            due = hare_tortoise.reset_due(state.updates, pc.ht_reset_every)
            target = jax.tree_util.tree_map(
                lambda t, h: jnp.where(due, h, t), target, extras["tortoise"]
            )
        return state.replace(net=net, target=target, updates=updates, extras=extras), info

    def update_target(self, target: Any, params: Any, updates: jax.Array) -> Any:
        """Polyak step, or a hard copy when `updates` is a multiple of target_every."""
        if self.cfg.target_update == "polyak":
            return polyak(target, params, self.cfg.tau)
        due = updates % self.cfg.target_every == 0
        return jax.tree_util.tree_map(lambda p, t: jnp.where(due, p, t), params, target)

    def learn(self, state: DQNState, batches: NStepBatch) -> tuple[DQNState, Metrics]:
        """`utd` gradient steps on batches (U, B, ...), then a periodic reset or ReDo if one is
        due. With prioritised replay, metrics[PRIORITY] holds the (U, B) new priorities."""
        before = state.updates
        state, info = jax.lax.scan(self.grad_step, state, batches)
        state = maybe_reset(self.cfg.plasticity, state, before, (NET,))
        last_obs = jax.tree_util.tree_map(lambda x: x[-1], batches).obs
        state, redo_info = self.maybe_redo(state, before, last_obs)
        priority = info.pop(PRIORITY, None)
        metrics = jax.tree_util.tree_map(jnp.mean, info) | redo_info
        if priority is not None:  # (U, B) new priorities of the sampled transitions
            metrics[PRIORITY] = priority
        return state, metrics | {"train/epsilon": self.epsilon(state)}

    # ------------------------------------------------------------------ diagnostics

    def features(self, params: Any, obs: jax.Array) -> dict[str, jax.Array]:
        """Sown post-activation features of the Q network, keyed `<module>/<name>`."""
        return collect_features(self.net, {"params": params[NET]}, self.frames(obs))

    def health(self, state: DQNState, batch: NStepBatch) -> Metrics:
        """Network-health diagnostics `health/q/...` of the step the state would take on
        `batch` (features, dormancy, ranks, norms, ELRs; `metrics.health`). Pure."""
        before = state.net.params
        grads, _ = jax.grad(self.loss, has_aux=True)(before, state, batch)
        after = apply_gradients(self.tx, state.net, grads).params
        feats = self.features(before, batch.obs)
        stats = network_health(after[NET], grads[NET], before[NET], feats, self.cfg.lr)
        return {f"health/{NET}/{k}": v for k, v in stats.items()}

    def redo_links(self) -> tuple[redo.Link, ...]:
        """ReDo links (paths under "q"): the conv torso's and/or the MLP trunk's units; the
        last layer's units feed the head kernels."""
        shapes = jax.eval_shape(self._init_params, jax.random.PRNGKey(0))[NET]
        heads = tuple(("head", name, "q") for name in shapes["head"])
        links = redo.conv_links(shapes) if "torso" in shapes else ()
        if "encoder" in shapes:
            links += redo.mlp_links(shapes)

        def prefix(paths: tuple) -> tuple:
            return tuple((NET, *p) for p in paths)

        return tuple(
            redo.Link(lk.activation, prefix(lk.incoming), prefix(lk.outgoing or heads))
            for lk in links
        )

    def redo(self, state: DQNState, obs: jax.Array) -> tuple[DQNState, Metrics]:
        """Recycle τ-dormant units measured on `obs` (Sokar et al. 2023, Alg. 1) toward the
        fresh initialisation kept in `extras["fresh"]`; Adam moments of touched entries are
        zeroed."""
        feats = self._module_features(state.net.params, obs)
        fresh = state.extras["fresh"].params
        params, opt_state, n = redo.recycle(
            state.net.params, state.net.opt_state, fresh, feats, self.redo_links(),
            self.cfg.plasticity.redo_tau,
        )  # fmt: skip
        return state.replace(net=NetState(params, opt_state)), {"train/redo_recycled": n}

    def maybe_redo(self, state: DQNState, before: jax.Array, obs: jax.Array):
        """`redo` when a multiple of redo_every lies in (before, state.updates]."""
        every = self.cfg.plasticity.redo_every
        if every <= 0:
            return state, {}
        due = state.updates // every > before // every
        new, info = self.redo(state, obs)
        state = jax.tree_util.tree_map(lambda n, o: jnp.where(due, n, o), new, state)
        return state, {"train/redo_recycled": jnp.where(due, info["train/redo_recycled"], 0)}

    def _module_features(self, params: Any, obs: jax.Array) -> dict[str, jax.Array]:
        _, variables = self.net.apply(
            {"params": params[NET]}, self.frames(obs), mutable=["intermediates"]
        )
        inter = variables["intermediates"]
        out: dict[str, jax.Array] = {}
        for module in ("torso", "encoder"):
            if module in inter:
                out |= redo.sown_features(inter, module)
        return out


def make_dqn(cfg: DQNConfig, obs_shape: tuple[int, ...], num_actions: int) -> DQN:
    """Build a DQN agent for observations of `obs_shape` (frames (H, W, C) with a torso)."""
    net = QNetwork(qnet_spec(cfg), num_actions)
    dummy = jnp.zeros((1, *obs_shape), jnp.float32)
    flat = dummy if cfg.torso is not None else dummy.reshape((1, -1))
    shapes = jax.eval_shape(net.init, jax.random.PRNGKey(0), flat)["params"]
    labels = {NET: label_params(shapes)}
    tx = make_optimizer(cfg, optax.constant_schedule(cfg.lr), labels)
    return DQN(cfg, tuple(obs_shape), num_actions, net, tx, labels)
