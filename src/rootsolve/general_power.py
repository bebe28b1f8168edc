"""Real powers ``A^t`` of general matrices through their Schur form (numpy, host).

:func:`schur_pade_power` is the ``"schur_pade"`` method for a batch:

1. Schur decomposition ``A = Z T Z^H``: the *real* Schur form for real ``A``
   whose principal power is real (``T`` quasi-upper-triangular, conjugate
   pairs in 2x2 blocks), so real input stays real; the complex form otherwise.
   An upper triangular ``A`` is its own Schur factor.
2. ``T^t`` by the Schur-Pade algorithm of Higham & Lin (2011, 2013),
   :func:`rootsolve.schur_pade.triangular_power`.
3. ``A^t = Z T^t Z^H``.

Beyond the principal branch:

* ``branch="numpy"``: eigenvalues on the closed negative real axis (not
  zero) get ``arg = +pi``, the convention of numpy's scalar powers and of
  ``scipy.linalg.fractional_matrix_power``. The complex Schur factor is
  rotated, ``w T`` with ``w = exp(-i delta)``, so that no eigenvalue lies on
  the cut, and ``T^t = exp(i delta t) (w T)^t``; ``delta`` is half the angular
  room left below the cut, so that the power's conditioning is not spoiled.
* Singular ``A`` (eigenvalues with ``|lambda| <= n eps ||A||_F``) and ``t > 0``:
  the Schur form is reordered so that the zero eigenvalues come last,
  ``T = [[T11, T12], [0, T22]]``. When the zero eigenvalue has Jordan blocks
  of size at most ``k`` (``T22^k = 0``), ``z^t`` has ``k - 1`` derivatives at 0
  exactly when ``t`` is an integer or ``t > k - 1`` (Higham 2008, def. 1.2);
  then ``f(T22) = 0`` and ``F12`` solves ``T11 F12 - F12 T22 = F11 T12``
  (``F11 = T11^t``), the commutation ``F T = T F`` (Higham 2008, sec. 4.6).
  Otherwise no power exists and :class:`~rootsolve.errors.RootError` says so.

References
----------
N. J. Higham and L. Lin, "A Schur-Pade algorithm for fractional powers of a
matrix", SIAM J. Matrix Anal. Appl. 32(3), 2011, doi:10.1137/10081232X.
N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM 2008.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sl
from scipy.linalg import lapack

from . import errors
from .schur_free import GeneralResult
from .schur_newton import schur_eigenvalues
from .schur_pade import SchurPadeResult, triangular_power

__all__ = ["BRANCHES", "power_one", "schur_pade_power"]

#: The branch conventions: the principal power only, or numpy's ``arg = +pi``.
BRANCHES = ("principal", "numpy")


def _rotated_power(t0: np.ndarray, t: float, lam: np.ndarray, on_axis: np.ndarray):
    """``T0^t`` with numpy's branch (``arg = +pi`` on the negative axis), complex ``t0``.

    ``T0^t = exp(i delta t) (w T0)^t`` with ``w = exp(-i delta)``: every
    eigenvalue's argument drops by ``delta``, those on the axis to
    ``pi - delta``, and ``delta`` is half the room below the cut left by the
    others, so that none crosses it (module docstring).
    """
    ang = np.angle(lam[~on_axis])
    low = float(ang.min()) if ang.size else math.pi
    delta = min((math.pi + low) / 2, math.pi / 2)
    res = triangular_power(np.exp(-1j * delta) * t0, t)
    return res._replace(x=np.exp(1j * delta * t) * res.x)


def _factor_power(t0, t, lam, *, branch: str, tiny: float, order: str) -> SchurPadeResult:
    """Power of a nonsingular Schur factor under the chosen branch."""
    on_axis = (lam.real < 0) & (np.abs(lam.imag) <= tiny)
    if not np.any(on_axis) or t == int(t):
        return triangular_power(t0, t)
    if branch == "principal":
        z = complex(lam[np.argmax(on_axis)])
        raise errors.NegativeEigenvalueError(
            f"a has the eigenvalue {z.real:.6g} on the negative real axis, where the "
            f"principal {order} is not defined; pass branch='numpy' for the complex power "
            "with numpy's scalar convention (arg = +pi), as scipy's fractional_matrix_power "
            "returns"
        )
    return _rotated_power(t0.astype(np.result_type(t0, np.complex64)), t, lam, on_axis)


def _schur(a: np.ndarray, complex_: bool, sort=None):
    """Schur form, skipped for an upper triangular ``a`` (it is its own Schur factor)."""
    if sort is None and not np.any(np.tril(a, -1)):
        t0 = a.astype(np.result_type(a, np.complex64)) if complex_ else a
        return t0, None, a.shape[0]
    out = sl.schur(a, output="complex" if complex_ else "real", sort=sort, check_finite=False)
    return out if sort is not None else (*out, a.shape[0])


def _nilpotency(t22: np.ndarray, tol: float, scale: float) -> int:
    """Smallest ``k`` with ``T22^k = 0`` to rounding (``||T22^k||_F <= tol scale^(k-1)``)."""
    p, k = t22, 1
    while k < t22.shape[0] and np.linalg.norm(p) > tol * scale ** (k - 1):
        p = p @ t22
        k += 1
    return k


def _singular(a, t, zero_tol, scale, *, complex_, branch, order) -> SchurPadeResult:
    """``A^t`` for ``t > 0`` and a singular ``A`` (module docstring, last item)."""
    if complex_:
        sort = lambda z: abs(z) > zero_tol  # noqa: E731
    else:
        sort = lambda x, y: math.hypot(x, y) > zero_tol  # noqa: E731
    t_, z, k = sl.schur(a, output="complex" if complex_ else "real", sort=sort,
                        check_finite=False)
    lam = schur_eigenvalues(t_[:k, :k])
    on_axis = (lam.real < 0) & (np.abs(lam.imag) <= zero_tol)
    if not complex_ and np.any(on_axis) and t != int(t) and branch != "principal":
        t_, z = sl.rsf2csf(t_, z)
    t11, t12, t22 = t_[:k, :k], t_[:k, k:], t_[k:, k:]
    blocks = _nilpotency(t22, zero_tol, scale)
    if t != int(t) and t <= blocks - 1:
        raise errors.RootError(
            f"a is singular and its zero eigenvalue is not semisimple (a Jordan block of size "
            f"{blocks}): no {order} exists, since z^t is not {blocks - 1} times "
            f"differentiable at 0 for non-integer t <= {blocks - 1}; powers of this matrix "
            f"exist for integer t >= 0 and t > {blocks - 1}"
        )
    f = np.zeros_like(t_)
    res = SchurPadeResult(f[:k, :k], 0, 0)
    if k:
        res = _factor_power(t11, t, lam, branch=branch, tiny=zero_tol, order=order)
        f = f.astype(np.result_type(f, res.x))
        f[:k, :k] = res.x
        c = res.x @ t12.astype(f.dtype)
        (trsyl,) = lapack.get_lapack_funcs(("trsyl",), (f,))
        x12, sc, info = trsyl(t11.astype(f.dtype), t22.astype(f.dtype), c, isgn=-1)
        if info < 0:
            raise ValueError(f"trsyl rejected argument {-info}")
        f[:k, k:] = x12 / sc
    return res._replace(x=z.astype(f.dtype) @ f @ z.conj().T.astype(f.dtype))


def power_one(a: np.ndarray, t: float, *, eps: float, branch: str = "principal",
              order: str | None = None) -> SchurPadeResult:
    """``a^t`` of one general matrix by the Schur-Pade algorithm (module docstring).

    Parameters
    ----------
    a : ndarray, shape (n, n)
        Real or complex, finite.
    t : float
        Any real exponent.
    eps : float
        Unit roundoff; eigenvalues with ``|lambda| <= n eps ||a||_F`` count as
        zero, and those with ``Re lambda < 0`` and ``|Im lambda|`` below the same
        bound as on the negative real axis.
    branch : {"principal", "numpy"}
    order : str, optional
        How error messages name the power (default ``"power a^(t)"``).

    Raises
    ------
    SingularMatrixError
        ``t < 0`` and ``a`` singular to working precision.
    NegativeEigenvalueError
        ``branch="principal"``, non-integer ``t`` and an eigenvalue on the
        negative real axis.
    RootError
        ``a`` is singular and the power does not exist (a nilpotent Jordan
        block of size ``k > 1`` and non-integer ``t <= k - 1``).
    """
    n = a.shape[0]
    order = order or f"power a^({t:g})"
    complex_ = bool(np.iscomplexobj(a))
    scale = float(np.linalg.norm(a))
    tiny = n * eps * scale
    t0, z, _ = _schur(a, complex_)
    lam = schur_eigenvalues(t0)
    zero = np.abs(lam) <= tiny
    if np.any(zero):
        if t < 0:
            raise errors.SingularMatrixError(
                f"a is singular to working precision (eigenvalue of modulus "
                f"{float(np.min(np.abs(lam))):.3e} <= n eps ||a||_F = {tiny:.3e}): the {order} "
                "with t < 0 does not exist (add a ridge)"
            )
        if t == 0:
            return SchurPadeResult(np.eye(n, dtype=a.dtype), 0, 0)
        return _singular(a, t, tiny, scale, complex_=complex_, branch=branch, order=order)
    on_axis = (lam.real < 0) & (np.abs(lam.imag) <= tiny)
    if not complex_ and np.any(on_axis) and t != int(t) and branch != "principal":
        t0, z = sl.rsf2csf(t0, z) if z is not None else (t0.astype(complex), None)
    res = _factor_power(t0, t, lam, branch=branch, tiny=tiny, order=order)
    if z is None:
        return res
    z = z.astype(res.x.dtype, copy=False)
    return res._replace(x=z @ res.x @ z.conj().T)


def schur_pade_power(
    b: np.ndarray, t: float, *, eps: float, branch: str = "principal", order: str | None = None
) -> GeneralResult:
    """``b^t`` for a batch of general numpy matrices by :func:`power_one`.

    Returns
    -------
    GeneralResult
        ``x`` real for real ``b`` unless some matrix of the batch needs the
        complex branch (``branch="numpy"``), then complex for all;
        ``iterations`` are the square roots taken; ``gemms`` counts the
        products, solves and square roots of the Pade phase
        (``SchurPadeResult.products + 2s``, each counted as one).

    Raises
    ------
    The errors of :func:`power_one`, naming the batch index.
    """
    b = np.asarray(b)
    batch = b.shape[:-2]
    outs = []
    its = np.zeros(batch, dtype=np.int32)
    gemms = np.zeros(batch, dtype=np.int32)
    for idx in np.ndindex(batch):
        try:
            res = power_one(b[idx], t, eps=eps, branch=branch, order=order)
        except np.linalg.LinAlgError as exc:
            if batch:
                raise type(exc)(f"matrix {idx}: {exc}") from None
            raise
        outs.append(res.x)
        its[idx] = res.roots
        gemms[idx] = res.products + 2 * res.roots + 2
    dtype = np.result_type(b.dtype, *(o.dtype for o in outs))
    x = np.empty(b.shape, dtype=dtype)
    for idx, o in zip(np.ndindex(batch), outs, strict=True):
        x[idx] = o
    conv = np.all(np.isfinite(x), axis=(-2, -1))
    return GeneralResult(x, its, conv, gemms)
