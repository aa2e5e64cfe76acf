"""The off-policy actor-critic base shared by SAC, TD3 and DDPG, as pure functions on the state.

`ActorCritic` owns everything the three algorithms share: the actor and critic-ensemble
networks and their optimizers, observation and reward normalisation, the categorical (SimbaV2)
or scalar TD target, the critic loss, Polyak averaging, plasticity interventions (NaP, L2-init,
Hare & Tortoise, resets, ReDo), and health diagnostics. An algorithm subclasses it in its own
module and fills in the hooks marked "algorithm hook" below: how it acts, its actor loss, the
next action of the TD target (with any entropy term), its temperature step and any delayed
updates. No method here branches on the algorithm.

Update order (SimbaV2, Lee et al. 2025, section 4): actor step -> temperature step -> critic
step (target from the new actor and temperature) -> Polyak -> algorithm's delayed updates ->
Hare & Tortoise. Kernels are projected after every actor and critic step when
`project_weights` is on; the target critic is not re-projected.
"""

from __future__ import annotations

import abc
import functools
import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax

from scalerl.agents import interventions, losses
from scalerl.agents.base import Metrics
from scalerl.agents.state import NetState, SACState, apply_gradients, polyak
from scalerl.buffers.replay import Batch
from scalerl.config import AgentConfig, PlasticityConfig, temperature_weight_decay
from scalerl.metrics.health import collect_features, network_health
from scalerl.networks import Actor, Critic, project_kernels
from scalerl.normalizers import (
    normalize,
    reward_scale,
    reward_scale_init,
    reward_scale_update,
    stats_init,
    stats_update,
)
from scalerl.plasticity import nap, redo


def make_schedule(cfg: AgentConfig, decay_steps: int) -> optax.Schedule:
    """Linear decay lr_init -> lr_end over `decay_steps` updates, then constant (SimbaV2
    section 4), or NaP's warm-up + cosine schedule restarted every `decay_steps` (Lyle et al.
    2024, eq. 5)."""
    if cfg.lr_schedule == "warmup_cosine":
        warmup = min(cfg.lr_warmup, max(decay_steps - 1, 0))
        return nap.warmup_cosine_schedule(1e-8, cfg.lr_init, cfg.lr_end, warmup, decay_steps)
    if cfg.lr_end == cfg.lr_init:
        return optax.constant_schedule(cfg.lr_init)
    return optax.linear_schedule(cfg.lr_init, cfg.lr_end, decay_steps)


def make_temperature_optimizer(
    cfg: AgentConfig, schedule: optax.Schedule
) -> optax.GradientTransformation:
    """Optimizer of log alpha: Adam, or AdamW when `config.temperature_weight_decay` is > 0 (the
    SimbaV2 code's SimBa, Lee et al. 2024, uses its networks' AdamW for the temperature).

    The AdamW is `optax.adamw`'s update with Adam's two-part state, so checkpoints saved with
    the Adam temperature optimizer still load.
    """
    adam = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)
    decay = temperature_weight_decay(cfg)
    if decay == 0:
        return optax.chain(adam, optax.scale_by_learning_rate(schedule))
    return optax.chain(adam, _decay_then_learning_rate(schedule, decay))


def _decay_then_learning_rate(
    schedule: optax.Schedule, weight_decay: float
) -> optax.GradientTransformation:
    """add_decayed_weights then scale_by_learning_rate, with the latter's state only."""
    scale = optax.scale_by_learning_rate(schedule)
    decay = optax.add_decayed_weights(weight_decay)

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        updates, _ = decay.update(updates, optax.EmptyState(), params)
        return scale.update(updates, state, params)

    return optax.GradientTransformation(scale.init, update)


def bc_term(cfg: AgentConfig, q: jax.Array, action: jax.Array, data_action: jax.Array) -> jax.Array:
    """TD3+BC's behaviour-cloning term lambda-scaled by the mean |Q| (Fujimoto & Gu 2021,
    eq. 3), weighted by `bc_alpha` (offline RL)."""
    bc = jnp.mean(jnp.square(action - data_action))
    return cfg.bc_alpha * jax.lax.stop_gradient(jnp.mean(jnp.abs(q))) * bc


