"""Newton in float32: the default scaling's accuracy, honest convergence, singularity.

float32 is forced with ``compute_dtype="float32"`` (on CPU the default computes
float32 input in float64). ``u = 2^-24``. The correctly rounded inverse root of
``A`` (``||A||_2 = 1``, condition ``kappa``) has residual
``||X^p A - I|| <= p u kappa`` to first order (rootsolve._paths.newton_residual_tol),
the scale every float32 residual here is judged on.
"""

from __future__ import annotations

import numpy as np
import pytest

import rootsolve as rs
from rootsolve.testing import (
    inverse_root_residual,
    rank_deficient_spd,
    spd_problem,
    spd_with_spectrum,
)

U32 = 2.0**-24


def _newton32(a, p, scaling):
    return rs.inv_root(
        a, p, method="newton", scaling=scaling, compute_dtype="float32", return_info=True
    )


@pytest.mark.parametrize("p", [2, 3, 4])
def test_default_scaling_as_accurate_as_frobenius(p):
    """At kappa = 1e6 the default (dynamic) scaling's residual is within 1.5x of
    Frobenius scaling's and within half the first-order bound ``p u kappa``, in
    fewer iterations. (A step cap of 3(p + 1)/4 gave 0.2 at p = 4: 8x Frobenius.)"""
    prob = spd_problem(16, p, 1e6, dtype="float32")
    x_dyn, info_dyn = _newton32(prob.a, p, "dynamic")
    x_fro, info_fro = _newton32(prob.a, p, "frobenius")
    r_dyn = inverse_root_residual(x_dyn, prob.a, p)
    r_fro = inverse_root_residual(x_fro, prob.a, p)
    assert r_dyn <= max(1.5 * r_fro, 0.5 * p * U32 * 1e6)
    assert r_dyn <= 0.5 * p * U32 * 1e6
    assert int(info_dyn.iterations) < int(info_fro.iterations)
    assert bool(info_dyn.converged)


@pytest.mark.parametrize("p", [2, 4])
def test_default_scaling_mean_residual_near_frobenius_at_n128(p):
    """Over four seeds at n = 128, kappa = 1e6, the default scaling's mean residual is
    within 1.5x of Frobenius scaling's (the step cap's float32 image 0.7; with float64's
    0.6 it was 1.5-1.6x), in fewer iterations on every seed. At n = 128 the rounding
    scatter of such a mean is a few percent (Frobenius against itself on permuted input,
    ``python -m asv_benchmarks.goals --float32``)."""
    r_dyn, r_fro = [], []
    for seed in range(4):
        prob = spd_problem(128, p, 1e6, dtype="float32", seed=seed)
        x_dyn, info_dyn = _newton32(prob.a, p, "dynamic")
        x_fro, info_fro = _newton32(prob.a, p, "frobenius")
        r_dyn.append(inverse_root_residual(x_dyn, prob.a, p))
        r_fro.append(inverse_root_residual(x_fro, prob.a, p))
        assert int(info_dyn.iterations) < int(info_fro.iterations)
    assert np.mean(r_dyn) <= 1.5 * np.mean(r_fro)


@pytest.mark.parametrize("p", [2, 4])
def test_converged_only_within_the_residual_tolerance(p):
    """kappa = 1e7 in float32: ``p u kappa`` is 1.2-2.4, beyond what any root can
    promise. ``converged`` is then set only where ``info.residual <= 1/2`` (the
    tolerance's cap), and never beside a residual of 1 or more."""
    for n in (16, 64):
        prob = spd_problem(n, p, 1e7, dtype="float32")
        for scaling in ("dynamic", "frobenius"):
            _, info = _newton32(prob.a, p, scaling)
            if bool(info.converged):
                assert float(info.residual) <= 0.5
            if float(info.residual) >= 1:
                assert not bool(info.converged)


def test_converged_tolerance_is_tight_for_well_conditioned_input():
    """kappa = 10 in float64: the tolerance ``4 n p q eps kappa^q`` is 1e-12, and a
    converged root meets it (the residual is about ``p eps kappa``)."""
    a = spd_with_spectrum(np.geomspace(0.1, 1.0, 8), 0).matrix
    _, info = rs.inv_root(a, 3, method="newton", return_info=True)
    assert bool(info.converged)
    assert float(info.residual) <= 4 * 8 * 3 * np.finfo(np.float64).eps * 10 * 8


def test_float32_input_singularity_judged_in_float64():
    """A float32 matrix with lambda_min = 1e-9 lambda_max is singular to float32's
    ``n u`` but exact and invertible in float64, where it is computed by default:
    eigh and Newton both return its inverse root, and agree to float64 accuracy
    (relative ``kappa^(1/p) u64``-size differences, far below float32's rounding)."""
    w = np.geomspace(1e-9, 1.0, 8)
    a = spd_with_spectrum(w, 1, dtype="float32").matrix
    x_e = rs.inv_root(a, 2, method="eigh")
    x_n = rs.inv_root(a, 2, method="newton")
    ref = np.linalg.eigh(a.astype(np.float64))
    ref = (ref[1] * ref[0] ** -0.5) @ ref[1].T
    for x in (x_e, x_n):
        assert np.linalg.norm(x - ref) <= 8 * U32 * np.linalg.norm(ref)


@pytest.mark.parametrize("method", ["eigh", "newton"])
@pytest.mark.parametrize("rel_ridge", [1e-12, 1e-8])
def test_rel_ridge_never_singular(method, rel_ridge):
    """A rank-deficient float32 Gram matrix has rounding-size eigenvalues of either
    sign in place of its zeros; any positive ridge lifts them (they count as zero),
    so ``rel_ridge`` returns a finite inverse root instead of SingularMatrixError."""
    a = rank_deficient_spd(6, 3, 2, dtype="float32").matrix
    x = rs.inv_root(a, 2, method=method, rel_ridge=rel_ridge, return_info=True)[0]
    assert np.all(np.isfinite(x))
