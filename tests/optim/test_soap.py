"""SOAP against its float64 numpy reference, against Adam, and in the places users put it.

The reference (:mod:`soap_reference`) keeps the first moment in the original
coordinates and rotates it every step, as the paper's Algorithm 3 writes it;
the optimizer keeps it rotated and turns it when a basis changes. Both compute
their bases from the same float64 statistics (``eigh`` first, then the QR
power step), so they agree to rounding wherever the bases are well defined:
the eigenvectors of a statistic with relative eigenvalue gaps ``delta`` are
determined to about ``n eps / delta`` (Davis-Kahan), and Adam's normalization
``m / sqrt(v)`` carries that error at the same relative size. The statistics
below are Gram matrices of random blocks no longer along the rotated
dimension than the product of the others (full rank; relative gaps of about
1e-2 at these sizes, 1e-3 taken as the bound), so ``1e-9`` relative leaves a
margin of a hundred over ``n eps / delta`` for ``n <= 6``. A block whose first statistic
is rank-deficient (a rotated dimension longer than the product of the
others) has a basis that is arbitrary in the null space; the reference and
the optimizer may pick different ones, so the cases avoid it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from soap_reference import RefSOAP

from rootsolve_optim import SOAPState, scale_by_soap, soap

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
RTOL64 = 1e-9


def _run(params, kw, refs, steps=8, seed=0, dtype=np.float64, jit=True):
    """Worst relative difference, over ``steps`` random gradients, of every leaf against
    its reference; returns it and the final state."""
    rng = np.random.default_rng(seed)
    tx = scale_by_soap(**kw)
    state = tx.init(params)
    update = jax.jit(tx.update) if jit else tx.update
    worst = 0.0
    for _ in range(steps):
        grads = {k: rng.standard_normal(np.shape(v)).astype(dtype) for k, v in params.items()}
        out, state = update({k: jnp.asarray(g) for k, g in grads.items()}, state)
        for k, ref in refs.items():
            want = ref.step(grads[k])
            got = np.asarray(out[k], np.float64)
            scale = max(np.abs(want).max(), 1e-300)
            worst = max(worst, float(np.abs(got - want).max() / scale))
    return worst, state


# Parameters treated alike share one optimizer (one compilation): (shape, merged, rotated).
GROUPS = {
    "ranks-1-to-4-and-one-sided": (
        {"skip_preconditioning_dim_size_gt": 6, "precondition_frequency": 2},
        {"matrix": ((5, 5), (5, 5), (True, True)),
         "rank3": ((3, 4, 5), (3, 4, 5), (True, True, True)),
         "rank4": ((2, 3, 2, 3), (2, 3, 2, 3), (True,) * 4),
         "vector": ((7,), (7,), (False,)),
         "unit-dims": ((1, 5, 1, 5), (5, 5), (True, True)),
         "above-max-dim": ((5, 7), (5, 7), (True, False))},
    ),
    "betas-eps-no-bias-correction": (
        {"beta1": 0.9, "beta2": 0.99, "shampoo_beta": 0.8, "eps": 1e-3,
         "precondition_frequency": 1, "bias_correction": False},
        {"matrix": ((5, 5), (5, 5), (True, True)),
         "rank3": ((3, 4, 5), (3, 4, 5), (True, True, True))},
    ),
    "blocks": (
        {"block_size": 3, "precondition_frequency": 3},
        {"even": ((6, 6), (6, 6), (True, True)), "uneven": ((5, 5), (5, 5), (True, True))},
    ),
    "input-only": (
        {"preconditioner_type": "input", "precondition_frequency": 2},
        {"w": ((5, 6), (5, 6), (True, False))},
    ),
    "output-only": (
        {"preconditioner_type": "output", "precondition_frequency": 2},
        {"w": ((6, 5), (6, 5), (False, True))},
    ),
    "merged": (
        {"merge_small_dims": True, "block_size": 6, "precondition_frequency": 2},
        {"w": ((2, 3, 6), (6, 6), (True, True))},
    ),
    # Refreshes by shifted Cholesky QR (the default on GPUs): the same Q to rounding.
    "cholesky-qr": (
        {"orthonormalize": "cholesky", "precondition_frequency": 2},
        {"matrix": ((5, 5), (5, 5), (True, True)),
         "rank3": ((3, 4, 5), (3, 4, 5), (True, True, True))},
    ),
}
_REF_KEYS = ("beta1", "beta2", "shampoo_beta", "eps", "precondition_frequency",
             "bias_correction", "block_size")


@pytest.mark.parametrize("group", list(GROUPS))
def test_update_matches_reference(group):
    kw, leaves = GROUPS[group]
    ref_kw = {k: v for k, v in kw.items() if k in _REF_KEYS}
    if kw.get("merge_small_dims"):
        ref_kw.pop("block_size")  # the merged 6 x 6 is one block
    refs = {name: RefSOAP(shape, merged, mask, **ref_kw)
            for name, (shape, merged, mask) in leaves.items()}
    params = {name: jnp.zeros(shape) for name, (shape, _, _) in leaves.items()}
    worst, state = _run(params, kw, refs, steps=8)
    assert worst <= RTOL64
    assert int(state.count) == 8 and int(state.skipped_steps) == 0


def test_tree_with_stacked_parameters_matches_reference():
    """Equal blocks of two parameters in one stack; the bias gets Adam and, like every
    parameter, sits out the initializing call."""
    params = {"a": jnp.zeros((4, 4)), "b": jnp.zeros((4, 4)), "bias": jnp.zeros((4,))}
    refs = {
        "a": RefSOAP((4, 4), (4, 4), (True, True), precondition_frequency=2),
        "b": RefSOAP((4, 4), (4, 4), (True, True), precondition_frequency=2),
        "bias": RefSOAP((4,), (4,), (False,), precondition_frequency=2),
    }
    worst, state = _run(params, {"precondition_frequency": 2, "stack_parameters": True}, refs)
    assert worst <= RTOL64
    assert [f.stat.shape for f in state.factors] == [(2, 4, 4), (2, 4, 4)]


def test_float32_refresh_and_float32_parameters():
    """float32 throughout: the same updates to float32 rounding, amplified by the basis
    conditioning (``n eps_32 / delta`` with ``delta >= 1e-3``, times a margin of 10)."""
    shape = (5, 5)
    ref = RefSOAP(shape, shape, (True, True), precondition_frequency=2)
    worst, state = _run({"w": jnp.zeros(shape, jnp.float32)},
                        {"precondition_frequency": 2, "compute_dtype": "float32"},
                        {"w": ref}, dtype=np.float32)
    assert worst <= 10 * 5 * EPS32 / 1e-3
    assert state.factors[0].basis.dtype == jnp.float32 and state.mu["w"].dtype == jnp.float32


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_without_a_basis_it_is_adam_exactly(weight_decay):
    """Every parameter below ``skip_preconditioning_rank_lt``: no basis, no initializing call,
    and :func:`soap` is ``optax.adamw`` (``optax.adam`` without decay)."""
    params = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), "b": jnp.ones(3)}
    kw = {"b1": 0.9, "b2": 0.99, "eps": 1e-6}
    ours = soap(1e-2, beta1=0.9, beta2=0.99, eps=1e-6, weight_decay=weight_decay,
                skip_preconditioning_rank_lt=3)
    peer = optax.adamw(1e-2, weight_decay=weight_decay, **kw) if weight_decay else (
        optax.adam(1e-2, **kw)
    )
    s1, s2 = ours.init(params), peer.init(params)
    rng = np.random.default_rng(3)
    p1 = p2 = params
    for _ in range(6):
        g = jax.tree_util.tree_map(lambda x: jnp.asarray(rng.standard_normal(x.shape)), params)
        u1, s1 = ours.update(g, s1, p1)
        u2, s2 = peer.update(g, s2, p2)
        for a, b in zip(jax.tree_util.tree_leaves(u1), jax.tree_util.tree_leaves(u2),
                        strict=True):
            # The same formulas in the same order: equal up to one rounding of the product
            # by the learning rate.
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=4 * EPS64, atol=0)
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)


def test_non_finite_steps_are_skipped_and_counted():
    params = {"w": jnp.zeros((4, 4)), "b": jnp.zeros(4)}
    tx = scale_by_soap(precondition_frequency=1)
    update = jax.jit(tx.update)
    state = tx.init(params)
    good = {"w": jnp.ones((4, 4)) * jnp.arange(4.0), "b": jnp.ones(4)}
    _, state = update(good, state)
    for bad_value in (jnp.nan, jnp.inf, 1e300):
        bad = {"w": good["w"].at[1, 2].set(bad_value), "b": good["b"]}
        out, new = update(bad, state)
        assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree_util.tree_leaves(out))
        assert int(new.skipped_steps) == int(state.skipped_steps) + 1
        assert int(new.count) == int(state.count)
        same = jax.tree_util.tree_map(lambda a, b: bool(jnp.array_equal(a, b)),
                                      new._replace(skipped_steps=state.skipped_steps), state)
        assert all(jax.tree_util.tree_leaves(same))
        state = new
    out, state = update(good, state)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(out))
    assert int(state.count) == 2 and int(state.skipped_steps) == 3


def test_zero_gradients_give_zero_updates():
    params = {"w": jnp.zeros((3, 4)), "b": jnp.zeros(4)}
    tx = scale_by_soap(precondition_frequency=1)
    state = tx.init(params)
    update = jax.jit(tx.update)
    for _ in range(3):
        out, state = update(jax.tree_util.tree_map(jnp.zeros_like, params), state)
        assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree_util.tree_leaves(out))
    assert int(state.skipped_steps) == 0
    basis = state.factors[0].basis[0]
    np.testing.assert_allclose(basis.T @ basis, np.eye(basis.shape[0]), atol=10 * EPS64)


def test_low_precision_parameters_keep_their_dtype():
    params = {"w16": jnp.ones((6, 4), jnp.bfloat16), "b16": jnp.ones(4, jnp.bfloat16),
              "w32": jnp.ones((6, 4), jnp.float32)}
    tx = soap(1e-3, precondition_frequency=2)
    state = tx.init(params)
    assert state[0].mu["w16"].dtype == jnp.float32 and state[0].factors[0].basis.dtype == (
        jnp.float32)
    step = jax.jit(tx.update)
    rng = np.random.default_rng(0)
    for _ in range(4):
        g = {k: jnp.asarray(rng.standard_normal(v.shape), v.dtype) for k, v in params.items()}
        out, state = step(g, state, params)
        assert all(out[k].dtype == params[k].dtype for k in params)
        params = optax.apply_updates(params, out)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(params))


def test_huge_and_size_one_dimensions():
    """A dimension above ``skip_preconditioning_dim_size_gt`` is left unrotated (one-sided); unit
    dimensions are dropped; the state holds only the bases that exist."""
    params = {"embed": jnp.zeros((12000, 3)), "col": jnp.zeros((1, 5, 1)),
              "scalar": jnp.zeros(())}
    tx = scale_by_soap(precondition_frequency=1)
    state = tx.init(params)
    assert [f.stat.shape for f in state.factors] == [(1, 3, 3)]
    rng = np.random.default_rng(1)
    for _ in range(3):
        g = {k: jnp.asarray(rng.standard_normal(v.shape)) for k, v in params.items()}
        out, state = jax.jit(tx.update)(g, state)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(out))
    assert out["embed"].shape == (12000, 3) and out["col"].shape == (1, 5, 1)


def test_checkpoint_round_trip_is_exact():
    params = {"w": jnp.zeros((5, 4)), "b": jnp.zeros(4)}
    tx = soap(1e-2, precondition_frequency=2)
    step = jax.jit(tx.update)
    rng = np.random.default_rng(2)
    grads = [{k: jnp.asarray(rng.standard_normal(v.shape)) for k, v in params.items()}
             for _ in range(6)]
    state = tx.init(params)
    for g in grads[:3]:
        _, state = step(g, state, params)
    restored = flax.serialization.from_bytes(tx.init(params),
                                             flax.serialization.to_bytes(state))
    assert isinstance(restored[0], SOAPState)
    for g in grads[3:]:
        u1, state = step(g, state, params)
        u2, restored = step(g, restored, params)
        for a, b in zip(jax.tree_util.tree_leaves((u1, state)),
                        jax.tree_util.tree_leaves((u2, restored)), strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b))


def test_a_step_can_donate_its_state():
    """The first state holds no buffer twice, so a training step may donate it."""
    params = {"w": jnp.zeros((5, 4)), "b": jnp.zeros(4)}
    tx = soap(1e-2, precondition_frequency=2)
    step = jax.jit(tx.update, donate_argnums=1)
    state = tx.init(params)
    for _ in range(3):
        grads = jax.tree_util.tree_map(jnp.ones_like, params)
        updates, state = step(grads, state, params)
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree_util.tree_leaves(updates))


def test_chain_and_inject_hyperparams():
    params = {"w": jnp.zeros((4, 4)), "b": jnp.zeros(4)}
    plain = optax.chain(optax.clip_by_global_norm(1.0), soap(1e-2, precondition_frequency=2))
    injected = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.inject_hyperparams(soap)(learning_rate=1e-2, precondition_frequency=2),
    )
    s1, s2 = plain.init(params), injected.init(params)
    rng = np.random.default_rng(4)
    for _ in range(5):
        g = {k: jnp.asarray(rng.standard_normal(v.shape)) for k, v in params.items()}
        u1, s1 = jax.jit(plain.update)(g, s1, params)
        u2, s2 = jax.jit(injected.update)(g, s2, params)
        for a, b in zip(jax.tree_util.tree_leaves(u1), jax.tree_util.tree_leaves(u2),
                        strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-15)
    # A structural option must stay static.
    traced = optax.inject_hyperparams(soap)(learning_rate=1e-2, block_size=4)
    with pytest.raises(TypeError, match="static_args"):
        jax.jit(traced.update)(params, traced.init(params), params)
    hp = optax.inject_hyperparams(soap, static_args=("block_size",))(
        learning_rate=1e-2, block_size=2)
    assert [f.stat.shape for f in hp.init(params).inner_state[0].factors] == [(4, 2, 2)] * 2


def test_flax_nnx_optimizer_trains():
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(4, 16, rngs=rngs)
            self.l2 = nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x):
            return self.l2(nnx.tanh(self.l1(x)))

    model = MLP(nnx.Rngs(0))
    opt = nnx.Optimizer(model, soap(3e-2, precondition_frequency=5), wrt=nnx.Param)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((64, 4)))
    y = jnp.sin(x[:, :1]) + x[:, 1:2] ** 2

    @nnx.jit
    def train_step(model, opt):
        def loss_fn(m):
            return jnp.mean((m(x) - y) ** 2)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        return loss

    losses = [float(train_step(model, opt)) for _ in range(20)]
    assert losses[-1] < 0.5 * losses[0]


def test_metrics_record_the_refreshes():
    params = {"w": jnp.zeros((5, 5))}
    tx = scale_by_soap(precondition_frequency=2)
    state = tx.init(params)
    rng = np.random.default_rng(5)
    for _ in range(4):
        _, state = jax.jit(tx.update)({"w": jnp.asarray(rng.standard_normal((5, 5)))}, state)
    for f in state.factors:
        # Calls 0 (cold eigh) and 2 (Adam step 2, a QR power step) refreshed; call 4 is next.
        assert f.metrics.last_refresh.tolist() == [2]
        assert f.metrics.iterations.tolist() == [1] and f.metrics.failures.tolist() == [0]
        assert 0.0 < float(f.metrics.residual[0]) < 1.0


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"beta1": 1.0}, ValueError, r"beta1 must lie in \[0.0, 1.0\), got beta1=1.0"),
        ({"beta2": -0.1}, ValueError, "beta2=-0.1"),
        ({"shampoo_beta": 2.0}, ValueError, "shampoo_beta=2.0"),
        ({"eps": -1.0}, ValueError, "eps=-1.0"),
        ({"precondition_frequency": 0}, ValueError, "precondition_frequency=0"),
        ({"block_size": 0}, ValueError, "block_size=0"),
        ({"compute_dtype": "int32"}, ValueError, "compute_dtype='int32'"),
        ({"preconditioner_type": "left"}, ValueError, "preconditioner_type='left'"),
        ({"orthonormalize": "qr"}, ValueError, "orthonormalize='qr'"),
    ],
)
def test_bad_options_are_named(kw, exc, match):
    with pytest.raises(exc, match=match):
        scale_by_soap(**kw)


_SEVERAL_BLOCK_SIZES = textwrap.dedent(
    """
    import jax, jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    import rootsolve_optim
    shapes = {"a": (64, 256), "b": (256, 64), "c": (64, 64), "d": (64, 192), "e": (64,)}
    params = {k: jnp.full(s, 0.1, jnp.float32) for k, s in shapes.items()}
    opt = rootsolve_optim.soap(1e-3, precondition_frequency=2)
    state, update = opt.init(params), jax.jit(opt.update)
    grads = jax.tree_util.tree_map(lambda x: x * 0.1 + 0.01, params)
    done = 0
    for _ in range(5):
        updates, state = update(grads, state, params)
        done += bool(jnp.all(jnp.isfinite(jax.block_until_ready(updates)["a"])))
    print(done)
    """
)


def test_warm_refresh_with_several_block_sizes_finishes():
    # Blocks of 64 x 256, 64 x 64 and 64 x 192 give bases of several sizes. Batched
    # CPU QR calls of different sizes run concurrently can deadlock jaxlib's worker
    # pool on a 2-core machine; in a subprocess a hang fails instead of stalling the suite.
    out = subprocess.run(
        [sys.executable, "-c", _SEVERAL_BLOCK_SIZES], capture_output=True, text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["5"], out.stdout  # five finite updates
