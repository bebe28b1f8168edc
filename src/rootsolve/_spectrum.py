"""Eigenvalue checks for general matrices: errors that name the offending eigenvalue.

A principal power ``a^(m/p)`` exists for eigenvalues off the closed negative
real axis (and away from zero for inverse powers); Higham, *Functions of
Matrices* (SIAM 2008), thm. 7.2. Schur-Newton checks the eigenvalues its Schur
form already holds; the Schur-free path computes them on the host with
``numpy.linalg.eigvals`` when that is cheap or after a failure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import errors
from ._backend import Backend

__all__ = ["diagnose_spectrum", "check_eigenvalues", "power_name"]


def _to_host(be: Backend, a: Any) -> np.ndarray:
    if be.name == "cupy":
        return a.get()
    if be.name == "jax":
        return np.asarray(a)
    return np.from_dlpack(a)


def diagnose_spectrum(be: Backend, b: Any, *, inverse: bool, eps: float, order: str) -> None:
    """Raise the specific error for eigenvalues the principal power cannot have.

    Eager only: the eigenvalues are computed on the host (``numpy.linalg.eigvals``).
    Arrays that live on the host are checked before iterating; accelerator
    arrays only after an iteration failed, so that a backend without a Schur
    decomposition can still say *why* without paying a host eigensolver on
    every call. (A real matrix with a negative eigenvalue always fails there;
    a complex one with an eigenvalue on the axis to rounding may converge to
    a root of a nearby matrix, whose residual ``info`` reports.)

    Raises
    ------
    SingularMatrixError
        An inverse power of a matrix with an eigenvalue zero to working precision.
    NegativeEigenvalueError
        An eigenvalue on the closed negative real axis.
    """
    host = _to_host(be, b)
    for idx in np.ndindex(host.shape[:-2]):
        lam = np.linalg.eigvals(host[idx])
        check_eigenvalues(lam, np.linalg.norm(host[idx]), inverse=inverse, eps=eps, order=order,
                          where=idx)


def check_eigenvalues(
    lam: np.ndarray, scale: float, *, inverse: bool, eps: float, order: str, where: tuple = ()
) -> None:
    """Raise if eigenvalues ``lam`` of a matrix of norm ``scale`` forbid a principal power.

    An eigenvalue counts as on the closed negative real axis when its real
    part is at most zero and its imaginary part is at most ``n eps scale``;
    as zero (for inverse powers) when its modulus is at most ``n eps scale``.
    """
    n = lam.shape[-1]
    delta = n * eps * scale
    at = f" (matrix {where})" if where else ""
    if inverse:
        tiny = np.abs(lam) <= delta
        if np.any(tiny):
            raise errors.SingularMatrixError(
                f"a is singular to working precision{at}: eigenvalue "
                f"{_fmt(lam[np.argmax(tiny)])} with |lambda| <= n eps ||a||_F = {delta:.3e}; "
                f"the principal {order} is not defined (add a ridge)"
            )
    bad = (lam.real <= 0) & (np.abs(lam.imag) <= delta)
    if np.any(bad):
        raise errors.NegativeEigenvalueError(
            f"a has the eigenvalue {_fmt(lam[np.argmax(bad)])} on the closed negative real "
            f"axis{at}: the principal {order} is not defined there (no eigenvalue may lie "
            "in (-inf, 0]). A zero eigenvalue: positive powers of a matrix whose zero "
            "eigenvalue is semisimple exist (method='auto' or 'schur_pade'); a negative one: "
            "pass branch='numpy' for the complex power with numpy's scalar convention "
            "(arg = +pi)"
        )


def power_name(m: int, p: int) -> str:
    """How error messages name the power: ``"power a^(-1/3)"``."""
    return f"power a^({m}/{p})" if p > 1 else f"power a^({m})"


def _fmt(z: complex) -> str:
    z = complex(z)
    if z.imag == 0:
        return f"{z.real:.6g}"
    return f"{z.real:.6g}{z.imag:+.6g}j"
