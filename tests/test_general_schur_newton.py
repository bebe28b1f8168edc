"""Schur-Newton for general matrices: properties, scipy references, named matrices.

References are computed another way: ``scipy.linalg.fractional_matrix_power``
(complex Schur form and the inverse scaling-and-squaring Pade method),
``scipy.linalg.sqrtm``, the eigendecomposition a test matrix was built from,
and the Hermitian eigh path of rootsolve itself for the symmetric named
matrices. Bounds come from ``general_tolerance``: ``n eps`` times the power's
condition number (forward errors, from the Kronecker form of its Frechet
derivative) or the stability factor ``||X||^p / ||A||`` (residuals).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg as sl
from hypothesis import given, settings
from hypothesis import strategies as st

import rootsolve as rs
from rootsolve import testing as gm
from rootsolve.schur_newton import QuasiTriangular, quasi_triangular_sqrt, schur_eigenvalues

EPS = float(np.finfo(np.float64).eps)
ORDERS = st.integers(1, 8)


def reference(a: np.ndarray, t: float) -> np.ndarray:
    """scipy's principal power; real part for real input (its imaginary part is rounding)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about its own estimated accuracy
        x = sl.fractional_matrix_power(a, t)
    if np.isrealobj(a):
        assert np.linalg.norm(x.imag) <= 1e-8 * np.linalg.norm(x)
        return x.real
    return x


