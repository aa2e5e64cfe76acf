"""Typed, frozen configuration: agent and run settings, agent presets, derived values, validation.

Every field is documented once, here; `scalerl train --help` shows these docs. Values that other
values determine (discount, clipped double-Q, learning-rate decay length, Scaler constants) are
`None` ("auto") by default and resolved by the small functions at the bottom of this file.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from tyro.constructors import PrimitiveConstructorSpec

from scalerl.errors import ConfigError

AgentName = Literal["simbav2", "simba", "mlp", "msr"]
AGENTS: tuple[str, ...] = ("simbav2", "simba", "mlp", "msr")
ALGOS: tuple[str, ...] = ("sac", "td3", "ddpg")
RESET_KINDS: tuple[str, ...] = ("none", "full", "last_layers", "shrink_perturb")

AUTO_CHOICES: dict[str, bool | None] = {"auto": None, "on": True, "off": False}
"""Command-line words of an auto/on/off option and the config value each one stands for."""


def _auto_from_str(args: list[str]) -> bool | None:
    return AUTO_CHOICES[args[0]]


def _auto_to_str(value: bool | None) -> list[str]:
    return [next(k for k, v in AUTO_CHOICES.items() if v is value)]


AutoBool = Annotated[
    bool | None,
    PrimitiveConstructorSpec(
        nargs=1,
        metavar="{auto,on,off}",
        instance_from_str=_auto_from_str,
        is_instance=lambda x: x is None or isinstance(x, bool),
        str_from_instance=_auto_to_str,
        choices=tuple(AUTO_CHOICES),
    ),
]
"""A `bool | None` config value (None = auto) that the command line spells auto, on or off."""


@dataclass(frozen=True)
class PlasticityConfig:
    """Plasticity interventions (docs/plasticity/README.md); all off by default, any network."""

    hidden_norm: bool = False
    """LayerNorm before each hidden nonlinearity (mlp, simba blocks; msr has it built in)."""
    nap: bool = False
    """Normalize-and-Project (Lyle et al. 2024; docs/plasticity/nap.md): hidden_norm, no
    pre-norm biases, and pre-norm kernels projected back to their initial norm after the
    optimizer step."""
    nap_every: int = 1
    """Project every this many gradient steps."""
    nap_norm_mode: Literal["free", "joint_project", "decay_to_init"] = "free"
    """NaP treatment of LayerNorm scale/offset: free, projected jointly, or decayed to (1, 0)
    (docs/plasticity/nap.md)."""
    nap_norm_decay: float = 1e-3
    """Coefficient of the decay-to-(1, 0) penalty of nap_norm_mode=decay_to_init."""
    l2_init: float = 0.0
    """Regenerative L2 toward the initial weights, coef * ||W - W0||^2 (Kumar et al. 2023;
    0 = off)."""
    hare_tortoise: bool = False
    """Hare & Tortoise (Lee et al. 2024; docs/plasticity/hare_tortoise.md): an EMA 'tortoise'
    of actor and critic; hare reset to it."""
    ht_momentum: float = 0.999
    """Tortoise EMA momentum m, applied after every gradient update."""
    ht_reset_every: int = 20_000
    """Reset the hare (and the target critic) to the tortoise every this many updates."""
    ht_eval: Literal["tortoise", "hare"] = "tortoise"
    """Which actor evaluation uses."""
    ht_act: Literal["hare", "tortoise"] = "hare"
    """Which actor collects data (the hare, the network being trained, by default)."""
    reset: Literal["none", "full", "last_layers", "shrink_perturb"] = "none"
    """Periodic reset (docs/plasticity/resets.md): SR-SAC full reset (D'Oro et al. 2023), last
    layers (heads; Nikishin et al. 2022), or Shrink & Perturb (Ash & Adams 2020)."""
    reset_every: int = 0
    """Gradient updates between resets (0 = never)."""
    reset_shrink: float = 0.8
    """Shrink & Perturb: weight lambda of the current parameters."""
    reset_perturb: float = 0.2
    """Shrink & Perturb: weight sigma of the fresh initialisation."""
    reset_opt_state: bool = True
    """Zero the Adam moments of reset parameters (full: fresh optimizer state)."""
    reset_same_init: bool = False
    """Reset to the run's initial weights (SR-SAC code) instead of a fresh draw."""
    reset_stop_after: int | None = None
    """No resets after this many updates (None: no limit)."""
    redo_every: int = 0
    """ReDo (Sokar et al. 2023): recycle tau-dormant units every this many updates (0 = off;
    mlp only)."""
    redo_tau: float = 0.1
    """ReDo dormancy threshold tau."""


@dataclass(frozen=True)
class AgentConfig:
    """SAC agent: network family, sizes and update hyper-parameters (SimbaV2 paper defaults)."""

    agent: AgentName = "simbav2"
    """Agent preset: simbav2 (hyperspherical nets, categorical critic), simba (pre-LN residual
    nets), mlp (plain 256x2 SAC), msr (multi-skip residual MLP with LayerNorm,
    docs/plasticity/stable_gradients.md). Selecting one resets every other default to that
    preset (docs/agents/)."""
    actor_width: int = 128
    """Actor hidden width h."""
    actor_depth: int = 1
    """Actor residual blocks L (mlp: hidden layers)."""
    critic_width: int = 512
    """Critic hidden width h."""
    critic_depth: int = 2
    """Critic residual blocks L (mlp: hidden layers)."""
    critic_head: Literal["categorical", "scalar"] = "categorical"
    """Critic output: 101-bin categorical (cross-entropy) or scalar (MSE)."""
    num_bins: int = 101
    """Categorical critic bins on [-g_max, g_max]."""
    use_cdq: AutoBool = None
    """Clipped double-Q (two critics, min): auto (on iff the suite is episodic, as the SimbaV2
    code does; docs/envs.md), on or off."""
    gamma: float | None = None
    """Discount. None: heuristic from episode length and action repeat (TD-MPC2, Hansen et al.
    2024; docs/envs.md)."""
    n_step: int = 1
    """n-step returns (never crossing an episode end)."""
    batch_size: int = 256
    """Minibatch size per gradient update."""
    tau: float = 0.005
    """Polyak averaging rate of the target critic."""
    optimizer: Literal["adam", "adamw", "kron"] = "adam"
    """Optimizer for actor and critic: adam, adamw or PSGD-Kron (docs/plasticity/kron.md; use
    about a third of Adam's learning rate). The temperature uses Adam, or AdamW with
    temp_weight_decay."""
    lr_init: float = 1e-4
    """Initial learning rate (actor, critic, temperature)."""
    lr_end: float = 5e-5
    """Final learning rate of the linear decay (set equal to lr_init for a constant rate)."""
    lr_decay_fraction: float = 1.0
    """Decay length as a fraction of the run's nominal number of updates."""
    lr_schedule: Literal["linear", "warmup_cosine"] = "linear"
    """linear: lr_init -> lr_end (SimbaV2); warmup_cosine: linear warm-up from 1e-8 to lr_init
    over lr_warmup updates, then cosine to lr_end, restarted every decay length (NaP's
    schedule, docs/plasticity/nap.md)."""
    lr_warmup: int = 1_000
    """Warm-up updates of the warmup_cosine schedule."""
    weight_decay: float = 0.0
    """Decoupled weight decay of actor and critic (AdamW only)."""
    temp_weight_decay: float | None = None
    """Decoupled weight decay of the temperature (log alpha; > 0 uses AdamW). None = auto: the
    networks' weight_decay with --optimizer adamw (the SimBa of the SimbaV2 code), else 0. SimBa
    v1 (Lee et al. 2024) used 0."""
    temp_init: float = 0.01
    """Initial entropy temperature alpha."""
    target_entropy_coef: float = -0.5
    """Target entropy = coef * action_dim."""
    normalize_obs: bool = True
    """Running mean/variance observation normalisation (statistics in the agent state)."""
    normalize_reward: bool = True
    """Divide rewards by the running discounted-return scale, bounded by g_max
    (docs/agents/simbav2.md)."""
    g_max: float = 5.0
    """Return bound of the reward scale and half-width of the categorical support."""
    c_shift: float = 3.0
    """SimbaV2 input shift constant appended before l2-normalisation."""
    project_weights: bool = True
    """SimbaV2: re-project kernels onto the unit sphere after every optimizer step."""
    bc_alpha: float = 0.0
    """Behaviour-cloning weight of the actor loss (offline RL; 0 = off)."""
    algo: Literal["sac", "td3", "ddpg"] = "sac"
    """Actor-critic algorithm on the same networks: sac (stochastic policy, entropy), td3
    (deterministic policy, target actor, target smoothing, delayed actor; Fujimoto et al.
    2018) or ddpg (the SimBa paper's DDPG: noise inside the actor loss and the target;
    docs/agents/td3_ddpg.md). --algo ppo, dqn and pqn have their own options: see
    scalerl train --algo ppo|dqn|pqn --help."""
    expl_noise: float = 0.1
    """td3/ddpg: std of the Gaussian exploration noise added to the deterministic action."""
    noise_color: float = 0.0
    """td3/ddpg: exponent beta of power-law exploration noise (0 white, 1 pink, 2 red)."""
    noise_horizon: int = 1000
    """td3/ddpg with noise_color > 0: agent steps per noise sequence (redrawn when used up and
    at every episode end; SimBa uses the episode length)."""
    target_noise: float = 0.2
    """td3: std of the target-policy smoothing noise."""
    target_noise_clip: float = 0.5
    """td3: the smoothing noise is clipped to [-c, c]."""
    policy_delay: int = 2
    """td3: actor and target-network updates every this many critic updates."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Matmul precision of actor and critic (parameters, losses and optimizer stay float32)."""
    plasticity: PlasticityConfig = field(default_factory=PlasticityConfig)
    """Plasticity interventions (NaP, Hare & Tortoise, resets, ReDo, L2-init)."""


PRESET_CHANGES: dict[str, dict[str, object]] = {
    "simbav2": {},
    "simba": {
        "critic_head": "scalar",
        "optimizer": "adamw",
        "lr_end": 1e-4,
        "weight_decay": 1e-2,
        "normalize_reward": False,
        "project_weights": False,
    },
    "mlp": {
        "actor_width": 256,
        "actor_depth": 2,
        "critic_width": 256,
        "critic_depth": 2,
        "critic_head": "scalar",
        "use_cdq": True,
        "lr_init": 3e-4,
        "lr_end": 3e-4,
        "temp_init": 1.0,
        "target_entropy_coef": -1.0,
        "normalize_obs": False,
        "normalize_reward": False,
        "project_weights": False,
    },
}
"""Each agent preset as its changes to the SimbaV2 defaults (msr uses simba's)."""
PRESET_CHANGES["msr"] = PRESET_CHANGES["simba"]


def _preset_init(dataclass_init):
    """Wrap the dataclass __init__ so fields not passed come from the `agent` preset.

    `AgentConfig(agent="mlp")` is the mlp preset and `AgentConfig(agent="mlp", lr_init=1e-3)`
    that preset with one change. Callers that pass every field (tyro, `dataclasses.replace`,
    `config_from_dict`) get exactly what they pass.
    """

    @functools.wraps(dataclass_init)
    def __init__(self, *args, **kwargs):  # noqa: N807
        names = [f.name for f in dataclasses.fields(AgentConfig)]
        kwargs.update(zip(names, args, strict=False))
        changes = PRESET_CHANGES.get(kwargs.get("agent", "simbav2"), {})
        dataclass_init(self, **({k: v for k, v in changes.items() if k not in kwargs} | kwargs))

    return __init__


AgentConfig.__init__ = _preset_init(AgentConfig.__init__)


def agent_preset(agent: str) -> AgentConfig:
    """The paper defaults of an agent preset (SimbaV2 paper Table 7, SimBa paper Table 5).

    Raises:
        ConfigError: unknown agent name.
    """
    if agent not in PRESET_CHANGES:
        raise ConfigError(f"unknown agent {agent!r}; choose one of {', '.join(AGENTS)}")
    return AgentConfig(agent=agent)


@dataclass(frozen=True)
class TrainConfig:
    """One online training run: environment, budget, cadence, outputs, and the agent."""

    env: str = "dmc:cartpole-swingup"
    """Environment id: dmc:<domain>-<task> (e.g. dmc:walker-walk) or a Gymnasium id (Hopper-v5)."""
    seed: int = 0
    """Random seed (network init, exploration, environment)."""
    seeds: str | None = None
    """Train several seeds in one process with jax.vmap, e.g. 0-7 or 0,3,5 (overrides --seed)."""
    num_seeds: int = 1
    """Train seeds seed, seed+1, ..., seed+num_seeds-1 in one process (ignored with --seeds)."""
    preset: Literal["default", "parallel"] = "default"
    """Run preset: default (one environment per seed, the SimbaV2 setting) or parallel (many
    environments, large batches, few updates per transition, after FastTD3; docs/performance.md).
    Selecting one sets num_envs, utd and batch_size; explicit options win."""
    env_steps: int = 1_000_000
    """Budget in environment frames (agent steps x action repeat), as the paper counts."""
    num_envs: int = 1
    """Environment instances per seed, stepped together; each loop step adds num_envs
    transitions (agent steps) and runs utd x num_envs updates."""
    async_envs: bool = False
    """With num_envs > 1: step the environments in worker processes (gymnasium
    AsyncVectorEnv) instead of one after another in the main process."""
    utd: float | None = None
    """Gradient updates per agent step, i.e. per transition (may be fractional, e.g. 0.5). None =
    auto: the action repeat, as in the SimbaV2 configuration (DMC/MyoSuite/HumanoidBench 2, MuJoCo
    1)."""
    warmup_steps: int = 5_000
    """Agent steps (transitions, all environments of a seed together) of uniform random actions
    before the first update."""
    buffer_capacity: int = 1_000_000
    """Replay buffer capacity in transitions."""
    action_repeat: int | None = None
    """Action repeat. None: suite preset (DMC/MyoSuite/HumanoidBench 2, MuJoCo 1)."""
    max_episode_steps: int | None = None
    """Episode time limit in raw environment steps. None: suite preset."""
    eval_every: int | None = None
    """Agent steps between evaluations. None: suite preset (50,000)."""
    eval_episodes: int = 10
    """Deterministic episodes per evaluation."""
    log_every: int = 1_000
    """Agent steps between training-metric log points."""
    checkpoint_every: int = 0
    """Agent steps between checkpoints (0: only at the end and at each evaluation)."""
    health_every: int = 10_000
    """Network-health diagnostics (health/*) every this many agent steps; 0 = off."""
    health_batch: int = 256
    """Probe batch size of the health diagnostics (states sampled from the replay buffer)."""
    video_every: int = 0
    """Record one deterministic episode to <run>/videos/eval-<env_step>.mp4 every this many
    agent steps (0 = off; headless rendering, see docs/video.md)."""
    name: str | None = None
    """Run name (directory under run_root). None: <agent>-<env>-s<seed>-<timestamp>."""
    run_root: Path = Path("runs")
    """Directory holding run directories."""
    tensorboard: bool = True
    """Write TensorBoard event files to <run>/tb."""
    wandb_project: str | None = None
    """Also log to this Weights & Biases project (needs wandb: `pip install wandb`, or the
    wandb extra, see README "Install")."""
    progress: bool = True
    """Show a progress bar."""
    profile: bool = False
    """Time the loop's phases (environment, updates, compilation, evaluation, logging,
    checkpoints) and write <run>/profile.json and profile.txt at the end (docs/performance.md)."""
    init_from: Path | None = None
    """Start from this run's checkpoint (e.g. an offline run): networks, target critic,
    temperature and normaliser statistics; fresh optimizer state and LR schedule."""
    preload_dataset: Path | None = None
    """Put this dataset (scalerl .npz, D4RL .hdf5 or Minari directory) into the replay buffer
    before the first step (offline-to-online; see docs/offline.md)."""
    agent: AgentConfig = field(default_factory=AgentConfig)


TRAIN_PRESETS: dict[str, dict[str, object]] = {
    "default": {},
    "parallel": {"num_envs": 128, "utd": 2 / 128},
}
"""Each run preset as its changes to the TrainConfig defaults. parallel: FastTD3's HumanoidBench
setting (Seo et al. 2025, hyper-parameters of the paper's code): 128 environments and 2 gradient
updates per step of all of them, i.e. 1/64 update per transition."""
TRAIN_PRESET_AGENT: dict[str, dict[str, object]] = {
    "default": {},
    "parallel": {"batch_size": 32_768},
}
"""Each run preset's changes to the agent defaults (FastTD3: batch size 32,768)."""


def _train_preset_init(dataclass_init):
    """Wrap TrainConfig.__init__ so fields not passed come from the `preset`.

    `TrainConfig(preset="parallel")` is that preset (its agent too) and `TrainConfig(
    preset="parallel", num_envs=16)` the preset with one change. An `agent` passed explicitly is
    used as given. Callers that pass every field (tyro, `dataclasses.replace`, `config_from_dict`)
    get exactly what they pass.
    """

    @functools.wraps(dataclass_init)
    def __init__(self, *args, **kwargs):  # noqa: N807
        names = [f.name for f in dataclasses.fields(TrainConfig)]
        kwargs.update(zip(names, args, strict=False))
        preset = kwargs.get("preset", "default")
        changes = dict(TRAIN_PRESETS.get(preset, {}))
        if TRAIN_PRESET_AGENT.get(preset):
            changes["agent"] = AgentConfig(**TRAIN_PRESET_AGENT[preset])
        dataclass_init(self, **({k: v for k, v in changes.items() if k not in kwargs} | kwargs))

    return __init__


TrainConfig.__init__ = _train_preset_init(TrainConfig.__init__)


def apply_train_preset(cfg: TrainConfig, preset: str) -> TrainConfig:
    """`cfg` with the run preset's values on top (its agent keeps everything else).

    Raises:
        ConfigError: unknown preset name.
    """
    if preset not in TRAIN_PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(TRAIN_PRESETS)}")
    agent = dataclasses.replace(cfg.agent, **TRAIN_PRESET_AGENT[preset])
    return dataclasses.replace(cfg, preset=preset, agent=agent, **TRAIN_PRESETS[preset])


