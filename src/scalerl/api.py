"""Python API in the shape of Stable-Baselines3: `scalerl.SAC`, `TD3`, `DDPG`, `OfflineSAC`.

An agent object is a thin handle on the command-line machinery: `learn` runs exactly what
`scalerl train` (or `scalerl offline`) runs, with the same run directory, logs and checkpoints,
and then holds the trained agent state; `predict` acts with it through one jitted function and
returns actions in the environment's own units; `save`/`load` write and read the checkpoint
format `scalerl evaluate` reads. See docs/python_api.md.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from scalerl.config import AgentConfig, OfflineConfig, PlasticityConfig, TrainConfig
from scalerl.envs import RescaleAction, env_info, make_env
from scalerl.errors import ConfigError
from scalerl.train.checkpoint import load_checkpoint, read_checkpoint_meta, save_checkpoint
from scalerl.train.setup import (
    CHECKPOINT_NAME,
    build_agent,
    config_from_dict,
    config_to_dict,
    resolve,
)

API_KEY = "api"
"""Checkpoint-meta key of what `save` adds: class, shapes and the env's action bounds."""


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def split_options(options: dict[str, Any], run_cls: type) -> tuple[dict, dict, dict]:
    """Sort keyword options into (run, agent, plasticity) config fields.

    Raises:
        ConfigError: an option no config has (the names are those of `scalerl train --help`
            with dashes as underscores).
    """
    groups: tuple[dict, dict, dict] = ({}, {}, {})
    run_fields = _field_names(run_cls) - {"agent"}
    agent_fields = _field_names(AgentConfig) - {"plasticity"}
    for key, value in options.items():
        if key in run_fields:
            groups[0][key] = value
        elif key in agent_fields:
            groups[1][key] = value
        elif key in _field_names(PlasticityConfig):
            groups[2][key] = value
        else:
            raise ConfigError(
                f"unknown option {key!r}; use the names of `scalerl train --help` "
                "(or `scalerl offline --help`) with underscores, e.g. critic_width=256"
            )
    return groups


def agent_config(algo: str, agent: str, options: dict, plasticity: dict) -> AgentConfig:
    """The agent preset `agent` with `options` and plasticity changes, for `algo`."""
    if "algo" in options:
        raise ConfigError("pick the algorithm by class (scalerl.SAC, TD3, DDPG), not algo=...")
    return AgentConfig(agent=agent, algo=algo, plasticity=PlasticityConfig(**plasticity), **options)


def action_bounds(env: gym.Env) -> tuple[np.ndarray, np.ndarray]:
    """The (low, high) action bounds of the environment under `make_env`'s RescaleAction."""
    while not isinstance(env, RescaleAction):
        if not isinstance(env, gym.Wrapper):
            raise ConfigError("the environment has no RescaleAction wrapper; make it with make_env")
        env = env.env
    space = env.env.action_space
    return np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)


def probe_env(cfg: TrainConfig) -> dict[str, Any]:
    """Observation/action sizes and action bounds of a resolved run's environment."""
    env = make_env(
        cfg.env, cfg.seed, action_repeat=cfg.action_repeat, max_episode_steps=cfg.max_episode_steps
    )
    try:
        obs_dim, action_dim = env_info(env)
        low, high = action_bounds(env)
    finally:
        env.close()
    return {"obs_dim": obs_dim, "action_dim": action_dim,
            "action_low": low.tolist(), "action_high": high.tolist()}  # fmt: skip


