"""Shampoo under hostile input: non-finite and huge gradients, zero and singular statistics,
failing root functions, odd shapes and dtypes, invalid options."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rootsolve_optim
from rootsolve_optim import scale_by_shampoo, shampoo, shampoo_metrics

EPS32 = float(np.finfo(np.float32).eps)
OPTS = dict(start_preconditioning_step=1, preconditioning_compute_steps=2, merge_small_dims=False)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def all_finite(tree) -> bool:
    return all(np.all(np.isfinite(x)) for x in leaves(tree) if x.dtype.kind == "f")


def roots_of(state):
    """Every preconditioner in a Shampoo state."""
    out = []
    for s in jax.tree_util.tree_leaves(
        state, is_leaf=lambda x: isinstance(x, rootsolve_optim.ShampooState)
    ):
        if isinstance(s, rootsolve_optim.ShampooState):
            out.extend(np.asarray(f.root) for f in s.factors)
    return out


def gradients(steps, seed=0, dtype=jnp.float32, scale=1.0):
    rng = np.random.default_rng(seed)
    return [
        {
            "w": jnp.asarray(scale * rng.standard_normal((6, 4)), dtype),
            "b": jnp.asarray(scale * rng.standard_normal(4), dtype),
        }
        for _ in range(steps)
    ]


PARAMS = {"w": jnp.zeros((6, 4), jnp.float32), "b": jnp.zeros(4, jnp.float32)}


@pytest.fixture(scope="module")
def opt():
    """One optimizer and its jitted update, shared by the tests of this module."""
    tx = shampoo(0.1, **OPTS)
    return tx, jax.jit(tx.update)


def run(opt, grads, state=None):
    tx, update = opt
    state = tx.init(PARAMS) if state is None else state
    outs = []
    for g in grads:
        u, state = update(g, state, PARAMS)
        outs.append(u)
    return outs, state


# -- non-finite gradients --------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_gradient_skips_the_step(opt, bad):
    """The whole step is skipped: zero updates, state untouched, nothing non-finite stored."""
    good = gradients(5)
    _, before = run(opt, good[:3])
    poisoned = {"w": good[3]["w"].at[2, 1].set(bad), "b": good[3]["b"]}
    (u,), after = run(opt, [poisoned], before)
    assert all(np.all(x == 0) for x in leaves(u))
    inner_before, inner_after = before[0], after[0]
    assert int(inner_after.skipped_steps) == 1
    kept = [(s.graft, s.momentum, s.factors) for s in (inner_before, inner_after)]
    assert len(leaves(kept[0][2])) == 2 * (1 + 1 + 4)  # L and R: stat, root, 4 metrics
    for a, b in zip(leaves(kept[0]), leaves(kept[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(inner_after.count) == int(inner_before.count)
    # Training goes on as if the bad step had not happened.
    resumed, _ = run(opt, good[3:], after)
    clean, _ = run(opt, good[3:], before)
    for a, b in zip(leaves(resumed), leaves(clean), strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(np.all(np.isfinite(r)) for r in roots_of(after))


def test_nonfinite_gradient_in_one_stacked_parameter_skips_the_step():
    """Two parameters share one stack of statistics: NaN in one of them skips the step for
    both, and the stacked statistics and roots stay as they were."""
    params = {"u": jnp.zeros((4, 4)), "v": jnp.zeros((4, 4))}
    tx = shampoo(0.1, stack_parameters=True, **OPTS)
    update = jax.jit(tx.update)
    rng = np.random.default_rng(5)
    grads = [
        {k: jnp.asarray(rng.standard_normal((4, 4)), jnp.float32) for k in params}
        for _ in range(4)
    ]
    state = tx.init(params)
    for g in grads[:3]:
        _, state = update(g, state, params)
    assert [f.stat.shape for f in state[0].factors] == [(2, 4, 4)] * 2
    poisoned = {"u": grads[3]["u"], "v": grads[3]["v"].at[0, 0].set(np.nan)}
    u, after = update(poisoned, state, params)
    assert all(np.all(x == 0) for x in leaves(u))
    assert int(after[0].skipped_steps) == 1
    for a, b in zip(leaves(state), leaves(after), strict=True):
        if a.shape:  # everything but the counters
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kw", [dict(statistics_compute_steps=2), dict(statistics_precision="default")]
)
def test_nonfinite_gradient_skips_where_no_statistic_sees_it(kw):
    """The finite check reads the Gram diagonals when statistics come every step at full
    precision; otherwise (here: step 3 collects none; lowered precision) the gradient's own
    check skips the step. A plain (not normalized) RMSProp graft would store the NaN in
    its moments if the check missed it."""
    tx = shampoo(0.1, **{**OPTS, "graft_type": "rmsprop", **kw})
    update = jax.jit(tx.update)
    good = gradients(4)
    state = tx.init(PARAMS)
    for g in good[:3]:
        _, state = update(g, state, PARAMS)
    poisoned = {"w": good[3]["w"].at[2, 1].set(np.nan), "b": good[3]["b"]}
    u, after = update(poisoned, state, PARAMS)
    assert all(np.all(x == 0) for x in leaves(u))
    assert int(after[0].skipped_steps) == 1 and all_finite(after)


def test_nan_in_a_grafting_only_leaf_also_skips(opt):
    g = gradients(2)
    g[1]["b"] = g[1]["b"].at[0].set(np.nan)
    (_, u), state = run(opt, g)
    assert all(np.all(x == 0) for x in leaves(u))
    assert int(state[0].skipped_steps) == 1 and all_finite(state)


# -- huge and zero gradients ------------------------------------------------------------------


def test_huge_gradients_whose_squares_overflow_are_skipped(opt):
    """1e30 in float32: G G^T overflows (float32 max ~3.4e38), so every such step is skipped;
    the state stays finite and normal gradients afterwards train normally."""
    huge = gradients(3, scale=1e30)
    assert np.isfinite(np.asarray(huge[0]["w"])).all()
    outs, state = run(opt, huge)
    assert all(np.all(x == 0) for x in leaves(outs))
    assert int(state[0].skipped_steps) == 3 and int(state[0].count) == 0
    assert all_finite(state)
    normal, state = run(opt, gradients(3), state)
    assert all_finite(normal) and any(np.any(x != 0) for x in leaves(normal))


def test_large_gradients_give_scale_invariant_updates(opt):
    """2^50 ~ 1e15 (squares fit in float32): Shampoo's direction L^(-1/4) G R^(-1/4) and the
    normalized RMSProp graft are invariant to the gradient's scale. A power-of-two scale is
    exact in floating point except inside eigh and pow, each a few ulps; allow 1000 ulps
    for the length-n sums around them."""
    base = gradients(4)
    scaled = [jax.tree_util.tree_map(lambda x: x * 2.0**50, g) for g in base]
    a, _ = run(opt, base)
    b, state = run(opt, scaled)
    assert int(state[0].skipped_steps) == 0
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_allclose(y, x, rtol=1000 * EPS32, atol=1000 * EPS32 * np.abs(x).max())


def test_all_zero_gradients(opt):
    """Zero statistics have nothing to root: identity preconditioners, no failure counted,
    zero updates; later gradients train normally."""
    zeros = [jax.tree_util.tree_map(jnp.zeros_like, g) for g in gradients(5)]
    outs, state = run(opt, zeros)
    assert all(np.all(x == 0) for x in leaves(outs))
    assert all_finite(state)
    m = shampoo_metrics(state)
    assert int(m.total_failures) == 0 and int(m.skipped_steps) == 0
    for r in roots_of(state):
        np.testing.assert_array_equal(r, np.broadcast_to(np.eye(r.shape[-1]), r.shape))
    later, state = run(opt, gradients(3), state)
    assert all_finite(later) and int(shampoo_metrics(state).never_refreshed) == 0


# -- singular statistics and failing roots ----------------------------------------------------


def rank_one_gradients(steps):
    rng = np.random.default_rng(5)
    u, v = rng.standard_normal(6), rng.standard_normal(4)
    return [
        {"w": jnp.asarray(np.outer(u, v) * (1 + t), jnp.float32), "b": jnp.ones(4, jnp.float32)}
        for t in range(steps)
    ]


def test_singular_statistic_is_regularized_by_the_ridge(opt):
    """A rank-one L = c u u^T: the relative ridge makes it invertible; roots are accepted."""
    outs, state = run(opt, rank_one_gradients(4))
    m = shampoo_metrics(state)
    assert int(m.total_failures) == 0 and int(m.never_refreshed) == 0
    assert all_finite(outs) and all_finite(state)


def test_singular_statistic_without_ridge_keeps_a_finite_preconditioner():
    """rel_ridge=0: rootsolve reports the singular matrix, the root is rejected and counted,
    and the block falls back to the scaled identity (tr(S)/n)^(-1/4) I."""
    tx = scale_by_shampoo(rel_ridge=0.0, **OPTS)
    state = tx.init(PARAMS)
    update = jax.jit(tx.update)
    for g in rank_one_gradients(2):
        u, state = update(g, state)
    assert all_finite(u) and all_finite(state)
    factors = state.factors  # the one parameter's L and R
    assert [int(f.metrics.failures[0]) for f in factors] == [1, 1]
    for f in factors:
        s = np.asarray(f.stat[0], np.float64)
        c = (np.trace(s) / s.shape[0]) ** -0.25
        np.testing.assert_allclose(np.asarray(f.root[0]), c * np.eye(s.shape[0]), rtol=4 * EPS32)


def _fixed_root_fn(roots_value=None, residual=0.0, converged=True):
    def root_fn(stats, p, step):
        k, n, _ = stats.shape
        roots = jnp.broadcast_to(jnp.eye(n, dtype=stats.dtype), stats.shape)
        if roots_value is not None:
            roots = jnp.full(stats.shape, roots_value, stats.dtype)
        return (
            roots,
            jnp.full((k,), residual, jnp.float32),
            jnp.full((k,), converged, bool),
        )

    return root_fn


@pytest.mark.parametrize(
    "kw, counted",
    [
        (dict(roots_value=np.nan), True),  # non-finite roots
        (dict(residual=0.5), True),  # residual above max_residual = 0.1
        (dict(converged=False), True),
        (dict(residual=np.nan, converged=False), False),  # "no new root yet"
    ],
)
def test_rejected_roots_keep_the_preconditioner(kw, counted):
    tx = scale_by_shampoo(root_fn=_fixed_root_fn(**kw), **OPTS)
    state = tx.init(PARAMS)
    update = jax.jit(tx.update)
    for g in gradients(4):
        u, state = update(g, state)
    assert all_finite(u) and all_finite([f.root for f in state.factors])
    failures = [np.asarray(f.metrics.failures) for f in state.factors]
    # refreshes at t = 1 and t = 3
    assert all(np.all(x == (2 if counted else 0)) for x in failures)
    assert all(np.all(np.asarray(f.metrics.last_refresh) == -1) for f in state.factors)


def test_root_fn_with_wrong_shapes_is_reported():
    def bad(stats, p, step):
        k = stats.shape[0]
        return stats, jnp.zeros((k + 1,), jnp.float32), jnp.ones((k,), bool)

    tx = scale_by_shampoo(root_fn=bad, **OPTS)
    with pytest.raises(ValueError, match=r"root_fn returned residual of shape \(2,\)"):
        jax.jit(tx.update)(gradients(1)[0], tx.init(PARAMS))


# -- dtypes ---------------------------------------------------------------------------------


def test_bfloat16_updates_match_float32_on_the_same_gradients():
    """Statistics live in float32 for both, so a bfloat16 run computes exactly what a float32
    run computes on the bfloat16-rounded gradients, then rounds the direction to bfloat16
    (the learning rate then scales it in bfloat16, as optax does for any bfloat16 update)."""
    tx = scale_by_shampoo(**OPTS)
    update = jax.jit(tx.update)
    grads16 = gradients(4, dtype=jnp.bfloat16)
    grads32 = [jax.tree_util.tree_map(lambda x: x.astype(jnp.float32), g) for g in grads16]
    p16 = jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16), PARAMS)
    s16, s32 = tx.init(p16), tx.init(PARAMS)
    for g16, g32 in zip(grads16, grads32, strict=True):
        u16, s16 = update(g16, s16)
        u32, s32 = update(g32, s32)
        assert all(x.dtype == jnp.bfloat16 for x in jax.tree_util.tree_leaves(u16))
        for a, b in zip(leaves(u16), leaves(u32), strict=True):
            np.testing.assert_array_equal(a, b.astype(jnp.bfloat16))
    kinds = {x.dtype for x in jax.tree_util.tree_leaves(s16)}
    assert kinds <= {jnp.dtype("float32"), jnp.dtype("int32")}


def test_works_without_x64():
    """With jax_enable_x64 off every root is computed in float32 (ridge 4 n eps_32)."""
    with jax.enable_x64(False):
        params = {"w": jnp.zeros((6, 4)), "b": jnp.zeros(4)}
        tx = shampoo(0.1, **OPTS)
        state = tx.init(params)
        update = jax.jit(tx.update)
        for g in gradients(4):
            u, state = update(g, state, params)
        m = shampoo_metrics(state)
        assert all_finite(u) and all_finite(state)
        assert int(m.total_failures) == 0 and int(m.never_refreshed) == 0
        assert jax.tree_util.tree_leaves(state)[0].dtype == jnp.int32


# -- shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, [], (), None, {"a": {}, "b": []}])
def test_empty_pytrees(params):
    tx = shampoo(0.1)
    state = tx.init(params)
    u, state = jax.jit(tx.update)(params, state, params)
    assert u == params
    assert int(shampoo_metrics(state).num_roots) == 0


def test_scalars_size_one_dims_and_very_large_dims():
    """() and (1, 1): grafting only; (1, 5, 1, 3): one 15 x 15 statistic (unit dims dropped,
    5 x 3 merged); (5000, 3): the 5000 is above 4096 and skipped; (100000,): a vector."""
    params = {
        "s": jnp.zeros(()), "ones": jnp.zeros((1, 1)), "unit": jnp.zeros((1, 5, 1, 3)),
        "tall": jnp.zeros((5000, 3)), "vec": jnp.zeros(100000),
    }
    tx = shampoo(0.1, start_preconditioning_step=0, preconditioning_compute_steps=1)
    state = tx.init(params)
    per = rootsolve_optim.parameter_factors(state[0], params)
    shapes = {k: [tuple(f.stat.shape) for f in per[k]] for k in params}
    assert shapes == {"s": [], "ones": [], "unit": [(1, 15, 15)], "tall": [(1, 3, 3)], "vec": []}
    rng = np.random.default_rng(0)
    g = {k: jnp.asarray(rng.standard_normal(v.shape), jnp.float32) for k, v in params.items()}
    u, state = jax.jit(tx.update)(g, state, params)
    assert all_finite(u) and all(x.shape == params[k].shape for k, x in u.items())
    assert int(shampoo_metrics(state).never_refreshed) == 0


def test_low_rank_float32_statistics_of_a_wide_block_are_accepted():
    """A 256 x 256 float32 statistic of rank 64 (four 256 x 16 gradients), float64 roots.

    The default relative ridge for float32 statistics, max(1e-6, 4 n eps_32) ~ 1.2e-4,
    lifts the zero eigenvalues above float32 rounding, and the float64 computation judges
    singularity at float64 rounding, so every root is accepted (judged at float32 rounding,
    n eps_32 ~ 3e-5 would exceed a 1e-6 ridge and every root would be rejected)."""
    rng = np.random.default_rng(7)
    basis = rng.standard_normal((4, 256, 16)).astype(np.float32)
    params = {"w": jnp.zeros((256, 16), jnp.float32)}
    tx = scale_by_shampoo(**{**OPTS, "block_size": 256})
    state = tx.init(params)
    update = jax.jit(tx.update)
    for t in range(4):
        u, state = update({"w": jnp.asarray(basis[t % 4])}, state)
    factors = state.factors
    assert factors[0].stat.shape == (1, 256, 256)
    w = np.linalg.eigvalsh(np.asarray(factors[0].stat[0], np.float64))
    assert np.sum(w > 1e-6 * w[-1]) <= 64  # singular well beyond rounding
    m = shampoo_metrics(state)
    assert int(m.total_failures) == 0 and int(m.never_refreshed) == 0
    assert all_finite(u) and all_finite(state)