@dataclass(frozen=True)
class OfflineConfig:
    """One offline run: a dataset, the environment to evaluate in, an epoch budget, the agent."""

    dataset: Path | None = None
    """Dataset to learn from: scalerl .npz, D4RL-format .hdf5 or a Minari dataset directory."""
    env: str | None = None
    """Environment id for evaluation. None: the dataset's metadata env_id."""
    seed: int = 0
    """Random seed (network init, batch sampling, evaluation environment)."""
    seeds: str | None = None
    """Train several seeds in one process with jax.vmap, e.g. 0-4 (overrides --seed)."""
    num_seeds: int = 1
    """Train seeds seed, ..., seed+num_seeds-1 in one process (ignored with --seeds)."""
    epochs: float = 100.0
    """Budget in passes over the dataset: updates = int(transitions / batch_size * epochs)."""
    action_repeat: int | None = None
    """Action repeat of the evaluation env. None: the dataset's metadata, else suite preset."""
    max_episode_steps: int | None = None
    """Evaluation episode limit in raw steps. None: dataset metadata, else suite preset."""
    eval_every: int = 50_000
    """Gradient updates between evaluations (SimbaV2 offline setting)."""
    eval_episodes: int = 100
    """Deterministic evaluation episodes (the SimbaV2 offline setting)."""
    log_every: int = 10_000
    """Gradient updates between training-metric log points."""
    checkpoint_every: int = 0
    """Gradient updates between checkpoints (0: at each evaluation only)."""
    updates_per_call: int = 1_000
    """Updates fused into one jitted lax.scan call (a speed knob; results do not depend on it
    except through the log/eval cadence alignment)."""
    ref_min_score: float | None = None
    """Return of a random policy for normalised scores. None: dataset metadata or D4RL table."""
    ref_max_score: float | None = None
    """Return of an expert policy for normalised scores. None: dataset metadata or D4RL table."""
    name: str | None = None
    """Run name (directory under run_root). None: <agent>-offline-<env>-s<seed>-<timestamp>."""
    run_root: Path = Path("runs")
    """Directory holding run directories."""
    tensorboard: bool = True
    """Write TensorBoard event files to <run>/tb."""
    wandb_project: str | None = None
    """Also log to this Weights & Biases project (needs wandb: `pip install wandb`, or the
    wandb extra, see README "Install")."""
    progress: bool = True
    """Show a progress bar."""
    agent: AgentConfig = field(default_factory=lambda: offline_preset("simbav2"))


