"""Proximal Policy Optimization (Schulman et al. 2017) as pure functions on `PPOState`.

`learn(state, trajectory)` is the whole update of one rollout: reward scaling, values of the
true next observations, GAE(lambda), `update_epochs` x `num_minibatches` clipped-surrogate
steps, the observation statistics and periodic resets. It is pure and jittable, so the fused
training loop scans it together with the rollout and `jax.vmap`s the result over seeds, and the
Gymnasium host loop calls it once per rollout. Plasticity interventions come from the shared
toolkit: NaP (optimizer chain), hidden LayerNorm, L2-init, Hare & Tortoise, resets and Shrink &
Perturb.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from scalerl.agents import ppo_losses as pl
from scalerl.agents.ppo_net import (
    ActionSpec,
    NetSpec,
    apply_networks,
    init_networks,
    make_networks,
)
from scalerl.agents.ppo_plasticity import (
    init_extras,
    make_optimizer,
    maybe_reset,
    minibatch_step,
    penalty,
    shuffled_epoch,
)
from scalerl.agents.state import NetState, SeededInit, apply_gradients
from scalerl.config_ppo import PPOConfig
from scalerl.metrics.health import collect_features, network_health
from scalerl.networks import project_kernels
from scalerl.normalizers import RunningStats, normalize, stats_init, stats_update
from scalerl.plasticity.roles import label_params

Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class ReturnStats:
    """Per-environment discounted return G (N,) and its running statistics (reward scaling)."""

    ret: jax.Array
    stats: RunningStats


@flax.struct.dataclass
class PPOState:
    """Complete PPO agent state (jit/vmap/scan friendly).

    Attributes:
        net: parameters {"actor", "value"} or {"shared"} and their optimizer state.
        obs_stats: running observation statistics.
        ret_stats: discounted-return statistics of the reward scale.
        rng: PRNG key, split on every use.
        updates: gradient steps taken (int32).
        iterations: rollouts learned from (int32).
        extras: intervention state: "init" (L2-init), "tortoise" (Hare & Tortoise), "fresh"
            (the reset target: parameters and optimizer state).
    """

    net: NetState
    obs_stats: RunningStats
    ret_stats: ReturnStats
    rng: jax.Array
    updates: jax.Array
    iterations: jax.Array
    extras: Any


@flax.struct.dataclass
class Trajectory:
    """One rollout, time-major (T, N, ...).

    `next_obs[t]` is the observation reached by action t before any automatic reset: the
    final observation of an episode that ended at t, else the next step's observation.
    `action` holds what the log-probability refers to: the integer action, or the Gaussian
    sample before clipping / squashing.
    """

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array


@flax.struct.dataclass
class Batch:
    """Flat training samples of one rollout (B, ...)."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    returns: jax.Array


