"""The Python API: learn/predict/save/load on the CLI's machinery, and the docs' example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import jax
import numpy as np
import pytest

import scalerl
from scalerl.datasets import Dataset, save_any
from scalerl.errors import ConfigError
from scalerl.train.setup import read_config

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "agent": "mlp",
    "actor_width": 16,
    "critic_width": 16,
    "batch_size": 16,
    "warmup_steps": 100,
    "eval_every": 100,
    "eval_episodes": 1,
    "progress": False,
    "tensorboard": False,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    return scalerl.SAC("Pendulum-v1", run_root=root, name="sac", **TINY).learn(env_steps=200)


def test_import_scalerl_is_light_and_exports_the_api():
    code = "import sys, scalerl; print('jax' in sys.modules, sorted(scalerl.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split(" ", 1) == [
        "False",
        "['DDPG', 'OfflineSAC', 'SAC', 'TD3', '__version__']\n",
    ]
    from scalerl import SAC, api

    assert SAC is api.SAC and scalerl.OfflineSAC is api.OfflineSAC


def test_learn_writes_a_cli_run_directory(trained):
    run = trained.run_dir
    assert run.name == "sac"
    for name in ("config.json", "metrics.csv", "checkpoint.msgpack", "learning_curve.png"):
        assert (run / name).is_file(), name
    cfg = read_config(run)
    assert (cfg.env, cfg.env_steps, cfg.agent.critic_width, cfg.agent.lr_init) == (
        "Pendulum-v1",
        200,
        16,
        3e-4,
    )  # fmt: skip  (3e-4: the mlp preset)


def test_predict_returns_actions_in_the_env_bounds(trained):
    obs = np.array([1.0, 0.0, 0.5], np.float32)
    unit = trained._sac.act(trained.state, obs, jax.random.PRNGKey(0), deterministic=True)
    action, hidden = trained.predict(obs, deterministic=True)
    assert hidden is None and action.shape == (1,)
    np.testing.assert_allclose(action, 2.0 * np.asarray(unit), rtol=1e-6)  # Pendulum: [-2, 2]
    batch, _ = trained.predict(np.stack([obs, obs]))
    np.testing.assert_allclose(batch, np.stack([action, action]), rtol=1e-6)
    sampled = np.stack([trained.predict(obs, deterministic=False)[0] for _ in range(5)])
    assert np.all(np.abs(sampled) <= 2.0) and np.ptp(sampled) > 0


@pytest.mark.slow
def test_a_loaded_agent_acts_in_a_plain_gymnasium_loop(trained, tmp_path):
    path = trained.save(tmp_path / "agent.msgpack")
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    for loaded in (scalerl.SAC.load(path), scalerl.SAC.load(trained.run_dir)):
        np.testing.assert_array_equal(loaded.predict(obs)[0], trained.predict(obs)[0])
    for _ in range(30):
        action, _ = loaded.predict(obs)
        assert env.action_space.contains(action)
        obs, *_ = env.step(action)
    with pytest.raises(ConfigError, match="scalerl.SAC.load"):
        scalerl.TD3.load(path)


def test_bad_options_and_missing_weights_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown option 'critic_widht'"):
        scalerl.SAC("Pendulum-v1", critic_widht=3)
    with pytest.raises(ConfigError, match="by class"):
        scalerl.SAC("Pendulum-v1", algo="td3")
    with pytest.raises(ConfigError, match="learn"):
        scalerl.SAC("Pendulum-v1").predict(np.zeros(3))
    cfg = scalerl.TD3("Pendulum-v1", agent="mlp", nap=True, utd=1).config
    assert (cfg.agent.algo, cfg.agent.plasticity.nap, cfg.utd, cfg.agent.critic_width) == (
        "td3", True, 1, 256)  # fmt: skip


@pytest.mark.slow
def test_td3_learns_saves_loads_and_continues_and_offline_learns(tmp_path):
    td3 = scalerl.TD3("Pendulum-v1", run_root=tmp_path, **TINY).learn(env_steps=200)
    assert read_config(td3.run_dir).agent.algo == "td3"
    file = td3.save(tmp_path / "td3.msgpack")
    loaded = scalerl.TD3.load(file)
    np.testing.assert_array_equal(loaded.predict(np.ones(3))[0], td3.predict(np.ones(3))[0])
    again = loaded.learn(200, run_root=tmp_path, progress=False, warmup_steps=100)
    cfg = read_config(again.run_dir)
    assert (cfg.init_from, cfg.agent.algo, cfg.agent.critic_width) == (file.resolve(), "td3", 16)
    assert scalerl.DDPG("Pendulum-v1").config.agent.algo == "ddpg"
    data = _dataset(tmp_path / "data.npz")
    options = {k: v for k, v in TINY.items() if k not in ("warmup_steps", "eval_every")}
    off = scalerl.OfflineSAC(data, run_root=tmp_path, eval_every=20, log_every=10, **options)
    off.learn(epochs=2.0)
    assert (off.run_dir / "offline.json").is_file() and off.predict(np.zeros(3))[0].shape == (1,)
    with pytest.raises(ConfigError, match="init_from"):
        off.learn(epochs=1.0)


def _dataset(path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 200
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    ends = np.arange(n) % 100 == 99
    data = Dataset(obs, rng.uniform(-1, 1, (n, 1)), rng.normal(size=n), np.zeros(n), ends,
                   np.roll(obs, -1, 0), {"env_id": "Pendulum-v1"})  # fmt: skip
    return save_any(path, data, "scalerl")


@pytest.mark.slow
def test_the_python_api_doc_runs(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "python_api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "docs/python_api.md has no python code block"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/python_api.md", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "pendulum_sac.msgpack").is_file()
    assert np.isfinite(namespace["episode_return"])
