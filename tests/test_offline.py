"""Offline RL: budget and score functions, normaliser warm-up, the offline loop and its resume,
dataset export/collection from runs, and offline-to-online initialisation."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from conftest import eval_returns, small_sac
from scalerl.agents.losses import tanh_gaussian_sample
from scalerl.buffers.replay import replay_init, replay_to_numpy
from scalerl.cli import main, train_defaults
from scalerl.config import (
    OfflineConfig,
    TrainConfig,
    agent_preset,
    offline_preset,
    offline_updates,
    replace,
)
from scalerl.datasets import Dataset, load_any, save_any
from scalerl.envs import make_env
from scalerl.errors import CheckpointError, ConfigError, DatasetError
from scalerl.normalizers import reward_scale
from scalerl.offline import train as offline_train
from scalerl.offline.collect import CollectSpec, collect, export_buffer
from scalerl.offline.finetune import initial_state, preload_buffer
from scalerl.offline.scores import normalized_score, reference_range, task_family
from scalerl.offline.warmup import warm_normalizers
from scalerl.train.checkpoint import load_checkpoint
from scalerl.train.loop import train
from scalerl.train.resume import list_checkpoints, load_resume, resume_template
from scalerl.train.setup import build_agent, read_config

TINY = {"actor_width": 16, "critic_width": 32, "critic_depth": 1, "batch_size": 32}


# ------------------------------------------------------------------------ derived values


def test_offline_updates_is_epochs_over_batches():
    assert offline_updates(1_000_000, 256, 100) == 390_625  # spec 4.1: int(N / 256 * 100)
    assert offline_updates(1000, 256, 2.0) == 7  # int(7.8125)
    assert offline_updates(10, 256, 1.0) == 1  # at least one update


def test_chunk_size_divides_every_cadence():
    cfg = OfflineConfig(dataset="x", eval_every=50_000, log_every=10_000, updates_per_call=1_000)
    assert offline_train.chunk_size(cfg) == 1_000
    cfg = replace(cfg, eval_every=300, log_every=200, updates_per_call=1_000)
    assert offline_train.chunk_size(cfg) == 100
    assert offline_train.chunk_size(replace(cfg, checkpoint_every=30)) == 10


def test_reference_scores_precedence_and_normalisation():
    assert task_family("hopper-medium-replay-v2") == "hopper"
    assert task_family("Walker2d-v5") == "walker2d"
    assert reference_range("Hopper-v5", {}, None, None) == (-20.272305, 3234.3)
    meta = {"ref_min_score": -1500.0, "ref_max_score": -200.0}
    assert reference_range("Pendulum-v1", meta, None, None) == (-1500.0, -200.0)
    assert reference_range("Hopper-v5", meta, 0.0, None) == (0.0, -200.0)  # flag beats metadata
    assert reference_range("Pendulum-v1", {}, None, None) is None
    assert normalized_score(-850.0, (-1500.0, -200.0)) == pytest.approx(50.0)
    assert normalized_score(3234.3, (-20.272305, 3234.3)) == pytest.approx(100.0)


# ------------------------------------------------------------------------ normaliser warm-up


def test_warm_normalizers_hand_computed():
    sac = small_sac(gamma=0.5)
    state = sac.init(jax.random.PRNGKey(0))
    obs = np.arange(20, dtype=np.float32).reshape(4, 5)
    rewards = np.array([1.0, 2.0, 4.0, 8.0], np.float32)
    dones = np.array([0.0, 1.0, 0.0, 0.0], np.float32)
    warm = warm_normalizers(sac, state, obs, rewards, dones)
    np.testing.assert_allclose(warm.obs_stats.mean, obs.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(warm.obs_stats.var, obs.var(axis=0), rtol=1e-3)
    # G <- gamma (1 - done_t) G + r_t with the done flag of the same row (gymnasium's
    # NormalizeReward rule, as online, spec 2.7): 1, 0 + 2 = 2, 0.5*2 + 4 = 5, 0.5*5 + 8 = 10.5.
    returns = np.array([1.0, 2.0, 5.0, 10.5])
    assert float(warm.reward_stats.ret) == pytest.approx(10.5)
    assert float(warm.reward_stats.ret_abs_max) == pytest.approx(10.5)
    assert float(warm.reward_stats.stats.var) == pytest.approx(returns.var(), rel=1e-3)
    expected_scale = max(np.sqrt(returns.var() + 1e-8), 10.5 / 5.0)
    assert float(reward_scale(warm.reward_stats, 5.0)) == pytest.approx(expected_scale, rel=1e-3)


# ------------------------------------------------------------------------ fixtures


def _random_dataset(env_id: str, steps: int, seed: int = 0) -> Dataset:
    """Uniform-random transitions from a real environment, with true next observations."""
    env = make_env(env_id, seed)
    rng = np.random.default_rng(seed)
    cols = {k: [] for k in ("obs", "act", "rew", "term", "trunc", "next")}
    obs, _ = env.reset()
    for _ in range(steps):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        nxt, reward, term, trunc, _ = env.step(action)
        for key, value in zip(cols, (obs, action, reward, term, trunc, nxt), strict=True):
            cols[key].append(value)
        obs = env.reset()[0] if term or trunc else nxt
    a = {k: np.asarray(v) for k, v in cols.items()}
    meta = {"env_id": env_id, "ref_min_score": -1200.0, "ref_max_score": -200.0}
    return Dataset(
        a["obs"].astype(np.float32), a["act"], a["rew"].astype(np.float32), a["term"],
        a["trunc"], a["next"].astype(np.float32), meta,
    )  # fmt: skip


def _offline_cfg(tmp_path, dataset_path, **changes) -> OfflineConfig:
    cfg = OfflineConfig(
        dataset=dataset_path,
        epochs=8.0,
        eval_every=20,
        log_every=10,
        eval_episodes=1,
        progress=False,
        tensorboard=False,
        run_root=tmp_path / "runs",
        name="off",
        agent=replace(OfflineConfig().agent, **TINY),
    )
    return replace(cfg, **changes)


@pytest.fixture(scope="module")
def pendulum_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "pendulum.npz"
    save_any(path, _random_dataset("Pendulum-v1", 400), "scalerl")
    return path


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory, pendulum_data):
    root = tmp_path_factory.mktemp("offline")
    return offline_train.train_offline(_offline_cfg(root, pendulum_data))[0]


# ------------------------------------------------------------------------ the offline loop


def test_offline_run_layout_and_scores(offline_run, pendulum_data):
    run_dir = offline_run
    record = json.loads((run_dir / "offline.json").read_text())
    assert record["dataset"]["transitions"] == 400
    assert record["dataset"]["updates"] == offline_updates(400, 32, 8.0) == 100
    assert record["dataset"]["ref_scores"] == [-1200.0, -200.0]
    assert record["config"]["dataset"] == str(pendulum_data.resolve())  # resumable from any cwd
    assert (run_dir / "checkpoint.msgpack").is_file()
    cfg = read_config(run_dir)  # config.json is a TrainConfig: evaluate/init-from read it
    assert cfg.env == "Pendulum-v1" and cfg.agent.bc_alpha == 0.1
    returns = eval_returns(run_dir)
    assert len(returns) == 6  # updates 0, 20, ..., 100
    rows = [r for r in _metrics(run_dir) if r["metric"] == "eval/normalized_return"]
    expected = [normalized_score(r, (-1200.0, -200.0)) for r in returns]
    np.testing.assert_allclose([float(r["value"]) for r in rows], expected, rtol=1e-6)
    losses = [r for r in _metrics(run_dir) if r["metric"] == "train/actor_loss"]
    assert [int(r["env_step"]) for r in losses] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    _, meta = load_checkpoint(run_dir / "checkpoint.msgpack", _template(run_dir))
    assert meta["updates"] == 100


def test_offline_runs_evaluate_and_report(offline_run, tmp_path, capsys):
    assert main(["evaluate", str(offline_run), "--episodes", "1"]) == 0
    assert main(["report", str(offline_run), "--out", str(tmp_path / "rep"), "--reps", "50"]) == 0
    assert (tmp_path / "rep" / "report.md").is_file()


@pytest.mark.parametrize("agent", ["simba", "mlp"])
def test_offline_trains_simba_and_mlp(agent, tmp_path, pendulum_data):
    cfg = _offline_cfg(tmp_path, pendulum_data, epochs=2.0, eval_every=25, log_every=25)
    cfg = replace(cfg, agent=replace(offline_preset(agent), **TINY))
    run_dir = offline_train.train_offline(cfg)[0]
    assert read_config(run_dir).agent.agent == agent
    assert len(eval_returns(run_dir)) == 2  # update 0 and the end (25 updates)


def test_bc_term_is_alpha_mean_abs_q_times_squared_error():
    """Spec 4.1: L_actor += bc_alpha * stopgrad(mean |Q|) * mean (a - a_data)^2."""
    with_bc, without = small_sac(bc_alpha=0.5), small_sac(bc_alpha=0.0)
    state = with_bc.init(jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (16, 5))
    data_action = jax.random.uniform(jax.random.PRNGKey(2), (16, 2), minval=-1, maxval=1)
    key = jax.random.PRNGKey(3)
    _, a = with_bc._actor_grads(state, obs, data_action, key)
    _, b = without._actor_grads(state, obs, data_action, key)
    mean, log_std = with_bc.actor.apply({"params": state.actor.params}, obs)
    action, _ = tanh_gaussian_sample(key, mean, log_std)
    q = with_bc._q_values(with_bc._critic_out(state.critic.params, obs, action)).min(axis=0)
    expected = 0.5 * np.mean(np.abs(q)) * np.mean(np.square(action - data_action))
    diff = float(a["train/actor_loss"] - b["train/actor_loss"])
    assert diff == pytest.approx(float(expected), rel=1e-4) and diff > 0


def test_offline_lr_decays_to_1e5_over_half_the_updates(offline_run):
    cfg = read_config(offline_run)
    sac = build_agent(cfg, 3, 1)
    assert float(sac.schedule(0)) == pytest.approx(1e-4)
    assert float(sac.schedule(25)) == pytest.approx(5.5e-5)  # halfway through 50 decay steps
    assert float(sac.schedule(50)) == pytest.approx(1e-5)
    assert float(sac.schedule(100)) == pytest.approx(1e-5)


def _metrics(run_dir):
    import csv

    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _template(run_dir):
    cfg = read_config(run_dir)
    env = make_env(cfg.env, 0)
    sac = build_agent(cfg, env.observation_space.shape[0], env.action_space.shape[0])
    return sac.init(jax.random.PRNGKey(0))


def test_offline_resume_is_exact(tmp_path, pendulum_data, monkeypatch):
    full = offline_train.train_offline(_offline_cfg(tmp_path, pendulum_data, name="full"))[0]
    original = offline_train._eval_and_checkpoint

    def crash_after_first_checkpoint(run, states, u):
        original(run, states, u)
        if u == 40:
            raise KeyboardInterrupt

    monkeypatch.setattr(offline_train, "_eval_and_checkpoint", crash_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        offline_train.train_offline(_offline_cfg(tmp_path, pendulum_data, name="cut"))
    monkeypatch.setattr(offline_train, "_eval_and_checkpoint", original)
    cut = offline_train.resume_offline([tmp_path / "runs" / "cut"])[0]
    a, _ = load_checkpoint(full / "checkpoint.msgpack", _template(full))
    b, meta = load_checkpoint(cut / "checkpoint.msgpack", _template(cut))
    assert meta["updates"] == 100
    for x, y in zip(jax.tree.leaves(a.actor.params), jax.tree.leaves(b.actor.params), strict=True):
        np.testing.assert_array_equal(x, y)
    assert eval_returns(full) == eval_returns(cut)


def test_offline_rejects_bad_inputs(tmp_path, pendulum_data):
    with pytest.raises(ConfigError, match="--dataset"):
        offline_train.train_offline(OfflineConfig())
    with pytest.raises(ConfigError, match="epochs"):
        offline_train.train_offline(_offline_cfg(tmp_path, pendulum_data, epochs=0.0))
    with pytest.raises(DatasetError, match="dim"):  # Pendulum data, 5-dim env
        offline_train.train_offline(
            _offline_cfg(tmp_path, pendulum_data, env="dmc:cartpole-balance")
        )
    with pytest.raises(CheckpointError, match="offline run"):
        offline_train.resume_offline([tmp_path])
    assert main(["offline", "--dataset", str(tmp_path / "missing.npz")]) == 2


# ------------------------------------------------------------------------ export and collect


@pytest.fixture(scope="module")
def online_run(tmp_path_factory):
    cfg = TrainConfig(
        env="Pendulum-v1",
        env_steps=300,
        warmup_steps=100,
        utd=1.0,
        eval_every=150,
        eval_episodes=1,
        progress=False,
        tensorboard=False,
        run_root=tmp_path_factory.mktemp("runs"),
        name="online",
        agent=replace(agent_preset("simbav2"), **TINY),
    )
    return train(cfg)


@pytest.mark.parametrize("fmt", ["scalerl", "d4rl", "minari"])
def test_export_round_trip_gives_the_replay_buffer(online_run, tmp_path, fmt):
    cfg = read_config(online_run)
    sac = build_agent(cfg, 3, 1)
    tree, _ = load_resume(online_run, resume_template(sac, 300))
    expected = replay_to_numpy(tree["buffer"])
    out = tmp_path / {"scalerl": "data.npz", "d4rl": "data.hdf5", "minari": "minari"}[fmt]
    path = save_any(out, export_buffer(online_run), fmt)
    loaded = load_any(path)
    assert loaded.metadata["env_id"] == "Pendulum-v1" and len(loaded) == 300
    rows = loaded.to_transitions()
    if fmt == "minari":  # Minari episodes must end: the unfinished last one ends truncated
        assert rows["truncated"][-1] == 1.0 and expected["truncated"][-1] == 0.0
        rows["truncated"][-1] = 0.0
    for key, value in expected.items():
        np.testing.assert_array_equal(rows[key], value, err_msg=key)
    assert expected["truncated"][199] == 1.0  # Pendulum's 200-step limit is kept


def test_collect_records_episodes_and_reference_scores(online_run):
    data = collect(online_run, CollectSpec(episodes=2, noise=0.0, random_episodes=1))
    assert len(data) == 400 and data.timeouts.sum() == 2 and not data.terminals.any()
    assert data.metadata["ref_max_score"] == pytest.approx(data.episode_returns().mean())
    assert data.metadata["ref_min_score"] < 0
    noisy = collect(online_run, CollectSpec(steps=50, noise=0.5, random_episodes=0))
    assert len(noisy) == 50 and "ref_min_score" not in noisy.metadata
    assert not np.allclose(noisy.actions, data.actions[:50])
    with pytest.raises(ConfigError, match="steps"):
        collect(online_run, CollectSpec(steps=0))


def test_dataset_cli_writes_files(online_run, tmp_path, capsys):
    out = tmp_path / "c.npz"
    assert main(["dataset", "collect", str(online_run), "--episodes", "1", "--out", str(out),
                 "--random-episodes", "0"]) == 0  # fmt: skip
    assert len(load_any(out)) == 200
    assert main(["dataset", "export", str(online_run), "--format", "d4rl",
                 "--out", str(tmp_path / "e.hdf5")]) == 0  # fmt: skip
    assert "300 transitions" in capsys.readouterr().out
    assert main(["dataset", "bogus"]) == 2


# ------------------------------------------------------------------------ offline-to-online


def test_init_from_takes_networks_and_normalizers_with_fresh_optimizer(offline_run):
    off = offline_run
    defaults = train_defaults(["--init-from", str(off)])
    assert defaults.env == "Pendulum-v1" and defaults.agent.bc_alpha == 0.0
    assert defaults.agent.actor_width == 16 and defaults.agent.lr_end == 5e-5
    cfg = read_config(off)
    sac = build_agent(replace(cfg, agent=replace(cfg.agent, bc_alpha=0.0)), 3, 1)
    fresh = sac.init_many(np.stack([jax.random.PRNGKey(s) for s in (5, 6)]))
    started = initial_state(sac, fresh, off, None)
    saved, _ = load_checkpoint(off / "checkpoint.msgpack", _template(off))
    for i in range(2):
        for x, y in zip(jax.tree.leaves(saved.critic.params),
                        jax.tree.leaves(started.critic.params), strict=True):  # fmt: skip
            np.testing.assert_array_equal(x, y[i])
    np.testing.assert_array_equal(started.obs_stats.mean[0], saved.obs_stats.mean)
    assert int(started.updates[0]) == 0 and int(saved.updates) == 100
    np.testing.assert_array_equal(started.rng, fresh.rng)


def test_init_from_with_other_networks_names_the_fix(offline_run):
    off = offline_run
    sac = small_sac()  # different sizes and dims
    fresh = sac.init_many(np.stack([jax.random.PRNGKey(0)]))
    with pytest.raises(CheckpointError, match="--init-from"):
        initial_state(sac, fresh, off, None)


def test_preload_fills_buffer_and_warms_normalizers(pendulum_data):
    data = load_any(pendulum_data)
    buffer = preload_buffer(replay_init(1000, 3, 1), data)
    assert int(buffer.size) == 400
    np.testing.assert_array_equal(replay_to_numpy(buffer)["next_obs"], data.next_observations)
    sac = small_sac()
    sac = build_agent(
        TrainConfig(env="Pendulum-v1", action_repeat=1, max_episode_steps=200, utd=2.0,
                    agent=replace(agent_preset("simbav2"), gamma=0.99, use_cdq=False, **TINY)),
        3, 1,
    )  # fmt: skip
    fresh = sac.init_many(np.stack([jax.random.PRNGKey(0)]))
    warm = initial_state(sac, fresh, None, data)
    np.testing.assert_allclose(warm.obs_stats.mean[0], data.observations.mean(0), atol=1e-4)


def test_online_run_from_offline_run_with_preload(tmp_path, pendulum_data, offline_run):
    off = offline_run
    cfg = replace(
        train_defaults(["--init-from", str(off)]),
        init_from=off,
        preload_dataset=pendulum_data,
        env_steps=60,
        warmup_steps=1,
        eval_every=60,
        eval_episodes=1,
        progress=False,
        tensorboard=False,
        run_root=tmp_path / "runs",
        name="ft",
    )
    run_dir = train(cfg)
    saved = read_config(run_dir)
    assert saved.init_from == off and saved.preload_dataset == pendulum_data
    assert len(list_checkpoints(run_dir)) == 1
    exported = export_buffer(run_dir)
    assert len(exported) == 460  # 400 preloaded + 60 online transitions


def test_offline_seeds_are_vmapped_into_single_run_directories(tmp_path, pendulum_data):
    both = _offline_cfg(tmp_path, pendulum_data, seeds="0,1", name="pair", epochs=2.0)
    dirs = offline_train.train_offline(both)
    assert [d.name for d in dirs] == ["pair-s0", "pair-s1"]
    single = _offline_cfg(tmp_path, pendulum_data, seed=1, name="one", epochs=2.0)
    alone = offline_train.train_offline(single)[0]
    a, _ = load_checkpoint(dirs[1] / "checkpoint.msgpack", _template(alone))
    b, _ = load_checkpoint(alone / "checkpoint.msgpack", _template(alone))
    for x, y in zip(jax.tree.leaves(a.actor.params), jax.tree.leaves(b.actor.params), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5)
    assert json.loads((dirs[1] / "offline.json").read_text())["config"]["seed"] == 1
