"""SimbaV2 / SimBa / MLP networks: unit norms, Scaler reparametrisation, parameter counts."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ACT_DIM, OBS_DIM, small_sac
from scalerl.agents.sac import make_sac
from scalerl.buffers.replay import Batch
from scalerl.config import (
    agent_preset,
    replace,
    simbav2_alpha_init,
    simbav2_alpha_scale,
    simbav2_scaler_init,
)
from scalerl.networks import is_projected_kernel, project_kernels
from scalerl.networks.layers import HyperEmbedder, HyperLERPBlock, Scaler, l2normalize


def projected_kernels(params):
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(p): x for p, x in flat if is_projected_kernel(p)}


def fan_in_norms(kernel):
    return np.linalg.norm(np.asarray(kernel), axis=-2)


def random_batch(key, n=16):
    k = jax.random.split(key, 4)
    return Batch(
        obs=jax.random.normal(k[0], (n, OBS_DIM)),
        action=jax.random.uniform(k[1], (n, ACT_DIM), minval=-1, maxval=1),
        reward=jax.random.normal(k[2], (n,)),
        next_obs=jax.random.normal(k[3], (n, OBS_DIM)),
        terminated=jnp.zeros(n),
        discount=jnp.full(n, 0.99),
    )


@pytest.fixture(scope="module", params=[False, True], ids=["single", "cdq"])
def trained(request):
    """A small SimbaV2 agent after 5 updates on random batches, and its initial state."""
    sac = small_sac("simbav2", use_cdq=request.param)
    init = sac.init(jax.random.PRNGKey(0))
    update = jax.jit(sac.update)
    state = init
    for i in range(5):
        state, _ = update(state, random_batch(jax.random.PRNGKey(i)))
    return sac, init, state


def test_every_projected_kernel_has_unit_fan_in_after_init_and_update(trained):
    _, init, state = trained
    # actor: embedder w, block w1/w2, head mean/std w1/w2; critic: embedder, 2 blocks, head
    assert len(projected_kernels(init.actor.params)) == 1 + 2 + 4
    assert len(projected_kernels(init.critic.params)) == 1 + 2 * 2 + 2
    for params in (init.actor.params, init.critic.params):
        for name, kernel in projected_kernels(params).items():
            np.testing.assert_allclose(fan_in_norms(kernel), 1.0, atol=1e-5, err_msg=name)
    assert int(state.updates) == 5
    for params in (state.actor.params, state.critic.params):
        for name, kernel in projected_kernels(params).items():
            np.testing.assert_allclose(fan_in_norms(kernel), 1.0, atol=1e-5, err_msg=name)


def test_target_critic_is_not_reprojected_after_polyak(trained):
    _, _, state = trained
    norms = np.concatenate(
        [fan_in_norms(k).ravel() for k in projected_kernels(state.target_params).values()]
    )
    assert norms.max() <= 1.0 + 1e-6
    assert norms.min() < 1.0 - 1e-7  # convex combinations of unit vectors shrink slightly


def test_projection_touches_only_hyper_dense_kernels():
    params = {
        "enc": {
            "hyper_dense": {"kernel": jnp.full((3, 2), 2.0)},
            "scaler": {"scaler": jnp.ones(2) * 7},
        },
        "head": {"bias": jnp.ones(2) * 5, "Dense_0": {"kernel": jnp.full((3, 2), 2.0)}},
    }
    out = project_kernels(params)
    np.testing.assert_allclose(out["enc"]["hyper_dense"]["kernel"], 1 / math.sqrt(3), rtol=1e-6)
    np.testing.assert_array_equal(out["enc"]["scaler"]["scaler"], 7.0)
    np.testing.assert_array_equal(out["head"]["bias"], 5.0)
    np.testing.assert_array_equal(out["head"]["Dense_0"]["kernel"], 2.0)


def test_embedder_and_block_outputs_have_unit_norm():
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 6)) * 10
    emb = HyperEmbedder(32, 0.25, 0.25, 3.0)
    params = project_kernels(emb.init(jax.random.PRNGKey(1), x))
    e = emb.apply(params, x)
    np.testing.assert_allclose(np.linalg.norm(e, axis=-1), 1.0, atol=1e-5)
    block = HyperLERPBlock(32, 0.25, 0.25, 0.5, 1 / math.sqrt(32))
    bparams = project_kernels(block.init(jax.random.PRNGKey(2), e))
    np.testing.assert_allclose(np.linalg.norm(block.apply(bparams, e), axis=-1), 1.0, atol=1e-5)


def test_l2normalize_floors_the_norm():
    np.testing.assert_array_equal(l2normalize(jnp.zeros((2, 3))), 0.0)
    np.testing.assert_allclose(l2normalize(jnp.array([[3.0, 4.0]])), [[0.6, 0.8]], rtol=1e-6)


def test_scaler_reparametrisation_gives_init_as_effective_value():
    scaler = Scaler(4, init_value=0.3, scale_value=0.05)
    x = jnp.arange(1.0, 5.0)
    params = scaler.init(jax.random.PRNGKey(0), x)
    np.testing.assert_allclose(params["params"]["scaler"], 0.05)
    np.testing.assert_allclose(scaler.apply(params, x), 0.3 * x, rtol=1e-6)
    # a parameter step of d changes the effective value by d * init / scale = 6 d
    bumped = jax.tree_util.tree_map(lambda p: p + 0.01, params)
    np.testing.assert_allclose(scaler.apply(bumped, x), (0.3 + 0.06) * x, rtol=1e-5)


def test_scaler_constants_match_spec_table():
    assert simbav2_scaler_init(128) == pytest.approx(0.125)
    assert simbav2_scaler_init(512) == pytest.approx(0.0625)
    assert simbav2_alpha_init(1) == pytest.approx(0.5)
    assert simbav2_alpha_init(2) == pytest.approx(1 / 3)
    assert simbav2_alpha_scale(128) == pytest.approx(0.0883883, abs=1e-7)
    assert simbav2_alpha_scale(512) == pytest.approx(0.0441942, abs=1e-7)


def test_default_parameter_counts_match_spec():
    d_o, d_a = 17, 6
    cfg = replace(agent_preset("simbav2"), gamma=0.99, use_cdq=False)
    sac = make_sac(cfg, d_o, d_a)
    shapes = jax.eval_shape(sac.init, jax.random.PRNGKey(0))
    count = lambda t: sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(t))  # noqa: E731
    assert count(shapes.critic.params) == 4_514_405 + 512 * (d_o + d_a + 1)
    assert count(shapes.actor.params) == 164_864 + 258 * d_a + 128 * (d_o + 1)
    cdq = make_sac(replace(cfg, use_cdq=True), d_o, d_a)
    assert count(jax.eval_shape(cdq.init, jax.random.PRNGKey(0)).critic.params) == 2 * (
        4_514_405 + 512 * (d_o + d_a + 1)
    )


def test_block_scaler_initial_values_follow_spec():
    sac = small_sac("simbav2")
    params = sac.init(jax.random.PRNGKey(0)).critic.params["encoder"]
    s = math.sqrt(2 / 64)
    np.testing.assert_allclose(params["embedder"]["scaler"]["scaler"], s, rtol=1e-6)
    np.testing.assert_allclose(params["block_0"]["mlp"]["scaler"]["scaler"], s / 2, rtol=1e-6)
    np.testing.assert_allclose(params["block_1"]["alpha_scaler"]["scaler"], 1 / 8, rtol=1e-6)


@pytest.mark.parametrize("agent", ["simba", "mlp"])
def test_simba_and_mlp_shapes(agent):
    sac = small_sac(agent, use_cdq=True)
    state = sac.init(jax.random.PRNGKey(0))
    obs = jnp.ones((3, OBS_DIM))
    mean, log_std = sac.actor.apply({"params": state.actor.params}, obs)
    assert mean.shape == (3, ACT_DIM) and log_std.shape == (3, ACT_DIM)
    assert np.all((log_std > -10) & (log_std < 2))
    q = sac._critic_out(state.critic.params, obs, jnp.zeros((3, ACT_DIM)))
    assert q.shape == (2, 3, 1)
    assert not projected_kernels(state.critic.params)


def test_simba_encoder_ends_with_layernorm():
    sac = small_sac("simba")
    params = sac.init(jax.random.PRNGKey(0)).actor.params
    assert "final_norm" in params["encoder"]
    assert set(params["encoder"]["block_0"]) == {"LayerNorm_0", "Dense_0", "Dense_1"}
