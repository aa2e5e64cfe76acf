"""DQN evaluation episodes (ε_eval), `scalerl evaluate` on DQN runs, host-loop exact resume."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from scalerl.cli import main
from scalerl.config_dqn import DQNConfig, DQNTrainConfig, eval_due
from scalerl.envs.discrete import make_discrete_env
from scalerl.envs.jax_envs import make_jax_env
from scalerl.train import dqn_host
from scalerl.train.checkpoint import read_checkpoint
from scalerl.train.dqn_evaluate import eval_seeds, host_episodes, jax_episodes
from scalerl.train.dqn_run import build
from scalerl.train.logging import read_metrics_csv

GREEDY = DQNConfig(width=8, depth=1, eps_eval=0.0)
TINY = [
    "--algo", "dqn", "--env-steps", "64", "--log-every", "16", "--learning-starts", "8",
    "--train-every", "4", "--batch-size", "4", "--buffer-capacity", "32", "--width", "8",
    "--depth", "1", "--eval-every", "32", "--eval-episodes", "2", "--eps-eval", "0",
    "--no-tensorboard", "--no-progress", "--no-health",
]  # fmt: skip


def test_eval_due_counts_multiples_crossed():
    cfg = DQNTrainConfig(eval_every=100)
    assert [eval_due(cfg, a, b) for a, b in ((0, 99), (0, 100), (90, 120), (100, 199))] == [
        False, True, True, False,
    ]  # fmt: skip
    assert eval_due(cfg, 0, 50, last=True)
    assert not eval_due(dataclasses.replace(cfg, eval_every=0), 0, 10**6, last=True)
    assert eval_seeds(3, 64, 4) == eval_seeds(3, 64, 4) != eval_seeds(3, 96, 4)


def test_fused_greedy_episodes_score_their_length():
    cfg = DQNTrainConfig(agent=GREEDY)
    env = make_jax_env(cfg.env)
    agent = build(cfg, env)
    state = agent.init(jax.random.PRNGKey(0))
    play = jax.jit(lambda s, k: jax_episodes(agent, env, s, k, 4))
    returns, lengths = jax.device_get(play(state, jax.random.PRNGKey(1)))
    np.testing.assert_array_equal(returns, lengths)  # CartPole: +1 per step
    assert np.all((lengths >= 8) & (lengths <= 500))


def test_host_greedy_episodes_equal_a_hand_rollout():
    cfg = DQNTrainConfig(env="CartPole-v1", agent=GREEDY, eval_episodes=2)
    env = make_discrete_env(cfg.env, 0)
    agent = dqn_host.host_agent(cfg, env.observation_space, env.action_space)
    state = agent.init(jax.random.PRNGKey(0))
    expected = []
    for seed in (5, 6):  # greedy by hand
        obs, _ = env.reset(seed=seed)
        done, steps = False, 0
        while not done:
            action = int(agent.act_greedy(state, obs[None])[0])
            obs, _, term, trunc, _ = env.step(action)
            done, steps = term or trunc, steps + 1
        expected.append(steps)
    envs = [make_discrete_env(cfg.env, 0) for _ in range(2)]
    result = host_episodes(jax.jit(agent.act_eval), state, envs, [5, 6], jax.random.PRNGKey(2))
    np.testing.assert_array_equal(result.returns, expected)
    np.testing.assert_array_equal(result.lengths, expected)


def _tree(path):
    return jax.tree_util.tree_leaves(read_checkpoint(path)[0])


@pytest.mark.slow
def test_gymnax_run_logs_eval_and_scalerl_evaluate(tmp_path, capsys):
    args = [*TINY, "--env", "gymnax:CartPole-v1", "--run-root", str(tmp_path), "--name", "g"]
    assert main(["train", *args]) == 0
    rows = read_metrics_csv(tmp_path / "g" / "metrics.csv")
    evals = {r["metric"]: r["value"] for r in rows if r["env_step"] == 64}
    assert evals["eval/return"] == pytest.approx(evals["eval/length"])
    assert main(["evaluate", str(tmp_path / "g"), "--episodes", "3"]) == 0
    assert "over 3 episodes" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("env", ["CartPole-v1", "ale:Pong"])
def test_host_kill_and_resume_equals_the_uninterrupted_run(env, tmp_path, monkeypatch):
    from scalerl.train import checkpoint

    monkeypatch.setattr(checkpoint, "SIDECAR_BYTES", 1024)  # the replay goes to a sidecar
    args = [*TINY, "--env", env, "--num-envs", "2", "--checkpoint-every", "16",
            "--prioritized", "--run-root", str(tmp_path)]  # fmt: skip
    assert main(["train", *args, "--name", "full"]) == 0
    original = dqn_host.HostLoop._checkpoint

    def crash(self, pos):
        original(self, pos)
        if pos.round == 4:  # after the resume point at step 32
            raise KeyboardInterrupt

    monkeypatch.setattr(dqn_host.HostLoop, "_checkpoint", crash)
    assert main(["train", *args, "--name", "cut"]) == 130
    monkeypatch.setattr(dqn_host.HostLoop, "_checkpoint", original)
    assert main(["train", "--resume", str(tmp_path / "cut")]) == 0
    for name in ("checkpoint.msgpack", "resume/step-0000000064.msgpack"):
        full, cut = _tree(tmp_path / "full" / name), _tree(tmp_path / "cut" / name)
        for a, b in zip(full, cut, strict=True):
            np.testing.assert_array_equal(a, b)

    def values(run):
        rows = read_metrics_csv(tmp_path / run / "metrics.csv")
        return {
            (r["env_step"], r["metric"]): r["value"] for r in rows if "perf/" not in r["metric"]
        }

    assert values("full") == values("cut")
