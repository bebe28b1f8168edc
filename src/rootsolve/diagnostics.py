"""The result type and the residuals every method reports.

Residuals follow Higham, *Functions of Matrices* (SIAM 2008), sec. 7.6:
for an inverse root ``X ~ B^(-1/p)`` we report ``||X^p B - I||_F / sqrt(n)``
and for a root ``X ~ B^(1/p)`` the relative residual
``||X^p - B||_F / ||B||_F``, where ``B`` is the matrix actually rooted (the
input after symmetrization and ridge; for ``assume_a="gen"`` after the ridge
only, never symmetrized). A rational power ``X ~ B^(q/p)`` reports
``||X^p - B^q||_F / ||B^q||_F`` (or ``||X^p B^q - I||_F / sqrt(n)`` for
``-q/p``). All are computed with explicit matrix products, independently of
how ``X`` was obtained, so they check the method rather than restate it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["RootInfo", "METHOD_NAMES", "matrix_power_int", "gemms_for_power"]

#: Integer codes stored in :attr:`RootInfo.method` (arrays cannot hold strings under jit).
#: ``method="schur_newton"`` reports ``"schur_newton"`` and ``method="schur_free"``
#: reports ``"newton_schur_free"`` (Denman-Beavers square roots, then coupled Newton).
METHOD_NAMES: tuple[str, ...] = ("eigh", "newton", "schur_newton", "newton_schur_free")


class RootInfo(NamedTuple):
    """What a root computation did, as arrays (so it passes through ``jit``).

    Every field has the batch shape of the input (``()`` for a single matrix).

    Attributes
    ----------
    residual : float array
        Relative residual of the returned matrix (see module docstring);
        ``inf`` where the input was invalid.
    iterations : int32 array
        Iterations used (0 for a direct method).
    converged : bool array
        True when the result met its tolerance and the input was valid. Under
        ``jit``, where exceptions are impossible, this is where invalid input
        (non-finite entries, a negative eigenvalue) shows up.
    ridge : float array
        The absolute shift actually added to the diagonal (absolute plus
        relative ridge).
    method : int32 array
        Index into :data:`METHOD_NAMES`; see :attr:`method_name`.
    gemms : int32 array
        Matrix products (and solves) the iteration used, for cost comparisons.
    """

    residual: Any
    iterations: Any
    converged: Any
    ridge: Any
    method: Any
    gemms: Any

    @property
    def method_name(self) -> str:
        """Name of the method used (eager only: reads the code on the host)."""
        import numpy as np

        codes = np.unique(np.asarray(self.method))
        return "+".join(METHOD_NAMES[int(c)] for c in codes)


def gemms_for_power(q: int) -> int:
    """Matrix products used by :func:`matrix_power_int` for exponent ``q >= 1``."""
    return max(q.bit_length() - 1 + bin(q).count("1") - 1, 0)


def matrix_power_int(mm, x: Any, q: int) -> Any:
    """``x**q`` for an integer ``q >= 1`` by binary powering.

    Parameters
    ----------
    mm : callable
        Matrix product ``mm(a, b)`` (the backend's full-precision matmul).
    x : array, shape (..., n, n)
    q : int
        Exponent, at least 1. Uses ``gemms_for_power(q)`` products
        (Higham 2008, sec. 4.1, "binary powering").
    """
    if q < 1:
        raise ValueError(f"matrix_power_int needs q >= 1, got {q=}")
    result = None
    base = x
    while True:
        if q & 1:
            result = base if result is None else mm(result, base)
        q >>= 1
        if not q:
            return result
        base = mm(base, base)
