"""Typed, frozen configuration of DQN runs: agent hyper-parameters, presets, run settings.

Three presets, picked from the environment id unless --preset says otherwise:

* classic (Gymnasium / gymnax classic control, e.g. CartPole-v1): CleanRL's `dqn.py` (Huang et
  al. 2022, "CleanRL", JMLR 23(274)): lr 2.5e-4, buffer 10k, batch 128, a gradient step every 10
  environment steps, hard target copy every 500 environment steps (50 updates), ε 1 -> 0.05
  over half of a 500k-step run, 10k steps before learning, MSE loss; 128 x 2 MLP (ours; CleanRL
  uses 120-84).
* minatar (gymnax:*-MinAtar): Young & Tian 2019 ("MinAtar", §4 and Appendix): one 16-channel
  3x3 conv and a 128-unit dense layer, buffer 100k, batch 32, one update per step, target copy
  every 1000 updates, ε 1 -> 0.1 over 100k steps, 5000 steps before learning, Huber loss,
  lr 2.5e-4 (Adam here; the paper uses RMSProp).
* atari (ale:<Game>): Mnih et al. 2015 ("Human-level control through deep reinforcement
  learning", Extended Data Table 1): Nature torso, batch 32, an update every 4 agent steps,
  target copy every 10k updates, ε 1 -> 0.1 over 1M steps, 50k steps before learning, Huber
  loss, a 1M-transition replay; Adam with lr 6.25e-5 and eps 1.5e-4 (Hessel et al. 2018,
  "Rainbow", Table 1). With frame deduplication (`dedup_frames`) the replay takes 14 GB (56 GB
  as whole 84x84x4 stack pairs); resume points stream it to disk without a second copy.

Evaluation episodes act ε-greedily with a small ε_eval = 0.05 in every preset: the value of
Mnih et al. 2015 (Methods, "Evaluation procedure") and of CleanRL's DQN evaluation; Rainbow and
Dopamine use 0.001 (pass --eps-eval 0.001 to compare with them). MinAtar uses the same 0.05
(our choice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from scalerl.config import AGENTS, PlasticityConfig, validate_plasticity
from scalerl.errors import ConfigError

PRESETS: tuple[str, ...] = ("classic", "minatar", "atari")
TORSOS: tuple[str, ...] = ("nature", "impala", "minatar")
TRUNKS: tuple[str, ...] = ("none", "mlp", "simba", "simbav2", "msr")


@dataclass(frozen=True)
class DQNConfig:
    """DQN agent: network, targets, exploration, replay and optimizer (classic preset)."""

    torso: Literal["nature", "impala", "minatar"] | None = None
    """Conv torso for frame observations (nature, impala, minatar); None: flat observations."""
    conv_impl: Literal["auto", "xla", "patches"] = "auto"
    """Conv code of the torso: xla (lax conv), patches (patches + one matmul, same parameters;
    4-8x faster gradients inside lax.scan on CPU), auto (patches on CPU, xla elsewhere)."""
    kind: Literal["none", "mlp", "simba", "simbav2", "msr"] = "mlp"
    """Dense trunk: mlp, simba, simbav2 or msr; with a torso, none keeps the torso's dense layer."""
    width: int = 128
    """Width of the dense trunk."""
    depth: int = 2
    """Layers (mlp) or residual blocks (simba, simbav2, msr) of the dense trunk."""
    dueling: bool = False
    """Dueling head Q = V + A - mean(A) (Wang et al. 2016, eq. 9)."""
    num_atoms: int = 1
    """1: scalar Q per action; > 1: C51 distribution over this many atoms (51 in the paper)."""
    v_max: float = 10.0
    """C51 support [-v_max, v_max] (Bellemare et al. 2017 use 10)."""
    double: bool = False
    """Double Q-learning: the online network picks the next action (van Hasselt et al. 2016)."""
    n_step: int = 1
    """n-step returns; chains stop at the first episode end."""
    gamma: float = 0.99
    """Discount."""
    loss: Literal["huber", "mse"] = "mse"
    """TD loss of scalar heads: huber (delta 1, Mnih et al. 2015) or 0.5 (q - y)^2."""
    target_update: Literal["hard", "polyak"] = "hard"
    """Target network: hard copy every target_every updates, or Polyak averaging every update."""
    target_every: int = 50
    """Gradient updates between hard target copies."""
    tau: float = 0.005
    """Polyak coefficient (target_update polyak)."""
    eps_start: float = 1.0
    """Initial ε of ε-greedy exploration."""
    eps_end: float = 0.05
    """Final ε."""
    eps_decay_steps: int = 250_000
    """Environment steps of the linear ε decay."""
    eps_eval: float = 0.05
    """ε of evaluation episodes (Mnih et al. 2015: 0.05; Rainbow/Dopamine: 0.001)."""
    buffer_capacity: int = 10_000
    """Replay capacity in transitions (all environments together)."""
    dedup_frames: bool = True
    """ale: ids: keep each stacked frame once in the replay (the newest frame of obs and next_obs,
    2 frames per transition instead of 8) and rebuild the stacks exactly when sampling."""
    batch_size: int = 128
    """Transitions per gradient update."""
    learning_starts: int = 10_000
    """Environment steps collected before the first update."""
    prioritized: bool = False
    """Proportional prioritised replay (Schaul et al. 2016); off: uniform sampling."""
    per_alpha: float = 0.5
    """Priority exponent alpha (0.5 in Rainbow, Hessel et al. 2018, Table 1)."""
    per_beta: float = 0.4
    """Initial importance-sampling exponent beta, annealed linearly to 1 (Rainbow: 0.4)."""
    per_beta_steps: int = 500_000
    """Environment steps over which beta reaches 1."""
    per_eps: float = 1e-6
    """Added to every new priority so no transition becomes unreachable."""
    num_envs: int = 1
    """Parallel environments."""
    train_every: int = 10
    """Vector steps (num_envs transitions each) between rounds of updates."""
    utd: int = 1
    """Gradient updates per round (replay ratio = utd x batch / (train_every x num_envs))."""
    lr: float = 2.5e-4
    """Learning rate."""
    adam_eps: float = 1e-8
    """Adam epsilon."""
    optimizer: Literal["adam", "adamw", "kron"] = "adam"
    """Optimizer: adam, adamw or PSGD-Kron."""
    weight_decay: float = 0.0
    """Decoupled weight decay (adamw or kron only)."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clipping threshold (0 = off)."""
    plasticity: PlasticityConfig = field(default_factory=PlasticityConfig)
    """Plasticity interventions (NaP, hidden LayerNorm, L2-init, Hare & Tortoise, resets, S&P,
    ReDo); intervals count gradient updates."""

    @property
    def steps_per_round(self) -> int:
        """Environment steps between rounds of updates: train_every x num_envs."""
        return self.train_every * self.num_envs

    @property
    def replay_ratio(self) -> float:
        """Sampled transitions per environment step."""
        return self.utd * self.batch_size / self.steps_per_round


