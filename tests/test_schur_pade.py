"""Schur-Pade powers A^t for any real t: pieces, references in mpmath, branches, singular A."""

import math

import mpmath
import numpy as np
import pytest
import scipy.linalg as sl
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from rootsolve import errors
from rootsolve.general_power import power_one, schur_pade_power
from rootsolve.schur_pade import (
    THETA,
    briggs_minus_one,
    pade_coefficients,
    pade_polynomials,
    power_superdiagonal,
)
from rootsolve.testing import random_spectrum, with_spectrum

EPS = float(np.finfo(np.float64).eps)
U = EPS / 2


def _continued_fraction(x: float, f: float, m: int) -> float:
    c = pade_coefficients(f, m)
    y = c[-1] * x
    for cj in c[-2::-1]:
        y = cj * x / (1 + y)
    return 1 + y


@pytest.mark.parametrize("m", range(1, 8))
@pytest.mark.parametrize("f", [-0.9, -0.37, 0.2, 0.5, 0.99])
def test_pade_accurate_up_to_theta(m, f):
    # THETA[m] is where the degree-m approximant's error reaches the unit roundoff
    # (Higham & Lin 2011, Table 3.1): allow a few ulps for the scalar evaluation.
    for x in (-THETA[m], THETA[m] / 3, THETA[m]):
        exact = (1 - x) ** f
        assert abs(_continued_fraction(x, f, m) - exact) <= 8 * EPS * abs(exact)


@pytest.mark.parametrize("m", range(1, 8))
@pytest.mark.parametrize("f", [-0.9, -0.37, 0.2, 0.5, 0.99])
def test_pade_polynomials_are_the_continued_fraction(m, f):
    # The same rational function: p_m / q_m of degree m each, q_m(0) = 1, equal to
    # the continued fraction wherever it is evaluated; within the rounding of the
    # two sums, sum |c_k| x^k <= 10 (module docstring) times a few ulps.
    num, den = pade_polynomials(f, m)
    assert num.shape == den.shape == (m + 1,) and den[0] == 1
    for x in (-THETA[m], THETA[m] / 3, THETA[m], -0.9):
        r = np.polynomial.polynomial.polyval(x, num) / np.polynomial.polynomial.polyval(x, den)
        cf = _continued_fraction(x, f, m)
        assert abs(r - cf) <= 64 * EPS * abs(cf)


def test_pade_is_exact_to_first_order():
    f, x = 0.3, 1e-9
    assert _continued_fraction(x, f, 1) == pytest.approx(1 - f * x, abs=1e-17)


def test_briggs_minus_one_against_mpmath():
    mpmath.mp.dps = 40
    lam = np.array([1 + 1e-10, 0.5 + 2j, 3e-3, 1e4 - 1e3j, 1 - 1e-13j])
    for k in range(6):
        got = briggs_minus_one(lam, k)
        for z, g in zip(lam, got, strict=True):
            ref = complex(mpmath.power(mpmath.mpc(z), mpmath.mpf(2) ** -k) - 1)
            assert abs(g - ref) <= 4 * EPS * abs(ref)


@pytest.mark.parametrize(
    "l1, l2", [(2.0, 2.0), (1.0, 9.0), (1.0, 1.0 + 1e-9), (0.3 + 2j, 0.3 + 2.000001j),
               (-1 + 1e-3j, -1 - 1e-3j), (5j, -5j)]
)
def test_power_superdiagonal_against_mpmath(l1, l2):
    mpmath.mp.dps = 50
    p, t12 = 0.37, 1.5
    got = power_superdiagonal(np.array([l1]), np.array([l2]), np.array([t12]), p)[0]
    a, b = mpmath.mpc(l1), mpmath.mpc(l2)
    dd = p * a ** (p - 1) if l1 == l2 else (b**p - a**p) / (b - a)
    ref = complex(t12 * dd)
    assert abs(got - ref) <= 16 * EPS * abs(ref)


def _mp_power(a: np.ndarray, t: float) -> np.ndarray:
    mpmath.mp.dps = 25
    r = mpmath.powm(mpmath.matrix(a.tolist()), mpmath.mpf(t))
    return np.array(r.tolist(), dtype=complex)


