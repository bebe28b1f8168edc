"""The method paths: each adapts one method module to the public contract.

A path takes the conditioned matrix and a :class:`Request`, adds the ridge,
runs its method, turns eager failures into the errors of
:mod:`rootsolve.errors` (naming the cause when it is the input) and returns a
:class:`PathResult`, from which :mod:`rootsolve._roots` builds the result and
its :class:`~rootsolve.diagnostics.RootInfo`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

from . import errors
from ._backend import Backend
from ._linalg import eye_like
from ._spectrum import diagnose_spectrum, power_name
from ._validation import dtype_name, eps_of
from .conditioning import (
    Conditioning,
    lambda_max_estimate,
    lambda_min_estimate,
    symmetrize,
    upper_bound_lambda_max,
)
from .diagnostics import Shifted, matrix_power_int
from .eigen import eigh_power
from .newton import coupled_newton, default_tol, newton_gemms
from .schur_free import schur_free_power
from .schur_newton import schur_newton_power

__all__ = [
    "Request",
    "PathResult",
    "eigh_path",
    "newton_path",
    "newton_residual_tol",
    "schur_newton_path",
    "schur_free_path",
]


class Request(NamedTuple):
    """What every method path is handed besides the backend and the matrix."""

    method: str  # the name in METHODS
    t: float  # the exponent
    frac: Fraction | None  # t as q/p with p <= MAX_DENOMINATOR, or None
    cond: Conditioning
    eps: float  # unit roundoff of the coarser of input and compute precision
    scaling: str  # Newton's scaling
    tol: float | None  # stopping tolerance; None: default_tol
    max_iter: int
    want_info: bool  # return_info: no ConvergenceError, the caller reads the info
    branch: str = "principal"  # "numpy": arg = +pi on the negative real axis


class PathResult(NamedTuple):
    """What every method path returns; batch-shaped except ``x`` and ``b_eff``."""

    x: Any  # (..., n, n) in the compute dtype
    iterations: Any  # int32
    converged: Any  # bool
    ridge: Any  # real: the shift actually added to the diagonal
    gemms: Any  # int: matrix products and solves
    b_eff: Any  # the matrix actually powered (or a Shifted one), for the residual
    target: Any = None  # the projector a pseudo-inverse inverts on; None: the identity
    residual_tol: Any = None  # converged also needs info.residual <= this; None: no check


def compute_eps(b: Any) -> float:
    """Unit roundoff of ``b``'s dtype: the compute precision, which judges singularity.

    A float32 matrix is exact in float64, so computed there its eigenvalues
    are known to float64 accuracy; only negativity is judged by the coarser
    precision (the input's rounding may have moved them below zero).
    """
    return eps_of(dtype_name(b.dtype))


def _raise_for_spectrum(xp, negative, singular, w_min, w_max) -> None:
    """Eager input whose spectrum has no principal (inverse) root: say so."""
    if bool(xp.any(negative)):
        raise errors.NotPositiveDefiniteError(
            "a is not positive semidefinite: smallest eigenvalue "
            f"{float(xp.min(w_min)):.3e} is below zero beyond rounding "
            f"(largest {float(xp.max(w_max)):.3e}); the principal root needs "
            "none (add a ridge, or use assume_a='gen' for a general matrix)"
        )
    if bool(xp.any(singular)):
        raise errors.SingularMatrixError(
            "a is singular to working precision (smallest eigenvalue "
            f"{float(xp.min(w_min)):.3e}, largest {float(xp.max(w_max)):.3e}); "
            "an inverse root needs a ridge, a floor or a pseudo-inverse cut-off "
            "(ridge=, rel_ridge=, floor=, pinv_rtol=)"
        )


def _diagnose_pos(be, b, inverse: bool, eps: float, ridged: bool = False) -> None:
    """After Newton failed on eager input, name the cause when it is the input.

    One ``eigh``, paid only on failure, with the thresholds of
    :func:`rootsolve.eigen.eigh_power` (a ridged matrix is never called singular).
    """
    xp = be.xp
    w, _ = be.eigh(b)
    w_min, w_max = w[..., 0], w[..., -1]
    scale = b.shape[-1] * xp.maximum(xp.abs(w_min), xp.abs(w_max))
    singular = (w_min <= compute_eps(b) * scale) if inverse and not ridged else (
        xp.zeros_like(w_min < 0)
    )
    thresh = eps * scale
    _raise_for_spectrum(xp, w_min < -thresh, singular, w_min, w_max)


def eigh_path(be: Backend, b: Any, req: Request) -> PathResult:
    xp = be.xp
    res = eigh_power(be, b, req.t, req.cond, req.eps, compute_eps(b))
    if be.eager:
        _raise_for_spectrum(xp, res.negative, res.singular, res.w_min, res.w_max)
    ok = ~(res.negative | res.singular)
    b_eff = target = None
    if req.want_info:
        b_eff = Shifted(b, res.ridge)
        if req.cond.needs_eigh:
            b_eff, target = _effective(be, res)
    zeros = xp.zeros(b.shape[:-2], dtype=xp.int32)
    return PathResult(res.x, zeros, ok, res.ridge, zeros, b_eff, target)


def _effective(be, res):
    """The matrix a floor or cut-off actually rooted, and the projector it inverts on.

    Rebuilt from the eigendecomposition :func:`eigh_power` already computed.
    """
    xp = be.xp
    v = res.v
    vh = xp.conj(xp.matrix_transpose(v))
    b_eff = be.matmul(v * xp.astype(res.w, v.dtype)[..., None, :], vh)
    proj = be.matmul(v * xp.astype(res.kept, v.dtype)[..., None, :], vh)
    return b_eff, proj


def _newton_bounds(be, b, ridge, eps: float):
    """Bounds ``lo <= lambda_min``, ``hi >= lambda_max`` of ``b`` for Newton's scaling."""
    xp = be.xp
    hi = upper_bound_lambda_max(be, b)
    floor = xp.maximum(ridge[..., None, None], b.shape[-1] * eps * hi)
    # Frobenius scaling needs the lower bound only to judge stagnation, but a
    # bound above lambda_min makes it stop early all the same.
    est = lambda_min_estimate(be, b)
    if est is None:
        return floor, hi
    # The estimate, where there is one, replaces the singularity floor n eps hi,
    # which lies above lambda_min once the condition number passes 1 / (n eps).
    usable = xp.isfinite(est) & (est > 0)
    lo = xp.maximum(ridge[..., None, None], xp.maximum(est / 4, eps * hi))
    return xp.where(usable, xp.minimum(lo, hi), floor), hi


def newton_path(be: Backend, b: Any, req: Request) -> PathResult:
    xp = be.xp
    cond, eps = req.cond, req.eps
    q, p = abs(req.frac.numerator), req.frac.denominator
    inverse = req.frac < 0
    rdt = xp.real(b[..., :1, :1]).dtype
    ridge = xp.full(b.shape[:-2], float(cond.ridge), dtype=rdt)
    if cond.rel_ridge:
        ridge = ridge + cond.rel_ridge * xp.maximum(
            lambda_max_estimate(be, b)[..., 0, 0], xp.zeros_like(ridge)
        )
    ridged = bool(cond.ridge or cond.rel_ridge)
    b = b + ridge[..., None, None] * eye_like(xp, b)
    lo, hi = _newton_bounds(be, b, ridge, compute_eps(b))
    tol = default_tol(b.shape[-1], eps) if req.tol is None else req.tol
    try:
        # Invalid input overflows on the way to being reported; numpy need not warn.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = coupled_newton(
                be, b, p, lo=lo, hi=hi, root=not inverse, scaling=req.scaling, tol=tol,
                max_iter=req.max_iter,
            )
    except np.linalg.LinAlgError as exc:
        # An eager solve met an exactly singular T_k, which a positive
        # definite spectrum never produces.
        _diagnose_pos(be, b, inverse, eps, ridged)
        raise errors.ConvergenceError(f"coupled Newton broke down: {exc}") from exc
    if be.eager and not bool(xp.all(out.converged)):
        _diagnose_pos(be, b, inverse, eps, ridged)
    # The exact root of a Hermitian matrix is Hermitian; rounding in the
    # products is not. Taking the Hermitian part halves that error for free.
    x = symmetrize(be, out.x)
    if q > 1:
        x = matrix_power_int(be.matmul, x, q)
    if be.eager and not req.want_info and not bool(xp.all(out.converged)):
        bad = ~out.converged
        worst = float(xp.max(xp.where(bad, out.error, xp.zeros_like(out.error))))
        raise errors.ConvergenceError(
            f"coupled Newton did not converge for {int(xp.sum(xp.astype(bad, xp.int32)))} "
            f"matrix(es): ||M - I||_1 = {worst:.3e} > tol = {tol:.3e} after "
            f"{int(xp.max(out.iterations))} iterations. The matrix may not be positive "
            "definite, or too ill-conditioned for this precision: try method='eigh', a "
            "ridge, or return_info=True to take the best iterate and its residual"
        )
    gemms = out.iterations * newton_gemms(p, root=not inverse)
    res_tol = newton_residual_tol(xp, b.shape[-1], lo, hi, p, q, compute_eps(b))
    return PathResult(x, out.iterations, out.converged, ridge, gemms, b, None, res_tol)


