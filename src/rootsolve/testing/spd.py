"""Hermitian positive (semi)definite test matrices with a known eigendecomposition.

:func:`spd_with_spectrum` builds ``V diag(w) V^H`` from Haar-random ``V``
(:func:`random_orthogonal`) and a chosen spectrum (:func:`logspaced_spectrum`,
:func:`clustered_spectrum`, :func:`rank_deficient_spd`); the
:class:`SPDMatrix` it returns keeps the eigenpairs, so that a test has a
reference power computed another way (:meth:`SPDMatrix.power`). Only numpy
is needed.

References
----------
F. Mezzadri, "How to generate random matrices from the classical compact
groups", Notices Amer. Math. Soc. 54(5), 592-604, 2007, arXiv:math-ph/0609050.

N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
SIAM 2002, sec. 28.3 (``randsvd`` test matrices with a chosen spectrum).

N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM 2008,
sec. 3.2 (Frechet derivative).

R. Bhatia, *Matrix Analysis*, Springer 1997, ch. V.3 (the Daleckii-Krein
formula for the derivative of a function of a Hermitian matrix).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "SPDMatrix",
    "random_orthogonal",
    "spd_with_spectrum",
    "logspaced_spectrum",
    "clustered_spectrum",
    "rank_deficient_spd",
]


def _rng(rng: Any) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class SPDMatrix(NamedTuple):
    """A Hermitian matrix built from a known eigendecomposition.

    Attributes
    ----------
    matrix : numpy.ndarray, shape (..., n, n)
        The matrix in the requested dtype, exactly Hermitian.
    eigenvalues : numpy.ndarray of float64, shape (..., n)
        The eigenvalues it was built from, ascending.
    eigenvectors : numpy.ndarray of float64 or complex128, shape (..., n, n)
        Orthonormal (unitary) columns, one per eigenvalue.
    """

    matrix: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray

    @property
    def cond(self) -> float:
        """Largest 2-norm condition number over the batch (``inf`` if singular)."""
        w = np.abs(self.eigenvalues)
        lo, hi = w.min(axis=-1), w.max(axis=-1)
        ratio = np.where(lo > 0, hi / np.where(lo > 0, lo, 1.0), np.inf)
        return float(np.max(ratio))

    def exact(self) -> np.ndarray:
        """``V diag(w) V^H`` in float64/complex128, before any rounding to ``matrix.dtype``."""
        return _rebuild(self.eigenvectors, self.eigenvalues.astype(np.float64))

    def power(self, t: float, *, stored: bool = True) -> np.ndarray:
        """Reference ``A^t`` from the known eigendecomposition, in float64/complex128.

        Parameters
        ----------
        t : float
            Real exponent. Zero eigenvalues give 0 for ``t > 0`` and ``inf``
            for ``t < 0``.
        stored : bool, default True
            ``True``: the power of :attr:`matrix` as stored, that is of the
            rounded matrix ``A + E``. The exact power ``V diag(w^t) V^H`` is
            corrected to first order by the Frechet derivative
            ``L(A, E) = V (F o (V^H E V)) V^H``, ``F_ij`` the divided
            differences of ``x^t`` at ``w_i, w_j`` (Daleckii-Krein; Bhatia
            1997, ch. V.3; Higham 2008, sec. 3.2), with ``E`` computed in
            long double. What is left is the float64 rounding of the
            reference itself (``n eps``), the fraction ``n eps_ld / eps``
            of the correction that long double cannot resolve (``eps_ld`` =
            2^-64 on x86, so about ``n kappa eps_ld`` in all) and a second
            order term ``O((|t| kappa ||E|| / ||A||)^2)``: a test compares a
            method against the matrix it was actually given. The correction is skipped (and
            this equals ``stored=False``) for singular matrices, where
            ``x^t`` is not differentiable at 0, and on platforms whose
            ``longdouble`` is no wider than float64.
            ``False``: the exact power of ``V diag(w) V^H``.
        """
        w = self.eigenvalues.astype(np.float64)
        pos = w > 0
        at_zero = 1.0 if t == 0 else (0.0 if t > 0 else np.inf)
        ft = np.where(pos, np.where(pos, w, 1.0) ** t, np.where(w == 0, at_zero, np.nan))
        ref = _rebuild(self.eigenvectors, ft)
        if not stored or not np.all(w > 0) or t == 0:
            return ref
        e = _rounding_of(self)
        if e is None:
            return ref
        v = self.eigenvectors
        vh = np.conj(np.swapaxes(v, -1, -2))
        return ref + v @ (_divided_differences(w, t) * (vh @ e @ v)) @ vh


def _rebuild(v: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``V diag(d) V^H``, made exactly Hermitian."""
    x = (v * d[..., None, :]) @ np.conj(np.swapaxes(v, -1, -2))
    return (x + np.conj(np.swapaxes(x, -1, -2))) / 2


