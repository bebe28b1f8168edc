"""The public functions: ``inv_root``, ``root`` and ``power``.

Each validates once at the door, conditions the matrix, dispatches to a
method module (``eigen``, ``newton``; ``schur_newton``, ``schur_free`` for
``assume_a="gen"``) and wraps the answer with its
:class:`~rootsolve.diagnostics.RootInfo`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Literal, NamedTuple

import array_api_compat
import numpy as np

from . import errors
from ._backend import Backend
from ._validation import check_choice, check_matrix, check_order, eps_of
from .conditioning import (
    Conditioning,
    lambda_max_estimate,
    lambda_min_estimate,
    symmetrize,
    upper_bound_lambda_max,
)
from .diagnostics import METHOD_NAMES, RootInfo, apply_power, matrix_power_int, probe_block
from .eigen import eigh_power
from .newton import SCALINGS, coupled_newton, default_tol, newton_gemms
from .schur_free import diagnose_spectrum, power_name, schur_free_power
from .schur_newton import schur_newton_power

__all__ = ["inv_root", "root", "power"]

Method = Literal["auto", "eigh", "newton", "schur_newton", "schur_free"]
METHODS = ("auto", "eigh", "newton", "schur_newton", "schur_free")
ASSUME = ("pos", "gen")
RESIDUALS = ("exact", "probe")
#: Methods for each structure; codes in METHOD_NAMES ("schur_free" is "newton_schur_free").
_FOR = {"pos": ("eigh", "newton"), "gen": ("schur_newton", "schur_free")}

#: Largest p and q tried when writing an exponent t as q/p (Newton and residuals).
_MAX_DENOMINATOR = 64


def _choose_method(method: str, be: Backend, n: int, cond: Conditioning) -> str:
    """``method="auto"``: eigh on CPU, coupled Newton on accelerators.

    Measured on a 2-core CPU (OpenBLAS, float64, kappa = 1e6, p = 4, medians,
    in units of one n x n matrix product at the same n):

    ======  ============  ==============================
    n       eigh          newton (dynamic scaling)
    ======  ============  ==============================
    64      50  (0.6 ms)  234  (2.7 ms)
    256     14  (5.3 ms)  79   (30 ms)
    1024    7.2 (152 ms)  56   (1.18 s; 48 products + setup)
    ======  ============  ==============================

    so eigh wins at every size on CPU. On GPUs matrix products are cheap and
    ``eigh`` is not, so accelerator arrays with n >= 64 take Newton. Options only an
    eigendecomposition honours (floor, pseudo-inverse) force eigh.
    """
    if method != "auto":
        if method == "newton" and cond.needs_eigh:
            raise ValueError(
                "floor and pinv_atol/pinv_rtol act on eigenvalues and need method='eigh' "
                "(or 'auto'); Newton can only honour ridge and rel_ridge"
            )
        return method
    if cond.needs_eigh:
        return "eigh"
    return "newton" if be.on_gpu and n >= 64 else "eigh"


def _compute_dtype(be: Backend, dname: str, cond: Conditioning) -> str:
    complex_in = dname.startswith("complex")
    want = cond.compute_dtype_name
    if want is None:
        if be.has_float64 and not be.on_gpu:
            want = "float64"
        else:
            want = "float64" if dname in ("float64", "complex128") else "float32"
    if want in ("float64", "complex128") and not be.has_float64:
        raise ValueError(
            "compute_dtype float64 needs jax_enable_x64 (jax.config.update('jax_enable_x64', True))"
        )
    precision = "64" if want in ("float64", "complex128") else "32"
    return ("complex" + str(2 * int(precision))) if complex_in else ("float" + precision)


def _rational(t: float) -> Fraction | None:
    f = Fraction(t).limit_denominator(_MAX_DENOMINATOR)
    return f if float(f) == float(t) else None


def _eye_like(xp, b):
    return xp.broadcast_to(xp.eye(b.shape[-1], dtype=b.dtype), b.shape)


def _fro(xp, a):
    return xp.sqrt(xp.sum(xp.abs(a) ** 2, axis=(-2, -1)))


class _Shifted(NamedTuple):
    """``b + shift I``, kept apart so that a probe residual never forms it."""

    b: Any
    shift: Any


def _residual(
    be: Backend, x: Any, b_eff: Any, target: Any, t: float, mode: str = "exact"
) -> Any:
    """Residual of ``x ~ b_eff^t`` for rational ``t = s q / p`` (see ``diagnostics``).

    ``b_eff`` is a matrix or a :class:`_Shifted` one. ``target`` is what
    ``x^p b_eff^q`` should equal for an inverse power: ``None`` for the
    identity, else the projector of a pseudo-inverse. ``mode="probe"``
    estimates the same quantity from products with a fixed block of random
    signs (:func:`rootsolve.diagnostics.probe_block`).
    """
    xp = be.xp
    frac = _rational(t)
    n = x.shape[-1]
    if frac is None or frac == 0:
        return xp.full(x.shape[:-2], float("nan"), dtype=xp.real(x[..., 0, 0]).dtype)
    q, p = abs(frac.numerator), frac.denominator
    if mode == "probe":
        return _probe_residual(be, x, b_eff, target, p, q, inverse=frac < 0)
    if isinstance(b_eff, _Shifted):
        b_eff = b_eff.b + b_eff.shift[..., None, None] * _eye_like(xp, b_eff.b)
    xp_p = matrix_power_int(be.matmul, x, p)
    bq = matrix_power_int(be.matmul, b_eff, q)
    if frac < 0:
        target = _eye_like(xp, bq) if target is None else target
        return _fro(xp, be.matmul(xp_p, bq) - target) / math.sqrt(n)
    return _fro(xp, xp_p - bq) / _fro(xp, bq)


def _probe_residual(be, x, b_eff, target, p: int, q: int, *, inverse: bool):
    """``residual="probe"``: the residual operator applied to ``n x k`` sign probes.

    ``p + q`` products of an ``n x n`` matrix by the ``n x k`` block; the
    estimator and its variance are in :mod:`rootsolve.diagnostics`
    (Hutchinson 1990; Martinsson & Tropp 2020).
    """
    xp = be.xp
    n = x.shape[-1]
    z_np = probe_block(n)
    # numpy and jax (also traced) take the host constant as it is; other
    # namespaces need it on the input's device.
    where = {} if be.name in ("numpy", "jax") else {"device": array_api_compat.device(x)}
    z = xp.asarray(z_np, dtype=x.dtype, **where)
    b, shift = b_eff if isinstance(b_eff, _Shifted) else (b_eff, None)
    bz = apply_power(be.matmul, b, q, z, shift)
    xbz = apply_power(be.matmul, x, p, bz if inverse else z)
    if inverse:
        tz = z if target is None else be.matmul(target, z)
        return _fro(xp, xbz - tz) / math.sqrt(n * z_np.shape[-1])
    return _fro(xp, xbz - bz) / _fro(xp, bz)


def _prepare(a: Any, cond: Conditioning, hermitian: bool = True):
    be, a, dname = check_matrix(a)
    xp = be.xp
    cdt = _compute_dtype(be, dname, cond)
    b = xp.astype(a, getattr(xp, cdt))
    if cond.symmetrize and hermitian:
        b = symmetrize(be, b)
    if be.name in ("numpy", "jax"):
        # One max-reduction (NaN propagates through it), not a boolean array and a second
        # reduction; the array API leaves max with NaN unspecified.
        with np.errstate(invalid="ignore"):
            finite = xp.isfinite(xp.max(xp.abs(b), axis=(-2, -1)))
    else:
        finite = xp.all(xp.isfinite(b), axis=(-2, -1))
    if be.eager and not bool(xp.all(finite)):
        raise ValueError("a contains non-finite values (nan or inf)")
    if not be.eager:
        # Keep NaN/inf out of the solvers; info.converged reports it instead.
        b = xp.where(finite[..., None, None], b, _eye_like(xp, b))
    eps = max(eps_of(dname), eps_of(cdt))
    return be, a, dname, b, finite, eps


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


def _diagnose_pos(be, b, inverse: bool, eps: float) -> None:
    """After Newton failed on eager input, name the cause when it is the input.

    One ``eigh``, paid only on failure, with the thresholds of
    :func:`rootsolve.eigen.eigh_power`.
    """
    xp = be.xp
    w, _ = be.eigh(b)
    w_min, w_max = w[..., 0], w[..., -1]
    thresh = b.shape[-1] * eps * xp.maximum(xp.abs(w_min), xp.abs(w_max))
    singular = (w_min <= thresh) if inverse else xp.zeros_like(w_min < 0)
    _raise_for_spectrum(xp, w_min < -thresh, singular, w_min, w_max)


def _eigh_path(be, b, t, cond, eps, want_info):
    xp = be.xp
    res = eigh_power(be, b, t, cond, eps)
    if be.eager:
        _raise_for_spectrum(xp, res.negative, res.singular, res.w_min, res.w_max)
    ok = ~(res.negative | res.singular)
    b_eff = target = None
    if want_info:
        b_eff = _Shifted(b, res.ridge)
        if cond.needs_eigh:
            b_eff, target = _effective(be, res)
    zeros = xp.zeros(b.shape[:-2], dtype=xp.int32)
    return res.x, zeros, ok, res.ridge, 0, zeros, b_eff, target


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


def _newton_path(be, b, frac, cond, eps, want_info, scaling, tol, max_iter):
    xp = be.xp
    n = b.shape[-1]
    q, p = abs(frac.numerator), frac.denominator
    inverse = frac < 0
    rdt = xp.real(b[..., :1, :1]).dtype
    ridge = xp.full(b.shape[:-2], float(cond.ridge), dtype=rdt)
    if cond.rel_ridge:
        ridge = ridge + cond.rel_ridge * xp.maximum(
            lambda_max_estimate(be, b)[..., 0, 0], xp.zeros_like(ridge)
        )
    b = b + ridge[..., None, None] * _eye_like(xp, b)
    hi = upper_bound_lambda_max(be, b)
    floor = n * eps * hi
    lo = xp.maximum(ridge[..., None, None], floor)
    if scaling != "frobenius":
        est = lambda_min_estimate(be, b)
        if est is not None:
            est = xp.where(xp.isfinite(est) & (est > 0), est / 4, lo)
            lo = xp.maximum(lo, xp.minimum(est, hi))
    tol = default_tol(n, eps) if tol is None else tol
    try:
        # Invalid input overflows on the way to being reported; numpy need not warn.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = coupled_newton(
                be, b, p, lo=lo, hi=hi, root=not inverse, scaling=scaling, tol=tol,
                max_iter=max_iter,
            )
    except np.linalg.LinAlgError as exc:
        # An eager solve met an exactly singular T_k, which a positive
        # definite spectrum never produces.
        _diagnose_pos(be, b, inverse, eps)
        raise errors.ConvergenceError(f"coupled Newton broke down: {exc}") from exc
    if be.eager and not bool(xp.all(out.converged)):
        _diagnose_pos(be, b, inverse, eps)
    # The exact root of a Hermitian matrix is Hermitian; rounding in the
    # products is not. Taking the Hermitian part halves that error for free.
    x = symmetrize(be, out.x)
    if q > 1:
        x = matrix_power_int(be.matmul, x, q)
    if be.eager and not want_info and not bool(xp.all(out.converged)):
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
    return x, out.iterations, out.converged, ridge, 1, gemms, b, None


def _choose_general(method: str, be: Backend, cond: Conditioning, frac) -> str:
    """``assume_a="gen"``: Schur-Newton where scipy's Schur decomposition applies.

    That is numpy input, and concrete jax arrays on the CPU (their data is on
    the host already; the result comes back as a jax array). jax's own
    ``jax.scipy.linalg.schur`` exists on CPU only, and the quasi-triangular
    square root calls LAPACK from the host, so traced jax arrays (``jit``,
    ``vmap``), GPU arrays, cupy and other array-API arrays take the
    Schur-free variant, which traces and stays on the device.
    """
    if cond.needs_eigh or cond.rel_ridge:
        raise ValueError(
            "assume_a='gen' honours only the absolute ridge=; rel_ridge, floor, pinv_atol "
            "and pinv_rtol act on the eigenvalues of a Hermitian matrix (assume_a='pos')"
        )
    if frac is None:
        raise ValueError(
            f"assume_a='gen' needs an exponent t = +-q/p with p <= {_MAX_DENOMINATOR}"
        )
    host = be.name == "numpy" or (be.name == "jax" and be.eager and not be.on_gpu)
    if method == "auto":
        return "schur_newton" if host else "schur_free"
    if method == "schur_newton" and not host:
        where = "a traced jax array" if be.name == "jax" and not be.eager else (
            f"a {be.name} array" + (" on an accelerator" if be.on_gpu else "")
        )
        raise ValueError(
            "method='schur_newton' needs numpy input or a concrete jax array on the CPU "
            f"(scipy's Schur decomposition), got {where}; use method='schur_free' or 'auto'"
        )
    return method


def _general_path(be, b, frac, method, cond, eps, want_info, tol, max_iter):
    """General matrices: :mod:`rootsolve.schur_newton` or :mod:`rootsolve.schur_free`."""
    xp = be.xp
    n = b.shape[-1]
    m, p = frac.numerator, frac.denominator
    ridge = xp.full(b.shape[:-2], float(cond.ridge), dtype=xp.real(b[..., :1, :1]).dtype)
    if cond.ridge:
        b = b + cond.ridge * _eye_like(xp, b)
    tol = default_tol(n, eps) if tol is None else tol
    if method == "schur_newton":
        res = schur_newton_power(b, m, p, tol=tol, max_iter=max_iter, eps=eps)
        res = type(res)(*(xp.asarray(v) for v in res))  # back from the host for jax
    else:
        if be.eager and not be.on_gpu:  # cheap on the host: check first (see diagnose_spectrum)
            diagnose_spectrum(be, b, inverse=m < 0, eps=eps, order=power_name(m, p))
        res = schur_free_power(be, b, m, p, tol=tol, max_iter=max_iter)
        if be.eager and be.on_gpu and not bool(xp.all(res.converged)):
            diagnose_spectrum(be, b, inverse=m < 0, eps=eps, order=power_name(m, p))
    if be.eager and not want_info and not bool(xp.all(res.converged)):
        bad = int(xp.sum(xp.astype(~res.converged, xp.int32)))
        raise errors.ConvergenceError(
            f"{method} did not converge for {bad} matrix(es) after at most "
            f"{int(xp.max(res.iterations))} iterations (tol = {tol:.3e}); the matrix may be "
            "too ill-conditioned for this precision: pass return_info=True to take the "
            "result with its residual, or raise max_iter"
        )
    code = METHOD_NAMES.index("schur_newton" if method == "schur_newton" else "newton_schur_free")
    return res.x, res.iterations, res.converged, ridge, code, res.gemms, b, None


def _matrix_function(
    a, t, frac, *, method, assume_a, cond, scaling, tol, max_iter, return_info, residual
):
    check_choice(method, "method", METHODS)
    check_choice(residual, "residual", RESIDUALS)
    check_choice(assume_a, "assume_a", ASSUME)
    check_choice(scaling, "scaling", SCALINGS)
    bad_iter = isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1
    if max_iter is not None and bad_iter:
        raise ValueError(f"max_iter must be an integer >= 1, got max_iter={max_iter!r}")
    if tol is not None and not (isinstance(tol, (int, float)) and tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a finite number > 0, got tol={tol!r}")
    if method != "auto" and method not in _FOR[assume_a]:
        raise ValueError(
            f"method={method!r} is not for assume_a={assume_a!r}; use one of "
            f"{('auto',) + _FOR[assume_a]}"
        )
    be, a, dname, b, finite, eps = _prepare(a, cond, hermitian=assume_a == "pos")
    xp = be.xp
    if assume_a == "gen":
        chosen = _choose_general(method, be, cond, frac)
    else:
        chosen = _choose_method(method, be, b.shape[-1], cond)
    if chosen == "newton" and frac is None:
        raise ValueError(
            f"method='newton' needs an exponent of the form q/p with p <= {_MAX_DENOMINATOR}, "
            f"got t={t!r}; use method='eigh'"
        )
    if t == 0:
        x, its, ok = _eye_like(xp, b), xp.zeros(b.shape[:-2], dtype=xp.int32), finite
        ridge = xp.zeros(b.shape[:-2], dtype=xp.real(b[..., :1, :1]).dtype)
        code, gemms, b_eff, target = 0, its, b, None
    elif chosen == "eigh":
        x, its, ok, ridge, code, gemms, b_eff, target = _eigh_path(be, b, t, cond, eps, return_info)
    elif assume_a == "gen":
        x, its, ok, ridge, code, gemms, b_eff, target = _general_path(
            be, b, frac, chosen, cond, eps, return_info, tol, max_iter or 100
        )
    else:
        x, its, ok, ridge, code, gemms, b_eff, target = _newton_path(
            be, b, frac, cond, eps, return_info, scaling, tol, max_iter or 100
        )
    ok = ok & finite
    out = xp.astype(x, a.dtype)
    if not return_info:
        if not be.eager:
            out = xp.where(ok[..., None, None], out, xp.full_like(out, float("nan")))
        return out
    res = _residual(be, x, b_eff, target, t, residual) if t != 0 else xp.zeros_like(ridge)
    res = xp.where(finite, res, xp.full_like(res, float("inf")))
    info = RootInfo(
        residual=res,
        iterations=its,
        converged=ok,
        ridge=ridge,
        method=xp.full(b.shape[:-2], code, dtype=xp.int32),
        gemms=xp.astype(gemms, xp.int32) if not isinstance(gemms, int) else xp.full(
            b.shape[:-2], gemms, dtype=xp.int32
        ),
    )
    return out, info


def _conditioning(conditioning, **kw) -> Conditioning:
    if conditioning is None:
        return Conditioning(**kw)
    if not isinstance(conditioning, Conditioning):
        raise TypeError(f"conditioning must be a Conditioning, got {type(conditioning).__name__}")
    defaults = Conditioning()
    clash = [k for k, v in kw.items() if v != getattr(defaults, k)]
    if clash:
        raise ValueError(f"pass either conditioning= or the keywords {clash}, not both")
    return conditioning


_COMMON_DOC = """
    method : {"auto", "eigh", "newton", "schur_newton", "schur_free"}, default "auto"
        ``"eigh"``: eigendecomposition (exact up to rounding, any exponent).
        ``"newton"``: coupled Newton iteration (matrix products only; the fast
        path on GPUs). ``"auto"`` picks eigh on CPU and Newton on
        accelerators for n >= 64 (see the module docs for the measurements).
        For ``assume_a="gen"``: ``"schur_newton"`` (Guo-Higham Schur-Newton,
        numpy input or concrete CPU jax arrays, computed on the host; real
        arithmetic for real input) or ``"schur_free"`` (Denman-Beavers square
        roots and Newton, any backend, ``jit``-able; less accurate for
        strongly nonnormal matrices); ``"auto"`` picks Schur-Newton where it
        applies and Schur-free otherwise (``jit``, GPUs, cupy, array API).
    assume_a : {"pos", "gen"}, default "pos"
        Structure of ``a``: ``"pos"`` Hermitian positive (semi)definite;
        ``"gen"`` any square matrix with no eigenvalue on the closed negative
        real axis (and none at zero for inverse powers), giving the principal
        power; ``t`` must then be ``+-q/p`` with ``p <= 64``, and of the
        conditioning controls only ``ridge`` and ``compute_dtype`` apply (no
        symmetrization). Under ``jit`` structure cannot be inferred from
        data, so it is a parameter.
    ridge, rel_ridge, floor, pinv_atol, pinv_rtol, symmetrize, compute_dtype
        Conditioning controls; see :class:`rootsolve.Conditioning`.
    conditioning : Conditioning, optional
        The same controls as one reusable object (exclusive with the keywords).
    scaling : {"dynamic", "optimal", "frobenius"}, default "dynamic"
        Newton's scaling; see :mod:`rootsolve.newton`.
    tol : float, optional
        Newton's stopping tolerance on ``||M - I||_1``; default
        ``sqrt(n) eps / 2`` in the compute precision.
    max_iter : int, optional
        Newton's iteration cap (default 100).
    return_info : bool, default False
        Also return a :class:`rootsolve.RootInfo`.
    residual : {"exact", "probe"}, default "exact"
        How ``info.residual`` is evaluated (see :mod:`rootsolve.diagnostics`).
        ``"exact"``: the norm of the residual matrix, formed with
        ``O(log p + log q)`` products of ``n x n`` matrices. ``"probe"``: a
        randomized estimate of the same number from ``p + q`` products with
        a fixed ``n x 8`` block of random signs (Hutchinson's estimator;
        relative standard deviation at most about 1/4, largest for a
        rank-one residual), for when the residual only has to be compared
        with a threshold or logged. Ignored without ``return_info``.

    Returns
    -------
    x : array, shape (..., n, n)
        Same array type and dtype as ``a`` (integers give float64).
    info : RootInfo
        Only with ``return_info=True``.

    Raises
    ------
    ValueError, TypeError
        Bad shape, dtype, exponent or option; non-finite entries.
    NotPositiveDefiniteError
        An eigenvalue below zero beyond rounding (``-n eps max|w|``).
    NegativeEigenvalueError
        ``assume_a="gen"``: an eigenvalue on the closed negative real axis.
    SingularMatrixError
        Inverse power of a singular matrix with nothing to regularize it.
    ConvergenceError
        Newton did not converge (only when ``return_info=False``).

    Notes
    -----
    Under ``jax.jit`` nothing can be raised: invalid input or failure gives
    ``info.converged == False``, and without ``return_info`` the result is
    NaN, never a silently wrong matrix.