def newton_residual_tol(xp, n: int, lo: Any, hi: Any, p: int, q: int, eps: float) -> Any:
    """The residual ``info.residual`` must meet for Newton to report convergence.

    ``min(1/2, 4 n p q eps kappa^q)`` with ``kappa = hi / lo`` from the bounds
    that scaled the iteration (an overestimate of the condition number). The
    correctly rounded ``X = B^(-q/p)`` (``||B||_2 = 1``, ``||dX|| <= eps ||X||``)
    has ``||X^p B^q - I|| <= sum_i ||X^i|| ||dX|| ||X^(p-1-i) B^q|| <= p eps kappa^q``
    to first order (Higham, *Functions of Matrices*, SIAM 2008, sec. 7.6); the
    factor ``4 n q`` covers the rounding of the products that form it and of
    the residual itself. The cap 1/2 is half the residual of ``X = 0``: beyond
    it the root has no correct bit, whatever the condition number explains.
    Batch-shaped.
    """
    kappa = (hi / lo)[..., 0, 0]
    tol = 4.0 * n * p * q * eps * xp.maximum(kappa, xp.ones_like(kappa)) ** q
    # A zero matrix (hi = lo = 0) or overflow: only the cap applies.
    return xp.where(tol < 0.5, tol, xp.full_like(tol, 0.5))


