"""Brax ids behind the JAX-native environment interface: parsing, limits, termination."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.envs.brax_env import BRAX_EPISODE_STEPS, parse_brax_id
from scalerl.envs.jax_envs import (
    episode_limit,
    is_continuous_jax_env,
    is_jax_env,
    make_jax_env,
    validate_jax_id,
)
from scalerl.envs.suites import suite_preset
from scalerl.errors import EnvError

pytest.importorskip("brax")

ENV_ID = "brax:inverted_pendulum-positional"


def test_ids_parse_with_default_and_explicit_backends():
    assert parse_brax_id("brax:ant") == ("ant", "generalized")
    assert parse_brax_id("brax:halfcheetah-mjx") == ("halfcheetah", "mjx")
    assert is_jax_env("brax:ant") and is_continuous_jax_env("brax:ant-spring")
    with pytest.raises(EnvError, match="unknown brax environment 'cheetah'"):
        validate_jax_id("brax:cheetah")
    with pytest.raises(EnvError, match="unknown brax backend 'cuda'.*brax:<env>-<backend>"):
        parse_brax_id("brax:ant-cuda")


def test_suite_preset_uses_braxs_episode_length():
    preset = suite_preset(ENV_ID)
    assert (preset.suite, preset.action_repeat, preset.max_episode_steps) == ("brax", 1, 1000)
    assert episode_limit(ENV_ID) == BRAX_EPISODE_STEPS


def _rollout(env, action: float, steps: int):
    """Per-step (terminated, truncated, reward) of a constant action from one reset."""
    state, _ = env.reset(jax.random.PRNGKey(0))

    def body(s, key):
        s, out = env.step(key, s, jnp.full((env.num_actions,), action))
        return s, (out.terminated, out.truncated, out.reward)

    keys = jax.random.split(jax.random.PRNGKey(1), steps)
    return jax.jit(lambda s: jax.lax.scan(body, s, keys)[1])(state)


def test_limit_truncates_and_a_fall_terminates():
    env = make_jax_env(ENV_ID, max_episode_steps=5)
    assert (env.obs_dim, env.discrete, env.num_actions) == (4, False, 1)
    np.testing.assert_array_equal(np.asarray(env.low), [-1.0])
    term, trunc, reward = _rollout(env, 0.0, 12)
    # Balanced pole: the limit ends episodes at steps 5 and 10 (a new episode starts after each).
    np.testing.assert_array_equal(np.flatnonzero(trunc), [4, 9])
    assert not term.any() and np.all(np.asarray(reward) == 1.0)
    term, trunc, _ = _rollout(make_jax_env(ENV_ID), 1.0, 200)
    first = int(np.flatnonzero(term)[0])  # full push: the pole leaves +-0.2 rad and ends it
    assert 0 < first < 100 and not trunc.any()


def _train(root, *args: str) -> None:
    from scalerl.cli import main

    common = ["--env", ENV_ID, "--agent", "mlp", "--no-progress", "--no-tensorboard"]
    assert main(["train", *args, *common, "--run-root", str(root), "--name", "b"]) == 0


def _evals(run_dir) -> list[tuple[int, float]]:
    from scalerl.train.logging import read_metrics_csv

    rows = read_metrics_csv(run_dir / "metrics.csv")
    return [(r["env_step"], r["value"]) for r in rows if r["metric"] == "eval/return"]


def test_sac_trains_evaluates_and_refuses_video_on_a_brax_id(tmp_path):
    from scalerl.errors import ConfigError
    from scalerl.train.evaluate import evaluate_run
    from scalerl.train.video import record_run

    _train(tmp_path, "--env-steps", "300", "--warmup-steps", "100", "--eval-every", "300",
           "--eval-episodes", "2", "--critic-width", "16", "--actor-width", "16",
           "--batch-size", "16")  # fmt: skip
    evals = _evals(tmp_path / "b")
    assert [s for s, _ in evals] == [0, 300] and all(0 < v < 1000 for _, v in evals)
    result = evaluate_run(tmp_path / "b", episodes=2)
    np.testing.assert_array_equal(result.returns, result.lengths)  # reward 1 per upright step
    with pytest.raises(ConfigError, match="has no renderer"):
        record_run(tmp_path / "b", out=tmp_path / "b.gif", max_frames=4)


@pytest.mark.slow  # about 90 s on 2 cores
def test_sac_learns_and_ppo_runs_on_brax_inverted_pendulum(tmp_path):
    _train(tmp_path, "--env-steps", "5000", "--warmup-steps", "1000", "--eval-every", "5000",
           "--eval-episodes", "5")  # fmt: skip
    returns = [v for _, v in _evals(tmp_path / "b")]
    assert returns[0] < 100 and returns[-1] > 140  # measured: 62 -> 222
    _train(tmp_path / "ppo", "--algo", "ppo", "--env-steps", "4096", "--num-envs", "16")
    evals = _evals(tmp_path / "ppo" / "b")
    assert [s for s, _ in evals] == [4096] and evals[0][1] > 0
