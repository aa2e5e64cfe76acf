"""Plasticity toolkit on conv layers: NaP projection, ReDo recycling and dormant-unit metrics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scalerl.metrics import activity
from scalerl.metrics.health import network_health
from scalerl.networks.cnn import ConvNetwork, TorsoConfig
from scalerl.plasticity import nap
from scalerl.plasticity.redo import Link, conv_links, recycle, sown_features
from scalerl.plasticity.roles import label_params

C = 16  # channels of the MinAtar conv
DEAD = 5  # planted dead channel


# --- NaP ------------------------------------------------------------------------------------------


def test_tensor_norm_per_channel_hand_computed() -> None:
    k = jnp.zeros((2, 2, 1, 3)).at[..., 0].set(1.0).at[0, 0, 0, 2].set(3.0)
    assert float(nap.tensor_norm(k)) == pytest.approx(np.sqrt(4.0 + 9.0))
    np.testing.assert_allclose(nap.tensor_norm(k, per_channel=True), [2.0, 0.0, 3.0])
    ens = jnp.stack([k, 2 * k])  # ensemble axis: one norm per member and channel
    np.testing.assert_allclose(nap.tensor_norm(ens, 1, True), [[2, 0, 3], [4, 0, 6]])
    radii = jnp.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    out = nap.project_to_radii(ens, radii, True, 1, per_channel=True)
    np.testing.assert_allclose(nap.tensor_norm(out, 1, True), [[1, 0, 1], [1, 0, 1]], atol=1e-6)


@pytest.mark.parametrize("per_channel", [False, True])
def test_nap_keeps_conv_kernel_norms_after_optimizer_step(per_channel: bool) -> None:
    # MinAtar torso with LayerNorm: conv_0_pn (3, 3, 4, 16) and dense_pn are hidden kernels.
    frames = jnp.zeros((1, 10, 10, 4), jnp.uint8)
    params = ConvNetwork(TorsoConfig("minatar", layer_norm=True, dense_features=8)).init(
        jax.random.key(0), frames
    )["params"]
    mask = nap.nap_mask(label_params(params))
    assert mask["torso"]["conv_0_pn"]["kernel"] and not mask["torso"]["conv_0_norm"]["scale"]
    kernel = params["torso"]["conv_0_pn"]["kernel"]
    before = nap.tensor_norm(kernel, per_channel=per_channel)
    opt = optax.chain(optax.adam(0.1), nap.nap_transform(None, mask, per_channel=per_channel))
    grads = jax.tree_util.tree_map(lambda p: jnp.ones_like(p) + 0.1 * p, params)
    updates, _ = opt.update(grads, opt.init(params), params)
    stepped = optax.apply_updates(params, updates)
    new_kernel = stepped["torso"]["conv_0_pn"]["kernel"]
    np.testing.assert_allclose(nap.tensor_norm(new_kernel, per_channel=per_channel), before, 1e-5)
    assert float(jnp.max(jnp.abs(new_kernel - kernel))) > 0.01  # the step did move the kernel
    plain = optax.apply_updates(
        params, optax.adam(0.1).update(grads, optax.adam(0.1).init(params))[0]
    )
    moved = nap.tensor_norm(plain["torso"]["conv_0_pn"]["kernel"], per_channel=per_channel)
    assert float(jnp.max(jnp.abs(moved - before))) > 0.01  # without NaP the norm changes


# --- ReDo -----------------------------------------------------------------------------------------


def _minatar(frames: jax.Array):
    """MinAtar torso (conv 3x3 16 on 5x5x2 -> 3x3x16 -> dense 4), only channel DEAD dead."""
    net = ConvNetwork(TorsoConfig("minatar", dense_features=4))
    params = net.init(jax.random.key(0), frames)["params"]
    kernel = jnp.abs(params["torso"]["conv_0"]["kernel"])  # positive => every channel alive
    conv = {"kernel": kernel.at[..., DEAD].set(0.0), "bias": jnp.full((C,), 0.1).at[DEAD].set(-1.0)}
    return net, {"torso": {**params["torso"], "conv_0": conv}}


def test_redo_recycles_planted_dead_conv_channel() -> None:
    frames = jnp.asarray(np.random.default_rng(0).integers(0, 256, (8, 5, 5, 2)), jnp.uint8)
    net, params = _minatar(frames)
    fresh = net.init(jax.random.key(7), frames)["params"]
    _, state = net.apply({"params": params}, frames, mutable=["intermediates"])
    acts = sown_features(state["intermediates"], "torso")
    links = conv_links(params)
    assert links == (
        Link("features_conv_0", (("torso", "conv_0"),), (("torso", "dense"),)),
        Link("features_dense", (("torso", "dense"),), ()),
    )
    opt = optax.adam(1e-3)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    opt_state = opt.update(grads, opt.init(params), params)[1]
    new, new_opt, count = recycle(params, opt_state, fresh, acts, links[:1], tau=0.0)
    assert int(count) == 1
    k_old, k_new = params["torso"]["conv_0"]["kernel"], new["torso"]["conv_0"]["kernel"]
    np.testing.assert_array_equal(k_new[..., DEAD], fresh["torso"]["conv_0"]["kernel"][..., DEAD])
    np.testing.assert_array_equal(np.delete(k_new, DEAD, -1), np.delete(k_old, DEAD, -1))
    assert float(new["torso"]["conv_0"]["bias"][DEAD]) == 0.0
    # dense after flatten of (3, 3, 16): rows DEAD, DEAD + 16, ..., DEAD + 8 * 16 are zeroed.
    rows = DEAD + C * np.arange(9)
    dense, old_dense = new["torso"]["dense"]["kernel"], params["torso"]["dense"]["kernel"]
    assert dense.shape == (9 * C, 4)
    np.testing.assert_array_equal(dense[rows], 0.0)
    np.testing.assert_array_equal(np.delete(dense, rows, 0), np.delete(old_dense, rows, 0))
    mu = new_opt[0].mu["torso"]
    assert float(jnp.abs(mu["dense"]["kernel"][rows]).max()) == 0.0
    assert float(jnp.abs(mu["conv_0"]["kernel"][..., DEAD]).max()) == 0.0
    assert float(jnp.abs(mu["conv_0"]["kernel"][..., DEAD + 1]).min()) > 0.0
    # the recycled channel's outgoing weights are zero, so the output is unchanged
    np.testing.assert_allclose(
        net.apply({"params": new}, frames), net.apply({"params": params}, frames), atol=1e-6
    )


def test_redo_conv_to_conv_zeroes_input_channel_of_next_kernel() -> None:
    rng = np.random.default_rng(1)
    params = {
        "torso": {
            "a": {"kernel": jnp.asarray(rng.normal(size=(3, 3, 2, 4)), jnp.float32)},
            "b": {"kernel": jnp.asarray(rng.normal(size=(2, 2, 4, 5)), jnp.float32)},
        }
    }
    h = jnp.asarray(rng.uniform(0.5, 1.0, size=(6, 3, 3, 4)), jnp.float32).at[..., 1].set(0.0)
    link = Link("h", (("torso", "a"),), (("torso", "b"),))
    fresh = jax.tree_util.tree_map(jnp.zeros_like, params)
    opt_state = optax.sgd(0.1).init(params)
    new, _, count = recycle(params, opt_state, fresh, {"h": h}, (link,), tau=0.0)
    assert int(count) == 1
    np.testing.assert_array_equal(new["torso"]["a"]["kernel"][..., 1], 0.0)  # fresh = zeros
    np.testing.assert_array_equal(new["torso"]["b"]["kernel"][:, :, 1, :], 0.0)
    kept = np.delete(new["torso"]["b"]["kernel"], 1, 2)
    np.testing.assert_array_equal(kept, np.delete(params["torso"]["b"]["kernel"], 1, 2))


def test_redo_conv_ensemble_members_recycled_independently() -> None:
    # two members (batch_dims=1): conv (3,3,2,4) -> flatten of a (2,2,4) map -> dense (16, 3)
    rng = np.random.default_rng(3)
    params = {
        "torso": {
            "conv_0": {"kernel": jnp.asarray(rng.normal(size=(2, 3, 3, 2, 4)), jnp.float32)},
            "dense": {"kernel": jnp.asarray(rng.normal(size=(2, 16, 3)), jnp.float32)},
        }
    }
    h = jnp.asarray(rng.uniform(0.5, 1.0, size=(2, 5, 2, 2, 4)), jnp.float32)
    h = h.at[0, ..., 1].set(0.0).at[1, ..., 2].set(0.0)  # member 0: channel 1; member 1: 2
    link = Link("h", (("torso", "conv_0"),), (("torso", "dense"),))
    fresh = jax.tree_util.tree_map(jnp.zeros_like, params)
    opt_state = optax.sgd(0.1).init(params)
    new, _, count = recycle(params, opt_state, fresh, {"h": h}, (link,), 0.0, batch_dims=1)
    assert int(count) == 2
    conv, dense = new["torso"]["conv_0"]["kernel"], new["torso"]["dense"]["kernel"]
    for member, channel in ((0, 1), (1, 2)):
        np.testing.assert_array_equal(conv[member, ..., channel], 0.0)
        rows = channel + 4 * np.arange(4)
        np.testing.assert_array_equal(dense[member, rows], 0.0)
        other = 1 - member  # the other member's same channel and rows are untouched
        np.testing.assert_array_equal(
            dense[other, rows], params["torso"]["dense"]["kernel"][other, rows]
        )
        np.testing.assert_array_equal(
            conv[other, ..., channel], params["torso"]["conv_0"]["kernel"][other, ..., channel]
        )


def test_conv_links_of_nature_and_impala_torsos() -> None:
    def shapes(cfg: TorsoConfig, frame: tuple[int, ...]):
        x = jnp.zeros((1, *frame), jnp.uint8)
        return jax.eval_shape(ConvNetwork(cfg).init, jax.random.key(0), x)["params"]

    nature = conv_links(shapes(TorsoConfig("nature", trunk="mlp", trunk_width=8), (84, 84, 4)))
    assert [(link.activation, link.outgoing) for link in nature] == [
        ("features_conv_0", (("torso", "conv_1"),)),
        ("features_conv_1", (("torso", "conv_2"),)),
        ("features_conv_2", (("encoder", "dense_0"),)),
    ]
    impala = conv_links(shapes(TorsoConfig("impala", layer_norm=True), (16, 16, 1)))
    assert len(impala) == 7 and impala[0] == Link(
        "features_block_s0_b0", (("torso", "s0_b0_conv_0_pn"),), (("torso", "s0_b0_conv_1_pn"),)
    )
    with pytest.raises(ValueError, match="simbav2"):
        conv_links(shapes(TorsoConfig("minatar", trunk="simbav2", trunk_width=8), (5, 5, 1)))


# --- metrics --------------------------------------------------------------------------------------


def test_dormant_ratio_of_conv_layer_with_dead_channel_is_one_over_c() -> None:
    h = jnp.asarray(np.random.default_rng(2).uniform(0.1, 1.0, (4, 6, 6, C)), jnp.float32)
    h = h.at[..., DEAD].set(0.0)
    assert float(activity.dormant_ratio([h], 0.0)) == pytest.approx(1 / C)
    assert float(activity.dead_fraction([h])) == pytest.approx(1 / C)
    scores = activity.neuron_scores(h)  # mean over batch AND spatial positions, per channel
    manual = jnp.mean(jnp.abs(h), axis=(0, 1, 2))
    np.testing.assert_allclose(scores, manual / jnp.mean(manual), rtol=1e-6)


def test_network_health_on_conv_features() -> None:
    h = jnp.ones((4, 3, 3, C)).at[..., DEAD].set(0.0)
    features = {"torso/features_conv_0": h, "torso/features_dense": jnp.ones((4, 8))}
    params = {"w": jnp.ones((2, 2))}
    out = network_health(params, params, params, features, 1e-3, taus=(0.0,))
    assert float(out["dormant_0/torso/features_conv_0"]) == pytest.approx(1 / C)
    assert float(out["dormant_0"]) == pytest.approx(1 / (C + 8))
    # feature norm of a conv map: mean over batch and positions of the channel-vector norm
    assert float(out["feature_norm/torso/features_conv_0"]) == pytest.approx(np.sqrt(C - 1))