@dataclass(frozen=True)
class ActorCritic(abc.ABC):
    """An off-policy actor-critic's static parts (networks, optimizers, constants) and its pure
    functions over `SACState`.

    Build with `scalerl.agents.registry.make_agent`. Holds no mutable state: every method maps
    a state to a new one, so methods can be jitted, vmapped over seeds and scanned over updates.
    """

    cfg: AgentConfig
    obs_dim: int
    action_dim: int
    actor: Any
    critic: Any
    num_qs: int
    actor_tx: optax.GradientTransformation
    critic_tx: optax.GradientTransformation
    temp_tx: optax.GradientTransformation
    schedule: optax.Schedule
    labels: dict[str, Any]
    """Role labels of the actor's and critic's parameters (`plasticity.roles`)."""

    @classmethod
    def build(
        cls, cfg: AgentConfig, obs_dim: int, action_dim: int, decay_steps: int = 1
    ) -> ActorCritic:
        """Networks and optimizers from a resolved config (gamma and use_cdq not None)."""
        num_bins = cfg.num_bins if cfg.critic_head == "categorical" else 1
        dtype = jnp.bfloat16 if cfg.precision == "bf16" else None
        pc = cfg.plasticity
        norm = {"hidden_norm": pc.hidden_norm, "nap": pc.nap}
        actor_args = (cfg.actor_width, cfg.actor_depth, action_dim, cfg.c_shift, dtype)
        actor = Actor(cfg.agent, *actor_args, **norm)
        critic_args = (cfg.critic_width, cfg.critic_depth, num_bins, cfg.c_shift, dtype)
        critic = Critic(cfg.agent, *critic_args, **norm)
        obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, action_dim))
        labels = {
            "actor": interventions.net_labels(actor, obs),
            "critic": interventions.net_labels(critic, obs, act),
        }
        schedule = make_schedule(cfg, decay_steps)
        return cls(
            cfg,
            obs_dim,
            action_dim,
            actor,
            critic,
            2 if cfg.use_cdq else 1,
            interventions.make_net_optimizer(cfg, schedule, labels["actor"], 0),
            interventions.make_net_optimizer(cfg, schedule, labels["critic"], 1),
            make_temperature_optimizer(cfg, schedule),
            schedule,
            labels,
        )

    @property
    def gamma(self) -> float:
        return float(self.cfg.gamma)

    def _project(self, params: Any) -> Any:
        return project_kernels(params) if self.cfg.project_weights else params

    # ------------------------------------------------------------------ algorithm hooks

    @abc.abstractmethod
    def act(
        self, state: SACState, obs: jax.Array, key: jax.Array, deterministic: bool = False
    ) -> jax.Array:
        """Algorithm hook: the action for `obs` ((d_o,) or (B, d_o)); `deterministic` for
        evaluation, else the data-collection action."""

    def explore(
        self, state: SACState, obs: jax.Array, key: jax.Array, restart: jax.Array
    ) -> tuple[SACState, jax.Array]:
        """The data-collection action for `obs` (d_o,) and the state with any exploration
        state advanced; `restart` (an episode ended) may restart that state. Default: `act`."""
        del restart
        return state, self.act(state, obs, key)

    def _init_algo_extras(self, key: jax.Array, actor_params: Any) -> dict[str, Any]:
        """Algorithm hook: the algorithm's own entries of `SACState.extras` (default none)."""
        del key, actor_params
        return {}

    @abc.abstractmethod
    def _actor_grads(
        self, state: SACState, obs: jax.Array, data_action: jax.Array, key: jax.Array
    ) -> tuple[Any, Metrics]:
        """Algorithm hook: gradient of the actor loss at `state.actor.params` and its metrics."""

    def _alpha(self, temp: NetState) -> jax.Array:
        """Algorithm hook: the entropy temperature the TD target uses (default 0)."""
        del temp
        return jnp.float32(0.0)

    def _temperature_update(
        self, temp: NetState, actor_info: Metrics
    ) -> tuple[NetState, Metrics, jax.Array]:
        """Algorithm hook: (new temperature state, metrics, alpha for the target). Default: the
        temperature is unused and left alone."""
        del actor_info
        return temp, {}, jnp.float32(0.0)

    @abc.abstractmethod
    def _next_action(
        self, state: SACState, actor_params: Any, alpha: jax.Array, next_obs: jax.Array, key
    ) -> tuple[jax.Array, jax.Array]:
        """Algorithm hook: (action at the next state, entropy term (B,)) of the TD target."""

    def _delay(
        self, state: SACState, actor: NetState, target_params: Any
    ) -> tuple[NetState, Any, dict[str, Any]]:
        """Algorithm hook after Polyak: (actor, target critic, extras), e.g. TD3's delayed
        actor and target updates. Default: unchanged."""
        return actor, target_params, state.extras

    def _reset_extras(
        self, pc: PlasticityConfig, extras: dict, fresh_extras: dict
    ) -> dict[str, Any]:
        """Algorithm hook: the algorithm's extras after a periodic reset (default unchanged)."""
        del pc, fresh_extras
        return extras

    # ------------------------------------------------------------------ init and acting

    def init(self, key: jax.Array) -> SACState:
        """Fresh state: projected networks, target = critic, log alpha = log(temp_init)."""
        return self._jit_init(key)

    def init_many(self, keys: jax.Array) -> SACState:
        """States for several seeds stacked on a leading axis (for `jax.vmap` over seeds).

        Initialises seed by seed: `vmap` would batch the orthogonal initialisers' QR, which
        deadlocks XLA on CPU for some shapes under jax 0.10.2.
        """
        states = [self.init(key) for key in keys]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)

    @functools.cached_property
    def _jit_init(self):
        return jax.jit(self._init)

    def _init(self, key: jax.Array) -> SACState:
        rng, actor_key, critic_key = jax.random.split(key, 3)
        obs = jnp.zeros((1, self.obs_dim), jnp.float32)
        act = jnp.zeros((1, self.action_dim), jnp.float32)
        actor_params = self._project(self.actor.init(actor_key, obs)["params"])
        critic_params = self._project(self._init_critic(critic_key, obs, act))
        temp_params = {"log_temp": jnp.float32(math.log(self.cfg.temp_init))}
        extras = interventions.init_extras(self.cfg.plasticity, actor_params, critic_params)
        state = SACState(
            actor=NetState(actor_params, self.actor_tx.init(actor_params)),
            critic=NetState(critic_params, self.critic_tx.init(critic_params)),
            target_params=critic_params,
            temp=NetState(temp_params, self.temp_tx.init(temp_params)),
            obs_stats=stats_init((self.obs_dim,)),
            reward_stats=reward_scale_init(),
            rng=rng,
            updates=jnp.int32(0),
            extras=extras | self._init_algo_extras(key, actor_params),
        )
        # Distinct buffers for every leaf (the target starts equal to the critic), so the whole
        # state can be donated to a jitted step.
        return jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), state)

    def _init_critic(self, key: jax.Array, obs: jax.Array, act: jax.Array) -> Any:
        """Ensemble parameters (num_qs, ...) from independently initialised members.

        Members are initialised one by one and stacked, which gives the parameter tree of the
        vmapped ensemble. (`nn.vmap` init would batch the orthogonal initialiser's QR, which
        deadlocks XLA on CPU for some shapes under jax 0.10.2.)
        """
        keys = jax.random.split(key, self.num_qs)
        members = [self.critic.init(k, obs, act)["params"] for k in keys]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *members)

    def normalize_obs(self, state: SACState, obs: jax.Array) -> jax.Array:
        """Observation as the networks see it (running-statistics normalisation)."""
        return normalize(state.obs_stats, obs) if self.cfg.normalize_obs else obs

    def eval_actor_params(self, state: SACState) -> Any:
        """Actor parameters used for evaluation (Hare & Tortoise: report the tortoise)."""
        pc = self.cfg.plasticity
        if pc.hare_tortoise and pc.ht_eval == "tortoise":
            return state.extras["tortoise"]["actor"]
        return state.actor.params

    def _acting_params(self, state: SACState) -> Any:
        pc = self.cfg.plasticity
        if pc.hare_tortoise and pc.ht_act == "tortoise":
            return state.extras["tortoise"]["actor"]
        return state.actor.params

    def _penalty(self, net: str, params: Any, state: SACState) -> jax.Array:
        """Plasticity loss terms (L2-init, NaP scale/offset decay) of one network."""
        init = state.extras.get("init", {}).get(net)
        return interventions.penalty(self.cfg.plasticity, params, self.labels[net], init)

    def observe(
        self, state: SACState, obs: jax.Array, reward: jax.Array, done: jax.Array
    ) -> SACState:
        """Update the normalisers once per agent step (SimbaV2 section 4.1, reward scaling).

        Args:
            state: agent state.
            obs: the observation the agent is about to act on (d_o,), or one per environment
                (N, d_o) when the state holds N running returns (`train.vector.with_env_axis`).
            reward: raw reward of the previous transition (() or (N,)).
            done: terminated OR truncated of the previous transition (() or (N,)).
        """
        batch = obs[None] if obs.ndim == 1 else obs
        obs_stats = (
            stats_update(state.obs_stats, batch) if self.cfg.normalize_obs else state.obs_stats
        )
        reward_stats = state.reward_stats
        if self.cfg.normalize_reward:
            reward_stats = reward_scale_update(reward_stats, reward, done, self.gamma)
        return state.replace(obs_stats=obs_stats, reward_stats=reward_stats)

    # ------------------------------------------------------------------ critic

    def _critic_out(self, params: Any, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Critic ensemble output (num_qs, B, num_bins); params carry a leading num_qs axis.

        A single critic is applied on its reshaped parameters: on CPU the vmapped form's
        backward pass was ~2x slower for small SimbaV2 critics. Two members use `vmap`, which
        measured faster than applying them one by one.
        """

        def apply(member: Any) -> jax.Array:
            return self.critic.apply({"params": member}, obs, action)

        if self.num_qs == 1:
            return apply(jax.tree_util.tree_map(lambda x: x.reshape(x.shape[1:]), params))[None]
        return jax.vmap(apply)(params)

    def _q_values(self, out: jax.Array) -> jax.Array:
        """Expected Q per ensemble member (num_qs, B)."""
        if self.cfg.critic_head == "categorical":
            return losses.categorical_value(out, self.cfg.g_max)
        return out[..., 0]

    def _critic_target(
        self, state: SACState, actor_params: Any, alpha: jax.Array, batch: Batch, key: jax.Array
    ) -> jax.Array:
        """Target distribution (B, K) or scalar target (B,) from the new actor and alpha; with
        several critics, the member with the smaller expected Q per sample."""
        next_obs = self.normalize_obs(state, batch.next_obs)
        next_action, entropy_term = self._next_action(state, actor_params, alpha, next_obs, key)
        out = self._critic_out(state.target_params, next_obs, next_action)
        next_q = self._q_values(out)
        reward = self._scaled_reward(state, batch.reward)
        if self.cfg.critic_head == "scalar":
            return losses.scalar_td_target(
                reward, batch.discount, batch.terminated, next_q.min(axis=0), entropy_term
            )
        head = jnp.argmin(next_q, axis=0)  # per-sample head with the smaller expected Q
        probs = jax.nn.softmax(out, axis=-1)
        chosen = jnp.take_along_axis(probs, head[None, :, None], axis=0)[0]
        return losses.categorical_td_target(
            reward, batch.discount, batch.terminated, chosen, entropy_term, self.cfg.g_max
        )

    def _critic_grads(
        self, state: SACState, obs: jax.Array, batch: Batch, target: jax.Array
    ) -> tuple[Any, Metrics]:
        """Gradient of the cross-entropy to the projected target (SimbaV2) or the MSE (SimBa,
        MLP), summed over the ensemble."""

        def loss_fn(params: Any) -> tuple[jax.Array, Metrics]:
            out = self._critic_out(params, obs, batch.action)
            if self.cfg.critic_head == "categorical":
                per_head = jnp.mean(losses.cross_entropy(target[None], out), axis=1)
            else:
                per_head = jnp.mean(jnp.square(out[..., 0] - target[None]), axis=1)
            loss = jnp.sum(per_head) + self._penalty("critic", params, state)
            return loss, {"train/q_mean": jnp.mean(self._q_values(out)), "train/critic_loss": loss}

        return jax.grad(loss_fn, has_aux=True)(state.critic.params)

    def _critic_step(
        self, state: SACState, obs: jax.Array, batch: Batch, target: jax.Array
    ) -> tuple[NetState, Metrics]:
        """One optimizer step of the critic ensemble."""
        grads, info = self._critic_grads(state, obs, batch, target)
        return apply_gradients(self.critic_tx, state.critic, grads, self._project), info

    def _actor_step(
        self, state: SACState, obs: jax.Array, data_action: jax.Array, key: jax.Array
    ) -> tuple[NetState, Metrics]:
        """One optimizer step of the actor."""
        grads, info = self._actor_grads(state, obs, data_action, key)
        return apply_gradients(self.actor_tx, state.actor, grads, self._project), info

    def _scaled_reward(self, state: SACState, reward: jax.Array) -> jax.Array:
        if not self.cfg.normalize_reward:
            return reward
        return reward / reward_scale(state.reward_stats, self.cfg.g_max)

    # ------------------------------------------------------------------ the update

    def update(self, state: SACState, batch: Batch) -> tuple[SACState, Metrics]:
        """One update on a raw batch: actor, temperature, critic, Polyak, the algorithm's
        delayed updates, Hare & Tortoise."""
        rng, actor_key, critic_key = jax.random.split(state.rng, 3)
        obs = self.normalize_obs(state, batch.obs)
        actor, actor_info = self._actor_step(state, obs, batch.action, actor_key)
        temp, temp_info, alpha = self._temperature_update(state.temp, actor_info)
        target = self._critic_target(state, actor.params, alpha, batch, critic_key)
        critic, critic_info = self._critic_step(state, obs, batch, target)
        target_params = polyak(state.target_params, critic.params, self.cfg.tau)
        actor, target_params, extras = self._delay(state, actor, target_params)
        if self.cfg.plasticity.hare_tortoise:
            nets = {"actor": actor.params, "critic": critic.params}
            nets, target_params, extras = interventions.hare_tortoise_step(
                self.cfg.plasticity, nets, target_params, extras, state.updates
            )
            actor = actor.replace(params=nets["actor"])
            critic = critic.replace(params=nets["critic"])
        new_state = state.replace(
            actor=actor,
            critic=critic,
            target_params=target_params,
            temp=temp,
            rng=rng,
            updates=state.updates + 1,
            extras=extras,
        )
        reward = self._scaled_reward(state, batch.reward)
        extra = {"train/reward_mean": jnp.mean(reward), "train/reward_max": jnp.max(reward)}
        return new_state, actor_info | temp_info | critic_info | extra

    def update_many(self, state: SACState, batches: Batch) -> tuple[SACState, Metrics]:
        """`update` over the leading axis of `batches` with lax.scan; metrics averaged."""
        state, metrics = jax.lax.scan(self.update, state, batches)
        return state, jax.tree_util.tree_map(lambda m: jnp.mean(m, axis=0), metrics)

    # ------------------------------------------------------------------ diagnostics, resets

    def health(self, state: SACState, batch: Batch) -> Metrics:
        """Network-health diagnostics of actor and critic on a probe batch.

        Computes each network's gradient on `batch` and the optimizer step it would take,
        then `metrics.network_health` (feature norms, dormant ratios, ranks, parameter and
        gradient norms, the three ELRs). Pure: the returned state is not modified, so turning
        diagnostics on does not change training. Critic features come from ensemble member 0.
        """
        key_a, key_t = jax.random.split(jax.random.fold_in(state.rng, 0x4EA1))
        obs = self.normalize_obs(state, batch.obs)
        actor_grads, _ = self._actor_grads(state, obs, batch.action, key_a)
        alpha = self._alpha(state.temp)
        target = self._critic_target(state, state.actor.params, alpha, batch, key_t)
        critic_grads, _ = self._critic_grads(state, obs, batch, target)
        member0 = jax.tree_util.tree_map(lambda x: x[0], state.critic.params)
        features = {
            "actor": collect_features(self.actor, {"params": state.actor.params}, obs),
            "critic": collect_features(self.critic, {"params": member0}, obs, batch.action),
        }
        grads = {"actor": actor_grads, "critic": critic_grads}
        txs = {"actor": self.actor_tx, "critic": self.critic_tx}
        lr = self.schedule(state.updates)
        out: Metrics = {}
        for net in interventions.NETS:
            before = getattr(state, net)
            after = apply_gradients(txs[net], before, grads[net], self._project)
            stats = network_health(after.params, grads[net], before.params, features[net], lr)
            out |= {f"health/{net}/{k}": v for k, v in stats.items()}
        return out

    def reset(self, state: SACState, fresh: SACState) -> SACState:
        """The state after a periodic reset toward `fresh` (SR-SAC, D'Oro et al. 2023; Shrink &
        Perturb, Ash & Adams 2020).

        `fresh` is a newly initialised state (`init` with a new key, or the run's first key for
        `reset_same_init`). A full reset also restarts the temperature (SR-SAC); normaliser
        statistics, the RNG, the update counter and intervention state are kept.
        """
        pc = self.cfg.plasticity
        nets = {}
        for net in interventions.NETS:
            params, opt_state = interventions.reset_net(
                pc, getattr(state, net), getattr(fresh, net)
            )
            nets[net] = NetState(params, opt_state)
        target = interventions.reset_target(pc, state.target_params, fresh.target_params)
        temp = fresh.temp if pc.reset == "full" else state.temp
        extras = self._reset_extras(pc, state.extras, fresh.extras)
        return state.replace(**nets, target_params=target, temp=temp, extras=extras)

    def redo(self, state: SACState, fresh: SACState, batch: Batch) -> tuple[SACState, Metrics]:
        """Recycle tau-dormant units of the MLP actor and critic (ReDo, Sokar et al. 2023).

        Scores come from the post-ReLU features on `batch`; dormant units get fresh incoming
        weights from `fresh`, zero outgoing weights and zeroed Adam moments.
        """
        obs = self.normalize_obs(state, batch.obs)
        acts = {
            "actor": self._sown(self.actor, state.actor.params, obs),
            "critic": jax.vmap(lambda p: self._sown(self.critic, p, obs, batch.action))(
                state.critic.params
            ),
        }
        nets, info = {}, {}
        for net, batch_dims in (("actor", 0), ("critic", 1)):
            before, new = getattr(state, net), getattr(fresh, net)
            links = redo.mlp_links(before.params)
            params, opt_state, n = redo.recycle(
                before.params,
                before.opt_state,
                new.params,
                acts[net],
                links,
                self.cfg.plasticity.redo_tau,
                batch_dims,
            )
            nets[net] = NetState(params, opt_state)
            info[f"train/redo_recycled_{net}"] = n
        return state.replace(**nets), info

    @staticmethod
    def _sown(module: Any, params: Any, *inputs: jax.Array) -> dict[str, jax.Array]:
        _, variables = module.apply({"params": params}, *inputs, mutable=["intermediates"])
        return redo.sown_features(variables["intermediates"])
