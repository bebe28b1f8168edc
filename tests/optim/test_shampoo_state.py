"""Shampoo's state and interfaces: pytree layout, exact checkpoints, no recompilation,
metrics, optax combinators and the pluggable root function."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rootsolve_optim
from rootsolve_optim import (
    ShampooState,
    device_root_fn,
    scale_by_shampoo,
    shampoo,
    shampoo_metrics,
)
from rootsolve_optim.blocking import make_plan
from rootsolve_optim.grafting import RMSPropGraftState

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
OPTS = dict(start_preconditioning_step=2, preconditioning_compute_steps=3, block_size=4)


def make_params(dtype=jnp.float32):
    return {
        "dense": {"kernel": jnp.zeros((8, 5), dtype), "bias": jnp.zeros(5, dtype)},
        "conv": jnp.zeros((2, 2, 4, 4), dtype),
        "scale": jnp.ones((), dtype),
        "skip": None,
    }


def make_grads(params, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [
        jax.tree_util.tree_map(
            lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), params
        )
        for _ in range(steps)
    ]


def train(update, state, params, grads):
    outs = []
    for g in grads:
        u, state = update(g, state, params)
        outs.append(u)
    return outs, state


# -- layout ---------------------------------------------------------------------------------


def test_state_is_namedtuples_and_arrays_with_documented_dtypes():
    """Optax's layout: trees shaped like the parameters inside NamedTuples, never NamedTuples
    inside the parameters' tree (which libraries such as flax.nnx rebuild as their own
    containers)."""
    params = make_params(jnp.bfloat16)
    param_def = jax.tree_util.tree_structure(params)
    state = scale_by_shampoo(**OPTS).init(params)
    assert isinstance(state, ShampooState)
    assert state.count.dtype == jnp.int32 and state.count.shape == ()
    assert isinstance(state.graft, RMSPropGraftState)  # the default graft
    for tree in (state.momentum, *state.graft):
        assert jax.tree_util.tree_structure(tree) == param_def  # None has no state
        for p, x in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(tree),
                        strict=True):
            assert x.shape == p.shape and x.dtype == jnp.float32
    for leaf in jax.tree_util.tree_leaves(state):
        assert isinstance(leaf, jax.Array)
        assert leaf.dtype in (jnp.float32, jnp.int32)
    for factor in state.factors:
        assert isinstance(factor, rootsolve_optim.Factor)
        assert isinstance(factor.metrics, rootsolve_optim.FactorMetrics)
    # (8, 5) in blocks of 4: rows 4 + 4, columns 4 + 1; one L and one R per block shape
    layout = {"block_size": OPTS["block_size"]}
    per = rootsolve_optim.parameter_factors(state, params, **layout)
    assert [tuple(f.stat.shape) for f in per["dense"]["kernel"]] == [
        (2, 4, 4), (2, 4, 4), (2, 4, 4), (2, 1, 1)
    ]
    # (2, 2, 4, 4): 2 * 2 = 4 merges, then three dimensions of 4 with exponent 1/6
    assert [tuple(f.stat.shape) for f in per["conv"]] == [
        (1, 4, 4)
    ] * 3
    assert per["dense"]["bias"] == ()
    assert per["skip"] is None
    assert len(state.factors) == 4 + 3


@pytest.mark.parametrize(
    ("graft_type", "fields"),
    [("sgd", ()), ("adagrad", ("sum_sq",)), ("adam", ("mu", "nu"))],
)
def test_every_graft_state_is_one_namedtuple_of_parameter_trees(graft_type, fields):
    params = make_params()
    state = scale_by_shampoo(graft_type=graft_type, **OPTS).init(params)
    assert state.graft._fields == fields
    for tree in state.graft:
        assert jax.tree_util.tree_structure(tree) == jax.tree_util.tree_structure(params)


def test_float64_parameters_keep_float64_statistics():
    state = scale_by_shampoo(**OPTS).init({"w": jnp.zeros((3, 5), jnp.float64)})
    assert state.factors[0].stat.dtype == jnp.float64


class Counted:
    """``shampoo(0.05, weight_decay=1e-2, **OPTS)`` with a jitted step that counts its traces."""

    def __init__(self):
        self.params = make_params()
        self.tx = shampoo(0.05, weight_decay=1e-2, **OPTS)
        self.traces = 0
        self.step = jax.jit(self._step)

    def _step(self, g, state):
        self.traces += 1
        return self.tx.update(g, state, self.params)

    def train(self, state, grads):
        outs = []
        for g in grads:
            u, state = self.step(g, state)
            outs.append(u)
        return outs, state


@pytest.fixture(scope="module")
def counted():
    return Counted()


def test_exact_resume_from_savez_checkpoint(counted):
    """Flatten the state, np.savez it, load it into the structure of a fresh init: training
    resumed from the file is bit-for-bit the uninterrupted run."""
    grads = make_grads(counted.params, 10)
    _, state = counted.train(counted.tx.init(counted.params), grads[:5])

    buf = io.BytesIO()
    np.savez(buf, *[np.asarray(x) for x in jax.tree_util.tree_leaves(state)])
    buf.seek(0)
    with np.load(buf) as f:
        loaded = [f[f"arr_{i}"] for i in range(len(f.files))]
    treedef = jax.tree_util.tree_structure(counted.tx.init(counted.params))
    restored = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(x) for x in loaded])

    straight, s1 = counted.train(state, grads[5:])
    resumed, s2 = counted.train(restored, grads[5:])
    for a, b in zip(jax.tree_util.tree_leaves((straight, s1)),
                    jax.tree_util.tree_leaves((resumed, s2)), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# -- compilation and metrics ---------------------------------------------------------------


def test_no_recompilation_and_metrics_follow_the_refresh_schedule(counted):
    """One trace serves grafting-only steps (t < 2), root refreshes (t = 2, 5, 8) and stale
    steps alike; the metrics are readable after every step, eagerly or jitted."""
    state = counted.tx.init(counted.params)
    num_roots = sum(f.stat.shape[0] for f in state[0].factors)
    metrics = jax.jit(shampoo_metrics)
    seen = []
    for g in make_grads(counted.params, 9):
        _, state = counted.step(g, state)
        m = metrics(state)
        seen.append((int(m.count), int(m.never_refreshed), int(m.max_steps_since_refresh)))
        assert int(m.num_roots) == num_roots and int(m.total_failures) == 0
        assert 0 <= float(m.max_residual) <= 0.1 and int(m.max_iterations) >= 0
        for eager, jitted in zip(shampoo_metrics(state), m, strict=True):
            # the mean may be summed in another order
            np.testing.assert_allclose(np.asarray(eager), np.asarray(jitted), rtol=4 * EPS32)
    assert counted.traces == 1 and metrics._cache_size() == 1
    # After the update at step t the count is t + 1; staleness = count - last refresh.
    n = num_roots
    assert seen == [(1, n, 0), (2, n, 0), (3, 0, 1), (4, 0, 2), (5, 0, 3),
                    (6, 0, 1), (7, 0, 2), (8, 0, 3), (9, 0, 1)]


def test_metrics_need_a_shampoo_state():
    with pytest.raises(ValueError, match="no ShampooState"):
        shampoo_metrics(optax.adam(1e-3).init({"w": jnp.zeros(3)}))


# -- optax combinators ------------------------------------------------------------------------


def test_partition_with_adam():
    params = make_params()
    labels = {"dense": {"kernel": "shampoo", "bias": "adam"}, "conv": "shampoo",
              "scale": "adam", "skip": None}
    tx = optax.partition({"shampoo": shampoo(1e-2, **OPTS), "adam": optax.adam(1e-2)}, labels)
    state = tx.init(params)
    _, state = train(jax.jit(tx.update), state, params, make_grads(params, 3))
    m = shampoo_metrics(state)
    assert int(m.count) == 3 and int(m.num_roots) > 0


def test_inject_hyperparams_changes_values_without_recompiling():
    params = make_params()
    tx = optax.inject_hyperparams(shampoo)(learning_rate=0.1, beta1=0.9, weight_decay=0.0)
    traces = []

    def step(g, state):
        traces.append(1)
        return tx.update(g, state, params)

    step = jax.jit(step)
    state = tx.init(params)
    grads = make_grads(params, 4)
    u1, state = step(grads[0], state)
    state.hyperparams["learning_rate"] = jnp.asarray(0.01, jnp.float32)
    state.hyperparams["weight_decay"] = jnp.asarray(0.5, jnp.float32)
    u2, state = step(grads[1], state)
    assert len(traces) == 1
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves((u1, u2)))


def test_chain_with_other_transforms():
    params = make_params()
    tx = optax.chain(optax.clip(1.0), scale_by_shampoo(**OPTS), optax.scale(-0.1))
    state = tx.init(params)
    outs, state = train(jax.jit(tx.update), state, params, make_grads(params, 3))
    assert int(shampoo_metrics(state).count) == 3
    assert jax.tree_util.tree_structure(outs[-1]) == jax.tree_util.tree_structure(params)


# -- the root function interface ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "lowered"),
    [
        ({}, 0),
        ({"precision": "default"}, 2),  # L^(-1/4) G and (.) R^(-1/4)
        ({"statistics_precision": jax.lax.Precision.DEFAULT}, 2),  # G G^T and G^T G
        ({"precision": "tensorfloat32", "statistics_precision": "bfloat16"}, 4),
    ],
)
def test_precision_options_reach_the_products(kw, lowered):
    """Each option sets the precision of its own products; the roots stay at HIGHEST.

    The CPU ignores the setting for float32, so it is read off the traced program. The
    device roots are asked for: the CPU's default computes them on the host, untraced.
    """
    params = {"w": jnp.ones((6, 4), jnp.float32)}
    tx = scale_by_shampoo(
        start_preconditioning_step=0, preconditioning_compute_steps=1, merge_small_dims=False,
        root_fn=rootsolve_optim.device_root_fn(), **kw,
    )
    grads = {"w": jnp.arange(24, dtype=jnp.float32).reshape(6, 4) / 24}
    closed = jax.make_jaxpr(tx.update)(grads, tx.init(params))
    precisions = [e.params["precision"] for e in _equations(closed.jaxpr)
                  if e.primitive.name == "dot_general"]
    highest = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    assert sum(p != highest for p in precisions) == lowered
    assert len(precisions) > 4  # the root computation's products, all at HIGHEST


def _equations(jaxpr):
    """Every equation of a jaxpr and of the jaxprs nested in it (cond branches, loops)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)


def test_one_batched_root_call_per_size_and_exponent():
    """Statistics of every block of every parameter are stacked by (n, p): each pair is rooted
    by exactly one call on a (k, n, n) stack, with p a Python int and an int32 step."""
    calls = []
    inner = device_root_fn()

    def root_fn(stats, p, step):
        assert isinstance(p, int) and stats.ndim == 3 and stats.shape[1] == stats.shape[2]
        assert step.dtype == jnp.int32 and step.shape == ()
        calls.append((stats.shape[1], p, stats.shape[0]))
        return inner(stats, p, step)

    params = make_params()
    tx = scale_by_shampoo(root_fn=root_fn, **OPTS)
    jax.jit(tx.update)(make_grads(params, 1)[0], tx.init(params))
    want = {}
    for shape in [(8, 5), (2, 2, 4, 4)]:
        plan = make_plan(shape, block_size=4)
        for nb, n in plan.factor_shapes():
            want[(n, plan.exponent)] = want.get((n, plan.exponent), 0) + nb
    assert len(calls) == len(want)
    assert {(n, p): k for n, p, k in calls} == want


