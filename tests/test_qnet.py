"""Shared value-based pieces: Q network shapes and heads, ε schedule and ε-greedy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.agents.epsilon import epsilon_greedy, linear_epsilon
from scalerl.agents.qnet import QNetSpec, QNetwork


@pytest.mark.parametrize(
    ("spec", "shape", "out"),
    [
        (QNetSpec(), (3, 4), (3, 5)),
        (QNetSpec(kind="simbav2", dueling=True, num_atoms=7), (3, 4), (3, 5, 7)),
        (QNetSpec(kind="none", torso="minatar", layer_norm=True), (2, 10, 10, 4), (2, 5)),
    ],
)
def test_qnetwork_output_shapes(spec: QNetSpec, shape: tuple, out: tuple) -> None:
    net = QNetwork(spec, 5)
    obs = jnp.ones(shape)
    assert net.apply(net.init(jax.random.key(0), obs), obs).shape == out


def test_dueling_advantages_are_mean_centred() -> None:
    """Q - mean_a Q equals the advantage stream minus its mean, and mean_a Q = V (eq. 9)."""
    net = QNetwork(QNetSpec(dueling=True, width=16, depth=1), 4)
    obs = jax.random.normal(jax.random.key(1), (6, 3))
    params = net.init(jax.random.key(0), obs)
    q = net.apply(params, obs)
    _, feats = net.apply(params, obs, capture_intermediates=True)
    value = feats["intermediates"]["head"]["value"]["__call__"][0][..., 0]
    np.testing.assert_allclose(q.mean(-1), value, rtol=1e-5, atol=1e-6)


def test_linear_epsilon_hand_values() -> None:
    assert float(linear_epsilon(0, 1.0, 0.1, 100)) == pytest.approx(1.0)
    assert float(linear_epsilon(25, 1.0, 0.1, 100)) == pytest.approx(0.775)
    assert float(linear_epsilon(100, 1.0, 0.1, 100)) == pytest.approx(0.1)
    assert float(linear_epsilon(10**6, 1.0, 0.1, 100)) == pytest.approx(0.1)
    assert float(linear_epsilon(0, 1.0, 0.1, 0)) == pytest.approx(0.1)


def test_epsilon_greedy_rates() -> None:
    q = jnp.tile(jnp.array([0.0, 2.0, 1.0, -1.0]), (20000, 1))
    assert (np.asarray(epsilon_greedy(jax.random.key(0), q, 0.0)) == 1).all()
    actions = np.asarray(epsilon_greedy(jax.random.key(0), q, 0.4))
    # greedy with 0.6 + 0.4/4 = 0.7; every other action 0.1
    np.testing.assert_allclose(
        np.bincount(actions, minlength=4) / 20000, [0.1, 0.7, 0.1, 0.1], atol=0.015
    )


def test_conv_impl_changes_the_code_not_the_network() -> None:
    """xla and patches torsos share parameters and give the same Q values."""
    obs = jax.random.uniform(jax.random.key(2), (3, 10, 10, 4))
    nets = [
        QNetwork(QNetSpec(torso="minatar", kind="mlp", conv_impl=c), 5) for c in ("xla", "patches")
    ]
    params = nets[0].init(jax.random.key(0), obs)
    assert jax.tree.structure(params) == jax.tree.structure(nets[1].init(jax.random.key(0), obs))
    np.testing.assert_allclose(nets[0].apply(params, obs), nets[1].apply(params, obs), atol=1e-5)
