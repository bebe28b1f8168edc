"""Semantics of the conditioning controls, against explicit eigendecomposition formulas.

With ``A = V diag(w) V^H`` known from :mod:`rootsolve.testing`:

* ``ridge=r``: ``V diag((w + r)^t) V^H`` and ``info.ridge == r``;
* ``rel_ridge=c``: the same with ``r = c lmax`` (exact with eigh, a
  power-iteration estimate ``<= lmax`` with Newton; ``info.ridge`` says which);
* ``floor=f``: ``V diag(max(w, f)^t) V^H``;
* ``pinv_atol``/``pinv_rtol``: eigenvalues at or below the cut map to 0;
* ``symmetrize``: the Hermitian part is what gets rooted.
"""

from __future__ import annotations

import numpy as np
import pytest
from _spd_support import CONFIGS, EPS64, rel_err, residual, solve
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import rootsolve as rs
from rootsolve.conditioning import SYMMETRY_FACTOR
from rootsolve.testing import (
    SPDMatrix,
    forward_tolerance,
    logspaced_spectrum,
    rank_deficient_spd,
    residual_tolerance,
    root_orders,
    spd_matrices,
    spd_with_spectrum,
)

INVERSE = pytest.mark.parametrize("inverse", [True, False], ids=["inv_root", "root"])
ANY_SPD = spd_matrices(kind="any", dtype=st.sampled_from(["float64", "complex128"]), scale=1.0)


def _shifted(case: SPDMatrix, r: float) -> SPDMatrix:
    """``A + r I`` with its known eigendecomposition (the sum rounded in float64)."""
    n = case.matrix.shape[-1]
    return SPDMatrix(case.matrix + r * np.eye(n), case.eigenvalues + r, case.eigenvectors)


def _t(p: int, inverse: bool) -> float:
    return -1.0 / p if inverse else 1.0 / p


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@INVERSE
@settings(max_examples=40)
@given(case=ANY_SPD, p=root_orders(), log_r=st.floats(-8, 0))
def test_ridge(case, p, log_r, inverse, method, scaling):
    """Singular matrices included: the ridge is what makes them rootable."""
    r = 10.0**log_r
    x, info = solve(case.matrix, p, inverse=inverse, method=method, scaling=scaling, ridge=r,
                    return_info=True)
    shifted = _shifted(case, r)
    n, t = case.matrix.shape[-1], _t(p, inverse)
    assert float(info.ridge) == r
    assert bool(info.converged)
    assert rel_err(x, shifted.power(t)) <= forward_tolerance(t, n, shifted.cond, EPS64)
    bound = residual_tolerance(p, n, shifted.cond, EPS64, inverse=inverse,
                               backward_stable=method == "eigh")
    assert float(info.residual) <= bound
    assert residual(x, shifted.matrix, p, inverse=inverse) <= bound


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@INVERSE
@settings(max_examples=40)
@given(case=ANY_SPD, p=root_orders(), log_c=st.floats(-8, -1))
def test_rel_ridge(case, p, log_c, inverse, method, scaling):
    """``rel_ridge=c`` adds ``c lmax``; what was added is reported and used exactly.

    (The zero matrix has ``lmax = 0``: a relative ridge adds nothing to it.)
    """
    assume(case.eigenvalues[..., -1].min() > 0)
    c = 10.0**log_c
    x, info = solve(case.matrix, p, inverse=inverse, method=method, scaling=scaling,
                    rel_ridge=c, return_info=True)
    n, t = case.matrix.shape[-1], _t(p, inverse)
    lmax = case.eigenvalues[-1]
    r = float(info.ridge)
    assert bool(info.converged)
    assert r <= c * lmax * (1 + 4 * n * EPS64)
    # eigh reads lmax off the decomposition; Newton's power iteration is a lower estimate.
    assert r >= c * lmax * ((1 - 4 * n * EPS64) if method == "eigh" else 0.5)
    shifted = _shifted(case, r)
    assert rel_err(x, shifted.power(t)) <= forward_tolerance(t, n, shifted.cond, EPS64)


def test_rel_ridge_bounds_the_condition_number():
    """The point of a relative ridge: kappa(A + c lmax I) <= 1 + 1/c, whatever A."""
    case = rank_deficient_spd(8, 3, 0, lmax=5.0)
    c = 1e-4
    x = rs.inv_root(case.matrix, 4, rel_ridge=c, method="eigh")
    ref = _shifted(case, c * 5.0).power(-0.25)
    assert rel_err(x, ref) <= forward_tolerance(-0.25, 8, 1 + 1 / c, EPS64)


