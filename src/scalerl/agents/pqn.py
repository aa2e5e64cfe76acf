"""PQN (Gallici et al. 2025, "Simplifying Deep Temporal Difference Learning") as pure functions.

One Q network, no replay buffer, no target network. `learn(state, trajectory)` is the whole
update of one rollout of N vectorised environments x T steps: Q(λ) targets from the network's
own max-Q bootstraps (`pqn_losses.q_lambda_returns`), then `update_epochs` x `num_minibatches`
steps on ½(Q(s, a) − G)², each clipped by global norm and taken by RAdam (Liu et al. 2020), and
the periodic interventions. It is pure and jittable, so the fused loop (`train.pqn_fused`)
scans it together with the rollout and vmaps the result over seeds.

The agent has PPO's acting interface (`act` returns the stored action, the environment
action, a log-probability, here 0, and a value, here Q(s, a)), so PPO's fused rollout and
trajectory (`agents.ppo.Trajectory`) serve it unchanged. Plasticity interventions come from the
shared toolkit through `agents.ppo_plasticity` (NaP projection, L2-init, Hare & Tortoise,
resets, Shrink & Perturb) and `plasticity.redo` (ReDo on conv torsos and MLP trunks).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from scalerl.agents import pqn_losses
from scalerl.agents.epsilon import epsilon_greedy, linear_epsilon
from scalerl.agents.ppo import Trajectory
from scalerl.agents.ppo_plasticity import (
    init_extras,
    make_optimizer,
    maybe_reset,
    minibatch_step,
    penalty,
    shuffled_epoch,
)
from scalerl.agents.qnet import QNetSpec, QNetwork
from scalerl.agents.state import NetState, SeededInit, apply_gradients
from scalerl.config_pqn import PQNConfig
from scalerl.metrics.health import collect_features, network_health
from scalerl.networks import project_kernels
from scalerl.plasticity import redo
from scalerl.plasticity.roles import label_params

Metrics = dict[str, jax.Array]
NET = "q"
"""Key of the Q network's parameters (health metrics are `health/q/...`)."""


@flax.struct.dataclass
class PQNState:
    """Complete PQN agent state (jit/vmap/scan friendly).

    Attributes:
        net: {"q": parameters} and their optimizer state.
        rng: PRNG key, split on every use.
        updates: gradient steps taken (int32).
        iterations: rollouts learned from (int32); ε follows it.
        extras: intervention state: "init" (L2-init), "tortoise" (Hare & Tortoise), "fresh"
            (a second initialisation: reset target and ReDo's source of new weights).
    """

    net: NetState
    rng: jax.Array
    updates: jax.Array
    iterations: jax.Array
    extras: Any


@flax.struct.dataclass
class Batch:
    """Flat training samples of one rollout (B, ...): observation, action, Q(λ) target."""

    obs: jax.Array
    action: jax.Array
    target: jax.Array


def make_schedule(cfg: PQNConfig, num_iterations: int) -> optax.Schedule:
    """lr, or lr linearly to 0 over the run's gradient steps when annealing (PQN's configs)."""
    if not cfg.anneal_lr:
        return optax.constant_schedule(cfg.lr)
    return optax.linear_schedule(cfg.lr, 0.0, num_iterations * cfg.steps_per_update)