def _rounding_of(case: SPDMatrix) -> np.ndarray | None:
    """``matrix - V diag(w) V^H`` evaluated in extended precision, or None if unavailable."""
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        return None
    cplx = np.iscomplexobj(case.eigenvectors) or np.iscomplexobj(case.matrix)
    wide = np.clongdouble if cplx else np.longdouble
    v = case.eigenvectors.astype(wide)
    exact = (v * case.eigenvalues.astype(np.longdouble)[..., None, :]) @ np.conj(
        np.swapaxes(v, -1, -2)
    )
    e = case.matrix.astype(wide) - exact
    return e.astype(np.complex128 if cplx else np.float64)


def _divided_differences(w: np.ndarray, t: float) -> np.ndarray:
    """``F_ij = (w_i^t - w_j^t) / (w_i - w_j)``, and ``t w_i^(t-1)`` on ties, for ``w > 0``.

    Written as ``w_j^(t-1) expm1(t log r) / expm1(log r)`` with ``r = w_i / w_j``
    so that nearby eigenvalues lose no digits to cancellation.
    """
    wi, wj = w[..., :, None], w[..., None, :]
    log_r = np.log(wi) - np.log(wj)
    tie = log_r == 0
    safe = np.where(tie, 1.0, log_r)
    ratio = np.where(tie, t, np.expm1(t * safe) / np.expm1(safe))
    return wj ** (t - 1) * ratio