def offline_preset(agent: str) -> AgentConfig:
    """An agent preset with SimbaV2's offline changes (docs/offline.md): behaviour cloning
    weight 0.1 and a linear LR decay to 1e-5 over the first half of the updates."""
    return dataclasses.replace(
        agent_preset(agent), bc_alpha=0.1, lr_end=1e-5, lr_decay_fraction=0.5, n_step=1
    )


def validate_offline(cfg: OfflineConfig) -> None:
    """Raise ConfigError for an offline config value that cannot work."""
    if cfg.dataset is None:
        raise ConfigError("offline training needs a dataset; pass --dataset PATH")
    _positive(cfg, "epochs", "eval_every", "eval_episodes", "log_every", "updates_per_call")
    for name in ("action_repeat", "max_episode_steps"):
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    if cfg.checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0, got {cfg.checkpoint_every}")
    seed_list(cfg)
    validate_agent(cfg.agent)


def validate_agent(cfg: AgentConfig) -> None:
    """Raise ConfigError for an agent config value that cannot work."""
    _positive(cfg, "actor_width", "actor_depth", "critic_width", "critic_depth", "batch_size")
    _positive(cfg, "n_step", "lr_init", "g_max", "temp_init")
    if cfg.agent not in AGENTS:
        raise ConfigError(f"unknown agent {cfg.agent!r}; choose one of {', '.join(AGENTS)}")
    if cfg.critic_head == "categorical" and cfg.num_bins < 2:
        raise ConfigError(f"num_bins must be >= 2 for a categorical critic, got {cfg.num_bins}")
    if not 0.0 < cfg.tau <= 1.0:
        raise ConfigError(f"tau must be in (0, 1], got {cfg.tau}")
    if cfg.gamma is not None and not 0.0 <= cfg.gamma < 1.0:
        raise ConfigError(f"gamma must be in [0, 1), got {cfg.gamma}")
    if min(cfg.lr_end, cfg.weight_decay, cfg.bc_alpha, cfg.temp_weight_decay or 0.0) < 0:
        raise ConfigError("lr_end, weight_decay, temp_weight_decay and bc_alpha must be >= 0")
    if cfg.lr_warmup < 0:
        raise ConfigError(f"lr_warmup must be >= 0, got {cfg.lr_warmup}")
    validate_algo(cfg)
    if cfg.weight_decay > 0 and cfg.optimizer == "adam":
        raise ConfigError("weight_decay > 0 needs --optimizer adamw (or kron)")
    validate_plasticity(cfg.plasticity, cfg.agent)