@pytest.mark.parametrize("p", [1, 2, 3, 4])
@INVERSE
@settings(max_examples=30)
@given(case=ANY_SPD, log_f=st.floats(-6, -1))
def test_floor(case, log_f, p, inverse):
    """``max(w, floor)^t``: eigenvalues below the floor (zeros included) are raised to it.

    Compared with the exact power of the floored spectrum (``stored=False``):
    rounding the input to float64 is one more backward error of
    ``sqrt(n) eps ||A||``, inside twice the forward bound for
    ``kappa_f = max(lmax, f) / f``.
    """
    f = 10.0**log_f
    x, info = solve(case.matrix, p, inverse=inverse, method="eigh", floor=f, return_info=True)
    w = case.eigenvalues
    floored = SPDMatrix(case.matrix, np.maximum(w, f), case.eigenvectors)
    n, t = case.matrix.shape[-1], _t(p, inverse)
    kappa_f = max(w[-1], f) / f
    assert rel_err(x, floored.power(t, stored=False)) <= 2 * forward_tolerance(t, n, kappa_f,
                                                                               EPS64)
    assert bool(info.converged)
    assert float(info.residual) <= residual_tolerance(p, n, kappa_f, EPS64, inverse=inverse)


@pytest.mark.parametrize("p", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("which", ["rtol", "atol"])
@settings(max_examples=30)
@given(n=st.integers(2, 12), data=st.data())
def test_pseudo_inverse_root(n, data, which, p):
    """Eigenvalues at or below the cut map to 0; the rest give ``w^(-1/p)``.

    The range part has condition ``kappa_r``; rounding mixes the null space in
    at an angle ``n eps lmax / lmin_r``, which the same bound covers.
    """
    rank = data.draw(st.integers(1, n - 1))
    kappa_r = 10.0 ** data.draw(st.floats(0, 5))
    case = rank_deficient_spd(n, rank, data.draw(st.integers(0, 2**32 - 1)), cond=kappa_r)
    cut = dict(pinv_rtol=1e-9) if which == "rtol" else dict(pinv_atol=1e-9)
    x, info = rs.inv_root(case.matrix, p, method="eigh", return_info=True, **cut)
    w = case.eigenvalues
    d = np.where(w > 0, np.where(w > 0, w, 1.0) ** (-1.0 / p), 0.0)
    ref = (case.eigenvectors * d) @ case.eigenvectors.conj().T
    assert rel_err(x, ref) <= forward_tolerance(-1.0 / p, n, kappa_r, EPS64)
    assert bool(info.converged)
    # The residual is against the projector onto the kept eigenvectors.
    assert float(info.residual) <= residual_tolerance(p, n, kappa_r, EPS64, inverse=True)


def test_pseudo_inverse_cut_applies_to_small_nonzero_eigenvalues():
    """A cut removes any eigenvalue below it, not only rounding-size ones."""
    case = spd_with_spectrum([1e-12, 1e-3, 1.0, 2.0], 4)
    x = rs.inv_root(case.matrix, 2, pinv_rtol=1e-8, method="eigh")
    d = np.array([0.0, 1e-3**-0.5, 1.0, 2.0**-0.5])
    v = case.eigenvectors
    assert rel_err(x, (v * d) @ v.T) <= forward_tolerance(-0.5, 4, 2e3, EPS64)


@pytest.mark.parametrize(("method", "scaling"), CONFIGS)
@settings(max_examples=20)
@given(case=spd_matrices(kind="logspaced", dtype=st.sampled_from(["float64", "complex128"])),
       p=root_orders(), seed=st.integers(0, 2**32 - 1))
def test_symmetrize_roots_the_hermitian_part(case, p, seed, method, scaling):
    """``a + s`` with ``s`` skew-Hermitian at the level of rounding: the default roots ``a``.

    Asymmetry up to ``n eps ||a||_F`` (what forming ``a`` in floating point leaves)
    is removed by symmetrization; the Hermitian part ``(M + M^H) / 2`` is ``a`` up to
    one rounding per entry (a backward error of ``eps``), hence twice the forward bound.
    """
    a = case.matrix
    n = a.shape[-1]
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, n))
    if np.iscomplexobj(a):
        g = g + 1j * rng.standard_normal((n, n))
    s = (g - g.conj().T) / 2
    size = np.linalg.norm(s)
    skewed = a + (s * (n * EPS64 * np.linalg.norm(a) / size) if size else s)
    x = rs.inv_root(skewed, p, method=method, scaling=scaling)
    tol = 2 * forward_tolerance(-1.0 / p, n, case.cond, EPS64)
    assert rel_err(x, case.power(-1.0 / p)) <= tol
    # Already Hermitian input: turning symmetrization off changes nothing but rounding.
    y = rs.inv_root(a, p, method=method, scaling=scaling, symmetrize=False)
    assert rel_err(y, case.power(-1.0 / p)) <= forward_tolerance(-1.0 / p, n, case.cond, EPS64)