def _condition_bound(g, t: float) -> float:
    """``kappa_2(V)^2 max |f[l_i, l_j]| ||A||_F / ||A^t||_F`` (Higham 2008, cor. 3.16)."""
    lam = g.eigenvalues
    l1, l2 = lam[:, None], lam[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(
            np.isclose(l1, l2, rtol=1e-12), t * l1 ** (t - 1), (l1**t - l2**t) / (l1 - l2)
        )
    ratio = np.linalg.norm(g.a) / np.linalg.norm(g.power(t))
    return np.linalg.cond(g.v) ** 2 * float(np.max(np.abs(dd))) * ratio


# mpmath's powm takes ~0.1-0.4 s per matrix: few examples, and no shrinking.
@settings(max_examples=6, deadline=None, phases=(Phase.explicit, Phase.generate))
@given(
    n=st.integers(1, 4),
    real=st.booleans(),
    seed=st.integers(0, 2**31),
    t=st.floats(-3.0, 3.0).filter(lambda v: not float(v).is_integer()),
)
def test_schur_pade_against_mpmath(n, real, seed, t):
    g = random_spectrum(n, rng=seed, real=real, cond_v=5.0, moduli=(0.2, 5.0))
    x = power_one(g.a, t, eps=EPS).x
    ref = _mp_power(g.a, t)
    assert np.isrealobj(x) == real
    err = np.linalg.norm(x - ref) / np.linalg.norm(ref)
    # Forward error of a backward-stable method: a modest multiple of n u (kappa + 1)
    # (the 1 for rounding the result itself, which dominates as t -> 0).
    assert err <= 100 * n * U * (_condition_bound(g, t) + 1)


@pytest.mark.parametrize("t", [0.5, -0.99, 0.01])
def test_nonnormal_factor_against_mpmath(t):
    """A triangular factor with a 100x off-diagonal entry: ``||X^k||`` falls slowly,
    so the Pade step takes the continued fraction, and stays accurate: the forward
    error is a few ulps times ``||A||_F ||A^-1||_F``, the conditioning of the power."""
    rng = np.random.default_rng(3)
    a = np.triu(rng.standard_normal((6, 6))) + 3 * np.eye(6)
    a[0, -1] = 100
    res = power_one(a, t, eps=EPS)
    ref = _mp_power(a, t).real
    kappa = np.linalg.norm(a) * np.linalg.norm(np.linalg.inv(a))
    assert res.products == 2 * res.degree - 1 + _pade_power_products(res.degree)
    assert np.linalg.norm(res.x - ref) <= 100 * 6 * U * kappa * np.linalg.norm(ref)


def _pade_power_products(m: int) -> int:
    # the powers X^2 .. X^b computed before the rounding test chose the fraction
    from rootsolve.schur_pade import _ps_block

    return min(_ps_block(m), m) - 1


@pytest.mark.parametrize("t", [0.37, -0.63, 1.7, -2.25, 5.5])
@pytest.mark.parametrize("real", [True, False])
def test_against_scipy_at_n_40(t, real):
    g = random_spectrum(40, rng=11, real=real, cond_v=10.0)
    x = power_one(g.a, t, eps=EPS).x
    ref = g.power(t)
    assert np.isrealobj(x) == real
    tol = 100 * 40 * U * (_condition_bound(g, t) + 1)
    assert np.linalg.norm(x - ref) <= tol * np.linalg.norm(ref)
    scipy_x = sl.fractional_matrix_power(g.a, t)
    assert np.linalg.norm(x - scipy_x) <= tol * np.linalg.norm(ref)


def test_rotation_scaling_blocks_are_exact():
    # Direct sum of [[x, y], [-y, x]] blocks: a normal real matrix whose real Schur
    # form is block diagonal, so the exact 2x2 formula gives the whole power.
    lam = np.array([1 + 2j, 0.3 - 0.1j])
    g = with_spectrum(np.concatenate([lam, lam.conj()]), rng=3, cond_v=1.0)
    x = power_one(g.a, 0.37, eps=EPS).x
    assert x.dtype == np.float64
    assert np.linalg.norm(x - g.power(0.37)) <= 50 * EPS * np.linalg.norm(x)


def test_triangular_input_keeps_its_first_superdiagonal_exact():
    a = np.array([[1.0, 1e3, 2.0], [0.0, 1.0 + 1e-8, 1e3], [0.0, 0.0, 4.0]])
    x = power_one(a, 0.5, eps=EPS).x
    assert not np.any(np.tril(x, -1))
    mpmath.mp.dps = 40
    l2 = mpmath.mpf(a[1, 1])  # the double nearest 1 + 1e-8, exactly
    exact = float(1e3 * (mpmath.sqrt(l2) - 1) / (l2 - 1))
    assert x[0, 1] == pytest.approx(exact, rel=4 * EPS)
    # A stable square root's residual is of order n u ||X||^2 (Higham 2008, sec. 6.4).
    assert np.linalg.norm(x @ x - a) <= 50 * 3 * U * np.linalg.norm(x) ** 2


# ---- branches -------------------------------------------------------------------------


def test_negative_axis_default_names_the_option():
    a = np.diag([4.0, -9.0])
    with pytest.raises(errors.NegativeEigenvalueError, match="branch='numpy'"):
        power_one(a, 0.5, eps=EPS)


@pytest.mark.parametrize("p", [2, 3, 5])
def test_numpy_branch_matches_scalars_and_round_trips(p):
    lam = np.array([-4.0, 2.0, -0.5])
    v = np.random.default_rng(1).standard_normal((3, 3)) + 3 * np.eye(3)
    a = v @ np.diag(lam) @ np.linalg.inv(v)
    x = power_one(a, 1 / p, eps=EPS, branch="numpy").x
    assert np.iscomplexobj(x)
    ref = v @ np.diag(lam.astype(complex) ** (1 / p)) @ np.linalg.inv(v)
    tol = 50 * 3 * EPS * np.linalg.cond(v) ** 2
    assert np.linalg.norm(x - ref) <= tol * np.linalg.norm(ref)
    assert np.linalg.norm(np.linalg.matrix_power(x, p) - a) <= tol * np.linalg.norm(a)
    assert np.allclose(x, sl.fractional_matrix_power(a, 1 / p), rtol=1e-10, atol=1e-12)


def test_numpy_branch_leaves_a_principal_real_power_real():
    g = random_spectrum(6, rng=2)
    x = power_one(g.a, 0.3, eps=EPS, branch="numpy").x
    assert x.dtype == np.float64
    assert np.allclose(x, g.power(0.3), rtol=1e-12, atol=1e-12)


def test_numpy_branch_below_the_axis_is_not_mistaken_for_it():
    # Eigenvalues -1 (on the axis) and exp(-i (pi - 0.1)) (just below it): the
    # rotation must not carry the second one across the cut.
    lam = np.array([-1.0 + 0j, np.exp(-1j * (math.pi - 0.1))])
    v = np.array([[1.0, 0.3], [0.2, 1.0]], dtype=complex)
    a = v @ np.diag(lam) @ np.linalg.inv(v)
    x = power_one(a, 0.5, eps=EPS, branch="numpy").x
    ref = v @ np.diag(lam**0.5) @ np.linalg.inv(v)
    assert np.allclose(x, ref, rtol=1e-12, atol=1e-13)


# ---- singular matrices ------------------------------------------------------------------


RANK_ONE = np.array([[1.0, 2.0], [3.0, 6.0]])


@pytest.mark.parametrize(
    "a, t, ref",
    [
        (np.diag([2.0, 1.0, 0.0]), 0.5, np.diag([math.sqrt(2), 1.0, 0.0])),
        (RANK_ONE, 0.5, RANK_ONE / math.sqrt(7)),
        (RANK_ONE, 2.5, 7**1.5 * RANK_ONE),
        (np.outer([1.0, 0, 0, 1], [1.0, 0, 0, 1]), 0.5, np.outer([1.0, 0, 0, 1], [1.0, 0, 0, 1])
         / math.sqrt(2)),
        (np.zeros((3, 3)), 0.3, np.zeros((3, 3))),
    ],
)
def test_semisimple_zero_eigenvalue(a, t, ref):
    # Rank-one A = u v^T with v^T u = s > 0 has A^t = s^(t-1) A (closed form).
    x = power_one(a, t, eps=EPS).x
    assert np.allclose(x, ref, rtol=1e-13, atol=1e-14 * max(1.0, np.abs(ref).max()))


def test_semisimple_zero_with_a_complex_pair_stays_real():
    a = np.array([[0.0, 0, 0], [0, 1, 1], [0, -1, 1]])
    x = power_one(a, 1.43, eps=EPS).x
    assert x.dtype == np.float64
    assert np.allclose(power_one(x, 1 / 1.43, eps=EPS).x, a, atol=1e-13)


def test_nilpotent_block_has_no_fractional_root():
    j = np.array([[0.0, 1.0], [0.0, 0.0]])
    with pytest.raises(errors.RootError, match="not semisimple"):
        power_one(j, 0.5, eps=EPS)
    # z^1.5 is once differentiable at 0: the power exists and is zero.
    assert np.array_equal(power_one(j, 1.5, eps=EPS).x, np.zeros((2, 2)))


def test_singular_negative_power_is_refused():
    with pytest.raises(errors.SingularMatrixError, match="does not exist"):
        power_one(np.diag([2.0, 0.0]), -0.5, eps=EPS)


def test_batch_with_one_complex_member_is_complex():
    a = np.stack([np.diag([4.0, 9.0]), np.diag([4.0, -9.0])])
    res = schur_pade_power(a, 0.5, eps=EPS, branch="numpy")
    assert res.x.dtype == np.complex128
    assert np.allclose(res.x[0], np.diag([2.0, 3.0]))
    assert np.allclose(res.x[1], np.diag([2.0, 3j]))
    with pytest.raises(errors.NegativeEigenvalueError, match=r"matrix \(1,\)"):
        schur_pade_power(a, 0.5, eps=EPS)
