"""The general test-matrix generators keep their promises (spectra, structure, named facts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings

from rootsolve import testing as gm


def assert_same_spectrum(a: np.ndarray, lam, atol: float) -> None:
    """Every eigenvalue of ``a`` is within ``atol`` of a distinct one of ``lam``."""
    got = list(np.linalg.eigvals(a))
    for z in lam:
        i = int(np.argmin([abs(g - z) for g in got]))
        assert abs(got.pop(i) - z) <= atol


@pytest.mark.parametrize("real", [True, False])
def test_with_spectrum_has_the_spectrum_and_conditioning(real):
    lam = [3.0, 0.5, 1 + 2j, 1 - 2j, -1 + 0.5j, -1 - 0.5j]
    case = gm.with_spectrum(lam, rng=0, cond_v=50.0, real=real)
    assert np.isrealobj(case.a) == real
    assert_same_spectrum(case.a, lam, atol=1e-10)
    np.testing.assert_allclose(case.a @ case.v, case.v * case.eigenvalues, atol=1e-10)
    if not real:  # the similarity V itself has the requested condition number
        assert np.linalg.cond(case.v) == pytest.approx(50.0, rel=1e-8)


def test_real_matrices_need_conjugate_pairs():
    with pytest.raises(ValueError, match="conjugate pairs"):
        gm.with_spectrum([1.0, 1 + 1j, 2 - 1j])


def test_power_reference_squares_back():
    case = gm.with_spectrum([2.0, 1 + 1j, 1 - 1j], rng=1)
    x = case.power(0.5)
    assert np.isrealobj(x)
    np.testing.assert_allclose(x @ x, case.a, atol=1e-12)
    with pytest.raises(ValueError, match="eigenvectors"):
        gm.jordan_like().power(0.5)


def test_nonnormal_departure():
    case = gm.nonnormal(8, rng=2, departure=30.0)
    t = np.linalg.qr(np.eye(8))[0]  # any unitary leaves the Frobenius norms unchanged
    d = np.linalg.norm(case.eigenvalues)
    n_fro = math.sqrt(np.linalg.norm(case.a) ** 2 - d**2)
    assert n_fro / d == pytest.approx(30.0, rel=1e-10)
    assert np.linalg.norm(t) == pytest.approx(math.sqrt(8))


def test_jordan_like_is_defective():
    case = gm.jordan_like((3, 2), (2.0, 0.5), rng=3)
    for lam, size in ((2.0, 3), (0.5, 2)):
        shifted = case.a - lam * np.eye(5)
        # one Jordan block per eigenvalue: rank drops by one only
        assert np.linalg.matrix_rank(shifted, tol=1e-8) == 5 - 1
        assert np.linalg.norm(np.linalg.matrix_power(shifted, size) @ np.linalg.matrix_power(
            case.a - (2.5 - lam) * np.eye(5), 5 - size)) <= 1e-8


@pytest.mark.parametrize("real", [True, False])
def test_near_negative_axis_angles(real):
    case = gm.near_negative_axis(8, delta=0.01, rng=4, real=real)
    arg = np.abs(np.angle(np.linalg.eigvals(case.a)))
    assert np.isclose(arg.max(), math.pi - 0.01, atol=1e-8)
    assert np.all(arg < math.pi)


def test_named_matrices_behave_as_documented():
    f = gm.frank(6)
    assert np.linalg.det(f) == pytest.approx(1.0, abs=1e-9)
    lam = np.sort(np.linalg.eigvals(f).real)
    np.testing.assert_allclose(lam * lam[::-1], 1.0, rtol=1e-6)  # reciprocal pairs
    le = gm.lehmer(6)
    assert np.array_equal(le, le.T) and np.linalg.eigvalsh(le).min() > 0
    inv = np.linalg.inv(le)
    assert np.allclose(np.triu(inv, 2), 0, atol=1e-9)  # tridiagonal inverse
    k = gm.kahan(7)
    assert np.array_equal(k, np.triu(k))
    np.testing.assert_allclose(np.diag(k), np.sin(1.2) ** np.arange(7))
    pa = gm.pascal(6)
    assert np.array_equal(pa, pa.T) and np.linalg.det(pa) == pytest.approx(1.0, abs=1e-6)
    g = np.linalg.eigvals(gm.grcar(12))
    assert np.all(g.real > 0) and np.any(np.abs(g.imag) > 1)


@settings(max_examples=30, deadline=None)
@given(gm.general_matrices(), gm.general_exponents())
def test_strategies_stay_off_the_negative_axis(case, exponent):
    m, p = exponent
    assert m != 0 and p >= 1
    lam = np.linalg.eigvals(case.a)
    assert np.all(np.isfinite(case.a))
    assert np.all((lam.real > 0) | (np.abs(lam.imag) > 1e-6 * np.abs(lam)))
    assert case.a.shape[-1] == case.eigenvalues.shape[0]
