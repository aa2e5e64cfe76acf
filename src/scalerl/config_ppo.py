"""Typed, frozen configuration of PPO runs: agent hyper-parameters, presets, run settings.

Defaults follow CleanRL's `ppo.py` (Huang et al. 2022, "CleanRL", JMLR 23(274)) and PureJaxRL's
PPO (Lu et al. 2022, "Discovered Policy Optimisation", NeurIPS), which share them: 4 envs x 128
steps, 4 epochs x 4 minibatches, lr 2.5e-4 annealed linearly to 0, gamma 0.99, lambda 0.95,
clip 0.2, value coefficient 0.5, entropy coefficient 0.01, gradient-norm clip 0.5, Adam eps
1e-5. `scalerl train --algo ppo --help` shows the field docs below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from scalerl.config import AGENTS, AgentName, PlasticityConfig, validate_plasticity
from scalerl.errors import ConfigError


@dataclass(frozen=True)
class PPOConfig:
    """PPO agent: networks, rollout shape and update hyper-parameters (CleanRL defaults)."""

    agent: AgentName = "mlp"
    """Network family of actor and value function: mlp, simba, simbav2 or msr. Selecting one
    resets every other default to that preset."""
    actor_width: int = 64
    """Actor hidden width h."""
    actor_depth: int = 2
    """Actor residual blocks L (mlp: hidden layers)."""
    value_width: int = 64
    """Value-network hidden width h (ignored with shared_trunk)."""
    value_depth: int = 2
    """Value-network residual blocks L (ignored with shared_trunk)."""
    shared_trunk: bool = False
    """One encoder (actor sizes) feeding both the policy and the value head."""
    num_envs: int = 4
    """Parallel environments N of a rollout."""
    num_steps: int = 128
    """Steps T per environment and rollout; one update uses N x T transitions."""
    update_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 4
    """Minibatches per epoch (N x T must be divisible by it)."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda (Schulman et al. 2016)."""
    clip_coef: float = 0.2
    """Surrogate clipping range epsilon (PPO paper eq. 7)."""
    clip_vloss: bool = True
    """Clip the value loss around the rollout's values with clip_coef (PPO2 baselines)."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clipping threshold (0 = off)."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    lr: float = 2.5e-4
    """Adam learning rate (the start of the annealing)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over the run, stepping once per rollout."""
    adam_eps: float = 1e-5
    """Adam epsilon (CleanRL/PureJaxRL use 1e-5)."""
    optimizer: Literal["adam", "adamw", "kron"] = "adam"
    """Optimizer: adam, adamw or PSGD-Kron (use about a third of Adam's learning rate)."""
    weight_decay: float = 0.0
    """Decoupled weight decay (adamw or kron only)."""
    normalize_obs: bool = False
    """Running mean/variance observation normalisation; statistics are frozen during a
    rollout and its update and merged afterwards."""
    obs_clip: float = 10.0
    """Normalised observations are clipped to [-obs_clip, obs_clip]."""
    normalize_reward: bool = False
    """Divide rewards by the running std of the discounted return (Gymnasium NormalizeReward)."""
    reward_clip: float = 10.0
    """Scaled rewards are clipped to [-reward_clip, reward_clip]."""
    squash: Literal["clip", "tanh"] = "clip"
    """Continuous actions: Gaussian sample clipped to the bounds (CleanRL) or tanh-squashed."""
    state_dependent_std: bool = False
    """Continuous actions: log-std predicted from the state instead of a free parameter."""
    log_std_init: float = 0.0
    """Continuous actions: initial log-std."""
    c_shift: float = 3.0
    """SimbaV2 input shift constant appended before l2-normalisation."""
    project_weights: bool = False
    """SimbaV2: re-project kernels onto the unit sphere after every optimizer step."""
    plasticity: PlasticityConfig = field(default_factory=PlasticityConfig)
    """Plasticity interventions (NaP, hidden LayerNorm, L2-init, Hare & Tortoise, resets, S&P);
    intervals count gradient steps (epochs x minibatches per rollout)."""

    @property
    def batch_size(self) -> int:
        """Transitions per rollout: num_envs x num_steps."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        """Transitions per minibatch."""
        return self.batch_size // self.num_minibatches

    @property
    def steps_per_update(self) -> int:
        """Gradient steps per rollout: update_epochs x num_minibatches."""
        return self.update_epochs * self.num_minibatches


def ppo_preset(agent: str) -> PPOConfig:
    """Defaults of a network family. mlp: CleanRL's 64x2 networks; simba, simbav2, msr: width
    128 and 2 blocks (our choice), running observation normalisation as in SimBa/SimbaV2."""
    if agent == "mlp":
        return PPOConfig()
    if agent not in AGENTS:
        raise ConfigError(f"unknown agent {agent!r}; choose one of {', '.join(AGENTS)}")
    return PPOConfig(
        agent=agent,
        actor_width=128,
        actor_depth=2,
        value_width=128,
        value_depth=2,
        normalize_obs=True,
        project_weights=agent == "simbav2",
    )


@dataclass(frozen=True)
class PPOTrainConfig:
    """One PPO run: environment, budget, outputs, and the agent."""

    algo: Literal["ppo"] = "ppo"
    """Algorithm (PPO; the off-policy algorithms have their own options: scalerl train --help)."""
    env: str = "gymnax:CartPole-v1"
    """Environment id: gymnax:<id>, craftax:Craftax-Classic-Symbolic-v1 or brax:<env> (fully
    jitted), or a Gymnasium/DMC/MuJoCo id (host loop over a Gymnasium vector env)."""
    seed: int = 0
    """Random seed (network init, sampling, environments)."""
    seeds: str | None = None
    """Train several seeds in one process with jax.vmap, e.g. 0-7 or 0,3,5 (overrides --seed;
    JAX-native environments only)."""
    num_seeds: int = 1
    """Train seeds seed, ..., seed+num_seeds-1 in one process (ignored with --seeds)."""
    env_steps: int = 500_000
    """Budget in environment steps (all environments together; action repeat included)."""
    vector: Literal["sync", "async"] = "sync"
    """Gymnasium ids: step the environments in this process (sync) or in worker processes."""
    action_repeat: int | None = None
    """Gymnasium ids: action repeat. None: suite preset."""
    max_episode_steps: int | None = None
    """Gymnasium ids: episode time limit in raw steps. None: suite preset."""
    log_every: int = 50_000
    """Environment steps between log points (rounded up to whole rollouts)."""
    checkpoint_every: int = 0
    """Environment steps between checkpoints (0: only at the end)."""
    name: str | None = None
    """Run name (directory under run_root). None: ppo-<agent>-<env>-s<seed>-<timestamp>."""
    run_root: Path = Path("runs")
    """Directory holding run directories."""
    tensorboard: bool = True
    """Write TensorBoard event files to <run>/tb."""
    wandb_project: str | None = None
    """Also log to this Weights & Biases project (needs `pip install scalerl[wandb]`)."""
    progress: bool = True
    """Print one line per log point."""
    health: bool = True
    """Network-health diagnostics (health/<net>/...: feature norms, dormant units, ranks, norms,
    ELRs) at every log point, on the last rollout before its update (JAX-native ids)."""
    agent: PPOConfig = field(default_factory=PPOConfig)


def num_iterations(cfg: PPOTrainConfig, repeat: int = 1) -> int:
    """Rollout-update iterations of a run: env_steps // (N T repeat), at least 1."""
    return max(1, cfg.env_steps // (cfg.agent.batch_size * repeat))


def iterations_per_log(cfg: PPOTrainConfig, repeat: int = 1) -> int:
    """Iterations between log points: ceil(log_every / (N T repeat)), in [1, num_iterations]."""
    per = -(-cfg.log_every // (cfg.agent.batch_size * repeat))
    return max(1, min(per, num_iterations(cfg, repeat)))


def validate_ppo(cfg: PPOConfig) -> None:
    """Raise ConfigError for a PPO agent value that cannot work."""
    for name in ("actor_width", "actor_depth", "value_width", "value_depth", "num_envs"):
        _positive(cfg, name)
    for name in ("num_steps", "update_epochs", "num_minibatches", "lr", "adam_eps"):
        _positive(cfg, name)
    if cfg.agent not in AGENTS:
        raise ConfigError(f"unknown agent {cfg.agent!r}; choose one of {', '.join(AGENTS)}")
    if cfg.batch_size % cfg.num_minibatches:
        raise ConfigError(
            f"num_envs x num_steps ({cfg.batch_size}) is not divisible by num_minibatches "
            f"({cfg.num_minibatches}); change --num-minibatches"
        )
    if not (0.0 <= cfg.gamma <= 1.0 and 0.0 <= cfg.gae_lambda <= 1.0):
        raise ConfigError("gamma and gae_lambda must be in [0, 1]")
    if min(cfg.clip_coef, cfg.vf_coef, cfg.ent_coef, cfg.max_grad_norm, cfg.weight_decay) < 0:
        raise ConfigError("clip_coef, vf_coef, ent_coef, max_grad_norm, weight_decay must be >= 0")
    if cfg.weight_decay > 0 and cfg.optimizer == "adam":
        raise ConfigError("weight_decay > 0 needs --optimizer adamw (or kron)")
    validate_plasticity(cfg.plasticity, cfg.agent)
    if cfg.plasticity.redo_every:
        raise ConfigError("ReDo is not available with PPO; set --redo-every 0")


def validate_ppo_train(cfg: PPOTrainConfig) -> None:
    """Raise ConfigError for a PPO run value that cannot work (before any work starts)."""
    _positive(cfg, "env_steps")
    _positive(cfg, "log_every")
    if cfg.checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0, got {cfg.checkpoint_every}")
    if cfg.env_steps < cfg.agent.batch_size:
        raise ConfigError(
            f"env_steps ({cfg.env_steps}) is below one rollout (num_envs x num_steps = "
            f"{cfg.agent.batch_size}); raise --env-steps"
        )
    validate_ppo(cfg.agent)


def _positive(cfg: object, name: str) -> None:
    value = getattr(cfg, name)
    if not value > 0:
        raise ConfigError(f"{name} must be positive, got {value}")


def replace(cfg, **changes):
    """`dataclasses.replace` re-exported for frozen configs."""
    return dataclasses.replace(cfg, **changes)
