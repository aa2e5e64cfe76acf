"""SAC agent: update invariants, temperature, schedules, vmap over seeds, save -> load -> act."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import ACT_DIM, OBS_DIM, small_sac
from scalerl.agents.sac import make_schedule
from scalerl.config import agent_preset, lr_decay_steps
from scalerl.train.checkpoint import load_checkpoint, save_checkpoint
from test_networks import random_batch


@pytest.fixture(scope="module")
def agent():
    sac = small_sac("simbav2")
    return sac, sac.init(jax.random.PRNGKey(0)), jax.jit(sac.update)


def test_update_moves_target_by_polyak_from_the_new_critic(agent):
    sac, state, update = agent
    new, metrics = update(state, random_batch(jax.random.PRNGKey(5)))
    tau = sac.cfg.tau
    expected = jax.tree_util.tree_map(
        lambda t, c: tau * c + (1 - tau) * t, state.target_params, new.critic.params
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(expected),
        jax.tree_util.tree_leaves(new.target_params),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert int(new.updates) == 1
    for key in (
        "train/actor_loss",
        "train/critic_loss",
        "train/temperature",
        "train/entropy",
        "train/q_mean",
    ):
        assert np.isfinite(float(metrics[key])), key


def test_temperature_first_step_moves_log_alpha_by_lr_against_the_entropy_gap(agent):
    sac, state, _ = agent
    # entropy above target -> gradient alpha*(H - H_target) > 0 -> log alpha decreases by ~lr
    temp, info = sac._temperature_step(state.temp, jnp.float32(5.0))
    delta = float(temp.params["log_temp"] - state.temp.params["log_temp"])
    assert delta == pytest.approx(-1e-4, abs=1e-6)
    alpha = 0.01
    assert float(info["train/temperature_loss"]) == pytest.approx(
        alpha * (5.0 + 0.5 * ACT_DIM), rel=1e-5
    )
    temp, _ = sac._temperature_step(state.temp, jnp.float32(-5.0))
    assert float(temp.params["log_temp"] - state.temp.params["log_temp"]) == pytest.approx(
        1e-4, abs=1e-6
    )


def test_lr_schedule_decays_linearly_from_1e4_to_5e5():
    steps = lr_decay_steps(1_000_000, 2, 2.0)
    assert steps == 1_000_000
    assert lr_decay_steps(1_000_000, 1, 1.0) == 1_000_000
    assert lr_decay_steps(100_000, 2, 0.5, fraction=0.5) == 12_500
    sched = make_schedule(agent_preset("simbav2"), 1000)
    assert float(sched(0)) == pytest.approx(1e-4)
    assert float(sched(500)) == pytest.approx(7.5e-5)
    assert float(sched(1000)) == pytest.approx(5e-5)
    assert float(sched(5000)) == pytest.approx(5e-5)
    assert float(make_schedule(agent_preset("simba"), 1000)(999)) == pytest.approx(1e-4)


def test_simba_optimizer_applies_weight_decay_and_simbav2_does_not():
    simba = small_sac("simba")
    params = {"w": jnp.ones(3)}
    zero = {"w": jnp.zeros(3)}
    updates, _ = simba.critic_tx.update(zero, simba.critic_tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -1e-4 * 1e-2, rtol=1e-5)
    v2 = small_sac("simbav2")
    updates, _ = v2.critic_tx.update(zero, v2.critic_tx.init(params), params)
    np.testing.assert_allclose(updates["w"], 0.0)
    assert isinstance(v2.temp_tx, optax.GradientTransformation)


def test_vmapped_update_over_seeds_equals_separate_updates():
    sac = small_sac("simbav2")
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    states = sac.init_many(keys)
    batch = random_batch(jax.random.PRNGKey(9))
    batches = jax.tree_util.tree_map(lambda x: jnp.stack([x] * 3), batch)
    vm, _ = jax.jit(jax.vmap(sac.update))(states, batches)
    single, _ = jax.jit(sac.update)(sac.init(keys[1]), batch)
    for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(vm), strict=True):
        np.testing.assert_allclose(np.asarray(b)[1], np.asarray(a), rtol=2e-4, atol=1e-6)


def test_save_load_gives_identical_actions(agent, tmp_path):
    sac, state, update = agent
    state, _ = update(state, random_batch(jax.random.PRNGKey(2)))
    path = tmp_path / "ckpt.msgpack"
    save_checkpoint(path, state, {"note": "test"})
    restored, meta = load_checkpoint(path, sac.init(jax.random.PRNGKey(123)))
    assert meta["note"] == "test"
    obs = jax.random.normal(jax.random.PRNGKey(4), (7, OBS_DIM))
    key = jax.random.PRNGKey(11)
    for deterministic in (True, False):
        a1 = sac.act(state, obs, key, deterministic)
        a2 = sac.act(restored, obs, key, deterministic)
        np.testing.assert_array_equal(np.asarray(a1), np.asarray(a2))
    assert a1.shape == (7, ACT_DIM) and float(jnp.max(jnp.abs(a1))) <= 1.0


def test_bc_term_pulls_actions_towards_data(agent):
    sac = small_sac("simbav2", bc_alpha=10.0)
    state = sac.init(jax.random.PRNGKey(0))
    batch = random_batch(jax.random.PRNGKey(1))
    key = jax.random.PRNGKey(2)
    _, with_bc = sac._actor_step(state, batch.obs, batch.action, key)
    plain = small_sac("simbav2")
    _, without = plain._actor_step(state, batch.obs, batch.action, key)
    assert float(with_bc["train/actor_loss"]) > float(without["train/actor_loss"])


def test_observe_updates_normalisers_once_per_step(agent):
    sac, state, _ = agent
    obs = jnp.arange(OBS_DIM, dtype=jnp.float32)
    new = sac.observe(state, obs, jnp.float32(2.0), jnp.float32(0.0))
    assert int(new.obs_stats.count) == 1 and float(new.reward_stats.ret) == 2.0
    np.testing.assert_allclose(new.obs_stats.mean, obs / (1 + 1e-4), rtol=1e-6)


def test_cdq_init_does_not_deadlock_for_shapes_that_used_to_hang():
    # nn.vmap init batched the orthogonal QR and deadlocked XLA on CPU for these shapes.
    code = (
        "import jax; from scalerl.config import agent_preset, replace; "
        "from scalerl.agents.sac import make_sac; "
        "cfg = replace(agent_preset('simbav2'), gamma=0.99, use_cdq=True, critic_width=128, "
        "actor_width=64, critic_depth=1); "
        "s = make_sac(cfg, 3, 1).init(jax.random.PRNGKey(0)); jax.block_until_ready(s); print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180
    )
    assert result.stdout.strip().endswith("ok"), result.stderr


def test_bf16_precision_keeps_float32_parameters_and_finite_losses():
    sac = small_sac("simbav2", precision="bf16")
    state = sac.init(jax.random.PRNGKey(0))
    new, metrics = jax.jit(sac.update)(state, random_batch(jax.random.PRNGKey(1)))
    assert {x.dtype for x in jax.tree_util.tree_leaves(new.critic.params)} == {jnp.dtype("float32")}
    assert np.isfinite(float(metrics["train/critic_loss"]))
    obs = jnp.ones((1, OBS_DIM))
    fp32 = small_sac("simbav2")
    a16 = sac.act(new, obs, jax.random.PRNGKey(0), deterministic=True)
    a32 = fp32.act(new, obs, jax.random.PRNGKey(0), deterministic=True)
    np.testing.assert_allclose(a16, a32, atol=0.05)  # same function up to bf16 rounding