def validate_algo(cfg: AgentConfig) -> None:
    """Raise ConfigError for an invalid TD3/DDPG setting."""
    if cfg.algo not in ALGOS:
        raise ConfigError(f"unknown algo {cfg.algo!r}; choose one of {', '.join(ALGOS)}")
    if min(cfg.expl_noise, cfg.target_noise, cfg.target_noise_clip, cfg.noise_color) < 0:
        raise ConfigError("expl_noise, target_noise, target_noise_clip, noise_color must be >= 0")
    if cfg.policy_delay < 1 or cfg.noise_horizon < 2:
        raise ConfigError("policy_delay must be >= 1 and noise_horizon >= 2")


def validate_plasticity(cfg: PlasticityConfig, agent: str) -> None:
    """Raise ConfigError for an intervention setting that cannot work with this agent."""
    if (cfg.nap or cfg.hidden_norm) and agent == "simbav2":
        raise ConfigError(
            "nap/hidden_norm apply to mlp, simba and msr; simbav2 already keeps "
            "its weights on the sphere (use --project-weights)"
        )
    if cfg.nap_every < 1 or cfg.ht_reset_every < 0 or cfg.reset_every < 0 or cfg.redo_every < 0:
        raise ConfigError("nap_every must be >= 1; ht/reset/redo intervals must be >= 0")
    if not 0.0 <= cfg.ht_momentum <= 1.0:
        raise ConfigError(f"ht_momentum must be in [0, 1], got {cfg.ht_momentum}")
    if cfg.reset not in RESET_KINDS:
        raise ConfigError(f"unknown reset {cfg.reset!r}; choose one of {', '.join(RESET_KINDS)}")
    if cfg.reset != "none" and cfg.reset_every == 0:
        raise ConfigError(f"reset={cfg.reset} needs --reset-every N (gradient updates)")
    if cfg.redo_every and (agent != "mlp" or cfg.nap or cfg.hidden_norm):
        raise ConfigError(
            "ReDo (redo_every > 0) is implemented for --agent mlp without nap or hidden_norm only"
        )
    if cfg.l2_init < 0 or cfg.nap_norm_decay < 0 or not 0.0 <= cfg.redo_tau < 1.0:
        raise ConfigError("l2_init and nap_norm_decay must be >= 0 and redo_tau in [0, 1)")


