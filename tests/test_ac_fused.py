"""SAC, TD3 and DDPG on continuous gymnax ids: the fused loop (rounds, chunks, resume, errors)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
import pytest

from scalerl.cli import main
from scalerl.config import TrainConfig, agent_preset
from scalerl.errors import ConfigError, EnvError
from scalerl.train import ac_fused, ac_fused_run
from scalerl.train.ac_fused_run import Schedule
from scalerl.train.evaluate import load_run_agent
from scalerl.train.logging import read_metrics_csv
from scalerl.train.setup import resolve

pytest.importorskip("gymnax")

ARGS = [
    "--env", "gymnax:Pendulum-v1", "--agent", "mlp", "--env-steps", "240", "--warmup-steps", "60",
    "--utd", "1", "--eval-every", "120", "--eval-episodes", "2", "--checkpoint-every", "40",
    "--log-every", "20", "--health-every", "100", "--critic-width", "16", "--actor-width", "16",
    "--batch-size", "16", "--reset", "shrink_perturb", "--reset-every", "70", "--no-progress",
    "--no-tensorboard",
]  # fmt: skip


def _cfg(**kw) -> TrainConfig:
    base = TrainConfig(env="gymnax:Pendulum-v1", agent=agent_preset("mlp"), env_steps=1000,
                       warmup_steps=10)  # fmt: skip
    return resolve(dataclasses.replace(base, **kw))


def _tiny(**kw):
    """A resolved tiny config, its environment and agent."""
    cfg = _cfg(**kw)
    agent = dataclasses.replace(cfg.agent, critic_width=16, actor_width=16, batch_size=8)
    cfg = dataclasses.replace(cfg, agent=agent)
    env, sac = ac_fused_run._build(cfg)
    return cfg, env, sac


def _params(run_dir: Path) -> list[np.ndarray]:
    _, state, _ = load_run_agent(run_dir)
    return [np.asarray(x) for x in jax.tree.leaves((state.actor.params, state.critic.params))]


def test_round_shape_keeps_updates_per_transition():
    assert ac_fused.round_shape(1.0, 1) == (1, 1)
    assert ac_fused.round_shape(2.0, 1) == (1, 2)
    assert ac_fused.round_shape(0.5, 1) == (2, 1)
    assert ac_fused.round_shape(2 / 128, 128) == (1, 2)  # --preset parallel
    assert ac_fused.round_shape(0.25, 2) == (2, 1)
    assert ac_fused.round_shape(1 / 3, 1) == (3, 1)
    with pytest.raises(ConfigError, match="utd x num_envs"):
        ac_fused.round_shape(0.0123457, 1)


def test_schedule_by_hand():
    sch = Schedule.of(_cfg(num_envs=2, utd=0.25, warmup_steps=10, log_every=12, eval_every=1000))
    assert (sch.steps, sch.updates, sch.per_round) == (2, 1, 4)
    assert sch.total == 250  # 1000 agent steps in rounds of 4
    assert sch.warm == 2  # rounds ending at steps 4 and 8 are below 10; the third ends at 12
    assert sch.updates_after(2) == 0 and sch.updates_after(7) == 5
    assert sch.next_chunk(0) == 2  # the end of the warm-up
    assert sch.next_chunk(2) == 1  # the log point at step 12
    assert sch.next_chunk(3) == 3  # step 24
    assert sch.next_chunk(249) == 1


def test_schedule_stops_where_a_reset_falls_due():
    sch = Schedule.of(_cfg(utd=2.0, warmup_steps=5, log_every=1000, eval_every=1000))
    pc = dataclasses.replace(sch.cfg.agent.plasticity, reset="all", reset_every=7)
    sch = dataclasses.replace(sch, cfg=dataclasses.replace(sch.cfg, agent=dataclasses.replace(
        sch.cfg.agent, plasticity=pc)))  # fmt: skip
    assert sch.warm == 4 and sch.updates == 2
    assert sch.next_chunk(4) == 4  # 8 updates after 4 learning rounds cross 7
    assert sch.updates_after(8) == 8


def test_a_chunk_stores_the_transitions_it_takes():
    cfg, env, sac = _tiny(num_envs=2)
    states, carries = ac_fused.init_seeds(sac, env, [3], 2, 64)
    first_obs, first_action = np.asarray(carries.env.obs[0]), np.asarray(carries.action[0])
    chunk = ac_fused.make_chunk_many(sac, env, (1, 1), True, 2)
    states, carries, metrics, stats = chunk(states, carries, np.int32(3))
    data = jax.tree_util.tree_map(lambda x: np.asarray(x[0]), carries.buffer.data)
    assert int(carries.buffer.size[0]) == 6 and metrics == {}
    np.testing.assert_array_equal(data.obs[:2], first_obs)
    np.testing.assert_array_equal(data.action[:2], first_action)
    np.testing.assert_array_equal(data.next_obs[:4], data.obs[2:6])  # no episode ends in 3 steps
    assert np.all(np.abs(data.action[:6]) <= 1) and np.all(data.reward[:6] <= 0)
    assert float(stats["episodes"][0]) == 0 and int(carries.buffer.ptr[0]) == 6


def test_chunks_split_anywhere_give_the_same_run():
    cfg, env, sac = _tiny()
    learn = ac_fused.make_chunk_many(sac, env, (1, 1), False, 1)
    warm = ac_fused.make_chunk_many(sac, env, (1, 1), True, 1)
    runs = []
    for splits in ([6], [2, 4], [5, 1]):
        states, carries = ac_fused.init_seeds(sac, env, [0], 1, 64)
        states, carries, *_ = warm(states, carries, np.int32(10))
        for n in splits:
            states, carries, *_ = learn(states, carries, np.int32(n))
        runs.append(jax.tree.leaves(states.critic.params))
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_seed_k_of_a_vmapped_run_equals_the_single_run():
    cfg, env, sac = _tiny()
    learn = ac_fused.make_chunk_many(sac, env, (1, 1), False, 1)
    warm = ac_fused.make_chunk_many(sac, env, (1, 1), True, 1)

    def run(seeds):
        states, carries = ac_fused.init_seeds(sac, env, seeds, 1, 64)
        states, carries, *_ = warm(states, carries, np.int32(10))
        return learn(states, carries, np.int32(5))[0]

    pair, single = run([0, 1]), run([1])
    leaves = jax.tree.leaves(pair.critic.params), jax.tree.leaves(single.critic.params)
    for a, b in zip(*leaves, strict=True):
        np.testing.assert_allclose(a[1], b[0], rtol=1e-5, atol=1e-6)


def test_options_the_fused_loop_cannot_honour_are_refused(tmp_path, capsys):
    for extra in (["--video-every", "100"], ["--action-repeat", "2"], ["--utd", "0.0123457"]):
        assert main(["train", *ARGS, *extra, "--run-root", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing created
    assert main(["train", "--env", "gymnax:CartPole-v1", "--run-root", str(tmp_path)]) == 2
    assert "--algo ppo, dqn or pqn" in capsys.readouterr().err
    with pytest.raises(EnvError, match="JAX-native"):
        from scalerl.envs import make_env

        make_env("gymnax:Pendulum-v1", 0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fused")
    assert main(["train", *ARGS, "--run-root", str(root), "--name", "ref"]) == 0
    return root / "ref"


def test_a_run_logs_evaluates_intervenes_and_checkpoints(reference):
    rows = read_metrics_csv(reference / "metrics.csv")
    steps = lambda m: [r["env_step"] for r in rows if r["metric"] == m]  # noqa: E731
    assert steps("eval/return") == [0, 120, 240]
    assert steps("train/critic_loss") == list(range(60, 241, 20))  # learning starts at step 60
    assert steps("train/episode_return") == [200]  # Pendulum episodes last 200 steps
    assert steps("train/resets") == [129, 199]  # step t >= 60 has made t - 59 updates
    assert steps("health/critic/dormant_0.1") == [100, 200]
    assert all(-2000 < r["value"] < 0 for r in rows if r["metric"] == "eval/return")
    assert (reference / "checkpoint.msgpack").exists() and (
        reference / "learning_curve.png"
    ).exists()


def test_a_killed_run_resumes_to_the_uninterrupted_result(reference, tmp_path, monkeypatch):
    original = ac_fused_run.FusedRun.checkpoint

    def crash(self, states, carries):
        original(self, states, carries)
        if self.counters.t == 160:
            raise KeyboardInterrupt

    monkeypatch.setattr(ac_fused_run.FusedRun, "checkpoint", crash)
    assert main(["train", *ARGS, "--run-root", str(tmp_path), "--name", "cut"]) == 130
    monkeypatch.setattr(ac_fused_run.FusedRun, "checkpoint", original)
    assert main(["train", "--resume", str(tmp_path / "cut")]) == 0
    for a, b in zip(_params(reference), _params(tmp_path / "cut"), strict=True):
        np.testing.assert_array_equal(a, b)
    key = lambda d: sorted((r["metric"], r["env_step"], r["value"])  # noqa: E731
                           for r in read_metrics_csv(d / "metrics.csv")
                           if not r["metric"].startswith("perf/"))  # fmt: skip
    assert key(reference) == key(tmp_path / "cut")


def test_evaluate_and_video_of_a_gymnax_run(reference, tmp_path):
    from scalerl.train.evaluate import evaluate_run
    from scalerl.train.video import record_run

    result = evaluate_run(reference, episodes=3)
    assert result.returns.shape == (3,) and np.all(result.lengths == 200)
    assert np.all((-2000 < result.returns) & (result.returns < 0))
    out = record_run(reference, out=tmp_path / "p.gif", max_frames=4, width=64, height=48)
    assert out.exists() and out.stat().st_size > 0


@pytest.mark.slow  # about a minute on 2 cores: 6,000 agent steps of two vmapped seeds
def test_sac_mlp_learns_gymnax_pendulum(tmp_path):
    args = ["train", "--env", "gymnax:Pendulum-v1", "--agent", "mlp", "--env-steps", "6000",
            "--warmup-steps", "1000", "--eval-every", "6000", "--eval-episodes", "5",
            "--seeds", "0-1", "--run-root", str(tmp_path), "--name", "p", "--no-progress",
            "--no-tensorboard"]  # fmt: skip
    assert main(args) == 0
    for seed in (0, 1):
        rows = read_metrics_csv(tmp_path / f"p-s{seed}" / "metrics.csv")
        returns = [r["value"] for r in rows if r["metric"] == "eval/return"]
        assert returns[0] < -1000 and returns[-1] > -400  # measured: -216 and -145


def test_init_from_a_run_with_two_environments(reference, tmp_path):
    extra = ["--env-steps", "80", "--warmup-steps", "20", "--num-envs", "2", "--eval-every", "80",
             "--reset", "none", "--init-from", str(reference)]  # fmt: skip
    assert main(["train", *ARGS, *extra, "--run-root", str(tmp_path), "--name", "warm"]) == 0
    rows = read_metrics_csv(tmp_path / "warm" / "metrics.csv")
    assert [r["env_step"] for r in rows if r["metric"] == "eval/return"] == [0, 80]
