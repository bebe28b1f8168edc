"""Properties of roots and powers of Hermitian positive definite matrices (numpy backend).

Every matrix comes from :mod:`rootsolve.testing` with a known eigendecomposition,
so each result is compared with a reference computed another way
(:meth:`SPDMatrix.power`) under the error bounds of
:func:`rootsolve.testing.forward_tolerance` and
:func:`rootsolve.testing.residual_tolerance`. The same checks on jax and on the
generic array-API path live in ``test_backends.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
from _spd_support import CONFIGS, EPS32, EPS64, METHODS, rel_err, residual, solve
from hypothesis import given, settings
from hypothesis import strategies as st

import rootsolve as rs
from rootsolve.testing import (
    forward_tolerance,
    logspaced_spectrum,
    power_condition,
    random_orthogonal,
    residual_tolerance,
    root_orders,
    spd_matrices,
    spd_with_spectrum,
)

REGULAR = st.sampled_from(["logspaced", "clustered"])
WIDE = st.sampled_from(["float64", "complex128"])
NARROW = st.sampled_from(["float32", "complex64"])
INVERSE = pytest.mark.parametrize("inverse", [True, False], ids=["inv_root", "root"])
SCALES = np.logspace(-4, 4, 9)


def _t(p: int, inverse: bool) -> float:
    return -1.0 / p if inverse else 1.0 / p


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@INVERSE
@given(case=spd_matrices(kind=REGULAR, dtype=WIDE), p=root_orders())
def test_forward_error_and_residual(case, p, inverse, method, scaling):
    x = solve(case.matrix, p, inverse=inverse, method=method, scaling=scaling)
    n, kappa, t = case.matrix.shape[-1], case.cond, _t(p, inverse)
    assert x.dtype == case.matrix.dtype
    assert rel_err(x, case.power(t)) <= forward_tolerance(t, n, kappa, EPS64)
    bound = residual_tolerance(
        p, n, kappa, EPS64, inverse=inverse, backward_stable=method == "eigh"
    )
    assert residual(x, case.matrix, p, inverse=inverse) <= bound


@given(case=spd_matrices(kind="rank_deficient", dtype=WIDE), p=root_orders())
def test_root_of_singular_matrix(case, p):
    """The principal root of a singular PSD matrix, by eigh.

    ``x^(1/p)`` is not Lipschitz at 0: the rounding-size eigenvalues
    ``|eta| <~ n eps lmax`` that replace the zeros map to ``eta^(1/p)``, so
    besides the forward bound of the nonzero part (condition ``kappa_r``)
    the error carries ``sqrt(n) (4 n eps)^(1/p)`` relative to ``lmax^(1/p)``.
    """
    x = rs.root(case.matrix, p, method="eigh")
    n, t = case.matrix.shape[-1], 1.0 / p
    w = case.eigenvalues
    nonzero = w[w > 0]
    kappa_r = float(nonzero.max() / nonzero.min()) if nonzero.size else 1.0
    tol = forward_tolerance(t, n, kappa_r, EPS64) + math.sqrt(n) * (4 * n * EPS64) ** t
    ref = case.power(t, stored=False)
    if not nonzero.size:
        assert np.linalg.norm(x) <= math.sqrt(n) * (4 * n * EPS64 * np.abs(case.matrix).max()) ** t
        return
    assert rel_err(x, ref) <= tol


@pytest.mark.parametrize("scaling", ["dynamic", "optimal", "frobenius"])
@INVERSE
@settings(max_examples=50)
@given(case=spd_matrices(kind=REGULAR, dtype=WIDE), p=root_orders())
def test_eigh_and_newton_agree(case, p, inverse, scaling):
    x_e = solve(case.matrix, p, inverse=inverse, method="eigh")
    x_n = solve(case.matrix, p, inverse=inverse, method="newton", scaling=scaling)
    n, t = case.matrix.shape[-1], _t(p, inverse)
    assert rel_err(x_n, x_e) <= 2 * forward_tolerance(t, n, case.cond, EPS64)


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@settings(max_examples=15)
@given(
    case=spd_matrices(n=st.integers(1, 8), kind=REGULAR, cond=st.floats(1.0, 1e4), scale=1.0),
    p=root_orders(),
)
def test_homogeneity(case, p, method, scaling):
    """``(s A)^t = s^t A^t`` over ``s`` in ``logspace(-4, 4, 9)`` (scipy's test scales).

    ``s A`` is rounded entrywise (a backward error of ``eps``), so each side
    is within :func:`forward_tolerance` of the exact power of the matrix it
    was given; their difference within twice that.
    """
    n = case.matrix.shape[-1]
    for inverse in (True, False):
        t = _t(p, inverse)
        base = solve(case.matrix, p, inverse=inverse, method=method, scaling=scaling)
        tol = 2 * forward_tolerance(t, n, case.cond, EPS64)
        for s in SCALES:
            x = solve(s * case.matrix, p, inverse=inverse, method=method, scaling=scaling)
            assert rel_err(x, s**t * base) <= tol, (s, t)


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@settings(max_examples=30)
@given(case=spd_matrices(kind=REGULAR, dtype=WIDE), p=root_orders(), seed=st.integers(0, 2**32 - 1))
def test_unitary_similarity(case, p, seed, method, scaling):
    """``f(Q A Q^H) = Q f(A) Q^H`` for Haar-random orthogonal (unitary) ``Q``.

    Forming ``Q A Q^H`` rounds by about ``n eps ||A||``: a backward error of
    the size the forward bound already allows, hence three times the bound.
    """
    a = case.matrix
    n = a.shape[-1]
    q = random_orthogonal(n, seed, complex=np.iscomplexobj(a))
    qh = q.conj().T
    b = q @ a @ qh
    b = (b + b.conj().T) / 2
    for inverse in (True, False):
        t = _t(p, inverse)
        x = solve(a, p, inverse=inverse, method=method, scaling=scaling)
        y = solve(b, p, inverse=inverse, method=method, scaling=scaling)
        assert rel_err(y, q @ x @ qh) <= 3 * forward_tolerance(t, n, case.cond, EPS64)


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@INVERSE
@settings(max_examples=30)
@given(case=spd_matrices(kind=REGULAR, dtype=WIDE), p=root_orders())
def test_output_is_hermitian(case, p, inverse, method, scaling):
    """``X = X^H`` up to the rounding of one product (``n eps ||X||``)."""
    x = solve(case.matrix, p, inverse=inverse, method=method, scaling=scaling)
    n = x.shape[-1]
    assert np.linalg.norm(x - x.conj().T) <= 2 * n * EPS64 * np.linalg.norm(x)


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@settings(max_examples=30)
@given(case=spd_matrices(kind=REGULAR, dtype=WIDE))
def test_order_one_is_the_inverse(case, method, scaling):
    """``inv_root(a, 1)`` against LAPACK's ``inv``: two solutions, each within the bound."""
    x = rs.inv_root(case.matrix, 1, method=method, scaling=scaling)
    n = x.shape[-1]
    ref = np.linalg.inv(case.matrix)
    assert rel_err(x, ref) <= 2 * forward_tolerance(-1.0, n, case.cond, EPS64)
    assert rel_err(rs.root(case.matrix, 1, method=method, scaling=scaling), case.matrix) <= (
        forward_tolerance(1.0, n, case.cond, EPS64)
    )


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@settings(max_examples=30)
@given(case=spd_matrices(kind=REGULAR, dtype=WIDE))
def test_square_root_matches_scipy(case, method, scaling):
    """p = 2 against ``scipy.linalg.sqrtm`` (Schur method, a different algorithm).

    The inverse square root is compared with ``inv(sqrtm(a))``, whose inverse
    adds a relative error of ``n eps sqrt(kappa)``: three times the bound.
    """
    a = case.matrix
    n = a.shape[-1]
    ref = scipy.linalg.sqrtm(a)
    if not np.iscomplexobj(a):
        ref = np.real(ref)
    x = rs.root(a, 2, method=method, scaling=scaling)
    assert rel_err(x, ref) <= 2 * forward_tolerance(0.5, n, case.cond, EPS64)
    y = rs.inv_root(a, 2, method=method, scaling=scaling)
    assert rel_err(y, np.linalg.inv(ref)) <= 3 * forward_tolerance(-0.5, n, case.cond, EPS64)


#: Exponents of the form q/p (Newton can do them) and irrational ones (eigh only).
RATIONAL_T = [-2.5, -1.0, -0.5, -1.0 / 3.0, 0.3, 0.5, 0.75, 1.5, 2.0, 3.0]
IRRATIONAL_T = [math.pi / 4, -1.0 / math.e, math.sqrt(2.0)]


def _power_tol(t: float, n: int, kappa: float, method: str) -> float:
    """Forward bound for ``a^t``; Newton computes ``(a^(+-1/p))^q`` and multiplies by ``q``.

    Powering a root with relative error ``d`` to the ``q``-th power gives
    ``q d``, so Newton's bound is ``q * forward_tolerance(+-1/p)``, larger than
    the condition of ``a^t`` itself for ``0 < t`` (e.g. ``t = 3/4``).
    """
    if method == "eigh" or t == 0:
        return forward_tolerance(t, n, kappa, EPS64)
    from fractions import Fraction

    f = Fraction(t).limit_denominator(64)
    q, p = abs(f.numerator), f.denominator
    return q * forward_tolerance(math.copysign(1.0 / p, t), n, kappa, EPS64)


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@settings(max_examples=30)
@given(
    case=spd_matrices(kind=REGULAR, dtype=WIDE),
    t=st.sampled_from(RATIONAL_T + IRRATIONAL_T),
)
def test_real_powers(case, t, method, scaling):
    if method == "newton" and t in IRRATIONAL_T:
        with pytest.raises(ValueError, match="method='eigh'"):
            rs.power(case.matrix, t, method=method)
        return
    x = rs.power(case.matrix, t, method=method, scaling=scaling)
    n = x.shape[-1]
    assert rel_err(x, case.power(t)) <= _power_tol(t, n, case.cond, method)


@pytest.mark.parametrize("method", METHODS)
def test_power_zero_is_identity(method):
    case = spd_with_spectrum(logspaced_spectrum(5, 1e3), 0)
    np.testing.assert_array_equal(rs.power(case.matrix, 0, method=method), np.eye(5))


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@INVERSE
@pytest.mark.parametrize("p", range(1, 9))
def test_every_integer_order(p, inverse, method, scaling):
    """Any integer p, not only powers of two: p = 3, 5, 6, 7 included.

    (``optax.matrix_inverse_pth_root`` is exact only for p in {1, 2, 4, 8}.)
    Checked against the known eigendecomposition and by the residual.
    """
    case = spd_with_spectrum(logspaced_spectrum(10, 1e4, lmax=3.0), p, complex=p % 2 == 1)
    t = _t(p, inverse)
    x, info = solve(case.matrix, p, inverse=inverse, method=method, scaling=scaling,
                    return_info=True)
    assert rel_err(x, case.power(t)) <= forward_tolerance(t, 10, case.cond, EPS64)
    bound = residual_tolerance(p, 10, case.cond, EPS64, inverse=inverse,
                               backward_stable=method == "eigh")
    assert residual(x, case.matrix, p, inverse=inverse) <= bound
    assert bool(info.converged)
    assert float(info.residual) <= bound


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@settings(max_examples=20)
@given(
    case=spd_matrices(
        n=st.integers(1, 6), kind=REGULAR, dtype=WIDE,
        batch_shape=st.sampled_from([(1,), (3,), (2, 3)]),
    ),
    p=root_orders(),
)
def test_batched_equals_looped(case, p, method, scaling):
    """A batch gives what one call per matrix gives (to rounding: BLAS may block differently)."""
    a = case.matrix
    n = a.shape[-1]
    batch = a.shape[:-2]
    for inverse in (True, False):
        x, info = solve(a, p, inverse=inverse, method=method, scaling=scaling, return_info=True)
        assert x.shape == a.shape
        assert all(np.shape(field) == batch for field in info)
        t = _t(p, inverse)
        for idx in np.ndindex(*batch):
            one = solve(a[idx], p, inverse=inverse, method=method, scaling=scaling)
            kappa = float(case.eigenvalues[idx][-1] / case.eigenvalues[idx][0])
            assert rel_err(x[idx], one) <= forward_tolerance(t, n, kappa, EPS64)


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@INVERSE
@settings(max_examples=30)
@given(case=spd_matrices(kind=REGULAR, dtype=NARROW), p=root_orders())
def test_single_precision(case, p, inverse, method, scaling):
    """float32 in, float32 out, accurate to float32 level.

    By default the computation runs in float64 (CPU), so against the power of
    the matrix as stored the only float32 error is the final cast (``eps32``).
    With ``compute_dtype`` float32 the whole bound is in ``eps32``.
    """
    a = case.matrix
    n, t = a.shape[-1], _t(p, inverse)
    x = solve(a, p, inverse=inverse, method=method, scaling=scaling)
    assert x.dtype == a.dtype
    ref = case.power(t)
    assert rel_err(x, ref) <= forward_tolerance(t, n, case.cond, EPS64) + 2 * EPS32
    low = "complex64" if np.iscomplexobj(a) else "float32"
    y = solve(a, p, inverse=inverse, method=method, scaling=scaling, compute_dtype=low)
    assert y.dtype == a.dtype
    assert rel_err(y, ref) <= forward_tolerance(t, n, case.cond, EPS32)


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@INVERSE
def test_info_fields(inverse, method, scaling):
    case = spd_with_spectrum(logspaced_spectrum(8, 1e3), 3)
    p = 3
    x, info = solve(case.matrix, p, inverse=inverse, method=method, scaling=scaling,
                    return_info=True)
    assert bool(info.converged)
    assert info.method_name == method
    assert rs.METHOD_NAMES[int(info.method)] == method
    assert float(info.ridge) == 0.0
    bound = residual_tolerance(p, 8, case.cond, EPS64, inverse=inverse,
                               backward_stable=method == "eigh")
    assert 0.0 <= float(info.residual) <= bound
    assert float(info.residual) == pytest.approx(
        residual(x, case.matrix, p, inverse=inverse), rel=0.5, abs=8 * 8 * EPS64
    )
    if method == "eigh":
        assert int(info.iterations) == 0 and int(info.gemms) == 0
    else:
        assert 0 < int(info.iterations) < 100
        assert int(info.gemms) >= int(info.iterations) * 3
    np.testing.assert_array_equal(x, solve(case.matrix, p, inverse=inverse, method=method,
                                           scaling=scaling))


def test_power_condition_matches_finite_differences():
    """The condition numbers behind every tolerance, checked numerically on a diagonal matrix."""
    w = logspaced_spectrum(2, 1e4)
    for t in (-0.5, 0.25, 2.0):
        h = 1e-7 * w[0]
        num = abs((w[0] + h) ** t - w[0] ** t) / h  # |f'(lmin)|
        num = max(num, abs(t) * w[1] ** (t - 1))
        cond = num * w[1] / max(w[0] ** t, w[1] ** t)
        assert cond == pytest.approx(power_condition(t, 1e4), rel=1e-5)
