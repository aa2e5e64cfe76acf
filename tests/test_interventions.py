"""Plasticity interventions inside the SAC agent and the training loop (plasticity spec §1-§5)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.agents.sac import make_sac, make_schedule
from scalerl.buffers.replay import Batch
from scalerl.config import PlasticityConfig, TrainConfig, agent_preset, validate_agent
from scalerl.errors import ConfigError
from scalerl.plasticity.nap import tensor_norm
from scalerl.plasticity.redo import neuron_scores
from scalerl.train.evaluate import load_run_agent
from scalerl.train.hooks import crossed
from scalerl.train.logging import read_metrics_csv
from scalerl.train.loop import train

OBS, ACT, B = 5, 2, 16


def make(agent: str, cdq: bool = False, **plasticity):
    cfg = agent_preset(agent)
    cfg = dataclasses.replace(
        cfg,
        critic_width=16,
        actor_width=16,
        gamma=0.99,
        use_cdq=cdq,
        plasticity=PlasticityConfig(**plasticity),
    )
    return make_sac(cfg, OBS, ACT, 100)


def batch(seed: int) -> Batch:
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    action = jax.random.uniform(k[1], (B, ACT), minval=-1.0, maxval=1.0)
    obs, next_obs = jax.random.normal(k[0], (B, OBS)), jax.random.normal(k[2], (B, OBS))
    return Batch(obs, action, jnp.ones(B), next_obs, jnp.zeros(B), jnp.full(B, 0.99))


def run_updates(sac, n: int, seed: int = 0):
    state = sac.init(jax.random.PRNGKey(seed))
    update = jax.jit(sac.update)
    for i in range(n):
        state, _ = update(state, batch(i))
    return state


def hidden_kernels(params) -> list[jax.Array]:
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return [x for path, x in flat if "_pn" in jax.tree_util.keystr(path) and "kernel" in str(path)]


@pytest.mark.parametrize("agent", ["mlp", "simba", "msr"])
def test_nap_keeps_hidden_kernel_norms(agent):
    sac = make(agent, cdq=True, nap=True)
    init = sac.init(jax.random.PRNGKey(0))
    state = run_updates(sac, 3)
    for net, dims in (("actor", 0), ("critic", 1)):
        before = hidden_kernels(getattr(init, net).params)
        after = hidden_kernels(getattr(state, net).params)
        assert before, f"{agent} {net} has no pre-norm kernels"
        for w0, w in zip(before, after, strict=True):
            assert not np.allclose(w0, w)  # the kernels did learn
            np.testing.assert_allclose(tensor_norm(w, dims), tensor_norm(w0, dims), rtol=1e-5)


def test_nap_networks_drop_prenorm_biases():
    sac = make("mlp", nap=True)
    params = sac.init(jax.random.PRNGKey(0)).actor.params
    assert set(params["encoder"]["dense_0_pn"]["dense_pn"]) == {"kernel"}


def test_hare_tortoise_reset_makes_hare_equal_tortoise():
    sac = make("mlp", hare_tortoise=True, ht_momentum=0.5, ht_reset_every=3)
    two, three = run_updates(sac, 2), run_updates(sac, 3)
    tortoise = two.extras["tortoise"]["actor"]
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(two.actor.params), jax.tree.leaves(tortoise), strict=True)
    )
    for net in ("actor", "critic"):
        hare = jax.tree.leaves(getattr(three, net).params)
        tort = jax.tree.leaves(three.extras["tortoise"][net])
        assert all(np.array_equal(a, b) for a, b in zip(hare, tort, strict=True))
    target = jax.tree.leaves(three.target_params)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(target, jax.tree.leaves(three.extras["tortoise"]["critic"]), strict=True)
    )


def test_hare_tortoise_evaluates_with_the_tortoise():
    sac = make("mlp", hare_tortoise=True, ht_momentum=0.9, ht_reset_every=100)
    state = run_updates(sac, 2)
    obs = jnp.ones((OBS,))
    mean, _ = sac.actor.apply({"params": state.extras["tortoise"]["actor"]}, obs)
    np.testing.assert_allclose(sac.act(state, obs, None, deterministic=True), jnp.tanh(mean))


def test_tortoise_momentum_one_stays_at_init():
    sac = make("mlp", hare_tortoise=True, ht_momentum=1.0, ht_reset_every=0)
    init, state = sac.init(jax.random.PRNGKey(0)), run_updates(sac, 3)
    for a, b in zip(
        jax.tree.leaves(init.actor.params),
        jax.tree.leaves(state.extras["tortoise"]["actor"]),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def test_full_reset_same_init_returns_to_initial_networks():
    sac = make("mlp", cdq=True, reset="full", reset_every=10, reset_same_init=True)
    init, state = sac.init(jax.random.PRNGKey(0)), run_updates(sac, 3)
    after = jax.jit(sac.reset)(state, sac.init(jax.random.PRNGKey(0)))
    for a, b in zip(jax.tree.leaves(init.critic), jax.tree.leaves(after.critic), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(after.temp.params["log_temp"], init.temp.params["log_temp"])
    assert int(after.updates) == 3  # counters survive


def test_last_layer_reset_touches_only_heads():
    sac = make("mlp", reset="last_layers", reset_every=10)
    state, fresh = run_updates(sac, 3), sac.init(jax.random.PRNGKey(7))
    after = jax.jit(sac.reset)(state, fresh)
    np.testing.assert_array_equal(
        after.actor.params["head"]["mean"]["kernel"], fresh.actor.params["head"]["mean"]["kernel"]
    )
    np.testing.assert_array_equal(
        after.actor.params["encoder"]["dense_0"]["kernel"],
        state.actor.params["encoder"]["dense_0"]["kernel"],
    )
    mu = after.actor.opt_state[0].mu
    assert float(jnp.abs(mu["head"]["mean"]["kernel"]).max()) == 0.0
    assert float(jnp.abs(mu["encoder"]["dense_0"]["kernel"]).max()) > 0.0


def test_shrink_perturb_mixes_current_and_fresh_weights():
    sac = make("mlp", reset="shrink_perturb", reset_every=10, reset_shrink=0.5, reset_perturb=0.25)
    state, fresh = run_updates(sac, 2), sac.init(jax.random.PRNGKey(7))
    after = jax.jit(sac.reset)(state, fresh)
    path = ("encoder", "dense_1", "kernel")
    pick = lambda p: p[path[0]][path[1]][path[2]]  # noqa: E731
    expected = 0.5 * pick(state.critic.params) + 0.25 * pick(fresh.critic.params)
    np.testing.assert_allclose(pick(after.critic.params), expected, rtol=1e-6)
    np.testing.assert_allclose(
        pick(after.target_params),
        0.5 * pick(state.target_params) + 0.25 * pick(fresh.critic.params),
        rtol=1e-6,
    )


def test_redo_recycles_dormant_critic_units():
    sac = make("mlp", cdq=True, redo_every=10, redo_tau=0.5)
    state, probe, fresh = run_updates(sac, 2), batch(11), sac.init(jax.random.PRNGKey(3))
    after, info = jax.jit(sac.redo)(state, fresh, probe)
    obs = sac.normalize_obs(state, probe.obs)
    h = jax.vmap(lambda p: sac._sown(sac.critic, p, obs, probe.action))(state.critic.params)
    dead = np.asarray(neuron_scores(h["features_0"], batch_dims=1) <= 0.5)  # (num_qs, H)
    assert dead.sum() > 0 and not dead.all()
    assert int(info["train/redo_recycled_critic"]) >= dead.sum()
    enc, enc0, fresh_enc = (s.critic.params["encoder"] for s in (after, state, fresh))
    k0, k0_old, k0_fresh = (e["dense_0"]["kernel"] for e in (enc, enc0, fresh_enc))
    np.testing.assert_array_equal(np.where(dead[:, None, :], k0_fresh, k0_old), k0)
    rows = np.asarray(enc["dense_1"]["kernel"])[
        np.broadcast_to(dead[:, :, None], k0.shape[:1] + dead.shape[1:] + (16,))
    ]
    assert np.all(rows == 0.0)  # outgoing weights of recycled units are zero


def test_l2_init_penalty_is_part_of_the_loss():
    plain, reg = make("mlp"), make("mlp", l2_init=10.0)
    s_plain, s_reg = run_updates(plain, 3), run_updates(reg, 3)
    init = reg.init(jax.random.PRNGKey(0)).critic.params
    dist = lambda p: sum(  # noqa: E731
        float(jnp.sum((a - b) ** 2))
        for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(init), strict=True)
    )
    assert dist(s_reg.critic.params) < dist(s_plain.critic.params)


def test_health_is_pure_and_finite():
    agent = "simbav2"  # the mlp's health runs in test_loop_logs_health_resets_and_redo
    sac = make(agent)
    state = run_updates(sac, 2)
    metrics = jax.jit(sac.health)(state, batch(5))
    for key in ("feature_norm", "param_norm", "grad_norm", "elr_grad_ratio", "dormant_0.1"):
        for net in ("actor", "critic"):
            assert np.isfinite(metrics[f"health/{net}/{key}"]), key
    again = jax.jit(sac.health)(state, batch(5))
    np.testing.assert_array_equal(
        metrics["health/critic/grad_norm"], again["health/critic/grad_norm"]
    )
    if agent == "simbav2":  # unit-norm features on the sphere, one per block (2 critic blocks)
        np.testing.assert_allclose(metrics["health/critic/feature_norm"], 2.0, rtol=1e-5)


def test_kron_optimizer_updates():
    cfg = dataclasses.replace(agent_preset("mlp"), optimizer="kron", lr_init=1e-4, lr_end=1e-4)
    cfg = dataclasses.replace(cfg, critic_width=16, actor_width=16, gamma=0.99, use_cdq=True)
    sac = make_sac(cfg, OBS, ACT, 100)
    state = run_updates(sac, 2)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.critic.params))


@pytest.mark.parametrize(
    ("agent", "plasticity", "match"),
    [
        ("simbav2", {"nap": True}, "simbav2 already"),
        ("mlp", {"reset": "full"}, "--reset-every"),
        ("simba", {"redo_every": 5}, "ReDo"),
        ("mlp", {"ht_momentum": 1.5}, "ht_momentum"),
    ],
)
def test_invalid_plasticity_settings(agent, plasticity, match):
    cfg = dataclasses.replace(agent_preset(agent), plasticity=PlasticityConfig(**plasticity))
    with pytest.raises(ConfigError, match=match):
        validate_agent(cfg)


def test_crossed_counts_multiples_in_the_interval():
    assert crossed(10, 9, 10) and crossed(10, 5, 25) and not crossed(10, 10, 19)
    assert not crossed(0, 0, 100)


@pytest.fixture(scope="module")
def loop_runs(tmp_path_factory):
    """Two short Pendulum runs with resets and ReDo: health diagnostics on and off."""
    agent = dataclasses.replace(
        agent_preset("mlp"),
        critic_width=32,
        actor_width=32,
        plasticity=PlasticityConfig(reset="shrink_perturb", reset_every=100, redo_every=150),
    )
    cfg = TrainConfig(
        env="Pendulum-v1",
        env_steps=400,
        utd=1,
        warmup_steps=100,
        eval_every=400,
        eval_episodes=1,
        log_every=100,
        run_root=tmp_path_factory.mktemp("runs"),
        progress=False,
        tensorboard=False,
        agent=agent,
    )
    return {every: train(dataclasses.replace(cfg, health_every=every, name=f"h{every}"))
            for every in (100, 0)}  # fmt: skip


def test_loop_logs_health_resets_and_redo(loop_runs):
    rows = read_metrics_csv(loop_runs[100] / "metrics.csv")
    steps = lambda m: [int(r["env_step"]) for r in rows if r["metric"] == m]  # noqa: E731
    assert steps("health/critic/feature_norm") == [100, 200, 300, 400]
    # Updates start at step 100 (warm-up), so update u happens at step 99 + u.
    assert steps("train/resets") == [199, 299, 399]
    assert steps("train/redo_recycled_critic") == [249, 399]
    off = read_metrics_csv(loop_runs[0] / "metrics.csv")
    assert not [r for r in off if r["metric"].startswith("health/")]


def test_health_diagnostics_do_not_change_training(loop_runs):
    params = [jax.tree.leaves(load_run_agent(run)[1].critic.params) for run in loop_runs.values()]
    for a, b in zip(*params, strict=True):
        np.testing.assert_array_equal(a, b)


def test_warmup_cosine_schedule_restarts_every_decay_length():
    cfg = dataclasses.replace(
        agent_preset("mlp"), lr_schedule="warmup_cosine", lr_init=1e-3, lr_end=1e-5, lr_warmup=10
    )
    schedule = make_schedule(cfg, 110)
    np.testing.assert_allclose(schedule(0), 1e-8, rtol=1e-4)
    np.testing.assert_allclose(schedule(5), 1e-8 + (1e-3 - 1e-8) * 0.5, rtol=1e-5)
    np.testing.assert_allclose(schedule(10), 1e-3, rtol=1e-5)
    np.testing.assert_allclose(schedule(60), 1e-5 + 0.5 * (1e-3 - 1e-5), rtol=1e-5)
    np.testing.assert_allclose(schedule(110), 1e-8, rtol=1e-4)  # next period starts again


def test_hare_tortoise_can_act_with_the_tortoise():
    sac = make("mlp", hare_tortoise=True, ht_momentum=0.9, ht_reset_every=100, ht_act="tortoise")
    state, obs, key = run_updates(sac, 2), jnp.ones((OBS,)), jax.random.PRNGKey(4)
    tortoise = state.replace(actor=state.actor.replace(params=state.extras["tortoise"]["actor"]))
    plain = make("mlp")
    np.testing.assert_array_equal(sac.act(state, obs, key), plain.act(tortoise, obs, key))
