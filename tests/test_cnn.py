"""Conv torsos: output shapes, parameter counts by hand, input scaling, roles and sown features."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.networks.cnn import (
    ConvNetwork,
    ConvTorso,
    PatchConv,
    TorsoConfig,
    resolve_conv_impl,
    scale_frames,
)
from scalerl.plasticity.roles import label_params


def _conv(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    return k * k * c_in * c_out + (c_out if bias else 0)


def _shapes(cfg: TorsoConfig, frame: tuple[int, ...]):
    """Parameter shapes without running the network (eval_shape)."""
    net = ConvNetwork(cfg)
    x = jnp.zeros((1, *frame), jnp.uint8)
    return jax.eval_shape(net.init, jax.random.key(0), x)["params"]


def _count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree))


def test_nature_dqn_parameter_count_by_hand() -> None:
    # 84 -(8/4)-> 20 -(4/2)-> 9 -(3/1)-> 7; flatten 7*7*64 = 3136 -> 512.
    # Mnih et al. 2015 with 18 actions: 1,684,128 + 512*18 + 18 = 1,693,362.
    expected = _conv(8, 4, 32) + _conv(4, 32, 64) + _conv(3, 64, 64) + 3136 * 512 + 512
    assert expected == 1_684_128
    assert _count(_shapes(TorsoConfig("nature"), (84, 84, 4))) == expected


def test_impala_parameter_count_by_hand() -> None:
    # Each stage: conv c_in->c, max-pool /2 (SAME: 84 -> 42 -> 21 -> 11), 2 blocks of 2 convs c->c.
    stages = sum(_conv(3, i, c) + 4 * _conv(3, c, c) for i, c in ((4, 16), (16, 32), (32, 32)))
    expected = stages + 11 * 11 * 32 * 256 + 256
    assert expected == 1_089_232
    assert _count(_shapes(TorsoConfig("impala"), (84, 84, 4))) == expected


def test_minatar_parameter_count_by_hand() -> None:
    # 10x10x4 -> VALID 3x3 -> 8x8x16 = 1024 -> 128 (Young & Tian 2019).
    expected = _conv(3, 4, 16) + 1024 * 128 + 128
    assert expected == 131_792
    assert _count(_shapes(TorsoConfig("minatar"), (10, 10, 4))) == expected


def test_layer_norm_drops_biases_adds_norms_and_labels_hidden_kernels() -> None:
    params = _shapes(TorsoConfig("minatar", layer_norm=True), (10, 10, 4))
    torso = params["torso"]
    assert set(torso) == {"conv_0_pn", "conv_0_norm", "dense_pn", "dense_norm"}
    assert "bias" not in torso["conv_0_pn"] and torso["conv_0_pn"]["kernel"].shape == (3, 3, 4, 16)
    labels = label_params(params)["torso"]
    assert labels["conv_0_pn"]["kernel"] == "hidden_kernel"
    assert labels["dense_pn"]["kernel"] == "hidden_kernel"
    assert labels["conv_0_norm"] == {"scale": "norm_scale", "bias": "norm_offset"}
    assert label_params(_shapes(TorsoConfig("minatar"), (10, 10, 4)))["torso"]["conv_0"] == {
        "kernel": "kernel",
        "bias": "bias",
    }


def test_trunk_replaces_torso_dense() -> None:
    params = _shapes(
        TorsoConfig("minatar", trunk="mlp", trunk_width=32, trunk_depth=2), (10, 10, 4)
    )
    assert set(params) == {"torso", "encoder"} and "dense" not in params["torso"]
    assert params["encoder"]["dense_0"]["kernel"].shape == (1024, 32)


@pytest.mark.parametrize(
    ("kind", "frame", "features"), [("nature", (84, 84, 4), 512), ("impala", (64, 64, 3), 256)]
)
def test_output_shapes(kind: str, frame: tuple[int, ...], features: int) -> None:
    net, x = ConvNetwork(TorsoConfig(kind)), jnp.zeros((2, *frame), jnp.uint8)
    variables = jax.eval_shape(net.init, jax.random.key(0), x)
    assert jax.eval_shape(net.apply, variables, x).shape == (2, features)


def test_minatar_forward_sown_features_and_uint8_scaling() -> None:
    trunk = "msr"
    cfg = TorsoConfig("minatar", layer_norm=True, trunk=trunk, trunk_width=16)
    net = ConvNetwork(cfg)
    frames = jax.random.randint(jax.random.key(1), (3, 10, 10, 4), 0, 256).astype(jnp.uint8)
    variables = jax.jit(net.init)(jax.random.key(0), frames)
    apply = jax.jit(net.apply, static_argnames="mutable")
    out, state = apply(variables, frames, mutable=("intermediates",))
    assert out.shape == (3, 128 if trunk == "none" else 16)
    sown = state["intermediates"]["torso"]
    assert sown["features_conv_0"][0].shape == (3, 8, 8, 16)
    assert float(jnp.min(sown["features_conv_0"][0])) >= 0.0  # post-ReLU
    as_float, _ = apply(variables, frames.astype(jnp.float32) / 255.0, mutable=("intermediates",))
    np.testing.assert_allclose(out, as_float, rtol=1e-5, atol=1e-5)


def test_scale_frames_and_bad_shape() -> None:
    np.testing.assert_allclose(scale_frames(jnp.array([0, 51, 255], jnp.uint8)), [0.0, 0.2, 1.0])
    assert scale_frames(jnp.array([0.5])).dtype == jnp.float32
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        ConvTorso("minatar").init(jax.random.key(0), jnp.zeros((10, 10, 4)))


def test_vmap_over_seeds_traces() -> None:
    net = ConvNetwork(TorsoConfig("minatar", layer_norm=True, trunk="mlp", trunk_width=8))
    frames = jnp.zeros((5, 10, 10, 4), jnp.uint8)
    keys = jax.random.split(jax.random.key(0), 3)
    params = jax.eval_shape(jax.vmap(net.init, in_axes=(0, None)), keys, frames)
    assert params["params"]["torso"]["conv_0_pn"]["kernel"].shape == (3, 3, 3, 4, 16)
    out = jax.eval_shape(jax.vmap(net.apply, in_axes=(0, None)), params, frames)
    assert out.shape == (3, 5, 8)


# --- PatchConv (patches + matmul) against nn.Conv, and the torso's conv_impl option ---


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    [
        (3, 1, "SAME"),  # IMPALA's convs
        (3, 2, "VALID"),
        (4, 2, "SAME"),  # asymmetric padding (1, 2) rows on a 13 x 11 input
        (8, 4, "VALID"),  # Nature's first conv
    ],
)
def test_patch_conv_matches_nn_conv_outputs_and_gradients(
    kernel: int, stride: int, padding: str
) -> None:
    args = (5, (kernel, kernel), (stride, stride), padding)
    ref, patch = nn.Conv(*args), PatchConv(*args)
    kk, kb, kx = jax.random.split(jax.random.key(0), 3)
    params = {
        "params": {
            "kernel": jax.random.normal(kk, (kernel, kernel, 3, 5)),
            "bias": jax.random.normal(kb, (5,)),
        }
    }
    x = jax.random.normal(kx, (2, 13, 11, 3))

    @jax.jit
    def outputs_and_grads(params, x):
        def both(module):
            loss = lambda p, x: jnp.sum(jnp.sin(module.apply(p, x)))  # noqa: E731
            return module.apply(params, x), jax.grad(loss, argnums=(0, 1))(params, x)

        return both(ref), both(patch)

    want, got = outputs_and_grads(params, x)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)
    shapes = jax.eval_shape(patch.init, jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, shapes) == jax.tree.map(jnp.shape, params)


def test_patch_conv_same_init_dtype_and_no_bias() -> None:
    x = jnp.ones((1, 6, 6, 2))
    init = nn.initializers.orthogonal(2.0)
    ref = nn.Conv(4, (3, 3), use_bias=False, kernel_init=init, dtype=jnp.bfloat16)
    patch = PatchConv(4, (3, 3), use_bias=False, kernel_init=init, dtype=jnp.bfloat16)
    p_ref, p_patch = ref.init(jax.random.key(3), x), patch.init(jax.random.key(3), x)
    np.testing.assert_array_equal(p_patch["params"]["kernel"], p_ref["params"]["kernel"])
    assert set(p_patch["params"]) == {"kernel"}
    assert patch.apply(p_ref, x).dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="VALID or SAME"):
        PatchConv(4, (3, 3), padding="CIRCULAR").init(jax.random.key(0), x)


def test_hand_computed_patch_conv() -> None:
    # 1x3x3x1 input 0..8, 2x2 kernel of ones, stride 1 VALID: sums of each 2x2 window.
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    params = {"params": {"kernel": jnp.ones((2, 2, 1, 1)), "bias": jnp.array([0.5])}}
    out = PatchConv(1, (2, 2)).apply(params, x)[0, :, :, 0]
    np.testing.assert_allclose(out, [[8.5, 12.5], [20.5, 24.5]])


def test_resolve_conv_impl() -> None:
    assert resolve_conv_impl("auto", "nature", backend="cpu") == "patches"
    assert resolve_conv_impl("auto", "impala", backend="gpu") == "xla"
    assert resolve_conv_impl("xla", "minatar", backend="cpu") == "xla"
    assert resolve_conv_impl("patches", "minatar", backend="tpu") == "patches"
    with pytest.raises(ValueError, match="conv_impl"):
        resolve_conv_impl("fft", "nature")


@pytest.mark.parametrize(
    ("kind", "frame", "layer_norm"),
    [
        pytest.param("nature", (36, 36, 2), False, marks=pytest.mark.slow),
        pytest.param("impala", (8, 8, 1), False, marks=pytest.mark.slow),
        ("minatar", (10, 10, 4), True),
    ],
)
def test_torso_impls_share_params_and_outputs(kind: str, frame: tuple, layer_norm: bool) -> None:
    frames = jax.random.randint(jax.random.key(1), (2, *frame), 0, 256).astype(jnp.uint8)
    xla, patches = (
        ConvNetwork(TorsoConfig(kind, layer_norm, dense_features=8, conv_impl=impl))
        for impl in ("xla", "patches")
    )
    params = jax.jit(xla.init)(jax.random.key(0), frames)
    shapes = jax.eval_shape(patches.init, jax.random.key(0), frames)  # values: test above
    assert jax.tree.map(jnp.shape, shapes) == jax.tree.map(jnp.shape, params)
    out_xla, out_patches = jax.jit(lambda p, x: (xla.apply(p, x), patches.apply(p, x)))(
        params, frames
    )
    np.testing.assert_allclose(out_patches, out_xla, atol=1e-5, rtol=1e-5)
    assert float(jnp.std(out_xla)) > 0.0


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="auto means patches only on CPU")
def test_auto_traces_no_xla_conv_on_cpu() -> None:
    frames = jnp.zeros((2, 10, 10, 4), jnp.uint8)

    def traced(impl: str) -> str:
        net = ConvNetwork(TorsoConfig("minatar", dense_features=4, conv_impl=impl))
        params = jax.eval_shape(net.init, jax.random.key(0), frames)
        return str(jax.make_jaxpr(jax.grad(lambda p: net.apply(p, frames).sum()))(params))

    assert "conv_general_dilated" not in traced("auto")
    assert "conv_general_dilated" in traced("xla")