def dqn_preset(name: str) -> DQNConfig:
    """Defaults of a preset (module docstring)."""
    if name == "classic":
        return DQNConfig()
    if name == "minatar":
        return DQNConfig(
            torso="minatar", kind="none", loss="huber", target_every=1000, eps_end=0.1,
            eps_decay_steps=100_000, buffer_capacity=100_000, batch_size=32,
            learning_starts=5000, train_every=1,
        )  # fmt: skip
    if name == "atari":
        return DQNConfig(
            torso="nature", kind="none", loss="huber", target_every=10_000, eps_end=0.1,
            eps_decay_steps=1_000_000, buffer_capacity=1_000_000, batch_size=32,
            learning_starts=50_000, train_every=4, lr=6.25e-5, adam_eps=1.5e-4,
        )  # fmt: skip
    raise ConfigError(f"unknown DQN preset {name!r}; choose one of {', '.join(PRESETS)}")


def preset_for_env(env_id: str) -> str:
    """classic, minatar (ids ending in -MinAtar) or atari (ale: ids)."""
    if env_id.startswith("ale:"):
        return "atari"
    return "minatar" if env_id.endswith("-MinAtar") else "classic"


@dataclass(frozen=True)
class DQNTrainConfig:
    """One DQN run: environment, budget, outputs, and the agent."""

    algo: Literal["dqn"] = "dqn"
    """Algorithm (DQN; the other algorithms have their own options: scalerl train --help)."""
    preset: Literal["auto", "classic", "minatar", "atari"] = "auto"
    """Agent defaults: classic, minatar or atari; auto picks by --env (ale: -> atari,
    *-MinAtar -> minatar, else classic). Options given on the command line override them."""
    env: str = "gymnax:CartPole-v1"
    """Environment id: gymnax:<id> with discrete actions (fully jitted, vmapped over seeds),
    ale:<Game> (Atari) or a Gymnasium id with discrete actions (host loop)."""
    seed: int = 0
    """Random seed (network init, exploration, environments)."""
    seeds: str | None = None
    """Train several seeds in one process with jax.vmap, e.g. 0-7 or 0,3,5 (overrides --seed;
    gymnax ids only)."""
    num_seeds: int = 1
    """Train seeds seed, ..., seed+num_seeds-1 in one process (ignored with --seeds)."""
    env_steps: int = 500_000
    """Budget in environment (agent) steps, all environments together."""
    max_episode_steps: int | None = None
    """Gymnasium ids: episode time limit. None: the registry's."""
    log_every: int = 50_000
    """Environment steps between log points (rounded up to whole rounds)."""
    eval_every: int = 50_000
    """Environment steps between evaluations: eval_episodes ε_eval-greedy episodes in separate
    environments at the first log point at or after each multiple and at the end of the run
    (0: off, and eval/return repeats the training episodes' return)."""
    eval_episodes: int = 10
    """Episodes per evaluation (run in parallel)."""
    checkpoint_every: int = 0
    """Environment steps between checkpoints (0: only at the end); checkpoints hold the replay
    buffer, so a killed run resumes exactly."""
    name: str | None = None
    """Run name (directory under run_root). None: dqn-<env>-s<seed>-<timestamp>."""
    run_root: Path = Path("runs")
    """Directory holding run directories."""
    tensorboard: bool = True
    """Write TensorBoard event files to <run>/tb."""
    wandb_project: str | None = None
    """Also log to this Weights & Biases project (needs `pip install scalerl[wandb]`)."""
    progress: bool = True
    """Print one line per log point."""
    health: bool = True
    """Network-health diagnostics (health/q/...) at every log point, on a replay batch."""
    agent: DQNConfig = field(default_factory=DQNConfig)