def validate_train(cfg: TrainConfig) -> None:
    """Raise ConfigError for a run config value that cannot work (before any work starts)."""
    _positive(cfg, "env_steps", "buffer_capacity", "eval_episodes", "log_every")
    if cfg.warmup_steps < 1:
        raise ConfigError(f"warmup_steps must be >= 1, got {cfg.warmup_steps}")
    for name in ("utd", "action_repeat", "max_episode_steps", "eval_every"):
        value = getattr(cfg, name)
        if value is not None and not value > 0:
            raise ConfigError(
                f"{name} must be positive, got {value}; fix --{name.replace('_', '-')}"
            )
    if cfg.buffer_capacity < cfg.warmup_steps:
        raise ConfigError("buffer_capacity must be at least warmup_steps")
    if cfg.health_every < 0 or cfg.health_batch < 2:
        raise ConfigError("health_every must be >= 0 and health_batch >= 2")
    if cfg.checkpoint_every < 0 or cfg.video_every < 0:
        raise ConfigError("checkpoint_every and video_every must be >= 0")
    validate_num_envs(cfg)
    seed_list(cfg)
    validate_agent(cfg.agent)


def validate_num_envs(cfg: TrainConfig) -> None:
    """Raise ConfigError for a num_envs setting that cannot work."""
    if cfg.num_envs < 1:
        raise ConfigError(f"num_envs must be >= 1, got {cfg.num_envs}; fix --num-envs")
    if cfg.num_envs == 1:
        return
    if cfg.agent.n_step > 1 and cfg.preload_dataset is not None:
        raise ConfigError(
            "n_step > 1 with --num-envs > 1 cannot chain preloaded rows (not interleaved by "
            "environment); pass --n-step 1 or --num-envs 1"
        )
    if cfg.agent.n_step > 1 and cfg.buffer_capacity < cfg.num_envs * cfg.agent.n_step:
        raise ConfigError("buffer_capacity must hold n_step steps of every environment; raise it")


