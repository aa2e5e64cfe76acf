"""`scalerl evaluate` on PQN runs: ε-greedy episodes of fused (gymnax) and host (ale:) runs."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from scalerl.cli import main
from scalerl.config_pqn import PQNConfig, PQNTrainConfig
from scalerl.envs.jax_envs import make_jax_env
from scalerl.train import pqn_run
from scalerl.train.checkpoint import save_checkpoint
from scalerl.train.evaluate import evaluate_run
from scalerl.train.setup import CHECKPOINT_NAME, CONFIG_NAME, config_to_dict


def _fused_run(tmp_path: Path, push_right: bool) -> Path:
    """A CartPole PQN run directory whose Q network always prefers one action."""
    agent_cfg = PQNConfig(num_envs=2, num_steps=4, num_minibatches=1, width=8, depth=1)
    cfg = PQNTrainConfig(env="gymnax:CartPole-v1", env_steps=64, log_every=32, agent=agent_cfg,
                         run_root=tmp_path, name="run")  # fmt: skip
    env = make_jax_env(cfg.env)
    agent = pqn_run.build(cfg, env)
    state = agent.init(jax.random.PRNGKey(0))
    bias = jnp.array([0.0, 1e3] if push_right else [1e3, 0.0])  # Q(s, ·) = bias for every s
    head = {"q": {"q": {"bias": bias, "kernel": jnp.zeros((8, 2))}}}
    params = {"q": {**state.net.params["q"], "head": head}}
    state = state.replace(net=state.net.replace(params=params))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / CONFIG_NAME).write_text(json.dumps(config_to_dict(cfg)))
    save_checkpoint(run_dir / CHECKPOINT_NAME, jax.device_get(state), {"iteration": 1})
    return run_dir


def test_evaluate_fused_run_plays_the_greedy_q_policy(tmp_path, capsys):
    run_dir = _fused_run(tmp_path, push_right=True)
    result = evaluate_run(run_dir, episodes=6, seed=3)
    # CartPole: +1 per step, and always pushing one way topples the pole within ~8-12 steps
    np.testing.assert_array_equal(result.returns, result.lengths)
    assert result.returns.shape == (6,) and np.all((result.lengths >= 6) & (result.lengths <= 15))
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--episodes", "6", "--seed", "3"]) == 0
    mean, std = np.mean(result.returns), np.std(result.returns)
    out = capsys.readouterr().out  # a second evaluation with the same seed: the same episodes
    assert f"return {mean:.1f} +- {std:.1f} over 6 episodes" in out
    assert main(["evaluate", str(run_dir), "--episodes", "0"]) == 2
