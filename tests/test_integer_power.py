"""Integer powers A^k of any square matrix: binary powering and inverses."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rootsolve import errors
from rootsolve._backend import get_backend
from rootsolve.integer_power import integer_exponent, integer_power, reciprocal_condition

EPS = float(np.finfo(np.float64).eps)


def _power(a, k):
    be = get_backend(a)
    return integer_power(be, be.xp.asarray(a), k, eps=EPS)


@settings(max_examples=30, deadline=None)
@given(
    a=hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 6)).map(
        lambda s: (s[0], s[1], s[1])), elements=st.floats(-4, 4).filter(
            lambda v: v == 0 or abs(v) > 1e-3)),
    k=st.integers(-5, 9),
)
def test_matches_numpy_matrix_power(a, k):
    rcond = min(reciprocal_condition(m) for m in a)
    if k < 0 and rcond <= EPS:
        with pytest.raises(errors.SingularMatrixError):
            _power(a, k)
        return
    assume(k >= 0 or rcond > 1e-6)
    x, ok, _ = _power(a, k)
    ref = np.linalg.matrix_power(a, k)
    assert np.all(ok)
    # Each product of binary powering adds a relative error of order n eps in the norm
    # of its factors; inverses add kappa(A) per power (Higham 2002, secs. 3.5, 14.1).
    n = a.shape[-1]
    kappa = 1.0 if k >= 0 else max(np.linalg.cond(m, 1) for m in a)
    base = np.linalg.inv(a) if k < 0 else a
    scale = np.linalg.norm(base, axis=(-2, -1)) ** abs(k)
    err = np.linalg.norm(np.asarray(x) - ref, axis=(-2, -1))
    assert np.all(err <= 10 * abs(k) * n * EPS * kappa * scale + 1e-300)


def test_zero_power_is_identity_for_singular_matrices():
    x, ok, gemms = _power(np.zeros((2, 3, 3)), 0)
    assert np.array_equal(x, np.broadcast_to(np.eye(3), (2, 3, 3)))
    assert ok.all() and gemms == 0


def test_any_spectrum():
    # Negative, zero and defective eigenvalues: integer powers need no branch.
    a = np.array([[-2.0, 1.0, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, 0.0]])
    x, _, _ = _power(a, 3)
    assert np.allclose(x, a @ a @ a, rtol=0, atol=1e-14)


def test_singular_negative_power_names_rcond():
    with pytest.raises(errors.SingularMatrixError, match=r"rcond_1\(a\) = 0"):
        _power(np.array([[1.0, 2.0], [2.0, 4.0]]), -2)
    with pytest.raises(errors.SingularMatrixError, match=r"matrix \(1,\)"):
        _power(np.stack([np.eye(2), np.zeros((2, 2))]), -1)


def test_jax_under_jit_reports_instead_of_raising():
    import jax
    import jax.numpy as jnp

    def f(a):
        return _power(a, -2)[:2]

    x, ok = jax.jit(f)(jnp.stack([jnp.eye(2) * 2.0, jnp.zeros((2, 2))]))
    assert bool(ok[0]) and not bool(ok[1])
    assert np.allclose(x[0], np.eye(2) / 4)


@pytest.mark.parametrize(
    "t, k", [(2, 2), (2.0, 2), (-1.0, -1), (0.0, 0), (np.float32(3), 3), (0.5, None),
             (True, None), ("2", None)]
)
def test_integer_exponent(t, k):
    assert integer_exponent(t) == k