def seed_list(cfg: TrainConfig | OfflineConfig) -> list[int]:
    """The seeds of a run: parsed from `seeds` ("0-7", "0,3,5", "0-3,8") or a consecutive range.

    Raises:
        ConfigError: unparsable or repeated seeds, or num_seeds < 1.
    """
    if cfg.seeds is None:
        if cfg.num_seeds < 1:
            raise ConfigError(f"num_seeds must be >= 1, got {cfg.num_seeds}")
        return list(range(cfg.seed, cfg.seed + cfg.num_seeds))
    seeds: list[int] = []
    for part in cfg.seeds.split(","):
        seeds += _seed_range(part.strip(), cfg.seeds)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {cfg.seeds!r} repeats a seed; list each seed once")
    return seeds


def _seed_range(part: str, text: str) -> list[int]:
    try:
        lo, _, hi = part.partition("-")
        seeds = list(range(int(lo), int(hi or lo) + 1))
        if not seeds or int(lo) < 0:
            raise ValueError
        return seeds
    except ValueError:
        raise ConfigError(f"cannot parse --seeds {text!r}; use e.g. 0-7 or 0,3,5") from None


def _positive(cfg: object, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not value > 0:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{name} must be positive, got {value}; fix {flag}")


# ----------------------------------------------------------------------------- derived values


def lr_decay_steps(env_steps: int, action_repeat: int, utd: float, fraction: float = 1.0) -> int:
    """Length of the linear LR decay in updates (SimbaV2 code; docs/agents/simbav2.md).

    The official code counts updates as if they started at the first agent step, so the final
    learning rate stays slightly above `lr_end`.
    """
    agent_steps = env_steps // action_repeat
    return max(1, int(fraction * agent_steps * utd))


def auto_utd(action_repeat: int) -> float:
    """Gradient updates per agent step when not set: the action repeat, as the SimbaV2
    configuration sets them (2 on DMC, MyoSuite and HumanoidBench, 1 on MuJoCo), so a run makes
    one update per environment frame."""
    return float(action_repeat)


def temperature_weight_decay(cfg: AgentConfig) -> float:
    """Weight decay of log alpha: `temp_weight_decay`, or when None the networks' weight decay
    under AdamW (the SimbaV2 code's SimBa builds its temperature optimizer like its networks')
    and 0 otherwise."""
    if cfg.temp_weight_decay is not None:
        return cfg.temp_weight_decay
    return cfg.weight_decay if cfg.optimizer == "adamw" else 0.0


def offline_updates(num_transitions: int, batch_size: int, epochs: float) -> int:
    """Gradient updates of an offline run: int(N / batch_size * epochs), at least 1."""
    return max(1, int(num_transitions / batch_size * epochs))


def simbav2_scaler_init(width: int) -> float:
    """Embedder Scaler init and scale sqrt(2/h) (SimbaV2 code defaults)."""
    return math.sqrt(2.0 / width)


def simbav2_alpha_init(depth: int) -> float:
    """LERP interpolation init 1/(L+1) (SimbaV2 code defaults)."""
    return 1.0 / (depth + 1)


def simbav2_alpha_scale(width: int) -> float:
    """LERP interpolation Scaler scale 1/sqrt(h) (SimbaV2 code defaults)."""
    return 1.0 / math.sqrt(width)


def replace(cfg, **changes):
    """`dataclasses.replace` re-exported for frozen configs."""
    return dataclasses.replace(cfg, **changes)
