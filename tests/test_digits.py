"""Digits plasticity benchmark (spec plasticity.md §6): data, variants, protocols A and B."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.cli import main as cli_main
from scalerl.errors import ConfigError
from scalerl.plasticity.digits import (
    DigitsConfig,
    format_table,
    main,
    run_benchmark,
    summarise,
)
from scalerl.plasticity.digits_data import (
    flip_labels,
    load_digits_data,
    protocol_b_split,
    random_labels,
    standardise,
)
from scalerl.plasticity.digits_train import (
    LN,
    HareTortoise,
    NaP,
    Reset,
    ShrinkPerturb,
    hidden_kernels,
    init_state,
    make_learner,
    make_variant,
    task_end,
    task_start,
    train_steps,
)

X, Y = load_digits_data()


def norms(params) -> np.ndarray:
    return np.array([float(jnp.linalg.norm(w)) for w in hidden_kernels(params)])


def train(variant, steps: int, width: int = 32, seed: int = 0):
    """(initial state, state after `steps` steps on random labels) for a small network."""
    learner = make_learner(variant, width, 1e-3, 64)
    k_init, k_labels, k_steps = jax.random.split(jax.random.PRNGKey(seed), 3)
    state0 = init_state(learner, k_init)
    y = random_labels(k_labels, 1, X.shape[0])[0]
    run = jax.jit(lambda s, x, y, k: train_steps(learner, s, x, y, k, steps))
    return learner, state0, run(state0, X, y, k_steps)


# --- data -----------------------------------------------------------------------------------


def test_data_shape_and_standardised_features():
    assert X.shape == (1797, 64) and X.dtype == jnp.float32
    assert Y.shape == (1797,) and set(np.unique(Y)) == set(range(10))
    x = np.asarray(X, np.float64)
    std = x.std(axis=0)
    live = std > 0
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(std[live], 1.0, atol=1e-5)
    assert 0 < (~live).sum() < 64  # some pixels are blank in every image; they are zeros
    assert np.all(x[:, ~live] == 0.0)


def test_standardise_guards_zero_variance():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    np.testing.assert_allclose(standardise(x), [[-1.0, 0.0], [1.0, 0.0]])


def test_random_labels_and_flips():
    labels = random_labels(jax.random.PRNGKey(0), 3, 1797)
    assert labels.shape == (3, 1797) and int(labels.min()) == 0 and int(labels.max()) == 9
    y = jnp.arange(120) % 10
    flipped = flip_labels(jax.random.PRNGKey(1), y, 0.5)
    assert int(jnp.sum(flipped != y)) == 60
    assert int(flipped.min()) >= 0 and int(flipped.max()) <= 9


def test_protocol_b_split_sizes():
    data = protocol_b_split(jax.random.PRNGKey(0))
    assert data.x_phase1.shape == (120, 64) and data.x_train.shape == (1200, 64)
    assert data.x_test.shape == (597, 64) and data.y_test.shape == (597,)
    assert int(jnp.sum(data.y_phase1 != data.y_train[:120])) == 60


# --- variants -------------------------------------------------------------------------------


def test_nap_keeps_hidden_kernel_norms():
    learner, state0, state = train(NaP(), steps=300)
    assert len(hidden_kernels(state.params)) == 2
    np.testing.assert_allclose(norms(state.params), norms(state0.params), rtol=1e-5)
    moved = [float(jnp.linalg.norm(a - b)) for a, b in zip(
        hidden_kernels(state.params), hidden_kernels(state0.params), strict=True)]  # fmt: skip
    assert min(moved) > 1e-2  # the kernels did train; only their norm is pinned
    _, ln0, ln = train(LN(), steps=300)
    assert np.all(norms(ln.params) > norms(ln0.params) * 1.001)  # without projection they grow


def test_nap_network_layout():
    learner = make_learner(NaP(), 16, 1e-3, 8)
    params = learner.init_params(jax.random.PRNGKey(0))["params"]
    assert set(params) == {"dense_0_pn", "dense_1_pn", "layer_norm_0", "layer_norm_1", "head"}
    assert set(params["dense_0_pn"]) == {"kernel"}  # no bias before the LayerNorm (§1.2)


def test_hare_reset_on_global_step():
    variant = HareTortoise(momentum=0.5, reset_every=3)
    _, _, state = train(variant, steps=3)
    jax.tree.map(np.testing.assert_array_equal, state.params, state.tortoise)
    _, _, state = train(variant, steps=4)
    assert not np.array_equal(
        state.params["params"]["head"]["kernel"], state.tortoise["params"]["head"]["kernel"]
    )


def test_task_boundaries():
    key = jax.random.PRNGKey(3)
    learner, _, state = train(Reset(), steps=20)
    fresh = task_start(learner, state, key)
    jax.tree.map(np.testing.assert_array_equal, fresh.params, learner.init_params(key))
    learner, _, state = train(ShrinkPerturb(shrink=0.4, perturb_scale=0.1), steps=20)
    mixed = task_end(learner, state, key)
    expect = jax.tree.map(lambda p, f: 0.4 * p + 0.1 * f, state.params, learner.init_params(key))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), mixed.params, expect)


def test_unknown_variant():
    with pytest.raises(ValueError, match="unknown variant"):
        make_variant("nope")
    with pytest.raises(ConfigError, match="unknown variants"):
        run_benchmark(["cold"], protocol="A")


def test_unknown_variant_on_the_cli_is_one_line_exit_2(capsys):
    assert cli_main(["plasticity", "--variants", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown variants ['nope']" in err and "Traceback" not in err


# --- protocols ------------------------------------------------------------------------------


def test_protocol_a_fast(tmp_path):
    results = run_benchmark(["base"], seeds=1, num_tasks=2, out_dir=tmp_path)
    (row,) = results.rows
    assert set(row.metrics) == {
        "eval/accuracy",
        "health/dead_fraction",
        "health/dormant_ratio",
        "health/hidden_kernel_norm",
        "health/elr",
    }
    assert all(v.shape == (1, 2) for v in row.metrics.values())
    assert row.metrics["eval/accuracy"][0, 0] > 0.3  # chance is 0.1
    summary = summarise(row)
    assert summary["norm_first"] > 16 * np.sqrt(2)  # He init norm is ≈ 22.6 at width 128
    assert "| base |" in format_table(results)
    assert {p.name for p in tmp_path.iterdir()} == {
        "results.json",
        "table.md",
        "accuracy_per_task.png",
    }


def test_protocol_b_smoke(capsys):
    cfg = DigitsConfig(
        protocol="B", variants=("cold", "warm", "hare_tortoise"), seeds=2, steps=300, width=32
    )
    results = main(cfg)
    assert "| hare_tortoise |" in capsys.readouterr().out
    for row in results.rows:
        acc = row.metrics["eval/test_accuracy"]
        assert acc.shape == (2,) and np.all((acc >= 0) & (acc <= 1))
        assert acc.mean() > 0.2, row.name  # chance is 0.1


@pytest.mark.slow
def test_protocol_a_ordering_at_spec_settings():
    """Spec §6.1 CI assertions: base collapses, NaP stays flat, LN in between (3 seeds, K=40)."""
    results = run_benchmark(["base", "ln", "nap"], seeds=3, num_tasks=40, width=128)
    s = {row.name: summarise(row) for row in results.rows}
    assert s["base"]["acc_last"] < s["base"]["acc_first"] - 0.3
    assert s["nap"]["acc_last"] > s["nap"]["acc_first"] - 0.05
    assert s["base"]["acc_last"] < s["ln"]["acc_last"] < s["nap"]["acc_last"]
    assert s["nap"]["norm_last"] == pytest.approx(s["nap"]["norm_first"], rel=1e-5)
