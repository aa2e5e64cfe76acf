"""PSGD-Kron (spec plasticity.md §3.3): state layout, hand-checked first step, preconditioning,
weight decay, the update schedule, and faster convergence than SGD on an ill-conditioned problem.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from scalerl.plasticity.kron import kron, precond_update_prob_schedule, scale_by_kron
from scalerl.seed_axis import vmap_seeds


def test_state_shapes_and_dtypes():
    params = {
        "w": jnp.ones((3, 4)),
        "b": jnp.ones((4,)),
        "s": jnp.ones(()),
        "ens_w": jnp.ones((2, 3, 5)),
        "ens_b": jnp.ones((2, 5)),
        "h": jnp.ones((3, 4), jnp.bfloat16),
    }
    state = scale_by_kron(max_size_triangular=4).init(params)
    shapes = jax.tree_util.tree_map(lambda x: x.shape, state.qs)
    assert shapes == {
        "w": ((3, 3), (4, 4)),
        "b": ((4,),),  # < 2 dims: diagonal
        "s": ((1,),),
        "ens_w": ((2, 3, 3), (2, 5)),  # batched per member; 5 > max_size_triangular: diagonal
        "ens_b": ((2, 2), (5,)),  # a 2-D leaf is one tensor
        "h": ((3, 3), (4, 4)),
    }
    assert all(q.dtype == jnp.float32 for q in jax.tree_util.tree_leaves(state.qs))
    np.testing.assert_array_equal(state.qs["w"][0], np.eye(3))
    np.testing.assert_array_equal(state.qs["ens_w"][1], np.ones((2, 5)))
    assert state.mu["h"].dtype == jnp.bfloat16 and state.count.dtype == jnp.int32
    assert int(state.count) == 0


def test_update_probability_schedule():
    p = precond_update_prob_schedule()
    np.testing.assert_allclose(p(0), 1.0)
    np.testing.assert_allclose(p(200), 1.0)
    np.testing.assert_allclose(p(1200), np.exp(-1.0), rtol=1e-6)
    np.testing.assert_allclose(p(100_000), 0.03)


def test_first_update_identity_preconditioner_hand_check():
    """Q = I (no update): u = −lr · clip_[−1,1](M · min(1, √N/‖M‖)), M = (1 − b1) G."""
    tx = kron(0.1, precond_update_prob=0.0)
    params = {"w": jnp.zeros((2, 2))}
    grads = {"w": jnp.array([[20.0, -5.0], [0.3, 1.0]])}
    u, state = jax.jit(tx.update)(grads, tx.init(params), params)
    # M = [[2, -0.5], [0.03, 0.1]], ‖M‖ = √4.2609 = 2.0641948 > √4: scale 0.9689008;
    # 2·0.9689 = 1.9378 is clipped to 1.
    np.testing.assert_allclose(
        u["w"], [[-0.1, 0.04844504], [-0.0029067, -0.00968901]], rtol=1e-5, atol=1e-8
    )
    np.testing.assert_allclose(state[0].mu["w"], [[2.0, -0.5], [0.03, 0.1]], rtol=1e-6)
    np.testing.assert_array_equal(state[0].qs["w"][0], np.eye(2))
    assert int(state[0].count) == 1


def random_triu(key, n):
    return jnp.triu(jax.random.normal(key, (n, n))) + 2.0 * jnp.eye(n)


def test_preconditioned_direction_is_kronecker_product():
    """u = −lr · Q1ᵀQ1 M Q2ᵀQ2 per matrix (here below both clipping thresholds)."""
    k = jax.random.split(jax.random.PRNGKey(0), 6)
    tx = scale_by_kron(b1=0.0, precond_update_prob=0.0)
    params = {"w": jnp.zeros((3, 4)), "e": jnp.zeros((2, 3, 4))}
    state = tx.init(params)
    q1, q2 = random_triu(k[0], 3), random_triu(k[1], 4)
    e1 = jnp.stack([random_triu(k[2], 3), q1])
    e2 = jnp.stack([random_triu(k[3], 4), q2])
    state = state._replace(qs={"w": (q1, q2), "e": (e1, e2)})
    g = 1e-3 * jax.random.normal(k[4], (3, 4))
    ge = jnp.stack([1e-3 * jax.random.normal(k[5], (3, 4)), g])
    u, _ = jax.jit(tx.update)({"w": g, "e": ge}, state)
    expect = q1.T @ q1 @ g @ q2.T @ q2
    np.testing.assert_allclose(u["w"], expect, rtol=1e-5)
    np.testing.assert_allclose(u["e"][1], expect, rtol=1e-5)  # per member, own factors
    e0 = e1[0].T @ e1[0] @ ge[0] @ e2[0].T @ e2[0]
    np.testing.assert_allclose(u["e"][0], e0, rtol=1e-5)


def test_weight_decay_mask_and_learning_rate():
    params = {"w": jnp.full((2, 2), 2.0), "b": jnp.full((2,), 3.0)}
    mask = {"w": True, "b": False}
    tx = kron(0.1, weight_decay=0.5, weight_decay_mask=mask, precond_update_prob=0.0)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    u, _ = jax.jit(tx.update)(zeros, tx.init(params), params)
    np.testing.assert_allclose(u["w"], np.full((2, 2), -0.1 * 0.5 * 2.0))
    np.testing.assert_array_equal(u["b"], np.zeros(2))


def scan_updates(tx, params, grads, n):
    def body(state, _):
        _, state = tx.update(grads, state, params)
        return state, None

    return jax.jit(lambda s: jax.lax.scan(body, s, None, length=n)[0])(tx.init(params))


def test_preconditioner_updates_follow_probability_inside_scan():
    params = {"w": jnp.zeros((3, 2)), "b": jnp.zeros((2,))}
    grads = {"w": jnp.array([[1.0, 0.0], [0.5, -2.0], [0.0, 3.0]]), "b": jnp.array([1.0, -4.0])}
    frozen = scan_updates(scale_by_kron(precond_update_prob=0.0), params, grads, 20)
    np.testing.assert_array_equal(frozen.qs["w"][1], np.eye(2))
    np.testing.assert_array_equal(frozen.qs["b"][0], np.ones(2))
    moved = scan_updates(scale_by_kron(), params, grads, 20)
    assert int(moved.count) == 20
    for q in jax.tree_util.tree_leaves(moved.qs):
        assert np.all(np.isfinite(q))
        if q.ndim == 2:
            np.testing.assert_array_equal(q, np.triu(q))  # stays upper triangular
    assert not np.allclose(moved.qs["w"][0], np.eye(3))
    assert not np.allclose(moved.qs["b"][0], np.ones(2))


def test_refit_decision_is_shared_across_vmapped_seeds():
    """Under vmap_seeds the refit stays a `cond` (a plain vmap turns it into a select) and each
    seed's update equals the one of its own unbatched run."""
    tx = scale_by_kron(precond_update_prob=0.5)
    params = {"w": jnp.zeros((3, 2))}
    grads = {"w": jnp.stack([jnp.full((3, 2), g) for g in (1.0, -2.0, 0.5)])}
    state = jax.vmap(lambda _: tx.init(params))(jnp.arange(3))

    def run(g, st):
        for _ in range(4):
            u, st = tx.update(g, st)
        return u, st

    assert "cond[" in str(jax.make_jaxpr(vmap_seeds(run))(grads, state))
    assert "cond[" not in str(jax.make_jaxpr(jax.vmap(run))(grads, state))
    many_u, many_s = jax.jit(vmap_seeds(run))(grads, state)
    for k in range(3):
        one_u, one_s = jax.jit(run)({"w": grads["w"][k]}, tx.init(params))
        np.testing.assert_allclose(many_u["w"][k], one_u["w"], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(many_s.qs["w"][0][k], one_s.qs["w"][0], rtol=1e-5, atol=1e-7)
    assert not np.allclose(one_s.qs["w"][0], np.eye(3))  # a refit did happen


def rotation(t):
    return jnp.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def test_ill_conditioned_quadratic_faster_than_sgd_momentum():
    """f(W) = ½ tr(EᵀH1 E H2), E = W − W*: Hessian H2 ⊗ H1 with eigenvalues 1e-3 … 100."""
    h1 = rotation(0.5) @ jnp.diag(jnp.array([10.0, 0.03])) @ rotation(0.5).T
    h2 = rotation(-0.3) @ jnp.diag(jnp.array([10.0, 0.03])) @ rotation(-0.3).T
    w_star = jnp.array([[1.0, -2.0], [0.5, 3.0]])

    def loss(p):
        e = p["w"] - w_star
        return 0.5 * jnp.trace(e.T @ h1 @ e @ h2)

    def distance_after(tx, n=600):
        def body(carry, _):
            p, s = carry
            u, s = tx.update(jax.grad(loss)(p), s, p)
            return (optax.apply_updates(p, u), s), None

        p0 = {"w": jnp.zeros((2, 2))}
        (p, _), _ = jax.lax.scan(body, (p0, tx.init(p0)), None, length=n)
        return jnp.linalg.norm(p["w"] - w_star)

    d_kron = float(jax.jit(lambda: distance_after(kron(0.01)))())
    d_sgd = float(jax.jit(lambda: distance_after(optax.sgd(0.01, momentum=0.9)))())
    assert d_kron < 0.1 < 1.0 < d_sgd  # start: ‖W*‖ = 3.67
