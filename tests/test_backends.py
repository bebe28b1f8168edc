"""The same checks on every backend: numpy, jax (eager, ``jit``, ``vmap``), the generic
array-API path (``array_api_strict``) and, on a machine with a CUDA GPU, cupy.

Matrices and references come from :mod:`rootsolve.testing`; bounds from its
``forward_tolerance``/``residual_tolerance``. Jitted functions are built once
per configuration and shape and reused across tests (compiling coupled Newton
takes seconds).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from _spd_support import (
    BACKENDS,
    CONFIGS,
    EPS32,
    EPS64,
    METHODS,
    cupy_or_skip,
    rel_err,
    residual,
    solve,
    to_backend,
    to_numpy,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import rootsolve as rs
from rootsolve.testing import (
    forward_tolerance,
    logspaced_spectrum,
    residual_tolerance,
    root_orders,
    spd_matrices,
    spd_with_spectrum,
)

jax = pytest.importorskip("jax")
jnp = jax.numpy

INVERSE = pytest.mark.parametrize("inverse", [True, False], ids=["inv_root", "root"])

#: Small fixed cases: real, complex Hermitian, and a batch with two spectra.
CASES = {
    "real": spd_with_spectrum(logspaced_spectrum(6, 1e4, lmax=2.0), 11),
    "complex": spd_with_spectrum(logspaced_spectrum(5, 1e3), 12, complex=True),
    "batch": spd_with_spectrum(
        np.stack([logspaced_spectrum(4, 1e2), logspaced_spectrum(4, 1e5, lmax=0.1)]), 13
    ),
}
P = 3


def _bounds(case, p: int, inverse: bool, method: str, eps: float = EPS64):
    n, t = case.matrix.shape[-1], (-1.0 / p if inverse else 1.0 / p)
    fwd = forward_tolerance(t, n, case.cond, eps)
    res = residual_tolerance(p, n, case.cond, eps, inverse=inverse,
                             backward_stable=method == "eigh")
    return t, fwd, res


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@INVERSE
@pytest.mark.parametrize("name", list(CASES))
def test_accuracy_on_every_backend(name, inverse, method, scaling, backend):
    case = CASES[name]
    a = to_backend(backend, case.matrix)
    x, info = solve(a, P, inverse=inverse, method=method, scaling=scaling, return_info=True)
    assert type(x) is type(a)
    assert x.dtype == a.dtype
    assert tuple(x.shape) == case.matrix.shape
    t, fwd, res = _bounds(case, P, inverse, method)
    assert rel_err(x, case.power(t)) <= fwd
    assert residual(x, case.matrix, P, inverse=inverse) <= res
    converged = to_numpy(info.converged)
    assert converged.shape == case.matrix.shape[:-2] and converged.all()
    assert np.all(to_numpy(info.residual) <= res)
    assert np.all(to_numpy(info.method) == rs.METHOD_NAMES.index(method))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", METHODS)
@INVERSE
def test_single_precision_on_every_backend(backend, method, inverse):
    """float32 in, float32 out.

    The default compute precision is float64 on the CPU, so only the cast is
    float32 there; a jax array on an accelerator computes in float32.
    """
    case = spd_with_spectrum(logspaced_spectrum(5, 1e2), 14, dtype=np.float32)
    a = to_backend(backend, case.matrix)
    x = solve(a, 4, inverse=inverse, method=method)
    assert x.dtype == a.dtype
    on_accelerator = backend == "jax" and jax.default_backend() != "cpu"
    t, fwd, _ = _bounds(case, 4, inverse, method, EPS32 if on_accelerator else EPS64)
    assert rel_err(x, case.power(t)) <= fwd + 2 * EPS32


@pytest.mark.parametrize(("backend", "dtype"), [("numpy", "float16"), ("jax", "bfloat16")])
@pytest.mark.parametrize("method", METHODS)
def test_half_precision_keeps_its_dtype(backend, dtype, method):
    """16-bit floats in, the same dtype out; computed in float64, so only the cast rounds.

    The reference is the float64 eigh power of the matrix as stored in 16 bits.
    """
    case = spd_with_spectrum(logspaced_spectrum(4, 10.0), 20)
    a = to_backend(backend, case.matrix).astype(dtype)
    x = rs.inv_root(a, 2, method=method)
    assert x.dtype == a.dtype
    stored = to_numpy(a.astype("float64"))
    w, v = np.linalg.eigh(stored)
    ref = (v * w**-0.5) @ v.T
    eps_out = 2.0**-10 if dtype == "float16" else 2.0**-7
    assert rel_err(to_numpy(x.astype("float64")), ref) <= (
        forward_tolerance(-0.5, 4, w[-1] / w[0], EPS64) + eps_out
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", METHODS)
def test_power_on_every_backend(backend, method):
    case = CASES["real"]
    x = rs.power(to_backend(backend, case.matrix), -1.5, method=method)
    n = case.matrix.shape[-1]
    # Newton computes (a^(-1/2))^3: three times the bound of the inverse square root.
    tol = 3 * forward_tolerance(-0.5, n, case.cond, EPS64)
    assert rel_err(x, case.power(-1.5)) <= tol


@pytest.mark.parametrize("backend", ["jax", "array_api"])
@pytest.mark.parametrize("method", METHODS)
def test_backends_agree_with_numpy(backend, method):
    case = CASES["batch"]
    ref = rs.inv_root(case.matrix, 4, method=method)
    x = rs.inv_root(to_backend(backend, case.matrix), 4, method=method)
    assert rel_err(x, ref) <= 2 * forward_tolerance(-0.25, 4, case.cond, EPS64)


@pytest.mark.parametrize("inverse", [True, False], ids=["inv_root", "root"])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_array_api_newton_bounds_the_spectrum_like_numpy(complex_, inverse):
    """The generic path estimates the smallest eigenvalue too (Cholesky, inverted factor).

    Without the estimate, dynamic scaling assumes a condition number of
    ``1 / (n eps)``: 19 iterations instead of 8 for this condition number 2,
    and an error a thousand times the bound.
    """
    case = spd_with_spectrum(np.geomspace(0.5, 1.0, 5), 13, complex=complex_)
    t = -1 / 8 if inverse else 1 / 8
    _, ref_info = solve(case.matrix, 8, inverse=inverse, method="newton", return_info=True)
    x, info = solve(to_backend("array_api", case.matrix), 8, inverse=inverse, method="newton",
                    return_info=True)
    # The last iterations and the stopping test see rounding, which differs between
    # namespaces; a missing estimate would cost more than twice as many.
    assert int(to_numpy(info.iterations)) <= int(ref_info.iterations) + 2
    assert rel_err(x, case.power(t)) <= forward_tolerance(t, 5, case.cond, EPS64)


def test_array_api_spectrum_estimate_rejects_indefinite_input():
    import array_api_strict as xps

    from rootsolve._backend import get_backend
    from rootsolve.conditioning import lambda_min_estimate

    good = spd_with_spectrum(np.geomspace(0.5, 1.0, 5), 13).matrix
    bad = spd_with_spectrum(np.array([-0.5, 0.6, 0.7, 0.8, 1.0]), 13).matrix
    strict = xps.asarray(good)
    est = float(to_numpy(lambda_min_estimate(get_backend(strict), strict))[0, 0])
    # The same four steps of inverse iteration as numpy's triangular solves, so the
    # same estimate up to rounding (condition number 2); a Rayleigh quotient is never
    # below the smallest eigenvalue.
    ref = float(lambda_min_estimate(get_backend(good), good)[0, 0])
    assert 0.5 * (1 - 4 * EPS64) <= est and abs(est - ref) <= 5 * 4 * EPS64 * ref
    assert lambda_min_estimate(get_backend(xps.asarray(bad)), xps.asarray(bad)) is None


BACKEND_CASES = st.one_of(
    # Two fixed shapes, shared with CASES: eager jax compiles each operation once per shape.
    spd_matrices(n=6, dtype="float64", kind=st.sampled_from(["logspaced", "clustered"])),
    spd_matrices(n=5, dtype="complex128", cond=st.floats(1.0, 1e4)),
)


@pytest.mark.parametrize("backend", ["jax", "array_api"])
@pytest.mark.parametrize("method", METHODS)
@INVERSE
@settings(max_examples=8)
@given(case=BACKEND_CASES, p=root_orders())
def test_properties_on_other_backends(case, p, inverse, method, backend):
    """The numpy property tests in brief, on jax and the generic array-API path.

    Accuracy and residual, Hermitian output, homogeneity over three scales and
    unitary similarity, with the bounds of ``test_spd_properties.py``.
    """
    from rootsolve.testing import random_orthogonal

    a = case.matrix
    n, kappa = a.shape[-1], case.cond
    t, fwd, res = _bounds(case, p, inverse, method)
    x = to_numpy(solve(to_backend(backend, a), p, inverse=inverse, method=method))
    assert rel_err(x, case.power(t)) <= fwd
    assert residual(x, a, p, inverse=inverse) <= res
    assert np.linalg.norm(x - x.conj().T) <= 2 * n * EPS64 * np.linalg.norm(x)
    for s in (1e-4, 1e4):
        xs = solve(to_backend(backend, s * a), p, inverse=inverse, method=method)
        assert rel_err(xs, s**t * x) <= 2 * fwd
    q = random_orthogonal(n, p, complex=np.iscomplexobj(a))
    b = q @ a @ q.conj().T
    y = solve(to_backend(backend, (b + b.conj().T) / 2), p, inverse=inverse, method=method)
    assert rel_err(y, q @ x @ q.conj().T) <= 3 * forward_tolerance(t, n, kappa, EPS64)


# ----------------------------------------------------------------------------- jax transforms


@functools.cache
def _jitted(inverse: bool, method: str, scaling: str):
    """One compiled function per configuration: the bare result and the result with info."""
    f = rs.inv_root if inverse else rs.root

    def both(a):
        bare = f(a, P, method=method, scaling=scaling)
        return bare, f(a, P, method=method, scaling=scaling, return_info=True)

    return jax.jit(both)


JIT_CONFIGS = [
    pytest.param(True, "eigh", "dynamic", id="inv_root-eigh"),
    pytest.param(False, "eigh", "dynamic", id="root-eigh"),
    pytest.param(True, "newton", "dynamic", id="inv_root-newton-dynamic"),
    pytest.param(True, "newton", "optimal", id="inv_root-newton-optimal"),
    pytest.param(True, "newton", "frobenius", id="inv_root-newton-frobenius"),
    pytest.param(False, "newton", "dynamic", id="root-newton-dynamic"),
]


@pytest.mark.parametrize(("inverse", "method", "scaling"), JIT_CONFIGS)
def test_jit_equals_eager(inverse, method, scaling):
    case = CASES["real"]
    a = jnp.asarray(case.matrix)
    bare, (x, info) = _jitted(inverse, method, scaling)(a)
    eager = solve(a, P, inverse=inverse, method=method, scaling=scaling)
    t, fwd, res = _bounds(case, P, inverse, method)
    assert rel_err(bare, eager) <= fwd
    assert rel_err(x, eager) <= fwd
    assert rel_err(x, case.power(t)) <= fwd
    assert bool(info.converged)
    assert float(info.residual) <= res
    if method == "newton":
        assert 0 < int(info.iterations) < 100 and int(info.gemms) > 0
    else:
        assert int(info.iterations) == 0


def _bad_inputs():
    n = CASES["real"].matrix.shape[-1]
    nan = CASES["real"].matrix.copy()
    nan[0, 1] = nan[1, 0] = np.nan
    inf = CASES["real"].matrix.copy()
    inf[2, 2] = np.inf
    negative = -spd_with_spectrum(logspaced_spectrum(n, 10.0), 15).matrix
    indefinite = spd_with_spectrum(np.linspace(-1.0, 2.0, n), 16).matrix
    return {"nan": nan, "inf": inf, "negative_definite": negative, "indefinite": indefinite}


@pytest.mark.parametrize(("inverse", "method", "scaling"), JIT_CONFIGS)
@pytest.mark.parametrize("kind", ["nan", "inf", "negative_definite", "indefinite"])
def test_jit_reports_invalid_input(kind, inverse, method, scaling):
    """Under ``jit`` nothing can raise: ``info.converged`` is False and the bare result NaN."""
    a = jnp.asarray(_bad_inputs()[kind])
    bare, (_, info) = _jitted(inverse, method, scaling)(a)
    assert not bool(info.converged)
    assert bool(jnp.all(jnp.isnan(bare)))


@pytest.mark.parametrize("method", METHODS)
def test_jit_reports_singular_inverse_root(method):
    from rootsolve.testing import rank_deficient_spd

    a = jnp.asarray(rank_deficient_spd(6, 4, 17).matrix)
    bare, (_, info) = _jitted(True, method, "dynamic")(a)
    assert not bool(info.converged)
    assert bool(jnp.all(jnp.isnan(bare)))


@pytest.mark.parametrize("method", METHODS)
def test_jit_batch_flags_only_the_bad_member(method):
    """One invalid matrix in a batch does not spoil the others."""
    good = CASES["real"].matrix
    bad = _bad_inputs()["negative_definite"]
    a = jnp.asarray(np.stack([good, bad, good]))
    bare, (x, info) = _jitted(True, method, "dynamic")(a)
    np.testing.assert_array_equal(np.asarray(info.converged), [True, False, True])
    assert bool(jnp.all(jnp.isnan(bare[1])))
    t, fwd, _ = _bounds(CASES["real"], P, True, method)
    for i in (0, 2):
        assert rel_err(bare[i], CASES["real"].power(t)) <= fwd


@pytest.mark.parametrize("method", METHODS)
def test_vmap_equals_batched(method):
    case = CASES["batch"]
    a = jnp.asarray(case.matrix)
    f = jax.jit(jax.vmap(lambda m: rs.inv_root(m, P, method=method)))
    t, fwd, _ = _bounds(case, P, True, method)
    x = f(a)
    assert rel_err(x, rs.inv_root(a, P, method=method)) <= fwd
    assert rel_err(x, case.power(t)) <= fwd


def test_jit_does_not_recompile_for_new_values():
    """Same shape and dtype, new values: the compiled function is reused."""
    f = _jitted(True, "newton", "dynamic")
    f(jnp.asarray(CASES["real"].matrix))
    before = f._cache_size()
    f(jnp.asarray(2.0 * CASES["real"].matrix))
    assert f._cache_size() == before


@pytest.mark.parametrize("method", METHODS)
def test_concrete_array_captured_inside_a_trace(method):
    """A concrete array closed over by a ``lax.cond`` branch is staged, not eager."""
    case = CASES["real"]
    a = jnp.asarray(case.matrix)
    x = jax.lax.cond(True, lambda: rs.inv_root(a, P, method=method), lambda: a)
    t, fwd, _ = _bounds(case, P, True, method)
    assert rel_err(x, case.power(t)) <= fwd


def test_jax_float32_with_x64_disabled_in_compute():
    """``compute_dtype="float32"`` keeps jax in float32 end to end."""
    case = spd_with_spectrum(logspaced_spectrum(5, 1e2), 18, dtype=np.float32)
    x = rs.inv_root(jnp.asarray(case.matrix), 2, method="newton", compute_dtype="float32")
    assert x.dtype == jnp.float32
    assert rel_err(x, case.power(-0.5)) <= forward_tolerance(-0.5, 5, case.cond, EPS32)


# ----------------------------------------------------------------------------- GPU (cupy)


@pytest.mark.gpu
@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@INVERSE
@pytest.mark.parametrize("name", list(CASES))
def test_cupy_accuracy(name, inverse, method, scaling):
    cp = cupy_or_skip()
    case = CASES[name]
    a = cp.asarray(case.matrix)
    x, info = solve(a, P, inverse=inverse, method=method, scaling=scaling, return_info=True)
    assert isinstance(x, cp.ndarray) and x.dtype == a.dtype
    t, fwd, res = _bounds(case, P, inverse, method)
    assert rel_err(cp.asnumpy(x), case.power(t)) <= fwd
    assert residual(cp.asnumpy(x), case.matrix, P, inverse=inverse) <= res
    assert bool(cp.all(info.converged))


@pytest.mark.gpu
def test_cupy_newton_bounds_the_spectrum_like_numpy():
    cp = cupy_or_skip()
    case = spd_with_spectrum(np.geomspace(0.5, 1.0, 5), 13, complex=True)
    _, ref_info = solve(case.matrix, 8, inverse=True, method="newton", return_info=True)
    x, info = solve(cp.asarray(case.matrix), 8, inverse=True, method="newton", return_info=True)
    assert int(info.iterations) <= int(ref_info.iterations) + 2
    assert rel_err(cp.asnumpy(x), case.power(-1 / 8)) <= forward_tolerance(-1 / 8, 5, case.cond,
                                                                            EPS64)
    bad = cp.asarray(spd_with_spectrum(np.array([-0.5, 0.6, 0.7, 0.8, 1.0]), 13).matrix)
    from rootsolve._backend import get_backend
    from rootsolve.conditioning import lambda_min_estimate

    assert lambda_min_estimate(get_backend(bad), bad) is None


@pytest.mark.gpu
@pytest.mark.parametrize("method", METHODS)
def test_cupy_float32_and_errors(method):
    cp = cupy_or_skip()
    case = spd_with_spectrum(logspaced_spectrum(5, 1e2), 19, dtype=np.float32)
    x = rs.inv_root(cp.asarray(case.matrix), 2, method=method)
    assert x.dtype == cp.float32
    # On a GPU the default compute precision is the input's: a float32 bound.
    assert rel_err(cp.asnumpy(x), case.power(-0.5)) <= forward_tolerance(-0.5, 5, case.cond,
                                                                           EPS32)
    with pytest.raises(rs.NotPositiveDefiniteError):
        rs.inv_root(cp.asarray(_bad_inputs()["indefinite"]), 2, method=method)
    with pytest.raises(ValueError, match="square"):
        rs.inv_root(cp.ones((2, 3)), 2, method=method)