"""


def inv_root(
    a: Any,
    p: int,
    *,
    method: Method = "auto",
    assume_a: Literal["pos", "gen"] = "pos",
    ridge: float = 0.0,
    rel_ridge: float = 0.0,
    floor: float | None = None,
    pinv_atol: float | None = None,
    pinv_rtol: float | None = None,
    symmetrize: bool = True,
    compute_dtype: Any = None,
    conditioning: Conditioning | None = None,
    scaling: Literal["dynamic", "optimal", "frobenius"] = "dynamic",
    tol: float | None = None,
    max_iter: int | None = None,
    return_info: bool = False,
    residual: Literal["exact", "probe"] = "exact",
) -> Any:
    cond = _conditioning(
        conditioning, ridge=ridge, rel_ridge=rel_ridge, floor=floor, pinv_atol=pinv_atol,
        pinv_rtol=pinv_rtol, symmetrize=symmetrize, compute_dtype=compute_dtype,
    )
    p = check_order(p)
    return _matrix_function(
        a, -1.0 / p, Fraction(-1, p), method=method, assume_a=assume_a, cond=cond,
        scaling=scaling, tol=tol, max_iter=max_iter, return_info=return_info,
        residual=residual,
    )


def root(
    a: Any,
    p: int,
    *,
    method: Method = "auto",
    assume_a: Literal["pos", "gen"] = "pos",
    ridge: float = 0.0,
    rel_ridge: float = 0.0,
    floor: float | None = None,
    pinv_atol: float | None = None,
    pinv_rtol: float | None = None,
    symmetrize: bool = True,
    compute_dtype: Any = None,
    conditioning: Conditioning | None = None,
    scaling: Literal["dynamic", "optimal", "frobenius"] = "dynamic",
    tol: float | None = None,
    max_iter: int | None = None,
    return_info: bool = False,
    residual: Literal["exact", "probe"] = "exact",
) -> Any:
    cond = _conditioning(
        conditioning, ridge=ridge, rel_ridge=rel_ridge, floor=floor, pinv_atol=pinv_atol,
        pinv_rtol=pinv_rtol, symmetrize=symmetrize, compute_dtype=compute_dtype,
    )
    p = check_order(p)
    return _matrix_function(
        a, 1.0 / p, Fraction(1, p), method=method, assume_a=assume_a, cond=cond,
        scaling=scaling, tol=tol, max_iter=max_iter, return_info=return_info,
        residual=residual,
    )


def power(
    a: Any,
    t: float,
    *,
    method: Method = "auto",
    assume_a: Literal["pos", "gen"] = "pos",
    ridge: float = 0.0,
    rel_ridge: float = 0.0,
    floor: float | None = None,
    pinv_atol: float | None = None,
    pinv_rtol: float | None = None,
    symmetrize: bool = True,
    compute_dtype: Any = None,
    conditioning: Conditioning | None = None,
    scaling: Literal["dynamic", "optimal", "frobenius"] = "dynamic",
    tol: float | None = None,
    max_iter: int | None = None,
    return_info: bool = False,
    residual: Literal["exact", "probe"] = "exact",
) -> Any:
    cond = _conditioning(
        conditioning, ridge=ridge, rel_ridge=rel_ridge, floor=floor, pinv_atol=pinv_atol,
        pinv_rtol=pinv_rtol, symmetrize=symmetrize, compute_dtype=compute_dtype,
    )
    if isinstance(t, bool) or not isinstance(t, (int, float, Fraction)) or not math.isfinite(t):
        raise TypeError(f"t must be a finite real number, got t={t!r}")
    t = float(t)
    return _matrix_function(
        a, t, _rational(t), method=method, assume_a=assume_a, cond=cond,
        scaling=scaling, tol=tol, max_iter=max_iter, return_info=return_info,
        residual=residual,
    )


inv_root.__doc__ = (
    """Inverse p-th root ``a^(-1/p)`` of Hermitian positive definite or general matrices.

    Parameters
    ----------
    a : array, shape (..., n, n)
        numpy, jax (also under ``jit``/``vmap``), cupy or other array-API array.
    p : int
        Root order, an integer >= 1 (any integer, not only powers of two).