def make_schedule(cfg: PPOConfig, num_iterations: int) -> optax.Schedule:
    """lr, or lr (1 - i / num_iterations) in rollout i when annealing (PureJaxRL/CleanRL)."""
    if not cfg.anneal_lr:
        return optax.constant_schedule(cfg.lr)
    per = cfg.steps_per_update

    def schedule(count: jax.Array) -> jax.Array:
        return cfg.lr * (1.0 - (count // per) / num_iterations)

    return schedule


@dataclass(frozen=True)
class PPO(SeededInit):
    """A PPO agent's static parts and its pure functions. Build with `make_ppo`."""

    cfg: PPOConfig
    obs_dim: int
    action: ActionSpec
    nets: dict[str, Any]
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    labels: dict[str, Any]

    def _project(self, params: Any) -> Any:
        return project_kernels(params) if self.cfg.project_weights else params

    # ------------------------------------------------------------------ init

    def _init_params(self, key: jax.Array) -> Any:
        return self._project(init_networks(self.nets, key, self.obs_dim))

    def _init(self, key: jax.Array) -> PPOState:
        rng, net_key, fresh_key = jax.random.split(key, 3)
        params = self._init_params(net_key)
        net = NetState(params, self.tx.init(params))
        pc = self.cfg.plasticity
        fresh = net if pc.reset_same_init else None
        if pc.reset != "none" and fresh is None:
            fresh_params = self._init_params(fresh_key)
            fresh = NetState(fresh_params, self.tx.init(fresh_params))
        n = self.cfg.num_envs
        state = PPOState(
            net=net,
            obs_stats=stats_init((self.obs_dim,)),
            ret_stats=ReturnStats(jnp.zeros((n,), jnp.float32), stats_init(())),
            rng=rng,
            updates=jnp.int32(0),
            iterations=jnp.int32(0),
            extras=init_extras(pc, params, fresh),
        )
        return jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), state)

    # ------------------------------------------------------------------ acting

    def normalize_obs(self, state: PPOState, obs: jax.Array) -> jax.Array:
        """Observation as the networks see it: normalised and clipped when enabled."""
        if not self.cfg.normalize_obs:
            return obs
        clip = self.cfg.obs_clip
        return jnp.clip(normalize(state.obs_stats, obs), -clip, clip)

    def policy_value(self, params: Any, state: PPOState, obs: jax.Array) -> tuple[Any, Any]:
        """(policy output, V) of raw observations (B, d_o)."""
        return apply_networks(self.nets, params, self.normalize_obs(state, obs))

    def act(
        self, state: PPOState, obs: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """Sample actions for raw observations (B, d_o).

        Returns:
            (stored action, environment action in [-1, 1] or integer, log-prob, value).
        """
        pi, value = self.policy_value(state.net.params, state, obs)
        if self.action.discrete:
            action = jax.random.categorical(key, pi, axis=-1)
            return action, action, pl.categorical_log_prob(pi, action), value
        mean, log_std = pi
        u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        log_prob, _ = self.log_prob_entropy(pi, u)
        return u, self.env_action(u), log_prob, value

    def act_deterministic(self, state: PPOState, obs: jax.Array) -> jax.Array:
        """Greedy environment actions: argmax logits, or the squashed/clipped mean."""
        pi, _ = self.policy_value(state.net.params, state, obs)
        return jnp.argmax(pi, axis=-1) if self.action.discrete else self.env_action(pi[0])

    def env_action(self, u: jax.Array) -> jax.Array:
        """Gaussian sample -> action in [-1, 1]: clipped (CleanRL) or tanh-squashed."""
        return jnp.tanh(u) if self.cfg.squash == "tanh" else jnp.clip(u, -1.0, 1.0)

    def log_prob_entropy(self, pi: Any, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        """log pi(action) and the entropy (pre-squash Gaussian entropy for tanh)."""
        if self.action.discrete:
            return pl.categorical_log_prob(pi, action), pl.categorical_entropy(pi)
        mean, log_std = pi
        if self.cfg.squash == "tanh":
            log_prob = pl.tanh_gaussian_log_prob(mean, log_std, action)
        else:
            log_prob = pl.gaussian_log_prob(mean, log_std, action)
        return log_prob, pl.gaussian_entropy(log_std)

    # ------------------------------------------------------------------ learning

    def scale_rewards(self, state: PPOState, traj: Trajectory) -> tuple[PPOState, jax.Array]:
        """Rewards divided by the running std of the discounted return, clipped (Gymnasium
        NormalizeReward; the statistics update before each division)."""
        if not self.cfg.normalize_reward:
            return state, traj.reward
        gamma, clip = self.cfg.gamma, self.cfg.reward_clip
        done = jnp.logical_or(traj.terminated, traj.truncated).astype(jnp.float32)

        def step(rs: ReturnStats, x: tuple[jax.Array, jax.Array]):
            reward, d = x
            ret = rs.ret * gamma + reward
            stats = stats_update(rs.stats, ret)
            scaled = reward / jnp.sqrt(stats.var + 1e-8)
            return ReturnStats(ret * (1.0 - d), stats), jnp.clip(scaled, -clip, clip)

        ret_stats, rewards = jax.lax.scan(step, state.ret_stats, (traj.reward, done))
        return state.replace(ret_stats=ret_stats), rewards

    def make_batch(self, state: PPOState, traj: Trajectory, rewards: jax.Array) -> Batch:
        """GAE(lambda) advantages and returns of a rollout, flattened to (T N, ...)."""
        _, next_values = self.policy_value(state.net.params, state, traj.next_obs)
        done = jnp.logical_or(traj.terminated, traj.truncated)
        cfg = self.cfg
        adv, ret = pl.gae(
            rewards, traj.value, next_values, traj.terminated, done, cfg.gamma, cfg.gae_lambda
        )

        def flat(x: jax.Array) -> jax.Array:
            return x.reshape((-1, *x.shape[2:]))

        return Batch(
            flat(traj.obs), flat(traj.action), flat(traj.log_prob), flat(traj.value),
            flat(adv), flat(ret),
        )  # fmt: skip

    def loss(self, params: Any, state: PPOState, mb: Batch) -> tuple[jax.Array, Metrics]:
        """Clipped surrogate + vf_coef value loss - ent_coef entropy (+ plasticity penalties)."""
        cfg = self.cfg
        pi, value = self.policy_value(params, state, mb.obs)
        log_prob, entropy = self.log_prob_entropy(pi, mb.action)
        adv = pl.normalize_advantages(mb.advantage) if cfg.norm_adv else mb.advantage
        pg_loss, info = pl.clipped_surrogate(log_prob, mb.log_prob, adv, cfg.clip_coef)
        v_loss = pl.value_loss(value, mb.value, mb.returns, cfg.clip_coef, cfg.clip_vloss)
        ent = jnp.mean(entropy)
        total = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * ent
        total += penalty(cfg.plasticity, params, self.labels, state.extras)
        info |= {"train/policy_loss": pg_loss, "train/value_loss": v_loss}
        return total, info | {"train/entropy": ent, "train/loss": total}

    def grad_step(self, state: PPOState, mb: Batch) -> tuple[PPOState, Metrics]:
        """One optimizer step on a minibatch, then projection and Hare & Tortoise."""
        return minibatch_step(self, state, mb)

    def _epoch(self, state: PPOState, batch: Batch) -> tuple[PPOState, Metrics]:
        return shuffled_epoch(self, state, batch)

    def learn(self, state: PPOState, traj: Trajectory) -> tuple[PPOState, Metrics]:
        """The PPO update of one rollout (T, N): see the module docstring. Pure."""
        before = state.updates
        state, rewards = self.scale_rewards(state, traj)
        batch = self.make_batch(state, traj, rewards)

        def epoch(s: PPOState, _: Any) -> tuple[PPOState, Metrics]:
            return self._epoch(s, batch)

        state, info = jax.lax.scan(epoch, state, None, length=self.cfg.update_epochs)
        metrics = jax.tree_util.tree_map(jnp.mean, info)
        if self.cfg.normalize_obs:
            obs = traj.obs.reshape((-1, self.obs_dim))
            state = state.replace(obs_stats=stats_update(state.obs_stats, obs))
        state = maybe_reset(self.cfg.plasticity, state, before, tuple(self.nets))
        metrics |= {
            "train/lr": self.schedule(before),
            "train/value_mean": jnp.mean(batch.value),
            "train/advantage_mean": jnp.mean(batch.advantage),
            "train/reward_mean": jnp.mean(rewards),
        }
        return state.replace(iterations=state.iterations + 1), metrics

    def health(self, state: PPOState, traj: Trajectory) -> Metrics:
        """Network-health diagnostics (`health/<net>/...`) of each network on the first
        minibatch of a rollout: features, dormancy, ranks, norms, ELRs of the step it would take
        (plasticity metrics of `metrics.health`). Pure: the state is not changed."""
        scaled_state, rewards = self.scale_rewards(state, traj)
        batch = self.make_batch(scaled_state, traj, rewards)
        mb = jax.tree_util.tree_map(lambda x: x[: self.cfg.minibatch_size], batch)
        before = state.net.params
        grads, _ = jax.grad(self.loss, has_aux=True)(before, state, mb)
        after = apply_gradients(self.tx, state.net, grads, self._project).params
        obs, lr = self.normalize_obs(state, mb.obs), self.schedule(state.updates)
        out: Metrics = {}
        for name, net in self.nets.items():
            feats = collect_features(net, {"params": before[name]}, obs)
            stats = network_health(after[name], grads[name], before[name], feats, lr)
            out |= {f"health/{name}/{k}": v for k, v in stats.items()}
        return out


def make_ppo(cfg: PPOConfig, obs_dim: int, action: ActionSpec, num_iterations: int) -> PPO:
    """Build a PPO agent for flat observations of size `obs_dim`."""
    pc = cfg.plasticity
    spec = NetSpec(
        cfg.agent, cfg.c_shift, pc.hidden_norm, pc.nap, cfg.state_dependent_std, cfg.log_std_init
    )
    nets = make_networks(
        spec,
        action,
        cfg.shared_trunk,
        (cfg.actor_width, cfg.actor_depth),
        (cfg.value_width, cfg.value_depth),
    )
    shapes = jax.eval_shape(lambda k: init_networks(nets, k, obs_dim), jax.random.PRNGKey(0))
    labels = {name: label_params(tree) for name, tree in shapes.items()}
    schedule = make_schedule(cfg, num_iterations)
    return PPO(cfg, obs_dim, action, nets, make_optimizer(cfg, schedule, labels), schedule, labels)