def _checkpoint_file(path: Path) -> Path:
    """A checkpoint file, or a run directory's checkpoint.msgpack."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


class Agent:
    """Shared machinery of the agent classes: acting, saving, loading.

    Attributes:
        config: The run config (resolved after `learn` or `load`).
        run_dir: The run directory of the last `learn`, or the run it was loaded from.
        state: The agent state (a pytree), or None before `learn`/`load`.
    """

    algo: ClassVar[str] = "sac"

    def __init__(self, config: TrainConfig | OfflineConfig) -> None:
        self.config = config
        self.run_dir: Path | None = None
        self.state: Any = None
        self._env: dict[str, Any] | None = None
        self._weights: Path | None = None
        self._sac: Any = None
        self._key = jax.random.PRNGKey(getattr(config, "seed", 0))

    # ------------------------------------------------------------------ acting

    def predict(self, observation: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """The action for an observation (d_o,) or a batch (B, d_o), in the env's units.

        The policy outputs actions in [-1, 1] (tanh squashing, SAC paper Appendix C); they are
        mapped affinely onto the action space's [low, high], as the training wrapper does.

        Args:
            observation: An observation of the environment (or a batch of them).
            deterministic: tanh(mean) if True, else a sample (SAC) or the action with
                exploration noise (TD3/DDPG).

        Returns:
            `(action, None)`, as Stable-Baselines3's `predict` (no recurrent state).
        """
        self._require_state()
        obs = jnp.asarray(np.asarray(observation, np.float32))
        self._key, key = jax.random.split(self._key)
        return np.asarray(self._act(self.state, obs, key, deterministic)), None

    @functools.cached_property
    def _act(self):
        low = jnp.asarray(self._env["action_low"], jnp.float32)
        high = jnp.asarray(self._env["action_high"], jnp.float32)
        sac = self._sac

        def act(state, obs, key, deterministic):
            unit = jnp.clip(sac.act(state, obs, key, deterministic), -1.0, 1.0)
            return low + 0.5 * (unit + 1.0) * (high - low)

        return jax.jit(act, static_argnames="deterministic")

    def _require_state(self) -> None:
        if self.state is None:
            raise ConfigError("the agent has no weights yet; call learn(...) or load(...) first")

    # ------------------------------------------------------------------ saving and loading

    def save(self, path: str | Path) -> Path:
        """Write the agent (weights, config, action bounds) to one checkpoint file.

        `scalerl.<Class>.load(path)` restores it; the file has the format of a run's
        checkpoint.msgpack.
        """
        self._require_state()
        info = self._env | {"class": type(self).__name__}
        meta = {"config": config_to_dict(self._run_config), API_KEY: info}
        save_checkpoint(Path(path), self.state, meta)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Agent:
        """An agent from a file written by `save`, or from a run directory (its checkpoint).

        Args:
            path: A file written by `save`, or a run directory of `scalerl train`,
                `scalerl offline` or `learn`.

        Returns:
            The agent, ready to `predict`; `learn` continues from its weights.

        Raises:
            ScalerlError: no or unreadable checkpoint, or a run of another algorithm.
        """
        file = _checkpoint_file(Path(path))
        meta = read_checkpoint_meta(file)
        cfg = config_from_dict(meta["config"])
        if cfg.agent.algo != cls.algo:
            name = cfg.agent.algo.upper()
            raise ConfigError(f"{path} holds a {name} agent; load it with scalerl.{name}.load")
        from scalerl.cli import continue_defaults

        start = continue_defaults(cfg, cfg.agent.agent)
        agent = cls.__new__(cls)
        Agent.__init__(agent, dataclasses.replace(start, seed=cfg.seed, run_root=cfg.run_root))
        agent._restore(cfg, meta.get(API_KEY) or probe_env(cfg), file)
        agent.run_dir = Path(path) if Path(path).is_dir() else None
        agent._weights = Path(path)
        return agent

    def _restore(self, cfg: TrainConfig, env: dict[str, Any], file: Path) -> None:
        """Rebuild the agent of a resolved run config and read its state from `file`."""
        self._run_config = cfg
        self._env = {k: env[k] for k in ("obs_dim", "action_dim", "action_low", "action_high")}
        self._sac = build_agent(cfg, env["obs_dim"], env["action_dim"])
        template = self._sac.init(jax.random.PRNGKey(cfg.seed))
        self.state, _ = load_checkpoint(file, template)
        self.__dict__.pop("_act", None)

    def _finish(self, run_dir: Path) -> None:
        """Hold the agent a training run just saved."""
        cfg = config_from_dict(read_checkpoint_meta(run_dir / CHECKPOINT_NAME)["config"])
        env = self._env if self._env is not None else probe_env(cfg)
        self._restore(cfg, env, run_dir / CHECKPOINT_NAME)
        self.run_dir = self._weights = run_dir

    def make_env(self, seed: int | None = None) -> gym.Env:
        """The environment as the agent was trained on it (action repeat, time limit and
        actions in [-1, 1]); its `predict` works on plain `gymnasium.make` envs too."""
        cfg = resolve(self._train_config)
        kwargs = {"action_repeat": cfg.action_repeat, "max_episode_steps": cfg.max_episode_steps}
        return make_env(cfg.env, cfg.seed if seed is None else seed, **kwargs)

    @property
    def _train_config(self) -> TrainConfig:
        return getattr(self, "_run_config", None) or self.config

    def __repr__(self) -> str:
        cfg = self._train_config
        name = type(self).__name__
        return f"{name}({cfg.env!r}, agent={cfg.agent.agent!r}, run_dir={self.run_dir})"


class SAC(Agent):
    """Soft Actor-Critic (Haarnoja et al. 2018) on SimbaV2, SimBa, MLP or MSR networks.

    Example:
        >>> agent = scalerl.SAC("dmc:walker-walk", agent="simbav2", critic_width=256)
        >>> agent.learn(env_steps=100_000)
        >>> action, _ = agent.predict(obs, deterministic=True)

    Args:
        env: Environment id (`dmc:walker-walk`, `Hopper-v5`, ...; `scalerl envs` lists them).
        agent: Network preset: simbav2, simba, mlp or msr (docs/agents/).
        **options: Any option of `scalerl train --help` with underscores (`critic_width=256`,
            `utd=1`, `seed=3`, `run_root="runs"`, `nap=True`, ...); unset ones follow the
            preset, as on the command line.

    Raises:
        ConfigError: an unknown option.
    """

    algo: ClassVar[str] = "sac"

    def __init__(self, env: str, agent: str = "simbav2", **options: Any) -> None:
        run, agent_opts, plasticity = split_options(options, TrainConfig)
        cfg = TrainConfig(env=env, agent=agent_config(self.algo, agent, agent_opts, plasticity))
        super().__init__(dataclasses.replace(cfg, **run))

    def learn(self, env_steps: int, **options: Any) -> SAC:
        """Train for `env_steps` environment frames, exactly as `scalerl train` would.

        Writes a run directory (`run_dir`: config.json, metrics.csv, TensorBoard logs,
        checkpoints; docs/outputs.md). On an agent that already has weights, training starts
        from them with a fresh optimizer and LR schedule (`scalerl train --init-from`).

        Args:
            env_steps: Budget in environment frames (agent steps x action repeat).
            **options: Run options for this call only (`name`, `eval_every`, `progress`, ...).

        Returns:
            self, holding the final agent state.
        """
        from scalerl.train.loop import train

        cfg = dataclasses.replace(self.config, env_steps=env_steps, **options)
        if self._weights is not None:
            cfg = dataclasses.replace(cfg, init_from=self._weights)
        self._finish(train(cfg))
        self.config = dataclasses.replace(self.config, name=None)
        return self


class TD3(SAC):
    """TD3 (Fujimoto et al. 2018): deterministic policy, target smoothing, delayed actor.

    Same arguments as `SAC`; the TD3 options are `expl_noise`, `target_noise`,
    `target_noise_clip`, `policy_delay` and `noise_color` (docs/agents/td3_ddpg.md).
    """

    algo: ClassVar[str] = "td3"


class DDPG(SAC):
    """DDPG (Lillicrap et al. 2016) as the SimBa paper uses it: same arguments as `SAC`
    (docs/agents/td3_ddpg.md)."""

    algo: ClassVar[str] = "ddpg"


class OfflineSAC(Agent):
    """SAC + behaviour cloning on a fixed dataset (the offline preset of docs/offline.md).

    Example:
        >>> agent = scalerl.OfflineSAC("data.npz", env="Hopper-v5")
        >>> agent.learn(epochs=100)

    Args:
        dataset: scalerl .npz, D4RL .hdf5 or Minari dataset directory.
        env: Environment to evaluate in (default: the dataset's metadata env_id).
        agent: Network preset: simbav2, simba, mlp or msr.
        **options: Any option of `scalerl offline --help` with underscores.
    """

    algo: ClassVar[str] = "sac"

    def __init__(
        self, dataset: str | Path, env: str | None = None, agent: str = "simbav2", **options: Any
    ) -> None:
        from scalerl.config import offline_preset

        run, agent_opts, plasticity = split_options(options, OfflineConfig)
        preset = offline_preset(agent)
        agent_cfg = dataclasses.replace(
            preset, plasticity=PlasticityConfig(**plasticity), **agent_opts
        )
        cfg = OfflineConfig(dataset=Path(dataset), env=env, agent=agent_cfg)
        super().__init__(dataclasses.replace(cfg, **run))

    def learn(self, epochs: float, **options: Any) -> OfflineSAC:
        """Train for `epochs` passes over the dataset, exactly as `scalerl offline` would.

        Raises:
            ConfigError: the agent already has weights (fine-tune them online instead with
                `scalerl.SAC(env, init_from=agent.run_dir)`).
        """
        from scalerl.offline.train import train_offline

        if self.state is not None:
            raise ConfigError(
                "this offline agent is trained; fine-tune it online with "
                "scalerl.SAC(env, init_from=agent.run_dir).learn(...)"
            )
        cfg = dataclasses.replace(self.config, epochs=epochs, seeds=None, num_seeds=1, **options)
        self._finish(train_offline(cfg)[0])
        return self
