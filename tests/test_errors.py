"""Every bad input raises a specific exception whose message names the bad value.

Input errors are ``ValueError``/``TypeError``; numerical ones subclass
``numpy.linalg.LinAlgError`` (``rootsolve.RootError``). Under ``jax.jit`` nothing
can be raised; that contract is tested in ``test_backends.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from _spd_support import BACKENDS, METHODS, to_backend

import rootsolve as rs
from rootsolve.testing import logspaced_spectrum, rank_deficient_spd, spd_with_spectrum

FUNCS = [
    pytest.param(lambda a, **kw: rs.inv_root(a, 2, **kw), id="inv_root"),
    pytest.param(lambda a, **kw: rs.root(a, 2, **kw), id="root"),
    pytest.param(lambda a, **kw: rs.power(a, -0.5, **kw), id="power"),
]
SPD = spd_with_spectrum(logspaced_spectrum(4, 10.0), 0).matrix


def _msg(*parts: str) -> str:
    """A regex that needs every part, in order, as literal text."""
    return ".*".join(re.escape(p) for p in parts)


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f", FUNCS)
@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ((3, 4), "square"),
        ((2, 3, 4), "square"),
        ((3,), "at least 2 dimensions"),
        ((), "at least 2 dimensions"),
    ],
)
def test_bad_shape(backend, f, shape, words):
    a = to_backend(backend, np.ones(shape))
    with pytest.raises(ValueError, match=_msg(words, str(shape))):
        f(a)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f", FUNCS)
@pytest.mark.parametrize("shape", [(0, 0), (0, 3, 3), (4, 0, 5, 5)])
def test_empty_input_gives_an_empty_result(backend, f, shape):
    # As numpy's matrix functions: an empty stack or 0 x 0 matrices give the same shape.
    a = to_backend(backend, np.ones(shape))
    x = f(a)
    assert tuple(x.shape) == shape
    assert x.dtype == a.dtype


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", METHODS)
def test_non_finite_entries(backend, bad, method):
    a = SPD.copy()
    a[1, 2] = bad
    with pytest.raises(ValueError, match="non-finite"):
        rs.inv_root(to_backend(backend, a), 2, method=method)


@pytest.mark.parametrize(
    "a",
    [
        np.array([[1, 0], [0, 1]], dtype=object),
        np.array([["a", "b"], ["c", "d"]]),
        np.array([[1, 2], [3, 4]], dtype="datetime64[s]"),
        np.array([[1, 2], [3, 4]], dtype="timedelta64[s]"),
    ],
    ids=["object", "str", "datetime", "timedelta"],
)
def test_unsupported_dtype(a):
    with pytest.raises(TypeError, match=_msg("dtype", str(a.dtype))):
        rs.inv_root(a, 2)


def test_integer_and_bool_input_promote_to_float64():
    """Not errors: integers and booleans promote, like numpy.linalg."""
    x = rs.inv_root(np.array([[4, 0], [0, 9]]), 2)
    assert x.dtype == np.float64
    np.testing.assert_allclose(x, np.diag([0.5, 1.0 / 3.0]), rtol=1e-15)
    assert rs.root(np.eye(3, dtype=bool), 3).dtype == np.float64


# ----------------------------------------------------------------------------- exponents


@pytest.mark.parametrize(
    ("p", "exc"),
    [(0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError),
     ("2", TypeError), (None, TypeError)],
)
@pytest.mark.parametrize("func", [rs.inv_root, rs.root], ids=["inv_root", "root"])
def test_bad_order(func, p, exc):
    with pytest.raises(exc, match=_msg(f"p={p!r}" if exc is TypeError else f"p={p}")):
        func(SPD, p)


@pytest.mark.parametrize("func", [rs.inv_root, rs.root], ids=["inv_root", "root"])
def test_integral_float_order_is_an_integer(func):
    assert np.array_equal(func(SPD, 2.0), func(SPD, 2))


def test_numpy_integer_order_is_accepted():
    np.testing.assert_array_equal(rs.root(SPD, np.int64(1), method="eigh").shape, SPD.shape)


@pytest.mark.parametrize("t", [float("nan"), float("inf"), "0.5", None, True])
def test_bad_power_exponent(t):
    with pytest.raises(TypeError, match=_msg(f"t={t!r}")):
        rs.power(SPD, t)


def test_newton_needs_a_rational_exponent():
    with pytest.raises(ValueError, match=_msg("t=3.14159", "method='eigh'")):
        rs.power(SPD, np.pi, method="newton")


# ----------------------------------------------------------------------------- spectra


@pytest.mark.parametrize("backend", ["numpy", "jax", "array_api"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("func", [rs.inv_root, rs.root], ids=["inv_root", "root"])
@pytest.mark.parametrize(
    "spectrum",
    # n = 6 like test_backends' main case: eager jax compiles each operation once per shape.
    [[-1.0, 0.5, 1.0, 1.5, 2.0, 3.0], [-6.0, -5.0, -4.0, -3.0, -2.0, -1.0]],
    ids=["indefinite", "negative"],
)
def test_negative_eigenvalue(backend, method, func, spectrum):
    a = spd_with_spectrum(spectrum, 1).matrix
    with pytest.raises(rs.NotPositiveDefiniteError, match=_msg(f"{min(spectrum):.3e}")):
        func(to_backend(backend, a), 3, method=method)


@pytest.mark.parametrize("method", METHODS)
def test_negative_eigenvalue_raises_with_return_info_too(method):
    """Invalid input raises eagerly whether or not ``return_info`` is asked for."""
    a = spd_with_spectrum([-1.0, 1.0, 2.0], 1).matrix
    with pytest.raises(rs.NotPositiveDefiniteError):
        rs.inv_root(a, 2, method=method, return_info=True)


@pytest.mark.parametrize("method", METHODS)
def test_rounding_size_negative_eigenvalue_is_not_an_error(method):
    """An eigenvalue of -eps * lmax is rounding, not indefiniteness: ``root`` accepts it."""
    case = spd_with_spectrum([-1e-17, 1e-6, 1.0], 2)
    if method == "eigh":
        x = rs.root(case.matrix, 2, method=method)
        assert np.all(np.isfinite(x))
    else:
        # Newton cannot reach a zero eigenvalue's root quickly; it must not
        # call the matrix indefinite either.
        with pytest.raises(rs.ConvergenceError):
            rs.root(case.matrix, 2, method=method, max_iter=10)


@pytest.mark.parametrize("method", METHODS)
def test_singular_inverse_root(method):
    a = rank_deficient_spd(5, 3, 0).matrix
    with pytest.raises(rs.SingularMatrixError, match="ridge"):
        rs.inv_root(a, 2, method=method)
    with pytest.raises(rs.SingularMatrixError):
        rs.inv_root(np.zeros((3, 3)), 4, method=method)


@pytest.mark.parametrize(
    "kw",
    [dict(ridge=1e-3), dict(rel_ridge=1e-6), dict(floor=1e-8), dict(pinv_rtol=1e-10),
     dict(pinv_atol=1e-12)],
    ids=lambda kw: next(iter(kw)),
)
def test_singular_inverse_root_is_fine_when_regularized(kw):
    a = rank_deficient_spd(5, 3, 0).matrix
    x = rs.inv_root(a, 2, **kw)
    assert np.all(np.isfinite(x))


def test_singular_root_is_not_an_error():
    a = rank_deficient_spd(5, 3, 0).matrix
    assert np.all(np.isfinite(rs.root(a, 2, method="eigh")))


def test_errors_are_linalg_errors():
    for exc in (rs.NotPositiveDefiniteError, rs.SingularMatrixError, rs.ConvergenceError):
        assert issubclass(exc, rs.RootError)
        assert issubclass(exc, np.linalg.LinAlgError)


def test_non_convergence_is_reported():
    a = spd_with_spectrum(logspaced_spectrum(6, 1e6), 3).matrix
    with pytest.raises(rs.ConvergenceError, match=_msg("did not converge", "3 iterations")):
        rs.inv_root(a, 4, method="newton", max_iter=3)
    x, info = rs.inv_root(a, 4, method="newton", max_iter=3, return_info=True)
    assert not bool(info.converged) and int(info.iterations) == 3
    assert np.all(np.isfinite(x))


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("kw", "exc", "echo"),
    [
        (dict(method="eig"), ValueError, "method='eig'"),
        (dict(method=None), ValueError, "method=None"),
        (dict(assume_a="sym"), ValueError, "assume_a='sym'"),
        (dict(scaling="opt"), ValueError, "scaling='opt'"),
        (dict(tol=0), ValueError, "tol=0"),
        (dict(tol=-1.0), ValueError, "tol=-1.0"),
        (dict(tol=float("nan")), ValueError, "tol=nan"),
        (dict(tol="1e-6"), ValueError, "tol='1e-6'"),
        (dict(max_iter=0), ValueError, "max_iter=0"),
        (dict(max_iter=2.5), ValueError, "max_iter=2.5"),
        (dict(max_iter=True), ValueError, "max_iter=True"),
        (dict(ridge=-1.0), ValueError, "ridge=-1.0"),
        (dict(rel_ridge=float("inf")), ValueError, "rel_ridge=inf"),
        (dict(floor=-1.0), ValueError, "floor=-1.0"),
        (dict(pinv_rtol=float("nan")), ValueError, "pinv_rtol=nan"),
        (dict(ridge="a"), TypeError, "'a'"),
        (dict(compute_dtype="int32"), ValueError, "'int32'"),
        (dict(symmetrize="yes"), TypeError, "'yes'"),
    ],
    ids=lambda v: str(v) if not isinstance(v, type) else v.__name__,
)
def test_bad_option(kw, exc, echo):
    with pytest.raises(exc, match=re.escape(echo)):
        rs.inv_root(SPD, 2, **kw)


@pytest.mark.parametrize("kw", [dict(floor=1e-3), dict(pinv_rtol=1e-3), dict(pinv_atol=1e-3)],
                         ids=lambda kw: next(iter(kw)))
def test_eigenvalue_options_need_eigh(kw):
    with pytest.raises(ValueError, match=_msg(next(iter(kw)), "method='eigh'")):
        rs.inv_root(SPD, 2, method="newton", **kw)


def test_method_for_the_other_structure():
    with pytest.raises(ValueError, match=_msg("method='newton'", "assume_a='gen'")):
        rs.inv_root(SPD, 2, method="newton", assume_a="gen")


def test_conditioning_object_and_keywords_are_exclusive():
    cond = rs.Conditioning(ridge=1.0)
    with pytest.raises(ValueError, match=_msg("conditioning=", "ridge")):
        rs.inv_root(SPD, 2, conditioning=cond, ridge=2.0)
    with pytest.raises(ValueError, match="rel_ridge"):
        rs.root(SPD, 2, conditioning=cond, rel_ridge=0.1)
    with pytest.raises(TypeError, match=_msg("Conditioning", "dict")):
        rs.inv_root(SPD, 2, conditioning={"ridge": 1.0})


def test_conditioning_object_validates_when_built():
    with pytest.raises(ValueError, match=re.escape("ridge=-1")):
        rs.Conditioning(ridge=-1)
    with pytest.raises(ValueError, match="compute_dtype"):
        rs.Conditioning(compute_dtype="float16")