"""
    + _COMMON_DOC
    + """
    References
    ----------
    N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM 2008, ch. 7.
    C.-H. Guo and N. J. Higham, SIAM J. Matrix Anal. Appl. 28(3), 2006.

    Examples
    --------
    >>> import numpy as np, rootsolve
    >>> a = np.array([[4.0, 0.0], [0.0, 16.0]])
    >>> np.round(rootsolve.inv_root(a, 2), 12)
    array([[0.5 , 0.  ],
           [0.  , 0.25]])

    A general matrix (real, with complex eigenvalues 1 +- 2i): the principal
    root is real, unlike ``scipy.linalg.fractional_matrix_power``'s complex128.

    >>> b = np.array([[1.0, 2.0], [-2.0, 1.0]])
    >>> x = rootsolve.inv_root(b, 3, assume_a="gen")
    >>> x.dtype, bool(np.allclose(np.linalg.matrix_power(x, 3) @ b, np.eye(2)))
    (dtype('float64'), True)
    """
)
root.__doc__ = (
    """Principal p-th root ``a^(1/p)`` of Hermitian positive semidefinite or general matrices.

    Parameters
    ----------
    a : array, shape (..., n, n)
        numpy, jax (also under ``jit``/``vmap``), cupy or other array-API array.
    p : int
        Root order, an integer >= 1.
"""
    + _COMMON_DOC
    + """
    Examples
    --------
    >>> import numpy as np, rootsolve
    >>> np.round(rootsolve.root(np.diag([8.0, 27.0]), 3), 12)
    array([[2., 0.],
           [0., 3.]])
    """
)
power.__doc__ = (
    """Real power ``a^t`` of Hermitian positive (semi)definite or general matrices.

    Parameters
    ----------
    a : array, shape (..., n, n)
        numpy, jax (also under ``jit``/``vmap``), cupy or other array-API array.
    t : float
        Any real exponent with ``method="eigh"``; ``method="newton"`` and
        ``assume_a="gen"`` need ``t = q/p`` with ``p <= 64`` (they compute
        ``(a^(+-1/p))^q``).
        ``info.residual`` is NaN for exponents not of that form.
"""
    + _COMMON_DOC
)
