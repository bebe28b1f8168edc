"""The public test helpers in :mod:`rootsolve.testing` do what they promise."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from _spd_support import EPS64
from hypothesis import given, settings
from hypothesis import strategies as st

from rootsolve.testing import (
    KINDS,
    SPDMatrix,
    clustered_spectrum,
    forward_tolerance,
    logspaced_spectrum,
    power_condition,
    random_orthogonal,
    rank_deficient_spd,
    residual_tolerance,
    root_orders,
    spd_matrices,
    spd_with_spectrum,
)


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("n", [1, 2, 7])
def test_random_orthogonal_is_orthogonal(n, cplx):
    q = random_orthogonal(n, 0, complex=cplx, batch_shape=(3,))
    assert q.shape == (3, n, n)
    assert np.iscomplexobj(q) == cplx
    eye = np.conj(np.swapaxes(q, -1, -2)) @ q
    assert np.abs(eye - np.eye(n)).max() <= 4 * n * EPS64


def test_random_orthogonal_is_haar():
    """Haar measure is invariant under sign flips of rows, so E[Q] = 0.

    Without Mezzadri's phase fix, LAPACK's QR makes every ``Q[0, 0]`` negative
    (``R[0, 0] = -sign(z) ||z||``): the mean would be about -0.4 for n = 4. The
    sample mean of 4000 entries of variance 1/n is within 5 standard errors.
    """
    n, m = 4, 4000
    q = random_orthogonal(n, 1, batch_shape=(m,))
    for i, j in [(0, 0), (1, 2), (3, 3)]:
        assert abs(q[:, i, j].mean()) <= 5 / np.sqrt(n * m)
    # Second moment of a Haar entry: E[q_ij^2] = 1/n.
    assert np.mean(q**2) == pytest.approx(1 / n, rel=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128", "complex64"])
def test_spd_with_spectrum(dtype):
    w = np.array([3.0, 1e-3, 1.0, 1e-3])
    case = spd_with_spectrum(w, 2, dtype=dtype)
    a = case.matrix
    assert a.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(a, np.conj(a.T))  # exactly Hermitian
    np.testing.assert_array_equal(case.eigenvalues, np.sort(w))
    eps = float(np.finfo(a.dtype).eps)
    got = np.linalg.eigvalsh(a.astype(np.complex128))
    assert np.abs(got - np.sort(w)).max() <= 4 * 4 * eps * 3.0
    v = case.eigenvectors
    assert np.abs(a.astype(np.complex128) @ v - v * case.eigenvalues).max() <= 4 * 4 * eps * 3.0


def test_spd_with_spectrum_batches_and_validates():
    w = np.stack([logspaced_spectrum(3, 10.0), logspaced_spectrum(3, 1e3)])
    case = spd_with_spectrum(w, 3)
    assert case.matrix.shape == (2, 3, 3) and case.cond == pytest.approx(1e3)
    with pytest.raises(ValueError, match="finite"):
        spd_with_spectrum([1.0, np.nan], 0)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., n\)"):
        spd_with_spectrum(np.empty(0), 0)


def test_spectra():
    w = logspaced_spectrum(5, 1e4, lmax=2.0)
    assert w[-1] == 2.0 and w[-1] / w[0] == pytest.approx(1e4) and np.all(np.diff(w) > 0)
    assert logspaced_spectrum(1, 1e4).tolist() == [1.0]
    c = clustered_spectrum(6, 1e3, n_small=2)
    assert c.tolist() == [1e-3, 1e-3, 1.0, 1.0, 1.0, 1.0]
    s = clustered_spectrum(6, 1e3, spread=0.1)
    assert s[0] == 1e-3 and s[-1] == 1.0 and s[2] <= 1.1e-3 and s[3] >= 1 / 1.1
    for bad in (dict(cond=0.5), dict(cond=np.inf), dict(lmax=0.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            logspaced_spectrum(3, **{"cond": 10.0, **bad})
    with pytest.raises(ValueError, match="n_small"):
        clustered_spectrum(3, 10.0, n_small=4)


@pytest.mark.parametrize("rank", [0, 1, 3])
def test_rank_deficient_spd(rank):
    case = rank_deficient_spd(4, rank, 5, cond=10.0)
    assert np.sum(case.eigenvalues > 0) == rank
    got = np.linalg.eigvalsh(case.matrix)
    assert np.sum(np.abs(got) > 1e-12) == rank
    assert case.cond == (np.inf if rank < 4 else 10.0)
    with pytest.raises(ValueError, match="rank"):
        rank_deficient_spd(4, 5, 0)


def test_power_reference():
    case = spd_with_spectrum([1e-4, 1.0, 4.0], 6)
    v = case.eigenvectors
    np.testing.assert_allclose(case.power(1.0), case.matrix, rtol=0, atol=8 * EPS64)
    np.testing.assert_allclose(case.power(0.0), np.eye(3), rtol=0, atol=8 * EPS64)
    ref = (v * np.array([1e2, 1.0, 0.5])) @ v.T
    assert np.linalg.norm(case.power(-0.5, stored=False) - ref) <= 8 * EPS64 * 100
    sing = rank_deficient_spd(3, 2, 7)
    assert np.all(np.isfinite(sing.power(0.5)))
    assert np.all(np.isnan(sing.power(-0.5)) | np.isinf(sing.power(-0.5)))
    indefinite = spd_with_spectrum([-1.0, 1.0], 8)
    assert np.all(np.isnan(indefinite.power(0.5)))


def test_bounds():
    assert power_condition(-0.5, 1e6) == 5e5
    assert power_condition(0.25, 1e4) == pytest.approx(0.25 * 1e3)
    assert power_condition(2.0, 1e9) == 2.0
    assert power_condition(0.0, 1e9) == 0.0
    assert forward_tolerance(-0.5, 4, 1.0, EPS64) == pytest.approx(4 * 4 * EPS64 * (2 + 2 * 0.5))
    back = residual_tolerance(3, 5, 1e3, EPS64, inverse=True)
    assert back == pytest.approx(4 * 4 * 5 * EPS64 * 1e3)
    assert residual_tolerance(3, 5, 1e3, EPS64, inverse=False) == pytest.approx(back / 1e3)
    fwd = residual_tolerance(3, 5, 1e3, EPS64, inverse=True, backward_stable=False)
    assert fwd == pytest.approx(4 * 1e3 * forward_tolerance(-1 / 3, 5, 1e3, EPS64))


@settings(max_examples=40)
@given(case=spd_matrices(kind="any", dtype=st.sampled_from(["float32", "complex128"]),
                         batch_shape=st.sampled_from([(), (2,)])))
def test_strategy_records_are_consistent(case):
    assert isinstance(case, SPDMatrix)
    a = case.matrix
    n = a.shape[-1]
    assert 1 <= n <= 12 and a.shape[:-2] in ((), (2,))
    assert case.eigenvalues.shape == a.shape[:-1]
    assert np.all(case.eigenvalues >= 0)
    eps = float(np.finfo(a.dtype).eps)
    top = np.abs(case.eigenvalues).max()
    rebuilt = case.exact()
    assert np.abs(a - rebuilt).max() <= 4 * n * eps * top
    finite = np.isfinite(case.cond)
    assert not finite or case.cond <= (1e3 if a.dtype == np.float32 else 1e6) * (1 + 1e-9)


@given(p=root_orders())
def test_root_orders(p):
    assert isinstance(p, int) and 1 <= p <= 8


def test_strategy_arguments_are_checked():
    with pytest.raises(ValueError, match="kind"):
        spd_matrices(kind="diagonal")
    with pytest.raises(ValueError, match="max_p"):
        root_orders(0)
    assert set(KINDS) == {"logspaced", "clustered", "rank_deficient"}


def test_generators_import_without_hypothesis():
    """``import rootsolve.testing`` and its numpy generators need no hypothesis."""
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import rootsolve.testing as t\n"
        "c = t.spd_with_spectrum(t.logspaced_spectrum(3, 10.0), 0)\n"
        "assert c.matrix.shape == (3, 3)\n"
        "try:\n"
        "    t.spd_matrices()\n"
        "except ImportError as e:\n"
        "    assert 'hypothesis' in str(e)\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