@pytest.mark.parametrize("method", ["eigh", "newton"])
@pytest.mark.parametrize("symmetrize", [True, False])
def test_asymmetry_beyond_rounding_is_refused(method, symmetrize):
    # Such a matrix is not Hermitian, and its Hermitian part has another root: the
    # cube of the root of (a + a^T) / 2 is 18 % off a random 6 x 6 a + 6 I.
    a = np.random.default_rng(0).standard_normal((6, 6)) + 6 * np.eye(6)
    with pytest.raises(ValueError, match="assume_a='gen'") as err:
        rs.root(a, 3, method=method, symmetrize=symmetrize)
    assert "||a - a^H||_F / ||a||_F" in str(err.value)
    with pytest.raises(ValueError, match="assume_a='gen'"):
        rs.inv_root([[2.0, 1.0], [0.0, 1.0]], 2, method=method)
    x = rs.root(a, 3, assume_a="gen")
    assert np.allclose(np.linalg.matrix_power(x, 3), a, rtol=1e-12, atol=1e-12)


def test_asymmetry_tolerance_scales_with_n_eps_and_the_norm():
    n = 8
    a = np.eye(n) * 3.0
    e = np.zeros((n, n))
    e[0, 1] = 1.0
    limit = SYMMETRY_FACTOR * n * EPS64 * np.linalg.norm(a)
    rs.inv_root(a + 0.5 * limit / np.sqrt(2) * e, 2)  # within: accepted
    with pytest.raises(ValueError, match="rounding level"):
        rs.inv_root(a + 2 * limit / np.sqrt(2) * e, 2)


def test_asymmetry_under_jit_is_reported():
    import jax

    a = np.array([[2.0, 1.0], [0.0, 1.0]])
    x, info = jax.jit(lambda m: rs.inv_root(m, 2, return_info=True))(a)
    assert not bool(info.converged)
    assert bool(np.isnan(jax.jit(lambda m: rs.inv_root(m, 2))(a)).all())


@pytest.mark.parametrize("method", ["eigh", "newton"])
def test_unchecked_input_gives_the_checked_result(method):
    # check_finite=False only drops the checks: a finite Hermitian matrix, which passes
    # them, gets the very same root and info, eagerly and under jit.
    import jax

    a = spd_with_spectrum(logspaced_spectrum(6, 1e4), 1).matrix
    stack = np.stack([a, 2 * a])
    for run in (lambda f: f(stack), lambda f: jax.jit(f)(stack)):
        x0, i0 = run(lambda m: rs.inv_root(m, 4, method=method, return_info=True))
        x1, i1 = run(
            lambda m: rs.inv_root(m, 4, method=method, return_info=True, check_finite=False)
        )
        np.testing.assert_array_equal(np.asarray(x0), np.asarray(x1))
        for f0, f1 in zip(i0, i1, strict=True):
            np.testing.assert_array_equal(np.asarray(f0), np.asarray(f1))


def test_unchecked_input_is_not_refused():
    # The matrix the checks refuse (not Hermitian beyond rounding) goes to the solver.
    a = np.array([[2.0, 1.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="assume_a='gen'"):
        rs.inv_root(a, 2, method="eigh")
    x = rs.inv_root(a, 2, method="eigh", check_finite=False)
    assert x.shape == (2, 2)
    with pytest.raises(TypeError, match="check_finite must be a bool"):
        rs.inv_root(np.eye(2), 2, check_finite="no")


@pytest.mark.parametrize(
    "kw",
    [dict(ridge=1e-3), dict(rel_ridge=1e-4), dict(floor=1e-5), dict(pinv_rtol=1e-9),
     dict(ridge=1e-6, rel_ridge=1e-6, compute_dtype="float64", symmetrize=False)],
    ids=["ridge", "rel_ridge", "floor", "pinv_rtol", "several"],
)
def test_conditioning_object_equals_keywords(kw):
    case = rank_deficient_spd(6, 4, 5)
    a = case.matrix
    via_kw = rs.inv_root(a, 3, **kw)
    via_obj = rs.inv_root(a, 3, conditioning=rs.Conditioning(**kw))
    np.testing.assert_array_equal(via_kw, via_obj)


def test_default_conditioning_is_the_identity_operation():
    case = spd_with_spectrum(logspaced_spectrum(5, 1e3), 6)
    np.testing.assert_array_equal(
        rs.inv_root(case.matrix, 2), rs.inv_root(case.matrix, 2, conditioning=rs.Conditioning())
    )
