"""Neural Redshift simplicity score (Teney et al. 2024): spectrum, measure, networks, CLI."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.cli import main
from scalerl.errors import ConfigError
from scalerl.science.architectures import ScalarNet, init_params, uniform_dense
from scalerl.science.simplicity import (
    SimplicityConfig,
    grid_points,
    parse_depths,
    plane_inputs,
    score,
    validate,
)
from scalerl.science.spectrum import complexity, max_frequency, radial_spectrum

N = 256


def axes(n: int = N, low: float = -100.0, high: float = 100.0) -> tuple[jax.Array, jax.Array]:
    points = grid_points(n, low, high)
    return points[:, 0].reshape(n, n), points[:, 1].reshape(n, n)


def periodic(cycles: int, n: int = N) -> jax.Array:
    """sin with exactly `cycles` periods along the first axis of the grid."""
    x, _ = axes(n, 0.0, 1.0)
    return jnp.sin(2 * jnp.pi * cycles * x)


def test_max_frequency_and_sinusoid_complexity_by_hand():
    assert max_frequency(256) == 181 and max_frequency(16) == 11  # round(√2 · n/2)
    p = radial_spectrum(periodic(4))
    assert p.shape == (182,) and float(p[4]) == pytest.approx(1.0, abs=1e-5)
    assert float(complexity(periodic(4))) == pytest.approx(4 / 181, rel=1e-4)
    assert float(complexity(periodic(4).T)) == pytest.approx(4 / 181, rel=1e-4)  # symmetric


def test_known_ordering_lower_frequency_scores_higher():
    c = [float(complexity(periodic(k))) for k in (1, 3, 10, 40)]
    np.testing.assert_allclose(c, np.array([1, 3, 10, 40]) / 181, rtol=1e-3)
    x, y = axes()
    rough = jnp.sin(x) + 0.1 * jnp.sin(7 * y)  # adding a high-frequency term raises complexity
    assert float(complexity(rough)) > float(complexity(jnp.sin(x)))


def test_linear_function_scores_higher_than_sin_50x():
    x, y = axes()
    linear, wiggly = complexity(2 * x - y), complexity(jnp.sin(50 * x))
    assert 1 / float(linear) > 1 / float(wiggly)
    assert float(linear) == pytest.approx(0.145, abs=0.01)  # ~1/k spectrum of the ramp


def test_invariant_to_output_scale_and_offset():
    x, y = axes()
    f = jnp.tanh(x / 30) * jnp.cos(y / 10)
    assert float(complexity(7.0 * f + 3.0)) == pytest.approx(float(complexity(f)), rel=1e-5)
    assert float(complexity(jnp.ones((N, N)))) == 0.0  # constant: no spectrum, no NaN


def test_score_is_mean_inverse_complexity():
    est, low, high = score(np.array([0.25, 0.5]), reps=200)
    assert est == pytest.approx(3.0) and 2.0 <= low <= est <= high <= 4.0


def test_uniform_init_redraws_dense_only():
    net = ScalarNet("simba", 8, 1)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
    new = uniform_dense(params, jax.random.PRNGKey(1), 0.5)["params"]["encoder"]
    kernel = np.asarray(new["embedder"]["kernel"])
    assert np.abs(kernel).max() <= 0.5 and np.abs(kernel).max() > 0.3
    np.testing.assert_array_equal(new["final_norm"]["scale"], 1.0)  # LayerNorm kept
    assert np.abs(np.asarray(new["block_0"]["Dense_0"]["bias"])).max() > 0


def test_simbav2_function_does_not_depend_on_amplitude():
    """Projection onto the sphere removes the scale of uniform weights (SimbaV2 §4.2)."""
    net, x = ScalarNet("simbav2", 8, 1), grid_points(4, -3.0, 3.0)
    key = jax.random.PRNGKey(0)
    out = [net.apply(init_params(net, key, 2, "uniform", a), x) for a in (1.0, 3.0)]
    np.testing.assert_allclose(out[0], out[1], rtol=1e-4, atol=1e-6)
    mlp = ScalarNet("mlp", 8, 1)
    small, big = (mlp.apply(init_params(mlp, key, 2, "uniform", a), x) for a in (1.0, 3.0))
    assert not np.allclose(small, big)  # without projection the amplitude matters


def test_plane_inputs_orthonormal_and_network_output_scalar():
    points = grid_points(4, -1.0, 1.0)
    inputs = plane_inputs(points, jax.random.PRNGKey(0), 5)
    np.testing.assert_allclose(jnp.linalg.norm(inputs, axis=1), jnp.linalg.norm(points, axis=1),
                               rtol=1e-5)  # fmt: skip
    net = ScalarNet("msr", 8, 2)
    params = init_params(net, jax.random.PRNGKey(0), 5, "default", 1.0)
    assert net.apply(params, inputs).shape == (16,)


def test_bad_settings_raise_config_error():
    with pytest.raises(ConfigError, match="unknown architecture"):
        validate(SimplicityConfig(archs="mlp,transformer"))
    with pytest.raises(ConfigError, match="even"):
        validate(SimplicityConfig(grid=15))
    assert parse_depths("1, 2,4") == (1, 2, 4)
    with pytest.raises(ConfigError, match="integers"):
        parse_depths("two")


def test_cli_prints_table_and_writes_plot(tmp_path, capsys):
    args = ["simplicity", "--archs", "mlp", "--width", "8", "--depth", "1,2"]
    args += ["--grid", "16", "--inits", "2", "--out-dir", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| mlp | 1 |" in out and "| mlp | 2 |" in out
    assert {p.name for p in tmp_path.iterdir()} == {"results.json", "table.md", "simplicity.png"}
    assert main(["simplicity", "--archs", "cnn"]) == 2