def num_rounds(cfg: DQNTrainConfig) -> int:
    """Rounds (train_every vector steps + utd updates) of a run: env_steps // steps_per_round."""
    return max(1, cfg.env_steps // cfg.agent.steps_per_round)


def warmup_rounds(cfg: DQNTrainConfig) -> int:
    """Rounds before the first update: ceil(learning_starts / steps_per_round), at least 1."""
    return max(1, -(-cfg.agent.learning_starts // cfg.agent.steps_per_round))


def rounds_per_log(cfg: DQNTrainConfig) -> int:
    """Rounds between log points: ceil(log_every / steps_per_round), in [1, num_rounds]."""
    per = -(-cfg.log_every // cfg.agent.steps_per_round)
    return max(1, min(per, num_rounds(cfg)))


def eval_due(cfg: DQNTrainConfig, before: int, after: int, last: bool = False) -> bool:
    """Whether to evaluate at a log point: a multiple of eval_every lies in (before, after]
    (environment steps), or it is the `last` one of the run (and evaluation is on)."""
    every = cfg.eval_every
    return every > 0 and (last or after // every > before // every)


def buffer_rows(cfg: DQNConfig) -> int:
    """Vector steps the replay holds: buffer_capacity // num_envs."""
    return max(1, cfg.buffer_capacity // cfg.num_envs)


CONV_IMPLS = ("auto", "xla", "patches")
"""Values of --conv-impl (DQN and PQN)."""


def check_conv_impl(impl: str) -> None:
    """Raise ConfigError unless `impl` is one of CONV_IMPLS."""
    if impl not in CONV_IMPLS:
        raise ConfigError(f"unknown conv_impl {impl!r}; choose one of {', '.join(CONV_IMPLS)}")


def validate_dqn(cfg: DQNConfig) -> None:
    """Raise ConfigError for a DQN agent value that cannot work."""
    for name in ("width", "depth", "num_atoms", "n_step", "target_every", "batch_size"):
        _positive(cfg, name)
    for name in ("num_envs", "train_every", "utd", "lr", "adam_eps", "buffer_capacity"):
        _positive(cfg, name)
    if cfg.torso is not None and cfg.torso not in TORSOS:
        raise ConfigError(f"unknown torso {cfg.torso!r}; choose one of {', '.join(TORSOS)}")
    if cfg.kind not in TRUNKS or (cfg.kind == "none" and cfg.torso is None):
        raise ConfigError(f"kind {cfg.kind!r} needs one of {', '.join(AGENTS)} without a torso")
    check_conv_impl(cfg.conv_impl)
    if cfg.num_atoms == 2 or cfg.v_max <= 0:
        raise ConfigError("C51 needs num_atoms >= 3 (1 = scalar Q) and v_max > 0")
    if not (0.0 <= cfg.gamma <= 1.0 and 0.0 < cfg.tau <= 1.0):
        raise ConfigError("gamma must be in [0, 1] and tau in (0, 1]")
    if not all(0.0 <= e <= 1.0 for e in (cfg.eps_start, cfg.eps_end, cfg.eps_eval)):
        raise ConfigError("eps_start, eps_end and eps_eval must be in [0, 1]")
    if min(cfg.eps_decay_steps, cfg.learning_starts, cfg.weight_decay, cfg.max_grad_norm) < 0:
        raise ConfigError("eps_decay_steps, learning_starts, weight_decay, max_grad_norm >= 0")
    if cfg.weight_decay > 0 and cfg.optimizer == "adam":
        raise ConfigError("weight_decay > 0 needs --optimizer adamw (or kron)")
    if not (0.0 <= cfg.per_alpha <= 1.0 and 0.0 <= cfg.per_beta <= 1.0 and cfg.per_eps > 0):
        raise ConfigError("per_alpha and per_beta must be in [0, 1] and per_eps > 0")
    if buffer_rows(cfg) < cfg.n_step:
        raise ConfigError("buffer_capacity / num_envs must be at least n_step; raise the buffer")
    validate_plasticity(cfg.plasticity, "mlp" if cfg.kind == "none" else cfg.kind)


def validate_dqn_train(cfg: DQNTrainConfig) -> None:
    """Raise ConfigError for a DQN run value that cannot work (before any work starts)."""
    _positive(cfg, "env_steps")
    _positive(cfg, "log_every")
    _positive(cfg, "eval_episodes")
    if cfg.checkpoint_every < 0 or cfg.eval_every < 0:
        raise ConfigError("checkpoint_every and eval_every must be >= 0")
    if cfg.env_steps < cfg.agent.steps_per_round:
        raise ConfigError(
            f"env_steps ({cfg.env_steps}) is below one round (train_every x num_envs = "
            f"{cfg.agent.steps_per_round}); raise --env-steps"
        )
    validate_dqn(cfg.agent)


def _positive(cfg: object, name: str) -> None:
    value = getattr(cfg, name)
    if not value > 0:
        raise ConfigError(f"{name} must be positive, got {value}")
