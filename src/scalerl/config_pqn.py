"""Typed, frozen configuration of PQN runs: agent hyper-parameters, presets, run settings.

PQN (Gallici et al. 2025, "Simplifying Deep Temporal Difference Learning", ICLR) learns Q
values online from many vectorised environments: no replay buffer, no target network, Q(λ)
targets over each rollout, LayerNorm in the network, ε-greedy exploration, RAdam with
global-norm clipping. Presets follow the authors' released configurations (purejaxql,
`config/alg/pqn_minatar.yaml`, `pqn_cartpole.yaml`, `pqn_atari.yaml`); `pqn_preset` says which
numbers come from which. `scalerl train --algo pqn --help` shows the field docs below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from scalerl.config import AGENTS, PlasticityConfig, validate_plasticity
from scalerl.config_dqn import check_conv_impl
from scalerl.errors import ConfigError

TorsoName = Literal["auto", "none", "nature", "impala", "minatar"]
TrunkName = Literal["none", "mlp", "simba", "simbav2", "msr"]


@dataclass(frozen=True)
class PQNConfig:
    """PQN agent: Q network, rollout shape, Q(λ) and optimizer settings."""

    torso: TorsoName = "auto"
    """Conv torso for frame observations: minatar (one 16-channel 3x3 conv + dense 128),
    nature (Nature-DQN), impala (IMPALA ResNet) or none (flat vectors through the trunk).
    auto: minatar on MinAtar ids, nature on ale: ids, none otherwise."""
    conv_impl: Literal["auto", "xla", "patches"] = "auto"
    """Conv code of the torso: xla (lax conv), patches (patches + one matmul, same parameters;
    4-8x faster gradients inside lax.scan on CPU), auto (patches on CPU, xla elsewhere)."""
    trunk: TrunkName = "mlp"
    """Dense trunk: mlp, simba, simbav2, msr (multi-skip residual) or none (after a torso:
    the torso's own dense layer)."""
    width: int = 128
    """Trunk width."""
    depth: int = 2
    """Trunk layers (mlp) or residual blocks (simba, simbav2, msr)."""
    layer_norm: bool = True
    """LayerNorm before every hidden nonlinearity, conv and dense (PQN §4; biases dropped)."""
    num_envs: int = 32
    """Parallel environments N of a rollout."""
    num_steps: int = 64
    """Steps T per environment and rollout; one update learns from N x T transitions."""
    update_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 16
    """Minibatches per epoch (N x T must be divisible by it)."""
    gamma: float = 0.99
    """Discount."""
    q_lambda: float = 0.95
    """λ of the Q(λ) targets (0: one-step Q-learning targets)."""
    reward_scale: float = 0.1
    """Rewards are multiplied by this before the targets (logged returns stay unscaled)."""
    eps_start: float = 1.0
    """Initial ε of ε-greedy exploration."""
    eps_end: float = 0.2
    """Final ε."""
    eps_decay: float = 0.2
    """Fraction of the run's rollouts over which ε decays linearly."""
    optimizer: Literal["radam", "adam", "adamw", "kron"] = "radam"
    """Optimizer: radam (PQN), adam, adamw or PSGD-Kron (about a third of Adam's lr)."""
    lr: float = 1e-4
    """Learning rate (the start of the annealing)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over the run's gradient steps."""
    adam_eps: float = 1e-8
    """Epsilon of RAdam / Adam / AdamW."""
    weight_decay: float = 0.0
    """Decoupled weight decay (adamw or kron only)."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clipping threshold (0 = off)."""
    c_shift: float = 3.0
    """SimbaV2 input shift constant (trunk simbav2 only)."""
    plasticity: PlasticityConfig = field(default_factory=PlasticityConfig)
    """Plasticity interventions (NaP, hidden LayerNorm, L2-init, Hare & Tortoise, resets, S&P,
    ReDo); intervals count gradient steps (epochs x minibatches per rollout)."""

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

    @property
    def project_weights(self) -> bool:
        """SimbaV2 trunk: kernels re-projected onto the sphere after every step."""
        return self.trunk == "simbav2"


MINATAR = dict(
    num_envs=128, num_steps=32, update_epochs=2, num_minibatches=32, q_lambda=0.65,
    reward_scale=1.0, eps_end=0.05, eps_decay=0.1, lr=5e-4, trunk="none",
)  # fmt: skip
"""purejaxql pqn_minatar.yaml: 128 x 32, 2 epochs x 32 minibatches, λ 0.65, ε 1 -> 0.05 over
10% of the updates, lr 5e-4 annealed, grad norm 10; the MinAtar CNN (conv 16 + dense 128)."""
ATARI = dict(
    num_envs=128, num_steps=32, update_epochs=2, num_minibatches=32, q_lambda=0.65,
    reward_scale=1.0, eps_end=0.001, eps_decay=0.1, lr=2.5e-4, anneal_lr=False, trunk="none",
)  # fmt: skip
"""purejaxql pqn_atari.yaml: as MinAtar but ε ends at 0.001 and lr 2.5e-4 is constant."""


def pqn_preset(env_id: str) -> PQNConfig:
    """Defaults for an environment id: MinAtar ids get the MinAtar preset, ale: ids the Atari
    one, everything else the CartPole one (purejaxql pqn_cartpole.yaml: 32 x 64, 4 epochs x 16
    minibatches, 2 x 128 MLP here (256 there), λ 0.95, ε 1 -> 0.2 over 20%, lr 1e-4 annealed,
    rewards x 0.1)."""
    if env_id.endswith("-MinAtar"):
        return PQNConfig(**MINATAR)
    if env_id.startswith("ale:"):
        return PQNConfig(**ATARI)
    return PQNConfig()


@dataclass(frozen=True)
class PQNTrainConfig:
    """One PQN run: environment, budget, outputs, and the agent."""

    algo: Literal["pqn"] = "pqn"
    """Algorithm (PQN; the off-policy algorithms have their own options: scalerl train --help)."""
    env: str = "gymnax:CartPole-v1"
    """Environment id: gymnax:<id> (MinAtar games: gymnax:Breakout-MinAtar, ...) or
    craftax:Craftax-Classic-Symbolic-v1 (the whole loop jitted), or ale:<Game> (host loop; steps
    count emulator frames). Selecting one resets the agent defaults to its preset."""
    seed: int = 0
    """Random seed (network init, exploration, environments)."""
    seeds: str | None = None
    """Train several seeds in one process with jax.vmap, e.g. 0-7 or 0,3,5 (overrides --seed)."""
    num_seeds: int = 1
    """Train seeds seed, ..., seed+num_seeds-1 in one process (ignored with --seeds)."""
    env_steps: int = 500_000
    """Budget in environment steps (all environments together)."""
    log_every: int = 50_000
    """Environment steps between log points (rounded up to whole rollouts)."""
    checkpoint_every: int = 0
    """Environment steps between checkpoints (0: only at the end)."""
    name: str | None = None
    """Run name (directory under run_root). None: pqn-<trunk or torso>-<env>-s<seed>-<time>."""
    run_root: Path = Path("runs")
    """Directory holding run directories."""
    tensorboard: bool = True
    """Write TensorBoard event files to <run>/tb."""
    wandb_project: str | None = None
    """Also log to this Weights & Biases project (needs `pip install wandb`)."""
    progress: bool = True
    """Print one line per log point."""
    health: bool = True
    """Network-health diagnostics (health/q/...: feature norms, dormant units, ranks, norms,
    ELRs) at every log point, on the last rollout before its update."""
    agent: PQNConfig = field(default_factory=PQNConfig)


def num_iterations(cfg: PQNTrainConfig) -> int:
    """Rollout-update iterations of a run: env_steps // (N T), at least 1."""
    return max(1, cfg.env_steps // cfg.agent.batch_size)


def iterations_per_log(cfg: PQNTrainConfig) -> int:
    """Iterations between log points: ceil(log_every / (N T)), in [1, num_iterations]."""
    per = -(-cfg.log_every // cfg.agent.batch_size)
    return max(1, min(per, num_iterations(cfg)))


def validate_pqn(cfg: PQNConfig, env_id: str = "") -> None:
    """Raise ConfigError for a PQN agent value that cannot work (on `env_id`)."""
    torso = resolve_torso(cfg.torso, env_id)
    for name in ("width", "depth", "num_envs", "num_steps", "update_epochs", "num_minibatches"):
        _positive(cfg, name)
    for name in ("lr", "adam_eps"):
        _positive(cfg, name)
    if cfg.batch_size % cfg.num_minibatches:
        raise ConfigError(
            f"num_envs x num_steps ({cfg.batch_size}) is not divisible by num_minibatches "
            f"({cfg.num_minibatches}); change --num-minibatches"
        )
    if not (0.0 <= cfg.gamma <= 1.0 and 0.0 <= cfg.q_lambda <= 1.0):
        raise ConfigError("gamma and q_lambda must be in [0, 1]")
    if not (0.0 <= cfg.eps_end <= 1.0 and 0.0 <= cfg.eps_start <= 1.0 and cfg.eps_decay >= 0):
        raise ConfigError("eps_start and eps_end must be in [0, 1] and eps_decay >= 0")
    if min(cfg.max_grad_norm, cfg.weight_decay) < 0:
        raise ConfigError("max_grad_norm and weight_decay must be >= 0")
    if cfg.weight_decay > 0 and cfg.optimizer in ("adam", "radam"):
        raise ConfigError("weight_decay > 0 needs --optimizer adamw (or kron)")
    if torso == "none" and cfg.trunk == "none":
        raise ConfigError("without a conv torso, trunk none leaves no network; use --trunk mlp")
    check_conv_impl(cfg.conv_impl)
    _validate_plasticity(cfg, torso)


def _validate_plasticity(cfg: PQNConfig, torso: str) -> None:
    """The shared plasticity checks, with ReDo judged by what PQN supports: conv torsos (any
    trunk but simbav2) and, on flat observations, plain MLP trunks without LayerNorm."""
    pc = cfg.plasticity
    validate_plasticity(dataclasses.replace(pc, redo_every=0), trunk_family(cfg.trunk))
    if not pc.redo_every:
        return
    if cfg.trunk == "simbav2":
        raise ConfigError("ReDo does not support the simbav2 trunk; use mlp, simba, msr or none")
    norms = cfg.layer_norm or pc.hidden_norm or pc.nap
    if torso == "none" and (cfg.trunk != "mlp" or norms):
        raise ConfigError(
            "ReDo on flat observations needs --trunk mlp --no-layer-norm (without nap or "
            "hidden_norm)"
        )


def resolve_torso(torso: str, env_id: str) -> str:
    """The torso of `torso` auto for an environment: minatar (MinAtar ids), nature (ale:),
    else none."""
    if torso != "auto":
        return torso
    if env_id.endswith("-MinAtar"):
        return "minatar"
    return "nature" if env_id.startswith("ale:") else "none"


def validate_pqn_train(cfg: PQNTrainConfig) -> None:
    """Raise ConfigError for a PQN run value that cannot work (before any work starts)."""
    _positive(cfg, "env_steps")
    _positive(cfg, "log_every")
    if cfg.checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0, got {cfg.checkpoint_every}")
    if cfg.env_steps < cfg.agent.batch_size:
        raise ConfigError(
            f"env_steps ({cfg.env_steps}) is below one rollout (num_envs x num_steps = "
            f"{cfg.agent.batch_size}); raise --env-steps"
        )
    validate_pqn(cfg.agent, cfg.env)


def _positive(cfg: object, name: str) -> None:
    value = getattr(cfg, name)
    if not value > 0:
        raise ConfigError(f"{name} must be positive, got {value}")


def trunk_family(trunk: str) -> str:
    """The network family the shared plasticity checks know (none -> mlp)."""
    return trunk if trunk in AGENTS else "mlp"


def replace(cfg, **changes):
    """`dataclasses.replace` re-exported for frozen configs."""
    return dataclasses.replace(cfg, **changes)