def _schur_newton(be: Backend, b: Any, m: int, p: int, tol: float, req: Request):
    res = schur_newton_power(b, m, p, tol=tol, max_iter=req.max_iter, eps=req.eps)
    return type(res)(*(be.xp.asarray(v) for v in res))  # back from the host for jax


def _schur_free(be: Backend, b: Any, m: int, p: int, tol: float, req: Request):
    order = power_name(m, p)
    if be.eager and not be.on_gpu:  # cheap on the host: check first (see diagnose_spectrum)
        diagnose_spectrum(be, b, inverse=m < 0, eps=req.eps, order=order)
    res = schur_free_power(be, b, m, p, tol=tol, max_iter=req.max_iter)
    if be.eager and be.on_gpu and not bool(be.xp.all(res.converged)):
        diagnose_spectrum(be, b, inverse=m < 0, eps=req.eps, order=order)
    return res


def _general_path(kernel: Callable, be: Backend, b: Any, req: Request) -> PathResult:
    """General matrices: the ridge, then ``kernel`` (Schur-Newton or Schur-free)."""
    xp = be.xp
    m, p = req.frac.numerator, req.frac.denominator
    ridge = xp.full(b.shape[:-2], float(req.cond.ridge), dtype=xp.real(b[..., :1, :1]).dtype)
    if req.cond.ridge:
        b = b + req.cond.ridge * eye_like(xp, b)
    tol = default_tol(b.shape[-1], req.eps) if req.tol is None else req.tol
    res = kernel(be, b, m, p, tol, req)
    if be.eager and not req.want_info and not bool(xp.all(res.converged)):
        bad = int(xp.sum(xp.astype(~res.converged, xp.int32)))
        raise errors.ConvergenceError(
            f"{req.method} did not converge for {bad} matrix(es) after at most "
            f"{int(xp.max(res.iterations))} iterations (tol = {tol:.3e}); the matrix may be "
            "too ill-conditioned for this precision: pass return_info=True to take the "
            "result with its residual, or raise max_iter"
        )
    return PathResult(res.x, res.iterations, res.converged, ridge, res.gemms, b)


schur_newton_path = functools.partial(_general_path, _schur_newton)
schur_free_path = functools.partial(_general_path, _schur_free)
