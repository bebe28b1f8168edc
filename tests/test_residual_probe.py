"""``residual="probe"``: the randomized residual estimate of ``inv_root``, ``root`` and ``power``.

The estimate applies the residual operator ``R`` to a fixed ``n x k`` block
``Z`` of random signs (``k = 8``) and reports ``||R Z||_F / sqrt(k n)`` for
inverse powers and ``||X^p Z - B^q Z||_F / ||B^q Z||_F`` for positive ones
(see :mod:`rootsolve.diagnostics`). Since ``Z`` is fixed, the estimate is a
deterministic function of ``X`` and ``B``; the checks are:

* it equals that definition, evaluated here independently in numpy;
* on roots with a known perturbation ``E`` (``||E||_F = delta ||X||_F``) the
  residual is known to first order from the eigen-data (Frechet derivative
  of ``X -> X^p``, Higham 2008, sec. 3.2), and the estimate lies within the
  spread that Hutchinson's variance bound allows;
* on good roots both it and the exact residual are below the rounding bound;
* it runs on numpy, jax (eager, ``jit``, ``vmap``) and the array-API path,
  batched, real and complex, for every method.

References
----------
M. F. Hutchinson, Comm. Statist. Simulation Comput. 19(2), 433-450, 1990.
P.-G. Martinsson and J. A. Tropp, Acta Numerica 29, 403-572, 2020.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from _spd_support import EPS64, to_backend, to_numpy

import rootsolve as rs
from rootsolve import testing as gm
from rootsolve._backend import get_backend
from rootsolve.diagnostics import PROBE_COLUMNS, probe_block
from rootsolve.diagnostics import residual as _residual
from rootsolve.testing import (
    clustered_spectrum,
    logspaced_spectrum,
    rank_deficient_spd,
    residual_tolerance,
    spd_with_spectrum,
)

jax = pytest.importorskip("jax")
jnp = jax.numpy

K = PROBE_COLUMNS
#: Relative size of the perturbation of the roots: the residual it causes
#: (about ``p delta kappa^(1/p)``) is far above rounding (``n eps kappa``), and
#: the second-order term is ``O(delta)`` relative to the first.
DELTA = 1e-6

SPD = {
    "logspaced": spd_with_spectrum(logspaced_spectrum(16, 1e4), 21),
    "clustered": spd_with_spectrum(clustered_spectrum(16, 1e3, spread=0.1), 22),
    "complex": spd_with_spectrum(logspaced_spectrum(12, 1e3), 23, complex=True),
}
GEN = {
    "gen-real": gm.random_spectrum(12, rng=31),
    "gen-complex": gm.random_spectrum(10, rng=32, real=False),
}
#: Exponents t = s q / p: inverse and plain roots, and rational powers.
EXPONENTS = [Fraction(-1, 2), Fraction(-1, 4), Fraction(1, 3), Fraction(-3, 2), Fraction(2, 3)]


def _eigendata(name):
    """``(B, w, V, V^-1)`` with ``B = V diag(w) V^-1`` for a named case."""
    if name in SPD:
        case = SPD[name]
        v = case.eigenvectors
        return case.exact(), case.eigenvalues.astype(complex), v, np.conj(v.T)
    case = GEN[name]
    return case.a, case.eigenvalues, case.v, np.linalg.inv(case.v)


def _first_order(w, v, vinv, e, t: Fraction, real: bool):
    """``(X0, L(E), B^q)``: the root ``X0 = B^t`` and the first-order residual of ``X0 + E``.

    ``(X0 + E)^p = X0^p + sum_m X0^m E X0^(p-1-m) + O(E^2)``; in the
    eigenbasis the sum is ``E~ o D`` with ``E~ = V^-1 E V`` and
    ``D_ij = sum_m x_i^m x_j^(p-1-m)``, ``x = w^t`` (Higham 2008, sec. 3.2).
    For an inverse power the residual carries a further factor ``B^q``.
    """
    q, p = abs(t.numerator), t.denominator
    x = np.exp(float(t) * np.log(w))
    d = sum(x[:, None] ** m * x[None, :] ** (p - 1 - m) for m in range(p))
    if t < 0:
        d = d * (w**q)[None, :]
    lin = v @ ((vinv @ e @ v) * d) @ vinv
    x0 = (v * x) @ vinv
    bq = (v * w**q) @ vinv
    cast = (lambda m: m.real) if real else (lambda m: m)
    return cast(x0), cast(lin), cast(bq)


def _definition(x, b, t: Fraction) -> float:
    """The probe estimate written out in numpy with explicit powers."""
    q, p = abs(t.numerator), t.denominator
    n = b.shape[-1]
    z = probe_block(n)
    xp = np.linalg.matrix_power(x, p)
    bq = np.linalg.matrix_power(b, q)
    if t < 0:
        return float(np.linalg.norm((xp @ bq - np.eye(n)) @ z) / math.sqrt(K * n))
    return float(np.linalg.norm((xp - bq) @ z) / np.linalg.norm(bq @ z))


def _perturbed(name, t: Fraction, seed: int = 0):
    """``(B, X, L, scale)``: ``X = B^t + E`` and its first-order residual ``||L||_F / scale``."""
    b, w, v, vinv = _eigendata(name)
    real = np.isrealobj(b)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(b.shape) + (0 if real else 1j * rng.standard_normal(b.shape))
    x0, _, _ = _first_order(w, v, vinv, np.zeros_like(g), t, real)
    e = DELTA * np.linalg.norm(x0) * g / np.linalg.norm(g)
    _, lin, bq = _first_order(w, v, vinv, e, t, real)
    scale = math.sqrt(b.shape[-1]) if t < 0 else np.linalg.norm(bq)
    return b, x0 + e, lin, scale


def _stable_rank(m) -> float:
    return float(np.linalg.norm(m) ** 2 / np.linalg.norm(m, 2) ** 2)


def _probe(x, b, t):
    return _residual(get_backend(x), x, b, None, float(t), "probe")


# --------------------------------------------------------------------------- the probe block


def test_probe_block_is_a_fixed_block_of_signs():
    z = probe_block(40)
    assert z.shape == (40, K) and z.dtype == np.float64
    assert set(np.unique(z)) == {-1.0, 1.0}
    assert not z.flags.writeable
    np.testing.assert_array_equal(z, probe_block.__wrapped__(40))  # same seed, same block
    assert np.linalg.matrix_rank(z) == K  # distinct probes


# --------------------------------------------------------------------------- perturbed roots


@pytest.mark.parametrize("t", EXPONENTS, ids=str)
@pytest.mark.parametrize("name", list(SPD) + list(GEN))
def test_probe_of_a_perturbed_root(name, t):
    """A root with a known error: the estimate, the exact residual and first order agree.

    * ``probe`` equals its definition ``||R Z||_F / sqrt(k n)`` evaluated with
      explicit powers, up to the rounding of either (:func:`_rounding_bound`,
      which the residual itself exceeds a hundredfold);
    * ``exact`` equals ``||L(E)||_F / scale`` up to the second-order term,
      whose size relative to the first is that of the relative change ``E``
      makes, ``O(p delta)`` (``delta = 1e-6``); ``1e-4`` leaves a hundredfold
      margin;
    * ``probe^2 / exact^2`` is the Hutchinson estimate of ``||R||_F^2``
      relative to its mean, with relative standard deviation at most
      ``sqrt(2 / (k r))``, ``r`` the stable rank of ``R`` (Martinsson & Tropp
      2020). The band of four standard deviations (the fixed probes make the
      ratio deterministic; for sign probes the chance of leaving it is below
      1/16 by Chebyshev and far smaller by sub-Gaussian tails) also excludes
      a normalization off by ``sqrt(k)``; it lies inside ``[1/4, 4]``.
    """
    b, x, lin, scale = _perturbed(name, t)
    be = get_backend(b)
    exact = float(_residual(be, x, b, None, float(t), "exact"))
    probe = float(_probe(x, b, t))
    first = float(np.linalg.norm(lin) / scale)
    q, p = abs(t.numerator), t.denominator
    rounding = _rounding_bound(p, q, b.shape[-1], np.linalg.cond(b), t < 0)
    assert first > 100 * rounding  # far above rounding, so the comparisons mean something
    assert abs(probe - _definition(x, b, t)) <= rounding
    assert abs(exact - first) <= 1e-4 * first
    spread = 4 * math.sqrt(2 / (K * _stable_rank(lin)))
    assert abs((probe / first) ** 2 - 1) <= spread
    assert 0.25 <= probe / exact <= 4


# --------------------------------------------------------------------------- good roots


def _rounding_bound(p: int, q: int, n: int, kappa: float, inverse: bool) -> float:
    """Residual of a backward-stable ``X ~ B^(+-q/p)`` evaluated with rounded products.

    As in :func:`rootsolve.testing.residual_tolerance` with ``B^q`` for
    ``B``: ``X = (B + F)^(-q/p)``, ``||F|| <~ n eps ||B||``, gives
    ``X^p B^q - I ~ -q B^-1 F`` (size ``q n eps kappa``), and the ``p + q``
    rounded products add ``(p + q) n eps ||X||^p ||B^q|| = (p + q) n eps
    kappa^q``; for a positive power the same terms relative to ``||B^q||``
    carry no ``kappa``. Both estimates see the same rounding.
    """
    return 4 * (p + q) * n * EPS64 * (kappa**q if inverse else 1.0)


def _call(a, t: Fraction, **kw):
    if t.numerator == -1:
        return rs.inv_root(a, t.denominator, return_info=True, **kw)
    if t.numerator == 1:
        return rs.root(a, t.denominator, return_info=True, **kw)
    return rs.power(a, float(t), return_info=True, **kw)


def _both(a, t, **kw):
    x_e, info_e = _call(a, t, **kw)
    x_p, info_p = _call(a, t, residual="probe", **kw)
    np.testing.assert_array_equal(to_numpy(x_e), to_numpy(x_p))  # only info changes
    for field in ("iterations", "converged", "ridge", "method", "gemms"):
        np.testing.assert_array_equal(to_numpy(getattr(info_e, field)),
                                      to_numpy(getattr(info_p, field)))
    return x_p, to_numpy(info_e.residual), to_numpy(info_p.residual)


#: Newton's residual bound is for roots (q = 1); eigh covers the rational powers.
SPD_CONFIGS = [("eigh", t) for t in EXPONENTS] + [
    ("newton", t) for t in EXPONENTS if abs(t.numerator) == 1
]


@pytest.mark.parametrize(("method", "t"), SPD_CONFIGS, ids=lambda v: str(v))
@pytest.mark.parametrize("name", list(SPD))
def test_good_spd_roots_have_small_residuals_both_ways(name, method, t):
    case = SPD[name]
    q, p = abs(t.numerator), t.denominator
    n, kappa = case.matrix.shape[-1], case.cond
    _, exact, probe = _both(case.matrix, t, method=method)
    if method == "eigh":
        tol = _rounding_bound(p, q, n, kappa, t < 0)
    else:
        tol = residual_tolerance(p, n, kappa, EPS64, inverse=t < 0, backward_stable=False)
    assert exact <= tol and probe <= tol


@pytest.mark.parametrize("t", EXPONENTS, ids=str)
@pytest.mark.parametrize("method", ["schur_newton", "schur_free"])
@pytest.mark.parametrize("name", list(GEN))
def test_good_general_roots_have_small_residuals_both_ways(name, method, t):
    """Bound of :func:`rootsolve.testing.general_tolerance` from the stability factor."""
    a = GEN[name].a
    x, exact, probe = _both(a, t, assume_a="gen", method=method)
    factor = gm.general_stability_factor(a, x, t.numerator, t.denominator)
    nonnormality = np.linalg.cond(a) if method == "schur_free" else 1.0
    tol = gm.general_tolerance(a.shape[-1], factor, EPS64, nonnormality=nonnormality)
    assert exact <= tol and probe <= tol


@pytest.mark.parametrize("control", [{"pinv_rtol": 1e-8}, {"floor": 1e-3}], ids=["pinv", "floor"])
def test_pseudo_inverse_and_floor_compare_with_what_was_rooted(control):
    """With a cut-off the target of ``X^p B`` is the projector onto the kept eigenvectors:

    an estimate that compared with ``I`` would see ``||(I - P) Z||``, of order 1.
    """
    case = rank_deficient_spd(16, 10, 41, cond=100.0)
    _, exact, probe = _both(case.matrix, Fraction(-1, 2), method="eigh", **control)
    kappa = 100.0 if "pinv_rtol" in control else 1e3  # the floor makes lambda_min = 1e-3
    tol = residual_tolerance(2, 16, kappa, EPS64, inverse=True)
    assert exact <= tol and probe <= tol


# --------------------------------------------------------------------------- large residuals


BACKENDS = ["numpy", "jax", "array_api"]
UNCONVERGED = [
    pytest.param("logspaced", {"method": "newton"}, id="spd-newton"),
    pytest.param("complex", {"method": "newton"}, id="hermitian-newton"),
    pytest.param("gen-real", {"assume_a": "gen", "method": "schur_free"}, id="gen-schur_free"),
    pytest.param("gen-complex", {"assume_a": "gen", "method": "schur_free"},
                 id="gen-complex-schur_free"),
]


def _matrix(name):
    return SPD[name].matrix if name in SPD else GEN[name].a


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("name", "kw"), UNCONVERGED)
@pytest.mark.parametrize("t", [Fraction(-1, 4), Fraction(1, 3)], ids=str)
def test_unconverged_iterates_on_every_backend(t, name, kw, backend):
    """Two iterations leave a residual of order 1; the estimate is within ``[1/4, 4]`` of it.

    The factor 4 on the norm is 16 on ``||R||_F^2``, far outside the
    Hutchinson spread ``sqrt(2 / k) = 1/2`` even for a rank-one ``R``.
    """
    a = to_backend(backend, _matrix(name))
    _, exact, probe = _both(a, t, max_iter=2, **kw)
    assert exact > 1e-3  # really unconverged
    assert 0.25 <= probe / exact <= 4


def test_batched_estimates_equal_one_matrix_at_a_time():
    """The same probes for every matrix of a batch: each entry is that matrix's estimate.

    Up to the rounding of the products (:func:`_rounding_bound`).
    """
    kappas = [10.0 ** (2 + i) for i in range(6)]
    cases = [spd_with_spectrum(logspaced_spectrum(12, c), 50 + i) for i, c in enumerate(kappas)]
    b = np.stack([c.matrix for c in cases]).reshape(2, 3, 12, 12)
    x, info = rs.inv_root(b, 3, method="newton", max_iter=2, return_info=True, residual="probe")
    assert info.residual.shape == (2, 3)
    for (i, j), kappa in zip(np.ndindex(2, 3), kappas, strict=True):
        one = float(_probe(x[i, j], b[i, j], Fraction(-1, 3)))
        assert one > 1e-3  # two Newton steps: far from converged, far above rounding
        assert abs(float(info.residual[i, j]) - one) <= _rounding_bound(3, 1, 12, kappa, True)


# --------------------------------------------------------------------------- jax and array API


@pytest.mark.parametrize("t", [Fraction(-1, 4), Fraction(2, 3)], ids=str)
@pytest.mark.parametrize("name", ["logspaced", "complex", "gen-real", "gen-complex"])
def test_probe_on_jax_jit_and_array_api_equals_numpy(name, t):
    """The same products with the same probes on every backend (perturbed roots).

    Up to the rounding of the products (:func:`_rounding_bound`).
    """
    b, x, _, _ = _perturbed(name, t)
    tol = _rounding_bound(t.denominator, abs(t.numerator), b.shape[-1], np.linalg.cond(b), t < 0)
    ref = float(_probe(x, b, t))
    jitted = jax.jit(lambda x, b: _residual(get_backend(x), x, b, None, float(t), "probe"))
    values = {
        "jax": float(_probe(jnp.asarray(x), jnp.asarray(b), t)),
        "jit": float(jitted(jnp.asarray(x), jnp.asarray(b))),
        "array_api": float(to_numpy(_probe(to_backend("array_api", x),
                                           to_backend("array_api", b), t))),
    }
    for where, value in values.items():
        assert abs(value - ref) <= tol, where


@pytest.mark.parametrize("kw", [{"method": "eigh"}, {"assume_a": "gen", "method": "schur_free"}],
                         ids=["eigh", "schur_free"])
def test_public_api_under_jit_and_vmap(kw):
    """Good roots of a batch under ``jit`` and ``jit(vmap)``: estimates below the rounding bound.

    eigh: :func:`rootsolve.testing.residual_tolerance`; Schur-free:
    :func:`rootsolve.testing.general_tolerance` with its stability
    factor and ``cond_2(A)`` for the Denman-Beavers steps.
    """
    cases = [spd_with_spectrum(logspaced_spectrum(8, c), 60 + i) for i, c in enumerate([1e2, 1e4])]
    a_np = np.stack([c.matrix for c in cases])
    a = jnp.asarray(a_np)

    def res(m):
        return rs.inv_root(m, 3, return_info=True, residual="probe", **kw)[1].residual

    x = to_numpy(rs.inv_root(a, 3, **kw))
    if kw["method"] == "eigh":
        tol = np.array([residual_tolerance(3, 8, c.cond, EPS64, inverse=True) for c in cases])
    else:
        tol = np.array([
            gm.general_tolerance(8, gm.general_stability_factor(ai, xi, -1, 3), EPS64,
                                 nonnormality=np.linalg.cond(ai))
            for ai, xi in zip(a_np, x, strict=True)
        ])
    for r in (res(a), jax.jit(res)(a), jax.jit(jax.vmap(res))(a)):
        r = to_numpy(r)
        assert r.shape == (2,) and np.all(r <= tol)


def test_invalid_input_under_jit_reports_inf():
    bad = np.eye(6)
    bad[2, 3] = bad[3, 2] = np.nan
    a = jnp.asarray(np.stack([SPD["logspaced"].matrix[:6, :6], bad]))
    f = jax.jit(lambda m: rs.inv_root(m, 2, return_info=True, residual="probe")[1])
    info = f(a)
    assert np.isfinite(float(info.residual[0])) and float(info.residual[1]) == np.inf
    assert not bool(info.converged[1])


# --------------------------------------------------------------------------- edge cases


def test_exponent_with_no_small_rational_form_gives_nan():
    _, info = rs.power(SPD["logspaced"].matrix, math.sqrt(2), return_info=True, residual="probe")
    assert np.isnan(float(info.residual))


def test_zero_exponent_gives_zero():
    _, info = rs.power(SPD["logspaced"].matrix, 0.0, return_info=True, residual="probe")
    assert float(info.residual) == 0.0


@pytest.mark.parametrize("bad", ["Probe", "estimate", None, 1])
@pytest.mark.parametrize("fn", [rs.inv_root, rs.root, lambda a, p, **kw: rs.power(a, 0.5, **kw)],
                         ids=["inv_root", "root", "power"])
def test_bad_keyword_names_the_allowed_values(fn, bad):
    with pytest.raises(ValueError, match=r"residual must be one of \('exact', 'probe'\)"):
        fn(np.eye(3), 2, residual=bad)
