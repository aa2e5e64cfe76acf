"""Hare & Tortoise (plasticity spec §2): EMA (eq. 6), resets (eq. 7), config validation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalerl.plasticity.hare_tortoise import HareTortoise, hare_reset, reset_due, tortoise_update


def _tree(value: float) -> dict:
    return {"dense": {"kernel": jnp.full((3, 2), value), "bias": jnp.array([value, -value])}}


def _random_tree(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "dense": {
            "kernel": jnp.asarray(rng.standard_normal((3, 2)), jnp.float32),
            "bias": jnp.asarray(rng.standard_normal(2), jnp.float32),
        }
    }


def _assert_trees_equal(a, b) -> None:
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_tortoise_update_hand_computed():
    out = tortoise_update({"w": jnp.array([1.0, 10.0])}, {"w": jnp.array([3.0, 0.0])}, 0.9)
    np.testing.assert_allclose(out["w"], [1.2, 9.0], rtol=1e-6)


def test_momentum_zero_copies_hare():
    hare, tortoise = _random_tree(0), _random_tree(1)
    _assert_trees_equal(tortoise_update(tortoise, hare, 0.0), hare)


def test_momentum_one_keeps_initial_tortoise():
    initial = _random_tree(0)
    tortoise = initial
    for seed in range(1, 6):
        tortoise = tortoise_update(tortoise, _random_tree(seed), 1.0)
    _assert_trees_equal(tortoise, initial)


def test_non_float_leaves_follow_hare():
    out = tortoise_update({"n": jnp.array(1, jnp.int32)}, {"n": jnp.array(7, jnp.int32)}, 0.5)
    assert int(out["n"]) == 7 and out["n"].dtype == jnp.int32


@pytest.mark.parametrize(
    ("every", "expected"),
    [(3, [0, 0, 1, 0, 0, 1, 0, 0, 1]), (1, [1] * 9), (0, [0] * 9), (-2, [0] * 9)],
)
def test_reset_due_table(every: int, expected: list[int]):
    assert [bool(reset_due(step, every)) for step in range(9)] == [bool(e) for e in expected]


def test_reset_makes_hare_equal_tortoise_bitwise():
    hare, tortoise = _random_tree(0), _random_tree(1)
    _assert_trees_equal(hare_reset(hare, tortoise, step=4, every=5), tortoise)
    _assert_trees_equal(hare_reset(hare, tortoise, step=3, every=5), hare)
    _assert_trees_equal(hare_reset(hare, tortoise, step=4, every=0), hare)


def test_resets_fire_at_global_steps_inside_scan():
    """Fake optimiser: hare += 1 per step; the reset pattern must follow the global step."""
    ht = HareTortoise(momentum=0.5, reset_every=4)

    def body(carry, _):
        hare, tortoise, step = carry
        hare = jax.tree_util.tree_map(lambda x: x + 1.0, hare)
        hare, tortoise = ht.after_update(hare, tortoise, step)
        equal = jnp.all(hare["dense"]["kernel"] == tortoise["dense"]["kernel"])
        return (hare, tortoise, step + 1), (equal, hare["dense"]["kernel"][0, 0])

    init = (_tree(0.0), _tree(0.0), jnp.array(0, jnp.int32))
    _, (equal, hare_values) = jax.jit(lambda c: jax.lax.scan(body, c, None, length=10))(init)
    np.testing.assert_array_equal(equal, [0, 0, 0, 1, 0, 0, 0, 1, 0, 0])
    # By hand: the tortoise is 0.5, 1.25, 2.125, 3.0625 after steps 0-3, so the reset after
    # step 3 sets the hare to 3.0625; the tortoise is 6.125 after step 7 (second reset).
    expected = [1.0, 2.0, 3.0, 3.0625, 4.0625, 5.0625, 6.0625, 6.125, 7.125, 8.125]
    np.testing.assert_allclose(hare_values, expected, rtol=1e-7)


def test_after_update_hand_computed_and_eval_params():
    ht = HareTortoise(momentum=0.75, reset_every=2)
    hare, tortoise = ht.after_update({"w": jnp.array(4.0)}, {"w": jnp.array(0.0)}, 0)
    assert float(tortoise["w"]) == pytest.approx(1.0) and float(hare["w"]) == 4.0
    hare, tortoise = ht.after_update(hare, tortoise, 1)
    assert float(tortoise["w"]) == pytest.approx(1.75) and float(hare["w"]) == pytest.approx(1.75)
    assert ht.eval_params("H", "T") == "T"
    assert HareTortoise(eval_net="hare").eval_params("H", "T") == "H"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"momentum": 1.5}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"momentum": float("nan")}, "momentum"),
        ({"momentum": True}, "momentum"),
        ({"reset_every": 2.5}, "reset_every"),
        ({"eval_net": "ema"}, "eval_net"),
    ],
)
def test_config_validation(kwargs: dict, match: str):
    with pytest.raises(ValueError, match=match):
        HareTortoise(**kwargs)


def test_config_defaults():
    ht = HareTortoise()
    assert (ht.momentum, ht.eval_net) == (0.999, "tortoise") and ht.reset_every > 0
