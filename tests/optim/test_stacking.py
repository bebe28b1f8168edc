"""stacking.py: the layout of the blocks of all parameters in the state (stacked or per
parameter), reading it back per parameter, and refusing a state of another layout."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rootsolve_optim
from rootsolve_optim import Factor, scale_by_shampoo, shampoo, shampoo_metrics

EPS32 = float(np.finfo(np.float32).eps)
OPTS = dict(start_preconditioning_step=1, preconditioning_compute_steps=2, merge_small_dims=False)
PARAMS = {"w": jnp.zeros((6, 4), jnp.float32), "b": jnp.zeros(4, jnp.float32)}


def all_finite(tree) -> bool:
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]
    return all(np.all(np.isfinite(x)) for x in leaves if x.dtype.kind == "f")


def make_grads(params, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [
        jax.tree_util.tree_map(
            lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), params
        )
        for _ in range(steps)
    ]


def test_stacked_and_per_parameter_layouts_give_the_same_updates():
    """Stacking changes where the statistics live, not the arithmetic: the same products per
    block, so the updates agree to float32 rounding of the block products (n eps_32 relative,
    n = 8, amplified by the two roots: 100 n eps_32) and the metrics summaries match."""
    params = {
        "a": jnp.zeros((8, 8)), "b": jnp.zeros((16, 8)), "c": jnp.zeros((8, 4, 2)),
        "bias": jnp.zeros(8),
    }
    opts = dict(
        block_size=8, start_preconditioning_step=1, preconditioning_compute_steps=2,
        merge_small_dims=False,
    )
    txs = [shampoo(0.05, stack_parameters=s, **opts) for s in (False, True)]
    states = [tx.init(params) for tx in txs]
    # a: one 8 x 8 block, b: two, c: an order-3 tensor (exponent 1/6); bias: grafting only
    assert len(states[0][0].factors) == 2 + 2 + 3
    assert [f.stat.shape for f in states[1][0].factors] == [(3, 8, 8)] * 2 + [
        (1, 8, 8), (1, 4, 4), (1, 2, 2)
    ]
    steps = [jax.jit(tx.update) for tx in txs]
    tol = 100 * 8 * EPS32
    for g in make_grads(params, 5):
        outs = [step(g, s, params) for step, s in zip(steps, states, strict=True)]
        states = [o[1] for o in outs]
        leaves = [jax.tree_util.tree_leaves(o[0]) for o in outs]
        for x, y in zip(*leaves, strict=True):
            np.testing.assert_allclose(x, y, rtol=tol, atol=tol * float(jnp.max(jnp.abs(x))))
    # Read back per parameter, the two layouts hold the same statistics and roots.
    layout = {k: opts[k] for k in ("block_size", "merge_small_dims")}
    views = [
        rootsolve_optim.parameter_factors(s[0], params, stack_parameters=flag, **layout)
        for s, flag in zip(states, (False, True), strict=True)
    ]
    assert views[1]["bias"] == () and len(views[1]["b"]) == 2 and len(views[1]["c"]) == 3
    pairs = zip(*(jax.tree_util.tree_leaves(v, is_leaf=lambda x: isinstance(x, Factor))
                  for v in views), strict=True)
    for f0, f1 in pairs:
        for x, y in ((f0.stat, f1.stat), (f0.root, f1.root)):
            np.testing.assert_allclose(x, y, rtol=tol, atol=tol * float(jnp.max(jnp.abs(x))))
        for x, y in zip(f0.metrics[1:], f1.metrics[1:], strict=True):
            np.testing.assert_array_equal(x, y)  # iterations, failures, last refresh
        # float64 roots: residuals at float64 rounding in both (they differ there)
        assert float(jnp.max(f0.metrics.residual)) < EPS32
        assert float(jnp.max(f1.metrics.residual)) < EPS32
    m0, m1 = (shampoo_metrics(s) for s in states)
    assert int(m0.num_roots) == int(m1.num_roots) == 3 * 2 + 3
    assert int(m0.never_refreshed) == int(m1.never_refreshed) == 0
    assert int(m0.total_failures) == int(m1.total_failures) == 0


def test_stacking_under_inject_hyperparams():
    """optax leaves a bool static, so stack_parameters needs no static_args."""
    params = {"a": jnp.zeros((4, 4)), "b": jnp.zeros((4, 4))}
    tx = optax.inject_hyperparams(shampoo)(
        learning_rate=0.1, stack_parameters=True, merge_small_dims=False
    )
    state = tx.init(params)
    (inner,) = [
        s for s in jax.tree_util.tree_leaves(
            state, is_leaf=lambda x: isinstance(x, rootsolve_optim.ShampooState)
        ) if isinstance(s, rootsolve_optim.ShampooState)
    ]
    assert [f.stat.shape for f in inner.factors] == [(2, 4, 4)] * 2
    grads = {"a": jnp.ones((4, 4)), "b": jnp.eye(4)}
    u, _ = jax.jit(tx.update)(grads, state, params)
    assert all_finite(u)


def test_state_from_other_options_is_refused():
    state = scale_by_shampoo(**{**OPTS, "block_size": 2}).init(PARAMS)
    with pytest.raises(ValueError, match="same options"):
        scale_by_shampoo(**OPTS).update(make_grads(PARAMS, 1)[0], state)
