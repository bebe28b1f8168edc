"""Integer powers ``A^k`` of any square matrix, on every backend.

An integer power is defined for every square matrix whatever its spectrum
(``k >= 0``), and for every nonsingular one (``k < 0``); no branch is involved.

* ``k = 0``: the identity (also for a singular ``A``, as ``numpy.linalg.matrix_power``).
* ``k > 0``: binary powering, ``floor(log2 k) + popcount(k) - 1`` products
  (Higham 2008, sec. 4.1).
* ``k < 0``: ``(A^-1)^|k|``, the inverse by LU with partial pivoting. On eager
  input the reciprocal condition number ``rcond_1(A)`` is estimated from the
  same factors (LAPACK ``gecon``); ``rcond_1(A) <= eps`` means ``A`` is
  singular to working precision and :class:`~rootsolve.errors.SingularMatrixError`
  is raised. Under ``jit`` a singular ``A`` gives a non-finite inverse, which
  the returned flag reports.

References
----------
N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM 2008, sec. 4.1.
N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM 2002,
ch. 15 (condition estimation).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from scipy.linalg import lapack

from . import errors
from ._backend import Backend
from .diagnostics import gemms_for_power, matrix_power_int

__all__ = ["integer_power", "integer_exponent", "reciprocal_condition"]


def integer_exponent(t: Any) -> int | None:
    """``int(t)`` when ``t`` is an integer or an integral float (``2.0``), else None."""
    if isinstance(t, bool) or not isinstance(t, numbers.Real):
        return None
    f = float(t)
    return int(f) if f.is_integer() else None


def reciprocal_condition(a: np.ndarray) -> float:
    """``rcond_1(a)``: LAPACK's estimate of ``1 / (||a||_1 ||a^-1||_1)`` (0 when singular)."""
    lu, piv, info = lapack.get_lapack_funcs(("getrf",), (a,))[0](a)
    if info > 0:
        return 0.0
    (gecon,) = lapack.get_lapack_funcs(("gecon",), (lu,))
    anorm = float(np.max(np.sum(np.abs(a), axis=0)))
    if anorm == 0 or not np.isfinite(anorm):
        return 0.0
    rcond, _ = gecon(lu, anorm, norm="1")
    return float(rcond)


def _check_nonsingular(host: np.ndarray, eps: float, k: int) -> None:
    for idx in np.ndindex(host.shape[:-2]):
        rcond = reciprocal_condition(host[idx])
        if rcond <= eps:
            at = f" (matrix {idx})" if idx else ""
            raise errors.SingularMatrixError(
                f"a is singular to working precision{at}: rcond_1(a) = {rcond:.3e} <= "
                f"eps = {eps:.3e}, so the power a^({k}) with a negative exponent does not "
                "exist (add a ridge)"
            )


def integer_power(be: Backend, b: Any, k: int, *, eps: float) -> tuple[Any, Any, int]:
    """``b^k`` for a batch of square matrices and an integer ``k``.

    Parameters
    ----------
    be : Backend
    b : array, shape (..., n, n)
    k : int
    eps : float
        Unit roundoff of the compute precision (the singularity threshold).

    Returns
    -------
    x : array, shape (..., n, n)
    ok : bool array, shape (...)
        Finite result (false under ``jit`` for a singular ``b`` and ``k < 0``).
    gemms : int
        Products and inverses used, each counted as one.

    Raises
    ------
    SingularMatrixError
        Eager input, ``k < 0`` and ``rcond_1(b) <= eps``.
    """
    xp = be.xp
    if k == 0:
        x = xp.broadcast_to(xp.eye(b.shape[-1], dtype=b.dtype), b.shape)
        return x, xp.ones(b.shape[:-2], dtype=xp.bool), 0
    base, gemms = b, 0
    if k < 0:
        if be.eager:
            _check_nonsingular(_host(be, b), eps, k)
        base = xp.linalg.inv(b)
        gemms = 1
    x = base if abs(k) == 1 else matrix_power_int(be.matmul, base, abs(k))
    ok = xp.all(xp.isfinite(x), axis=(-2, -1))
    return x, ok, gemms + gemms_for_power(abs(k))


def _host(be: Backend, a: Any) -> np.ndarray:
    if be.name == "numpy":
        return np.asarray(a)
    if be.name == "cupy":
        return a.get()
    return np.asarray(a)