def rel_err(x: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


def forward_bound(a: np.ndarray, m: int, p: int) -> float:
    cond = gm.general_power_condition(a, m, p, reference(a, 1.0 / p))
    return gm.general_tolerance(a.shape[-1], cond + 1, EPS)


def own_residual(x: np.ndarray, a: np.ndarray, p: int, inverse: bool) -> float:
    """``||X^p - A||_F / ||A||_F`` or ``||X^p A - I||_F / sqrt(n)``, recomputed here."""
    xp = np.linalg.matrix_power(x, p)
    if inverse:
        return float(np.linalg.norm(xp @ a - np.eye(a.shape[-1])) / np.sqrt(a.shape[-1]))
    return float(np.linalg.norm(xp - a) / np.linalg.norm(a))


@settings(max_examples=30, deadline=None)
@given(gm.general_matrices(), ORDERS, st.booleans())
def test_residual_is_bounded(case, p, inverse):
    a = case.a
    fn = rs.inv_root if inverse else rs.root
    x, info = fn(a, p, assume_a="gen", return_info=True)
    assert bool(info.converged)
    # p = 1 is an integer power (a itself, or its inverse): binary powering, no root.
    assert info.method_name == ("integer_power" if p == 1 else "schur_newton")
    res = own_residual(x, a, p, inverse)
    alpha = gm.general_stability_factor(a, x, -1 if inverse else 1, p)
    assert res <= gm.general_tolerance(a.shape[-1], alpha, EPS)
    # Both residuals are X^p - A^m formed in floating point: each carries a rounding error
    # of about p n eps ||X||^p / ||A^m|| = p n eps alpha, so they agree to that.
    assert float(info.residual) == pytest.approx(res, rel=1e-6, abs=p * a.shape[-1] * EPS * alpha)


@settings(max_examples=30, deadline=None)
@given(gm.general_matrices(), gm.general_exponents())
def test_agrees_with_fractional_matrix_power(case, exponent):
    m, p = exponent
    a = case.a
    x = rs.power(a, m / p, assume_a="gen")
    assert x.dtype == a.dtype  # real stays real where scipy returns complex128
    # scipy's Schur-Pade result is itself only forward stable, with an error of the same
    # order: two approximations within the bound of the exact power differ by twice it.
    assert rel_err(x, reference(a, m / p)) <= 2 * forward_bound(a, m, p)


@settings(max_examples=20, deadline=None)
@given(gm.general_matrices(kinds=("spectrum", "near_negative")), ORDERS)
def test_agrees_with_the_eigendecomposition_it_was_built_from(case, p):
    x = rs.inv_root(case.a, p, assume_a="gen")
    cond_v = np.linalg.cond(case.v)
    bound = forward_bound(case.a, -1, p) + gm.general_tolerance(case.a.shape[-1], cond_v, EPS)
    assert rel_err(x, case.power(-1.0 / p)) <= bound


@settings(max_examples=20, deadline=None)
@given(gm.general_matrices(), ORDERS)
def test_root_commutes_with_the_matrix(case, p):
    a = case.a
    x = rs.root(a, p, assume_a="gen")
    # X = X* + E with ||E|| <= fwd ||X||, and X* A = A X*: ||XA - AX|| <= 2 fwd ||X|| ||A||.
    scale = 2 * forward_bound(a, 1, p) * np.linalg.norm(x) * np.linalg.norm(a)
    assert np.linalg.norm(x @ a - a @ x) <= scale


@pytest.mark.parametrize("p", [2, 3, 5, 8])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
def test_output_dtype_is_input_dtype(p, dtype):
    case = gm.with_spectrum([2.0, 1 + 2j, 1 - 2j, 0.5], rng=p, real=dtype.startswith("float"))
    a = case.a.astype(dtype)
    x = rs.root(a, p, assume_a="gen")
    assert x.dtype == np.dtype(dtype)
    eps = float(np.finfo(dtype).eps)
    cond = gm.general_power_condition(case.a, 1, p, case.power(1.0 / p))
    assert rel_err(x, case.power(1.0 / p)) <= gm.general_tolerance(4, cond + 1, eps)


def test_real_input_with_complex_eigenvalues_gives_a_real_root():
    case = gm.with_spectrum([-1 + 1j, -1 - 1j, 3 + 4j, 3 - 4j, 0.25], rng=0)
    x = rs.root(case.a, 3, assume_a="gen")
    assert x.dtype == np.float64
    assert np.iscomplexobj(sl.fractional_matrix_power(case.a, 1 / 3))
    assert rel_err(x, case.power(1 / 3)) <= forward_bound(case.a, 1, 3)


@settings(max_examples=20, deadline=None)
@given(gm.general_matrices(), ORDERS)
def test_inverse_root_inverts(case, p):
    a = case.a
    x = rs.inv_root(a, p, assume_a="gen")
    alpha = gm.general_stability_factor(a, x, -1, p)
    assert own_residual(x, a, p, inverse=True) <= gm.general_tolerance(a.shape[-1], alpha, EPS)


@settings(max_examples=20, deadline=None)
@given(gm.general_matrices(), ORDERS, st.integers(0, 2**32 - 1))
def test_similarity_invariance(case, p, seed):
    """``(Q A Q^H)^(1/p) = Q A^(1/p) Q^H`` for unitary ``Q`` (conditioning unchanged)."""
    a = case.a
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(a.shape) + (0 if np.isrealobj(a) else 1j * rng.standard_normal(a.shape))
    q = np.linalg.qr(g)[0]
    x = rs.root(a, p, assume_a="gen")
    y = rs.root(q @ a @ q.conj().T, p, assume_a="gen")
    assert rel_err(q.conj().T @ y @ q, x) <= 2 * forward_bound(a, 1, p)


@settings(max_examples=20, deadline=None)
@given(gm.general_matrices())
def test_square_root_matches_sqrtm(case):
    a = case.a
    x = rs.root(a, 2, assume_a="gen")
    ref = sl.sqrtm(a)
    assert rel_err(x, ref) <= forward_bound(a, 1, 2)


def test_batches_match_single_matrices():
    cases = [gm.random_spectrum(5, rng=s) for s in range(6)]
    a = np.stack([c.a for c in cases]).reshape(2, 3, 5, 5)
    x, info = rs.inv_root(a, 3, assume_a="gen", return_info=True)
    assert x.shape == a.shape and info.converged.shape == (2, 3) and info.converged.all()
    for idx in np.ndindex(2, 3):
        assert np.array_equal(x[idx], rs.inv_root(a[idx], 3, assume_a="gen"))


def test_integer_exponents_are_exact_powers():
    a = gm.random_spectrum(6, rng=3).a
    # Through the Schur form and back: rounding of a unitary similarity (and an inverse).
    assert rel_err(rs.power(a, 1.0, assume_a="gen"), a) <= gm.general_tolerance(6, 1, EPS)
    inv_bound = gm.general_tolerance(6, np.linalg.cond(a), EPS)
    assert rel_err(rs.power(a, -1.0, assume_a="gen"), np.linalg.inv(a)) <= inv_bound
    assert np.array_equal(rs.power(a, 0.0, assume_a="gen"), np.eye(6))


# ------------------------------------------------------------------- named matrices


@pytest.mark.parametrize("p", [3, 4])
def test_frank_root_has_unit_determinant_and_cubes_back(p):
    """Frank: det 1 and real positive eigenvalues, the small ones ill-conditioned."""
    a = gm.frank(6)
    x, info = rs.root(a, p, assume_a="gen", return_info=True)
    assert x.dtype == np.float64 and bool(info.converged)
    assert abs(np.linalg.det(x) - 1) <= gm.general_tolerance(6, np.linalg.cond(a), EPS)
    alpha = gm.general_stability_factor(a, x, 1, p)
    assert own_residual(x, a, p, inverse=False) <= gm.general_tolerance(6, alpha, EPS)
    assert rel_err(x, reference(a, 1 / p)) <= forward_bound(a, 1, p)


@pytest.mark.parametrize("name", ["lehmer", "pascal"])
@pytest.mark.parametrize("p", [2, 3])
def test_symmetric_named_matrices_agree_with_the_hermitian_path(name, p):
    """Lehmer and Pascal are SPD: the general method must match eigh and stay symmetric."""
    a = gm.NAMED_MATRICES[name](6)
    x = rs.inv_root(a, p, assume_a="gen")
    y = rs.inv_root(a, p, method="eigh")
    bound = forward_bound(a, -1, p)
    assert rel_err(x, y) <= bound
    assert np.linalg.norm(x - x.T) <= bound * np.linalg.norm(x)


@pytest.mark.parametrize("p", [2, 5])
def test_kahan_root_is_upper_triangular(p):
    """Kahan is upper triangular, strongly nonnormal: its root is triangular with diag^(1/p)."""
    a = gm.kahan(10)
    x = rs.root(a, p, assume_a="gen")
    bound = forward_bound(a, 1, p)
    assert np.linalg.norm(np.tril(x, -1)) <= bound * np.linalg.norm(x)
    np.testing.assert_allclose(np.diag(x), np.diag(a) ** (1 / p), rtol=bound)
    assert rel_err(x, reference(a, 1 / p)) <= bound


@pytest.mark.parametrize("p", [3, 6])
def test_grcar_root_is_real(p):
    """Grcar has complex pairs with arguments near pi/2: real Schur 2x2 blocks, real root."""
    a = gm.grcar(12)
    x, info = rs.root(a, p, assume_a="gen", return_info=True)
    assert x.dtype == np.float64 and bool(info.converged)
    assert rel_err(x, reference(a, 1 / p)) <= forward_bound(a, 1, p)


# ------------------------------------------------------- quasi-triangular square root


def _quasi_triangular(n: int, seed: int) -> np.ndarray:
    case = gm.random_spectrum(n, rng=seed, moduli=(0.2, 5.0), max_arg=2.5)
    return sl.schur(case.a, output="real")[0]


@pytest.mark.parametrize("n", [1, 2, 3, 9, 70])
def test_quasi_triangular_sqrt_squares_back_in_real_arithmetic(n):
    t = _quasi_triangular(n, n)
    u = quasi_triangular_sqrt(t)
    assert u.dtype == np.float64
    # same block structure: nothing below the subdiagonal, subdiagonal only inside 2x2 blocks
    assert not np.tril(u, -2).any()
    assert np.all((np.diag(u, -1) != 0) <= (np.diag(t, -1) != 0))
    alpha = np.linalg.norm(u) ** 2 / np.linalg.norm(t)
    assert rel_err(u @ u, t) <= gm.general_tolerance(n, alpha, EPS)
    lam_u = np.sort_complex(schur_eigenvalues(u))
    np.testing.assert_allclose(lam_u, np.sort_complex(np.sqrt(schur_eigenvalues(t))), rtol=1e-10)
    assert np.all(lam_u.real > 0)


def test_quasi_triangular_sqrt_of_complex_triangular():
    case = gm.random_spectrum(40, rng=5, real=False)
    t = sl.schur(case.a, output="complex")[0]
    u = quasi_triangular_sqrt(t)
    assert np.array_equal(np.triu(u), u)
    alpha = np.linalg.norm(u) ** 2 / np.linalg.norm(t)
    assert rel_err(u @ u, t) <= gm.general_tolerance(40, alpha, EPS)


@pytest.mark.parametrize("leaf", [1, 3, 8])
@pytest.mark.parametrize("real", [True, False])
def test_structured_products_and_inverse_match_dense(real, leaf):
    """Recursion down to tiny leaves never cuts a 2x2 block: same as ``@`` and ``inv``."""
    case = gm.random_spectrum(40, rng=6, moduli=(0.5, 2.0), real=real)
    t = sl.schur(case.a, output="real" if real else "complex")[0]
    u = quasi_triangular_sqrt(t)
    qt = QuasiTriangular(t, leaf=leaf)
    bound = gm.general_tolerance(40, 1.0, EPS)
    assert rel_err(qt.matmul(u, t), u @ t) <= bound
    assert rel_err(qt.matmul(np.diag(np.diag(t)), u), np.diag(np.diag(t)) @ u) <= bound
    inv = qt.inv(u)
    assert rel_err(inv, np.linalg.inv(u)) <= gm.general_tolerance(40, np.linalg.cond(u), EPS)
    assert not np.tril(inv, -2).any()


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_larger_matrix_agrees_with_fractional_matrix_power(dtype):
    """n = 120, above the dense leaf: the structured recursion runs end to end."""
    case = gm.random_spectrum(120, rng=8, moduli=(0.2, 5.0), real=dtype == "float64")
    x = rs.root(case.a, 3, assume_a="gen")
    assert x.dtype == np.dtype(dtype)
    ref = reference(case.a, 1 / 3)
    # cond(V) = 10 bounds how far the eigenvalues (and the root) move per unit perturbation
    bound = gm.general_tolerance(120, 10.0 * np.linalg.cond(case.a), EPS)
    assert rel_err(x, ref) <= bound
    alpha = gm.general_stability_factor(case.a, x, 1, 3)
    assert own_residual(x, case.a, 3, inverse=False) <= gm.general_tolerance(120, alpha, EPS)
