"""`scalerl evaluate` on PPO runs (fused and host loop): deterministic episodes, mean/std."""

from __future__ import annotations

import re

import numpy as np
import pytest

from scalerl.cli import main
from scalerl.config_ppo import PPOConfig, PPOTrainConfig
from scalerl.errors import ConfigError
from scalerl.train.evaluate import evaluate_run

AGENT = PPOConfig(
    actor_width=8, value_width=8, num_envs=2, num_steps=8, num_minibatches=2, update_epochs=1
)


def _fresh_run(tmp_path, env: str):
    """A PPO run directory holding an untrained agent (what training writes, minus training)."""
    import jax

    from scalerl.envs.jax_envs import make_jax_env
    from scalerl.train.ppo_checkpoint import save_point
    from scalerl.train.ppo_run import build, write_ppo_config

    cfg = PPOTrainConfig(env=env, seed=3, run_root=tmp_path, name="run", agent=AGENT)
    run = tmp_path / "run"
    run.mkdir()
    write_ppo_config(run, cfg)
    state = build(cfg, make_jax_env(env)).init(jax.random.PRNGKey(3))
    save_point(run, state, {}, {"iteration": 0, "env_step": 0})
    return run


def test_evaluate_fused_run_is_deterministic_and_cartpole_return_is_its_length(tmp_path, capsys):
    run = _fresh_run(tmp_path, "gymnax:CartPole-v1")
    assert main(["evaluate", str(run), "--episodes", "4"]) == 0
    out = capsys.readouterr().out
    result = evaluate_run(run, episodes=4)
    np.testing.assert_array_equal(result.returns, result.lengths)  # reward 1 per step
    assert len(result.returns) == 4 and result.lengths.min() >= 8  # no pole falls in < 8 steps
    mean, std = np.mean(result.returns), np.std(result.returns)
    assert re.search(rf"return {mean:.1f} \+- {std:.1f} over 4 episodes", out), out
    with pytest.raises(ConfigError, match="episodes"):
        evaluate_run(run, episodes=0)


def test_video_of_gymnax_id_without_renderer_fails_early_with_one_line(tmp_path, capsys):
    from scalerl.train.ppo_run import write_ppo_config

    run = tmp_path / "run"  # the config alone: the check comes before loading the checkpoint
    run.mkdir()
    write_ppo_config(run, PPOTrainConfig(env="gymnax:SimpleBandit-bsuite", agent=AGENT))
    assert main(["evaluate", str(run), "--episodes", "1", "--video"]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # refused before playing the evaluation episodes
    assert err.count("\n") == 1 and "gymnax:SimpleBandit-bsuite has no renderer" in err
    assert "without --video" in err and "Breakout-MinAtar" in err
    assert not (run / "videos").exists()


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_video_of_gymnax_run_ends_on_the_terminal_state(tmp_path, capsys):
    """The video of a gymnax CartPole run (`evaluate --video` without the evaluation): one
    frame per reset and per step, the last one the state the episode ended in (pole past 12
    degrees or cart past 2.4)."""
    import imageio.v2 as imageio
    import jax

    from scalerl.envs.jax_envs import make_jax_env
    from scalerl.train.jax_video import episode_states
    from scalerl.train.ppo_evaluate import load_ppo_agent
    from scalerl.train.video import record_run

    run = _fresh_run(tmp_path, "gymnax:CartPole-v1")
    assert record_run(run) == run / "videos" / "eval-0.mp4"
    decoded = imageio.mimread(run / "videos" / "eval-0.mp4", memtest=False)
    _, agent, state = load_ppo_agent(run)
    act = jax.jit(lambda obs: agent.act_deterministic(state, obs[None])[0])
    env = make_jax_env("gymnax:CartPole-v1")
    states = episode_states(env, act, jax.random.PRNGKey(3), episodes=1)  # the run's seed
    last = states[-1]
    assert len(decoded) == len(states) == int(last.time) + 1 and len(states) >= 9
    assert abs(float(last.theta)) > 12 * 2 * np.pi / 360 or abs(float(last.x)) > 2.4
    assert np.asarray(decoded[0]).shape == (400, 600, 3)  # Gymnasium's CartPole frame
