"""Roots against references computed another way: mpmath at 50 digits, scipy, and a
kappa = 1e6 accuracy target for coupled Newton.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
from _spd_support import CONFIGS, EPS64, rel_err, solve

import rootsolve as rs
from rootsolve.testing import (
    forward_tolerance,
    logspaced_spectrum,
    spd_with_spectrum,
)

mpmath = pytest.importorskip("mpmath")

DPS = 50


def _pascal(n: int) -> np.ndarray:
    """The symmetric Pascal matrix: integer entries (exact in float64), det 1, SPD."""
    return np.array([[math.comb(i + j, i) for j in range(n)] for i in range(n)], dtype=float)


def _hilbert(n: int) -> np.ndarray:
    return np.array([[1.0 / (i + j + 1) for j in range(n)] for i in range(n)])


def _cases():
    """Matrices from the literature (Higham's gallery) and with a chosen spectrum."""
    out = {}
    for n in (3, 4, 5):
        out[f"pascal{n}"] = _pascal(n)
        out[f"hilbert{n}"] = _hilbert(n)
        out[f"logspaced{n}"] = spd_with_spectrum(logspaced_spectrum(n, 1e5), n).matrix
        out[f"complex{n}"] = spd_with_spectrum(logspaced_spectrum(n, 1e3), n, complex=True).matrix
    return out


CASES = _cases()


def _mp_power(a: np.ndarray, p: int, inverse: bool):
    """``a^(+-1/p)`` of the float64 matrix exactly as stored, at ``DPS`` digits, and its kappa.

    The exponent is the exact rational ``+-1/p`` (not its float64 rounding), and
    the result is checked against its defining equation before it is trusted.
    """
    cplx = np.iscomplexobj(a)
    with mpmath.workdps(DPS):
        m = mpmath.matrix(a.tolist())
        w, q = mpmath.eighe(m) if cplx else mpmath.eigsy(m)
        t = (-1 if inverse else 1) * mpmath.mpf(1) / p
        x = q * mpmath.diag([wi**t for wi in w]) * (q.H if cplx else q.T)
        kappa = float(max(w) / min(w))
        xp = x**p
        gap = xp * m - mpmath.eye(a.shape[0]) if inverse else xp - m
        assert mpmath.mnorm(gap, 1) < mpmath.mpf(10) ** (10 - DPS) * kappa
        out = np.array(x.tolist(), dtype=complex)
    return (out if cplx else out.real), kappa


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@pytest.mark.parametrize("p", [2, 3, 5])
@pytest.mark.parametrize("inverse", [True, False], ids=["inv_root", "root"])
@pytest.mark.parametrize("name", list(CASES))
def test_against_mpmath(name, inverse, p, method, scaling):
    a = CASES[name]
    t = -1.0 / p if inverse else 1.0 / p
    ref, kappa = _mp_power(a, p, inverse)
    x = solve(a, p, inverse=inverse, method=method, scaling=scaling)
    assert rel_err(x, ref) <= forward_tolerance(t, a.shape[0], kappa, EPS64)


@pytest.mark.parametrize(("p", "inverse"), [(2, True), (3, False), (5, True)])
@pytest.mark.parametrize("n", [3, 5])
def test_reference_power_of_testing_module_against_mpmath(n, p, inverse):
    """:meth:`SPDMatrix.power` is the power of the matrix as stored.

    Uncorrected (``stored=False``), the rounding of the input shows at the
    ``kappa eps`` level. The first-order correction computes that rounding in
    long double, so it removes all but a fraction ``n eps_ld / eps`` of it
    (``eps_ld`` = 2^-64 on x86), on top of the ``n eps`` of rebuilding in
    float64.
    """
    case = spd_with_spectrum(logspaced_spectrum(n, 1e6), 100 + n)
    t = -1.0 / p if inverse else 1.0 / p
    ref, kappa = _mp_power(case.matrix, p, inverse)
    raw = rel_err(case.power(t, stored=False), ref)
    assert raw <= forward_tolerance(t, n, kappa, EPS64)
    eps_ld = float(np.finfo(np.longdouble).eps)
    if eps_ld >= EPS64:
        pytest.skip("long double is float64 here: the correction is skipped")
    assert rel_err(case.power(t), ref) <= 4 * n * EPS64 + 4 * n * (eps_ld / EPS64) * raw


@pytest.mark.parametrize("t", [-0.75, -1.0 / 3.0, 0.25, 1.5])
def test_power_matches_scipy_fractional_matrix_power(t):
    """scipy's Schur-Pade ``fractional_matrix_power`` is a third independent algorithm."""
    case = spd_with_spectrum(logspaced_spectrum(8, 1e4), 7)
    ref = np.real(scipy.linalg.fractional_matrix_power(case.matrix, t))
    x = rs.power(case.matrix, t, method="eigh")
    assert rel_err(x, ref) <= 2 * forward_tolerance(t, 8, case.cond, EPS64)


@pytest.mark.parametrize("scaling", ["dynamic", "optimal", "frobenius"])
@pytest.mark.parametrize("inverse", [True, False], ids=["inv_root", "root"])
def test_newton_accuracy_kappa_1e6(inverse, scaling):
    """kappa = 1e6, p = 4, n = 64: relative error <= 1e-10 with every scaling.

    (A fixed 1e-6 stopping tolerance, as in the optimizer literature's reference
    code, leaves about 2.5e-7 here.) The reference is the generator's
    eigendecomposition, corrected for the rounding of the stored matrix, so
    the bound measures Newton alone; the forward bound itself is ~1e-8.
    """
    case = spd_with_spectrum(logspaced_spectrum(64, 1e6, lmax=10.0), 2024)
    t = -0.25 if inverse else 0.25
    x, info = solve(case.matrix, 4, inverse=inverse, method="newton", scaling=scaling,
                    return_info=True)
    assert bool(info.converged)
    assert rel_err(x, case.power(t)) <= 1e-10
    eigh = solve(case.matrix, 4, inverse=inverse, method="eigh")
    assert rel_err(eigh, case.power(t)) <= 1e-10