def random_orthogonal(
    n: int, rng: Any = None, complex: bool = False, *, batch_shape: tuple[int, ...] = ()
) -> np.ndarray:
    """Haar-distributed orthogonal (or unitary) matrices.

    QR of a Gaussian matrix, with the columns of Q multiplied by the phases
    of R's diagonal: without that fix Q is not Haar distributed (Mezzadri
    2007, sec. 5).

    Parameters
    ----------
    n : int
        Size, at least 1.
    rng : numpy.random.Generator or int or None
        Random source (or a seed for one).
    complex : bool, default False
        Unitary instead of real orthogonal.
    batch_shape : tuple of int
        Leading batch dimensions.

    Returns
    -------
    numpy.ndarray of float64 or complex128, shape ``(*batch_shape, n, n)``
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got n={n}")
    rng = _rng(rng)
    shape = (*batch_shape, n, n)
    z = rng.standard_normal(shape)
    if complex:
        z = (z + 1j * rng.standard_normal(shape)) / math.sqrt(2.0)
    q, r = np.linalg.qr(z)
    d = np.diagonal(r, axis1=-2, axis2=-1)
    phase = np.where(d == 0, 1.0, d / np.where(d == 0, 1.0, np.abs(d)))
    return q * phase[..., None, :]


def spd_with_spectrum(
    eigenvalues: Any,
    rng: Any = None,
    complex: bool = False,
    *,
    dtype: Any = None,
) -> SPDMatrix:
    """A Hermitian matrix ``V diag(w) V^H`` with the given eigenvalues.

    ``V`` is Haar distributed (:func:`random_orthogonal`), as in Higham's
    ``randsvd`` construction (Higham 2002, sec. 28.3). The product is formed
    in float64 (complex128), made exactly Hermitian, then cast to ``dtype``.

    Parameters
    ----------
    eigenvalues : array_like, shape (..., n)
        Real eigenvalues; leading dimensions make a batch. Nonnegative ones
        give a positive semidefinite matrix; negative ones are allowed, to
        test how code treats indefinite input.
    rng : numpy.random.Generator or int or None
    complex : bool, default False
        Complex Hermitian (unitary ``V``); implied by a complex ``dtype``.
    dtype : dtype, optional
        Dtype of :attr:`SPDMatrix.matrix` (default float64, or complex128
        when ``complex``).

    Returns
    -------
    SPDMatrix
    """
    w = np.sort(np.asarray(eigenvalues, dtype=np.float64), axis=-1)
    if w.ndim < 1 or w.shape[-1] < 1:
        raise ValueError(f"eigenvalues must have shape (..., n) with n >= 1, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"eigenvalues must be finite, got {w}")
    dtype = np.dtype(dtype if dtype is not None else (np.complex128 if complex else np.float64))
    complex = complex or dtype.kind == "c"
    v = random_orthogonal(w.shape[-1], rng, complex, batch_shape=w.shape[:-1])
    return SPDMatrix(_rebuild(v, w).astype(dtype), w, v)


def logspaced_spectrum(n: int, cond: float, lmax: float = 1.0) -> np.ndarray:
    """``n`` eigenvalues geometrically spaced from ``lmax / cond`` to ``lmax``, ascending.

    Higham's ``randsvd`` mode 3 (Higham 2002, sec. 28.3). ``n = 1`` gives
    ``[lmax]`` (a 1x1 matrix has condition number 1 whatever ``cond``).
    """
    _check_spectrum_args(n, cond, lmax)
    if n == 1:
        return np.array([float(lmax)])
    return lmax * np.logspace(-math.log10(cond), 0.0, n)


def clustered_spectrum(
    n: int, cond: float, *, n_small: int | None = None, spread: float = 0.0, lmax: float = 1.0
) -> np.ndarray:
    """Two clusters: ``n_small`` eigenvalues near ``lmax / cond``, the rest near ``lmax``.

    ``n_small = 1`` is ``randsvd`` mode 2 and ``n_small = n - 1`` mode 1
    (Higham 2002, sec. 28.3); the default ``n // 2`` splits evenly. Repeated
    eigenvalues test that a method does not rely on distinct eigenvalues.

    Parameters
    ----------
    n : int
    cond : float
        Ratio of largest to smallest eigenvalue, ``>= 1``.
    n_small : int, optional
        Size of the lower cluster, ``0 <= n_small <= n`` (default ``n // 2``).
    spread : float, default 0
        Relative width of each cluster: its members are spaced geometrically
        over a factor ``1 + spread`` (inside the interval, so the condition
        number stays ``cond``). 0 gives exactly repeated eigenvalues.
    lmax : float, default 1
    """
    _check_spectrum_args(n, cond, lmax)
    k = n // 2 if n_small is None else int(n_small)
    if not 0 <= k <= n:
        raise ValueError(f"n_small must be in [0, n={n}], got n_small={n_small}")
    if spread < 0:
        raise ValueError(f"spread must be >= 0, got spread={spread}")
    lo = (lmax / cond) * np.geomspace(1.0, 1.0 + spread, k) if k else np.empty(0)
    hi = lmax * np.geomspace(1.0 / (1.0 + spread), 1.0, n - k) if n - k else np.empty(0)
    return np.sort(np.concatenate([lo, hi]))


def rank_deficient_spd(
    n: int,
    rank: int,
    rng: Any = None,
    complex: bool = False,
    *,
    cond: float = 100.0,
    lmax: float = 1.0,
    dtype: Any = None,
) -> SPDMatrix:
    """A positive semidefinite matrix of the given rank.

    ``n - rank`` eigenvalues are exactly zero; the others are
    :func:`logspaced_spectrum` ``(rank, cond, lmax)``. The stored matrix has
    rounding-size eigenvalues (of either sign, about ``eps ||A||``) in place
    of the zeros, as any computed Gram matrix does.
    """
    if not 0 <= rank <= n:
        raise ValueError(f"rank must be in [0, n={n}], got rank={rank}")
    w = np.concatenate([np.zeros(n - rank), logspaced_spectrum(rank, cond, lmax) if rank else []])
    return spd_with_spectrum(w, rng, complex, dtype=dtype)


def _check_spectrum_args(n: int, cond: float, lmax: float) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got n={n!r}")
    if not (math.isfinite(cond) and cond >= 1):
        raise ValueError(f"cond must be a finite number >= 1, got cond={cond!r}")
    if not (math.isfinite(lmax) and lmax > 0):
        raise ValueError(f"lmax must be a finite number > 0, got lmax={lmax!r}")