@dataclass(frozen=True)
class PQN(SeededInit):
    """A PQN agent's static parts and its pure functions. Build with `make_pqn`.

    Attributes:
        cfg: agent settings.
        frame_shape: observation shape the network sees; flat observations are reshaped to
            it (e.g. MinAtar's (10, 10, C) frames for a conv torso).
        num_actions: discrete actions.
        net: the Q network.
        tx: optimizer chain.
        schedule: learning rate per gradient step.
        labels: plasticity role labels of {"q": params}.
        eps_decay_iters: rollouts of the linear ε decay.
    """

    cfg: PQNConfig
    frame_shape: tuple[int, ...]
    num_actions: int
    net: QNetwork
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    labels: dict[str, Any]
    eps_decay_iters: int

    # ------------------------------------------------------------------ init

    def _project(self, params: Any) -> Any:
        return project_kernels(params) if self.cfg.project_weights else params

    def _init_params(self, key: jax.Array) -> dict[str, Any]:
        obs = jnp.zeros((1, *self.frame_shape), jnp.float32)
        return self._project({NET: self.net.init(key, obs)["params"]})

    def _init(self, key: jax.Array) -> PQNState:
        rng, net_key, fresh_key = jax.random.split(key, 3)
        params = self._init_params(net_key)
        net = NetState(params, self.tx.init(params))
        pc = self.cfg.plasticity
        fresh = None
        if pc.reset != "none" or pc.redo_every > 0:
            fresh = net if pc.reset_same_init else None
            if fresh is None:
                fresh_params = self._init_params(fresh_key)
                fresh = NetState(fresh_params, self.tx.init(fresh_params))
        state = PQNState(net, rng, jnp.int32(0), jnp.int32(0), init_extras(pc, params, fresh))
        return jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), state)

    # ------------------------------------------------------------------ acting

    def frames(self, obs: jax.Array) -> jax.Array:
        """Flat observations (B, D) shaped as the network expects (B, *frame_shape)."""
        return obs.reshape((-1, *self.frame_shape))

    def q_values(self, params: Any, obs: jax.Array) -> jax.Array:
        """Q(s, ·) (B, A) of flat observations (B, D)."""
        return self.net.apply({"params": params[NET]}, self.frames(obs))

    def epsilon(self, state: PQNState) -> jax.Array:
        """ε of the current rollout: eps_start to eps_end over `eps_decay_iters` rollouts."""
        cfg = self.cfg
        return linear_epsilon(state.iterations, cfg.eps_start, cfg.eps_end, self.eps_decay_iters)

    def act(
        self, state: PQNState, obs: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """ε-greedy actions for flat observations (B, D), with PPO's acting interface.

        Returns:
            (action, action, zeros (no log-probabilities), Q(s, action)).
        """
        q = self.q_values(state.net.params, obs)
        action = epsilon_greedy(key, q, self.epsilon(state))
        taken = jnp.take_along_axis(q, action[:, None], axis=-1)[:, 0]
        return action, action, jnp.zeros_like(taken), taken

    def act_deterministic(self, state: PQNState, obs: jax.Array) -> jax.Array:
        """Greedy actions."""
        return jnp.argmax(self.q_values(state.net.params, obs), axis=-1)

    # ------------------------------------------------------------------ learning

    def targets(self, state: PQNState, traj: Trajectory) -> jax.Array:
        """Q(λ) targets (T, N) of a rollout, bootstrapping from the current network."""
        t, n = traj.reward.shape
        next_q = self.q_values(state.net.params, traj.next_obs.reshape((t * n, -1)))
        next_max = jnp.max(next_q, axis=-1).reshape((t, n))
        cfg = self.cfg
        return pqn_losses.q_lambda_returns(
            traj.reward * cfg.reward_scale, next_max, traj.terminated, traj.truncated,
            cfg.gamma, cfg.q_lambda,
        )  # fmt: skip

    def make_batch(self, state: PQNState, traj: Trajectory) -> Batch:
        """Targets of a rollout, flattened to (T N, ...) with observations and actions."""
        target = self.targets(state, traj)

        def flat(x: jax.Array) -> jax.Array:
            return x.reshape((-1, *x.shape[2:]))

        return Batch(flat(traj.obs), flat(traj.action), flat(target))

    def loss(self, params: Any, state: PQNState, mb: Batch) -> tuple[jax.Array, Metrics]:
        """½ E[(Q(s, a) − G)²] (+ plasticity penalties)."""
        q = self.q_values(params, mb.obs)
        taken = jnp.take_along_axis(q, mb.action[:, None].astype(jnp.int32), axis=-1)[:, 0]
        td = pqn_losses.td_loss(taken, mb.target)
        total = td + penalty(self.cfg.plasticity, params, self.labels, state.extras)
        return total, {"train/td_loss": td, "train/q_mean": jnp.mean(taken), "train/loss": total}

    def grad_step(self, state: PQNState, mb: Batch) -> tuple[PQNState, Metrics]:
        """One optimizer step on a minibatch, then projection and Hare & Tortoise."""
        return minibatch_step(self, state, mb)

    def _epoch(self, state: PQNState, batch: Batch) -> tuple[PQNState, Metrics]:
        return shuffled_epoch(self, state, batch)

    def learn(self, state: PQNState, traj: Trajectory) -> tuple[PQNState, Metrics]:
        """The PQN update of one rollout (T, N): see the module docstring. Pure."""
        before = state.updates
        eps = self.epsilon(state)
        batch = self.make_batch(state, traj)

        def epoch(s: PQNState, _: Any) -> tuple[PQNState, Metrics]:
            return self._epoch(s, batch)

        state, info = jax.lax.scan(epoch, state, None, length=self.cfg.update_epochs)
        metrics = jax.tree_util.tree_map(jnp.mean, info)
        state = maybe_reset(self.cfg.plasticity, state, before, (NET,))
        state, recycled = self.maybe_redo(state, before, batch.obs[: self.cfg.minibatch_size])
        metrics |= {
            "train/lr": self.schedule(before),
            "train/epsilon": eps,
            "train/target_mean": jnp.mean(batch.target),
            "train/reward_mean": jnp.mean(traj.reward),
        }
        if self.cfg.plasticity.redo_every:
            metrics["train/redo_recycled"] = recycled
        return state.replace(iterations=state.iterations + 1), metrics

    # ------------------------------------------------------------------ ReDo, health

    def features(self, params: Any, obs: jax.Array) -> dict[str, jax.Array]:
        """Sown hidden features of the Q network on flat observations, keyed by path."""
        return collect_features(self.net, {"params": params[NET]}, self.frames(obs))

    def redo_links(self) -> tuple[redo.Link, ...]:
        """ReDo links of {"q": params}: the conv torso's, and a plain MLP trunk's."""
        shapes = jax.eval_shape(self._init_params, jax.random.PRNGKey(0))[NET]
        links: tuple[redo.Link, ...] = ()
        if "torso" in shapes:
            links += redo.conv_links(shapes)
        if "kernel" in shapes.get("encoder", {}).get("dense_0", {}):
            links += redo.mlp_links(shapes)
        return tuple(_prefixed(link) for link in links)

    def maybe_redo(
        self, state: PQNState, before: jax.Array, obs: jax.Array
    ) -> tuple[PQNState, jax.Array]:
        """Recycle τ-dormant units (Sokar et al. 2023, Alg. 1) when a multiple of redo_every
        falls in this rollout's gradient steps; activations from `obs`, new incoming weights
        from the stored second initialisation. Returns (state, units recycled)."""
        pc = self.cfg.plasticity
        if pc.redo_every <= 0:
            return state, jnp.int32(0)
        feats = self.features(state.net.params, obs)
        acts = {k.rsplit("/", 1)[-1]: v for k, v in feats.items()}
        params, opt_state, count = redo.recycle(
            state.net.params, state.net.opt_state, state.extras["fresh"].params, acts,
            self.redo_links(), pc.redo_tau,
        )  # fmt: skip
        due = state.updates // pc.redo_every > before // pc.redo_every
        new = NetState(self._project(params), opt_state)
        net = jax.tree_util.tree_map(lambda n, o: jnp.where(due, n, o), new, state.net)
        return state.replace(net=net), jnp.where(due, count, 0)

    def health(self, state: PQNState, traj: Trajectory) -> Metrics:
        """Network-health diagnostics (`health/q/...`) on the first minibatch of a rollout:
        features, dormancy, ranks, norms and the ELRs of the step it would take. Pure."""
        batch = self.make_batch(state, traj)
        mb = jax.tree_util.tree_map(lambda x: x[: self.cfg.minibatch_size], batch)
        before = state.net.params
        grads, _ = jax.grad(self.loss, has_aux=True)(before, state, mb)
        after = apply_gradients(self.tx, state.net, grads, self._project).params
        feats = self.features(before, mb.obs)
        lr = self.schedule(state.updates)
        stats = network_health(after[NET], grads[NET], before[NET], feats, lr)
        return {f"health/{NET}/{k}": v for k, v in stats.items()}


def _prefixed(link: redo.Link) -> redo.Link:
    """A link whose module paths start at the {"q": ...} level."""

    def pre(paths: tuple) -> tuple:
        return tuple((NET, *p) for p in paths)

    return dataclasses.replace(link, incoming=pre(link.incoming), outgoing=pre(link.outgoing))


def q_net_spec(cfg: PQNConfig, torso: str) -> QNetSpec:
    """The Q network of a config whose torso is resolved (`config_pqn.resolve_torso`)."""
    pc = cfg.plasticity
    return QNetSpec(
        kind=cfg.trunk, width=cfg.width, depth=cfg.depth,
        torso=None if torso == "none" else torso, layer_norm=cfg.layer_norm or pc.hidden_norm,
        nap=pc.nap, c_shift=cfg.c_shift, conv_impl=cfg.conv_impl,
    )  # fmt: skip


def make_pqn(
    cfg: PQNConfig, frame_shape: tuple[int, ...], num_actions: int, num_iterations: int,
    torso: str = "none",
) -> PQN:  # fmt: skip
    """Build a PQN agent for observations of `frame_shape` (flat: `(obs_dim,)`).

    Args:
        cfg: agent settings.
        frame_shape: what the network sees; with a conv torso an (H, W, C) frame.
        num_actions: discrete actions.
        num_iterations: rollouts of the run (learning-rate and ε schedules).
        torso: resolved torso name (none for flat observations).
    """
    net = QNetwork(q_net_spec(cfg, torso), num_actions)
    obs = jnp.zeros((1, *frame_shape), jnp.float32)
    shapes = jax.eval_shape(lambda k: net.init(k, obs)["params"], jax.random.PRNGKey(0))
    labels = {NET: label_params(shapes)}  # per network, so `head` is the output group
    schedule = make_schedule(cfg, num_iterations)
    tx = make_optimizer(cfg, schedule, labels)
    decay = int(round(cfg.eps_decay * num_iterations))
    return PQN(cfg, tuple(frame_shape), num_actions, net, tx, schedule, labels, decay)
