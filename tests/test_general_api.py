"""The public face for ``assume_a="gen"``: errors that name the bad value, dtypes,
options that apply and those that do not, and what ``info`` reports.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import rootsolve as rs
from rootsolve import testing as gm

EPS = float(np.finfo(np.float64).eps)
A = gm.with_spectrum([2.0, 0.5, 1 + 1j, 1 - 1j], rng=7).a
METHODS = ["schur_newton", "schur_free"]


def _msg(*parts: str) -> str:
    return ".*".join(re.escape(p) for p in parts)


def rel_err(x, ref) -> float:
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("spectrum", "real", "shown"),
    [
        ([2.0, -3.0, 1.0], True, "-3"),
        ([2.0, 1.0, -1e-3], True, "-0.001"),
        ([2.0, -1.0 + 0j, 1j], False, "-1"),
        ([1 + 1j, 1 - 1j, -2 + 0j, 0.5], True, "-2"),
    ],
    ids=["real", "tiny-negative", "complex", "real-with-pairs"],
)
def test_eigenvalue_on_the_negative_axis(method, spectrum, real, shown):
    a = gm.with_spectrum(spectrum, rng=1, real=real).a
    words = _msg(shown, "principal", "not defined")
    for fn in (rs.root, rs.inv_root):
        with pytest.raises(rs.NegativeEigenvalueError, match=words):
            fn(a, 3, assume_a="gen", method=method)
    with pytest.raises(rs.NegativeEigenvalueError, match=_msg("a^(-2/3)")):
        rs.power(a, -2 / 3, assume_a="gen", method=method, return_info=True)


@pytest.mark.parametrize("method", METHODS)
def test_zero_eigenvalue(method):
    """Zero to rounding: no inverse power. Exactly zero: no principal root by these methods."""
    a = gm.with_spectrum([2.0, 0.0, 1.0], rng=2).a
    with pytest.raises(rs.SingularMatrixError, match=_msg("singular", "a^(-1/2)")):
        rs.inv_root(a, 2, assume_a="gen", method=method)
    exact = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    with pytest.raises(rs.NegativeEigenvalueError, match=_msg("eigenvalue 0 ", "negative real")):
        rs.root(exact, 2, assume_a="gen", method=method)


def test_close_to_but_off_the_negative_axis_is_fine():
    a = gm.with_spectrum([-1 + 1e-3j, -1 - 1e-3j, 2.0], rng=3).a
    x = rs.root(a, 2, assume_a="gen")
    assert x.dtype == np.float64
    assert np.all(np.linalg.eigvals(x).real > 0)


def test_batch_error_names_the_matrix():
    a = np.stack([A, gm.with_spectrum([1.0, -5.0, 2.0, 3.0], rng=4).a])
    with pytest.raises(rs.NegativeEigenvalueError, match=_msg("matrix (1,)", "-5")):
        rs.root(a, 2, assume_a="gen")


@pytest.mark.parametrize("method", METHODS)
def test_non_finite_input(method):
    a = A.copy()
    a[1, 2] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        rs.root(a, 2, assume_a="gen", method=method)


@pytest.mark.parametrize(
    ("call", "exc", "echo"),
    [
        (lambda: rs.root(A, 0, assume_a="gen"), ValueError, "p=0"),
        (lambda: rs.inv_root(A, 2.5, assume_a="gen"), TypeError, "p=2.5"),
        (lambda: rs.power(A, np.pi, assume_a="gen", method="schur_newton"), ValueError,
         "t = +-q/p"),
        (lambda: rs.root(A, 2, assume_a="gen", method="eigh"), ValueError, "method='eigh'"),
        (lambda: rs.root(A, 2, method="schur_newton"), ValueError, "assume_a='pos'"),
        (lambda: rs.root(A, 2, assume_a="gen", rel_ridge=0.1), ValueError, "rel_ridge"),
        (lambda: rs.root(A, 2, assume_a="gen", floor=0.1), ValueError, "floor"),
        (lambda: rs.root(A, 2, assume_a="gen", pinv_rtol=0.1), ValueError, "pinv_rtol"),
        (lambda: rs.root(A, 2, assume_a="Gen"), ValueError, "assume_a='Gen'"),
    ],
    ids=["p=0", "p-float", "irrational-t", "eigh", "schur-on-pos", "rel_ridge", "floor",
         "pinv", "assume_a"],
)
def test_bad_options(call, exc, echo):
    with pytest.raises(exc, match=re.escape(echo)):
        call()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("dtype", "out"),
    [("float32", "float32"), ("float64", "float64"), ("complex64", "complex64"),
     ("complex128", "complex128"), ("int64", "float64")],
)
def test_output_dtype(method, dtype, out):
    a = (np.array([[4, 1], [-2, 9]]) if dtype == "int64" else A).astype(dtype)
    x, info = rs.inv_root(a, 3, assume_a="gen", method=method, return_info=True)
    assert x.dtype == np.dtype(out)
    assert bool(info.converged)
    # computed in float64/complex128 then rounded: the same numbers at the output precision
    wide = a.astype(np.result_type(a.dtype, np.float64))
    ref = rs.inv_root(wide, 3, assume_a="gen", method=method)
    assert rel_err(x, ref) <= np.finfo(out).eps


def test_no_symmetrization():
    """``symmetrize`` is for Hermitian input: a general matrix is rooted as it is."""
    a = np.array([[2.0, 1.0, 0.0], [-1.0, 2.0, 0.5], [0.0, -0.5, 3.0]])  # a + a^T = diag(4,4,6)
    x = rs.root(a, 2, assume_a="gen", symmetrize=True)
    alpha = gm.general_stability_factor(a, x, 1, 2)
    assert rel_err(x @ x, a) <= gm.general_tolerance(3, alpha, EPS)
    assert rel_err(x, np.sqrt(np.diag([2.0, 2.0, 3.0]))) > 0.1


@pytest.mark.parametrize("method", METHODS)
def test_ridge_is_added(method):
    x, info = rs.root(A, 3, assume_a="gen", method=method, ridge=0.5, return_info=True)
    y = rs.root(A + 0.5 * np.eye(4), 3, assume_a="gen")
    assert float(info.ridge) == 0.5
    assert rel_err(x, y) <= gm.general_tolerance(4, 1e2, EPS)


@pytest.mark.parametrize(
    ("fn", "p", "inverse"), [(rs.root, 3, False), (rs.inv_root, 5, True)], ids=["root", "inv"]
)
def test_info_reports_the_residual_and_the_method(fn, p, inverse):
    x, info = fn(A, p, assume_a="gen", return_info=True)
    xp = np.linalg.matrix_power(x, p)
    own = (np.linalg.norm(xp @ A - np.eye(4)) / 2 if inverse
           else np.linalg.norm(xp - A) / np.linalg.norm(A))
    assert float(info.residual) == pytest.approx(own, rel=1e-6, abs=10 * EPS)
    assert info.method_name == "schur_newton" and int(info.method) == 2
    assert int(info.iterations) > 0 and int(info.gemms) > int(info.iterations)
    _, info_sf = fn(A, p, assume_a="gen", method="schur_free", return_info=True)
    assert info_sf.method_name == "schur_free"


def test_errors_subclass_linalg_error():
    assert issubclass(rs.NegativeEigenvalueError, np.linalg.LinAlgError)
