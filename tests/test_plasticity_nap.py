"""Normalize-and-Project (plasticity spec §1): radii, projection, optax transform, schedule."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scalerl.plasticity.nap import (
    decay_to_init_penalty,
    init_radii,
    nap_mask,
    nap_transform,
    project_norm_params,
    project_to_radii,
    tensor_norm,
    warmup_cosine_schedule,
)
from scalerl.plasticity.roles import label_params


class PreNormMLP(nn.Module):
    """Two bias-free pre-norm layers (NaP step 1) and an output head."""

    width: int = 16

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i in range(2):
            x = nn.Dense(self.width, use_bias=False, name=f"dense_{i}_pn")(x)
            x = nn.relu(nn.LayerNorm(name=f"norm_{i}")(x))
        return nn.Dense(3, name="head")(x)


@pytest.fixture(scope="module")
def model_params() -> tuple[PreNormMLP, dict]:
    model = PreNormMLP()
    return model, jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 5)))


def test_nap_mask_selects_hidden_kernels(model_params):
    _, params = model_params
    labels = label_params(params)
    mask = nap_mask(labels)
    assert mask["params"]["dense_0_pn"]["kernel"] and mask["params"]["dense_1_pn"]["kernel"]
    assert not mask["params"]["head"]["kernel"] and not mask["params"]["norm_0"]["scale"]
    assert nap_mask(labels, project_output=True)["params"]["head"]["kernel"]


def test_init_radii_hand_computed():
    params = {"a": jnp.array([[3.0, 4.0]]), "b": jnp.ones((2, 3))}
    radii = init_radii(params, {"a": True, "b": False})
    assert float(radii["a"]) == pytest.approx(5.0) and radii["a"].shape == ()
    assert float(radii["b"]) == 0.0
    ens = {"a": jnp.array([[[3.0, 4.0]], [[6.0, 8.0]]])}  # (num_qs=2, 1, 2)
    np.testing.assert_allclose(init_radii(ens, {"a": True}, batch_dims=1)["a"], [5.0, 10.0])


def test_project_hand_computed_and_identity_off_mask():
    params = {"a": jnp.array([[3.0, 4.0]]), "b": jnp.array([1.5, -2.0])}
    out = project_to_radii(
        params, {"a": jnp.array(10.0), "b": jnp.array(0.0)}, {"a": True, "b": False}
    )
    np.testing.assert_allclose(out["a"], [[6.0, 8.0]], rtol=1e-7)
    assert out["b"] is params["b"]


def test_project_zero_tensor_stays_finite():
    out = project_to_radii({"a": jnp.zeros((2, 2))}, {"a": jnp.array(3.0)}, {"a": True})
    np.testing.assert_array_equal(out["a"], 0.0)


def test_project_restores_norm_per_ensemble_member():
    params = {"w": jnp.asarray(np.random.default_rng(1).standard_normal((2, 7, 5)), jnp.float32)}
    radii = init_radii(params, {"w": True}, batch_dims=1)
    grown = {"w": params["w"] * jnp.array([3.0, 0.2])[:, None, None]}
    out = project_to_radii(grown, radii, {"w": True}, batch_dims=1)
    np.testing.assert_allclose(tensor_norm(out["w"], 1), radii["w"], rtol=1e-6)
    np.testing.assert_allclose(out["w"], params["w"], rtol=1e-5, atol=1e-6)


def test_projection_leaves_output_unchanged(model_params):
    model, params = model_params
    mask = nap_mask(label_params(params))
    radii = init_radii(params, mask)
    x = np.random.default_rng(2).standard_normal((8, 5), np.float32)
    grown = jax.tree_util.tree_map(lambda p, m: p * 7.5 if m else p, params, mask)
    projected = project_to_radii(grown, radii, mask)
    apply = jax.jit(model.apply)
    np.testing.assert_allclose(apply(projected, x), apply(grown, x), atol=1e-5)
    kernel = projected["params"]["dense_0_pn"]["kernel"]
    assert float(tensor_norm(kernel)) == pytest.approx(
        float(radii["params"]["dense_0_pn"]["kernel"])
    )


def _train(params, opt, steps: int) -> list:
    """Run `steps` jitted updates on a fixed pseudo-random gradient sequence; return all params."""

    @jax.jit
    def step(p, state, grads):
        updates, state = opt.update(grads, state, p)
        return optax.apply_updates(p, updates), state

    rng, state, history = np.random.default_rng(0), opt.init(params), []
    for _ in range(steps):
        grads = jax.tree_util.tree_map(lambda x: rng.standard_normal(x.shape, np.float32), params)
        params, state = step(params, state, grads)
        history.append(params)
    return history


def test_transform_keeps_norm_every_step_and_is_identity_off_mask(model_params):
    _, params = model_params
    mask = nap_mask(label_params(params))
    radii = init_radii(params, mask)
    opt = optax.chain(optax.adam(0.3), nap_transform(radii, mask))
    plain = _train(params, optax.adam(0.3), 5)
    for step, (p, q) in enumerate(zip(_train(params, opt, 5), plain, strict=True)):
        for name in ("dense_0_pn", "dense_1_pn"):
            norm = float(tensor_norm(p["params"][name]["kernel"]))
            assert norm == pytest.approx(float(radii["params"][name]["kernel"]), rel=1e-6), step
        np.testing.assert_array_equal(p["params"]["head"]["kernel"], q["params"]["head"]["kernel"])
        np.testing.assert_array_equal(
            p["params"]["norm_0"]["scale"], q["params"]["norm_0"]["scale"]
        )


def test_transform_every_k_and_off_steps_are_identity():
    params = {"w": jnp.array([[3.0, 4.0]])}
    mask = {"w": True}
    tx = nap_transform(init_radii(params, mask), mask, every=3)
    state = tx.init(params)
    u = {"w": jnp.array([[3.0, 4.0]])}  # doubles the norm
    projected = []
    for _ in range(7):
        out, state = tx.update(u, state, params)
        projected.append(not np.array_equal(out["w"], u["w"]))
    assert projected == [True, False, False, True, False, False, True]
    np.testing.assert_allclose(tx.update(u, tx.init(params), params)[0]["w"], [[0.0, 0.0]])


def test_transform_off_is_identity():
    params = {"w": jnp.array([[3.0, 4.0]])}
    tx = nap_transform(None, {"w": True}, every=0)
    u = {"w": jnp.array([[1.0, 2.0]])}
    out, state = tx.update(u, tx.init(params), params)
    assert out["w"] is u["w"] and int(state.count) == 1


def test_transform_records_radii_per_seed_under_vmap():
    params = {"w": jnp.stack([jnp.full((2, 2), 1.0), jnp.full((2, 2), 2.0)])}  # two seeds
    tx = optax.chain(optax.sgd(0.5), nap_transform(None, {"w": True}))

    def step(p):
        state = tx.init(p)
        updates, _ = tx.update({"w": jnp.ones_like(p["w"])}, state, p)
        return optax.apply_updates(p, updates)

    out = jax.jit(jax.vmap(step))(params)
    np.testing.assert_allclose(tensor_norm(out["w"], 1), [2.0, 4.0], rtol=1e-6)


def test_transform_critic_ensemble_batch_dims():
    kernel = np.random.default_rng(3).standard_normal((2, 5, 8), np.float32)
    params = {  # a two-member critic ensemble: every leaf has a leading num_qs axis
        "encoder": {"dense_pn": {"kernel": jnp.asarray(kernel)}},
        "head": {"value": {"kernel": jnp.ones((2, 8, 1)), "bias": jnp.zeros((2, 1))}},
    }
    mask = nap_mask(label_params(params))
    radii = init_radii(params, mask, batch_dims=1)
    assert radii["encoder"]["dense_pn"]["kernel"].shape == (2,)
    opt = optax.chain(optax.adam(0.5), nap_transform(radii, mask, batch_dims=1))
    kernel = _train(params, opt, 3)[-1]["encoder"]["dense_pn"]["kernel"]
    expected = radii["encoder"]["dense_pn"]["kernel"]
    np.testing.assert_allclose(tensor_norm(kernel, 1), expected, rtol=1e-6)


def test_joint_project_hand_computed():
    params = {"LayerNorm_0": {"scale": jnp.array([2.0, 2.0]), "bias": jnp.array([1.0, 1.0])}}
    labels = label_params(params)
    out = project_norm_params(params, labels, "joint_project")
    np.testing.assert_allclose(out["LayerNorm_0"]["scale"], 2.0 / math.sqrt(5.0), rtol=1e-6)
    np.testing.assert_allclose(out["LayerNorm_0"]["bias"], 1.0 / math.sqrt(5.0), rtol=1e-6)
    for mode in ("free", "decay_to_init"):
        assert project_norm_params(params, labels, mode) is params
    with pytest.raises(ValueError, match="norm mode"):
        project_norm_params(params, labels, "project")


def test_joint_project_scale_only_and_ensemble():
    rms = {"RMSNorm_0": {"scale": jnp.array([[3.0, 4.0], [0.0, 2.0]])}}  # (num_qs=2, d=2)
    out = project_norm_params(rms, label_params(rms), "joint_project", batch_dims=1)
    root2 = math.sqrt(2.0)
    np.testing.assert_allclose(out["RMSNorm_0"]["scale"], [[0.6 * root2, 0.8 * root2], [0, root2]])


def test_joint_project_is_identity_at_layernorm_init(model_params):
    _, params = model_params
    out = project_norm_params(params, label_params(params), "joint_project")
    leaves = zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(params), strict=True)
    for a, b in leaves:
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_transform_joint_projects_norm_params(model_params):
    _, params = model_params
    labels = label_params(params)
    mask = nap_mask(labels)
    opt = optax.chain(optax.adam(0.3), nap_transform(None, mask, norm_labels=labels))
    final = _train(params, opt, 3)[-1]["params"]["norm_1"]
    joint = jnp.sqrt(jnp.sum(final["scale"] ** 2) + jnp.sum(final["bias"] ** 2))
    assert float(joint) == pytest.approx(4.0, rel=1e-6)  # sqrt(width = 16)


def test_decay_to_init_penalty_hand_computed():
    params = {"norm": {"scale": jnp.array([2.0, 0.0]), "bias": jnp.array([1.0, 2.0])}}
    params["dense"] = {"kernel": jnp.ones((2, 2))}
    assert float(decay_to_init_penalty(params, label_params(params), 0.5)) == pytest.approx(3.5)


def test_nap_transform_requires_params():
    tx = nap_transform(None, {"w": True})
    state = tx.init({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="needs params"):
        tx.update({"w": jnp.ones(2)}, state)


# eq. (5) with init 0.1, peak 1, end 0.2, T_w = 2, T = 6, values computed by hand.
SCHEDULE_TABLE = [
    (0, 0.1),
    (1, 0.55),
    (2, 1.0),
    (3, 0.2 + 0.4 * (1 + math.cos(math.pi / 4))),  # 0.88284271
    (4, 0.6),
    (5, 0.2 + 0.4 * (1 + math.cos(3 * math.pi / 4))),  # 0.31715729
    (6, 0.1),  # restart
    (7, 0.55),
    (14, 1.0),
]


@pytest.mark.parametrize(("step", "expected"), SCHEDULE_TABLE)
def test_warmup_cosine_table(step: int, expected: float):
    schedule = warmup_cosine_schedule(0.1, 1.0, 0.2, warmup_steps=2, period=6)
    assert float(schedule(step)) == pytest.approx(expected, rel=1e-6)


def test_warmup_cosine_spec_values_and_jit():
    schedule = jax.jit(warmup_cosine_schedule(1e-8, 6.25e-4, 1e-6, 1000, 100_000))
    assert float(schedule(0)) == pytest.approx(1e-8)
    assert float(schedule(1000)) == pytest.approx(6.25e-4, rel=1e-6)
    assert float(schedule(100_000)) == pytest.approx(1e-8)
    no_warmup = warmup_cosine_schedule(0.0, 1.0, 0.0, 0, 4)
    assert float(no_warmup(0)) == pytest.approx(1.0) and float(no_warmup(2)) == pytest.approx(0.5)


@pytest.mark.parametrize(("warmup", "period"), [(5, 5), (-1, 5), (0, 0)])
def test_warmup_cosine_rejects_bad_lengths(warmup: int, period: int):
    with pytest.raises(ValueError, match="warmup_steps < period"):
        warmup_cosine_schedule(0.0, 1.0, 0.0, warmup, period)
