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

Two ways to evaluate them, chosen by the keyword ``residual`` of
:func:`rootsolve.inv_root`, :func:`rootsolve.root` and :func:`rootsolve.power`:

``residual="exact"`` (the default)
    Forms ``X^p`` and ``B^q`` by binary powering and takes the norms above:
    ``O(log p + log q)`` products of ``n x n`` matrices: for ``p = 4`` on a
    CPU, as much time as the eigendecomposition itself.
``residual="probe"``
    Applies the residual operator ``R`` (``X^p B^q - I``, with the projector
    in place of ``I`` after a pseudo-inverse cut-off, or ``X^p - B^q``) to a
    fixed ``n x k`` block ``Z`` of Rademacher (``+-1``) probes,
    ``k =`` :data:`PROBE_COLUMNS`, from right to left:
    ``R Z = X (X (... X (B^q Z))) - Z`` with ``p + q`` products of an
    ``n x n`` matrix by the thin block, never forming ``X^p`` or ``B^q``.
    The estimates are ``||R Z||_F / sqrt(k n)`` for an inverse power and
    ``||X^p Z - B^q Z||_F / ||B^q Z||_F`` for a positive one. For a random
    sign vector ``z``, ``E ||R z||^2 = tr(R^H R) = ||R||_F^2`` (Hutchinson
    1990), so ``||R Z||_F^2 / k`` is an unbiased estimate of ``||R||_F^2``
    whose relative variance is ``2 (||R^H R||_F^2 - sum_i (R^H R)_ii^2) /
    (k ||R||_F^4) <= 2 / (k r)``, ``r = ||R||_F^2 / ||R||_2^2`` the stable
    rank of ``R`` (Martinsson & Tropp 2020, on trace and norm estimation by
    sampling). The estimated norm therefore has a relative standard
    deviation of about ``sqrt(1 / (2 k r)) <= 1/4`` for ``k = 8`` even when
    ``R`` has rank one, and less when its stable rank is larger. ``Z`` is
    built from a fixed seed (:func:`probe_block`), so the estimate is a
    deterministic function of ``X`` and ``B``, the same under ``jit`` and on
    every backend; complex matrices use the same real probes. It is meant
    for accepting or rejecting a root against a threshold well above
    rounding (an optimizer's ``max_residual = 0.1``) and for logging; at
    rounding level it has the size of the exact residual, not its digits.

References
----------
N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM 2008,
sec. 7.6.

M. F. Hutchinson, "A stochastic estimator of the trace of the influence
matrix for Laplacian smoothing splines", Comm. Statist. Simulation Comput.
19(2), 433-450, 1990.

P.-G. Martinsson and J. A. Tropp, "Randomized numerical linear algebra:
foundations and algorithms", Acta Numerica 29, 403-572, 2020,
arXiv:2002.01387.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from ._backend import Backend
from ._linalg import eye_like, fro

__all__ = [
    "RootInfo",
    "METHOD_NAMES",
    "PROBE_COLUMNS",
    "matrix_power_int",
    "gemms_for_power",
    "probe_block",
    "apply_power",
    "MAX_DENOMINATOR",
    "rational_exponent",
    "Shifted",
    "residual",
]

#: Integer codes stored in :attr:`RootInfo.method` (arrays cannot hold strings under jit):
#: the names the ``method=`` keyword takes, in the order of their codes. Append only, so
#: that a code once logged keeps its meaning.
METHOD_NAMES: tuple[str, ...] = (
    "eigh", "newton", "schur_newton", "schur_free", "schur_pade", "integer_power"
)


class RootInfo(NamedTuple):
    """What a root computation did, as arrays (so it passes through ``jit``).

    Every field has the batch shape of the input (``()`` for a single matrix).

    Attributes
    ----------
    residual : float array
        Relative residual of the returned matrix, or its randomized estimate
        with ``residual="probe"`` (see module docstring); ``inf`` where the
        input was invalid.
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
        Matrix products (and solves) the iteration used, for cost comparisons;
        the residual's own products are not counted.
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


#: Columns ``k`` of the probe block of ``residual="probe"``.
PROBE_COLUMNS: int = 8

#: Seed of the probe block: a constant, so that estimates are reproducible.
_PROBE_SEED = 1990


@functools.lru_cache(maxsize=64)
def probe_block(n: int, k: int = PROBE_COLUMNS) -> np.ndarray:
    """The fixed ``n x k`` block of Rademacher probes of ``residual="probe"``.

    Entries ``+-1`` with equal probability (Hutchinson 1990), drawn from a
    ``numpy.random.Generator`` with a fixed seed: the same block for every
    call with the same ``n``, so that under ``jit`` it is a constant of the
    trace. Read-only float64; callers convert it to their namespace and dtype.

    Parameters
    ----------
    n : int
        Rows (the matrix size).
    k : int, default :data:`PROBE_COLUMNS`
        Columns (probe vectors).
    """
    signs = np.random.default_rng(_PROBE_SEED).integers(0, 2, size=(n, k))
    z = (2.0 * signs - 1.0).astype(np.float64)
    z.setflags(write=False)
    return z


def apply_power(mm, x: Any, q: int, z: Any, shift: Any = None) -> Any:
    """``x^q z`` (``(x + shift I)^q z`` with a shift) as ``q`` products with the block ``z``,
    never forming ``x^q`` nor ``x + shift I``.

    Parameters
    ----------
    mm : callable
        Matrix product ``mm(a, b)``.
    x : array, shape (..., n, n)
    q : int
        Exponent, at least 0.
    z : array, shape (..., n, k)
        A thin block: each product costs ``2 n^2 k`` flops against ``2 n^3``
        for an ``n x n`` product.
    shift : array, shape (...), optional
        Per-matrix multiple of the identity added to ``x``.
    """
    for _ in range(q):
        z = mm(x, z) if shift is None else mm(x, z) + shift[..., None, None] * z
    return z


#: Largest p and q tried when writing an exponent t as q/p (Newton, general matrices,
#: residuals).
MAX_DENOMINATOR = 64


def rational_exponent(t: float) -> Fraction | None:
    """``t`` as ``q/p`` with ``p <=`` :data:`MAX_DENOMINATOR`, or ``None`` if it is not one."""
    f = Fraction(t).limit_denominator(MAX_DENOMINATOR)
    return f if float(f) == float(t) else None


class Shifted(NamedTuple):
    """``b + shift I``, kept apart so that a probe residual never forms it."""

    b: Any
    shift: Any


def residual(
    be: Backend, x: Any, b_eff: Any, target: Any, t: float, mode: str = "exact"
) -> Any:
    """Residual of ``x ~ b_eff^t`` for rational ``t = s q / p`` (see the module docstring).

    Parameters
    ----------
    be : Backend
    x : array, shape (..., n, n)
        The computed power.
    b_eff : array or Shifted
        The matrix actually powered, or a :class:`Shifted` one.
    target : array or None
        What ``x^p b_eff^q`` should equal for an inverse power: ``None`` for
        the identity, else the projector of a pseudo-inverse.
    t : float
        The exponent; NaN is returned when it is not ``+-q/p`` with
        ``p <=`` :data:`MAX_DENOMINATOR`.
    mode : {"exact", "probe"}
        ``"probe"`` estimates the same quantity from products with the fixed
        block of random signs :func:`probe_block`.
    """
    xp = be.xp
    frac = rational_exponent(t)
    n = x.shape[-1]
    if frac is None or frac == 0:
        return xp.full(x.shape[:-2], float("nan"), dtype=xp.real(x[..., 0, 0]).dtype)
    q, p = abs(frac.numerator), frac.denominator
    if mode == "probe":
        return _probe_residual(be, x, b_eff, target, p, q, inverse=frac < 0)
    if isinstance(b_eff, Shifted):
        b_eff = b_eff.b + b_eff.shift[..., None, None] * eye_like(xp, b_eff.b)
    xp_p = matrix_power_int(be.matmul, x, p)
    bq = matrix_power_int(be.matmul, b_eff, q)
    if frac < 0:
        target = eye_like(xp, bq) if target is None else target
        return fro(xp, be.matmul(xp_p, bq) - target) / math.sqrt(n)
    return fro(xp, xp_p - bq) / fro(xp, bq)


def _probe_residual(be, x, b_eff, target, p: int, q: int, *, inverse: bool):
    """``residual="probe"``: the residual operator applied to ``n x k`` sign probes.

    ``p + q`` products of an ``n x n`` matrix by the ``n x k`` block (the
    estimator and its variance: module docstring).
    """
    xp = be.xp
    n = x.shape[-1]
    z_np = probe_block(n)
    # numpy and jax (also traced) take the host constant as it is; other
    # namespaces need it on the input's device.
    where = {} if be.name in ("numpy", "jax") else {"device": array_api_compat.device(x)}
    z = xp.asarray(z_np, dtype=x.dtype, **where)
    b, shift = b_eff if isinstance(b_eff, Shifted) else (b_eff, None)
    bz = apply_power(be.matmul, b, q, z, shift)
    xbz = apply_power(be.matmul, x, p, bz if inverse else z)
    if inverse:
        tz = z if target is None else be.matmul(target, z)
        return fro(xp, xbz - tz) / math.sqrt(n * z_np.shape[-1])
    return fro(xp, xbz - bz) / fro(xp, bz)
