"""Test matrices with a known spectrum, reference powers and error bounds.

Users test their own code with these, as rootsolve's test-suite does:

* generators that need only numpy: :func:`random_orthogonal`,
  :func:`spd_with_spectrum`, :func:`logspaced_spectrum`,
  :func:`clustered_spectrum`, :func:`rank_deficient_spd`;
* :class:`SPDMatrix`, the record they return: the matrix together with the
  eigenvalues and eigenvectors it was built from, so that a test has a
  reference computed another way (:meth:`SPDMatrix.power`);
* :func:`power_condition`, :func:`forward_tolerance` and
  :func:`residual_tolerance`: error bounds from the unit roundoff, the size
  and the condition number, derived in their docstrings;
* hypothesis strategies :func:`spd_matrices` and :func:`root_orders`.
  ``hypothesis`` is imported only when a strategy is built, so this module
  imports without it.

References
----------
F. Mezzadri, "How to generate random matrices from the classical compact
groups", Notices Amer. Math. Soc. 54(5), 592-604, 2007, arXiv:math-ph/0609050.

N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
SIAM 2002, sec. 28.3 (``randsvd`` test matrices with a chosen spectrum).

N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM 2008,
sec. 3.2 (Frechet derivative) and ch. 7 (matrix p-th roots).

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
    "power_condition",
    "forward_tolerance",
    "residual_tolerance",
    "spd_matrices",
    "root_orders",
    "KINDS",
]

#: Spectrum shapes that :func:`spd_matrices` draws from.
KINDS = ("logspaced", "clustered", "rank_deficient")

_SEED_MAX = 2**32 - 1


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


# --------------------------------------------------------------------------- bounds


def power_condition(t: float, cond: float) -> float:
    """Relative condition number of ``A -> A^t`` for Hermitian positive definite ``A``.

    By the Daleckii-Krein formula the Frechet derivative is
    ``L(A, E) = V (F o (V^H E V)) V^H`` with ``F_ij`` the divided differences of
    ``f(x) = x^t`` at the eigenvalues, so ``||L(A, E)||_F <= max|f'| ||E||_F``
    (Bhatia 1997, ch. V.3; Higham 2008, sec. 3.2), the maximum taken over
    ``[lmin, lmax]`` by the mean value theorem. Relative to
    ``||A^t||_2 = max f`` and ``||A||_2 = lmax`` this gives, with
    ``kappa = lmax / lmin``:

    * ``t < 0``: ``|t| kappa`` (the inverse root amplifies the small eigenvalues);
    * ``0 < t < 1``: ``t kappa^(1 - t)``;
    * ``t >= 1``: ``t``.

    Parameters
    ----------
    t : float
        Exponent.
    cond : float
        2-norm condition number ``kappa >= 1``.
    """
    if t == 0:
        return 0.0
    if t < 0:
        return abs(t) * cond
    if t < 1:
        return t * cond ** (1.0 - t)
    return float(t)


def forward_tolerance(t: float, n: int, cond: float, eps: float, *, safety: float = 4.0) -> float:
    """Bound on ``||X - A^t||_F / ||A^t||_F`` for a stable method in precision ``eps``.

    Derivation: a backward-stable method (eigh: Higham 2008, sec. 4.5 and
    Golub & Van Loan, *Matrix Computations*, 4th ed., sec. 8.3) returns the
    exact power of a nearby matrix ``A + E`` up to the rounding of the final
    product, with ``||E||_2 <~ n eps ||A||_2`` (the eigensolver's bound has a
    low-degree polynomial in ``n``; ``n`` is ample for the sizes tested).
    :func:`power_condition` turns it into a relative error of
    ``sqrt(n) n eps power_condition(t, kappa)`` in the Frobenius norm
    (``||E||_F <= sqrt(n) ||E||_2``, ``||X||_F >= ||X||_2``). Rebuilding
    ``X = V diag(w^t) V^H`` rounds by ``n eps``, and so does rebuilding the
    reference it is compared with. Hence

        tol = safety * n * eps * (2 + sqrt(n) * power_condition(t, kappa)).

    Coupled Newton is not backward stable but it is forward stable: its
    error stays within a small multiple of ``power_condition * eps``
    (Higham 2008, sec. 7.3; measured below 2x over thousands of random
    cases with n <= 12, kappa <= 1e6, p <= 8), inside the same bound.
    The ``safety`` factor covers the dropped constants, the powering
    ``(A^(1/p))^q`` of rational exponents and Newton's stopping test.

    Parameters
    ----------
    t : float
        Exponent (``-1/p`` for an inverse root, ``1/p`` for a root).
    n : int
        Matrix size.
    cond : float
        2-norm condition number of ``A``.
    eps : float
        Unit roundoff of the computation. Compare against
        :meth:`SPDMatrix.power` (``stored=True``) so that rounding the
        input to its dtype does not count; casting the output to a coarser
        dtype adds that dtype's ``eps``.
    safety : float, default 4
    """
    return safety * n * eps * (2.0 + math.sqrt(n) * power_condition(t, cond))


def residual_tolerance(
    p: int,
    n: int,
    cond: float,
    eps: float,
    *,
    inverse: bool,
    backward_stable: bool = True,
    safety: float = 4.0,
) -> float:
    """Bound on the residual of a computed root, evaluated with rounded products.

    Residuals as in :mod:`rootsolve.diagnostics`: ``||X^p A - I||_F / sqrt(n)``
    for ``X ~ A^(-1/p)`` and ``||X^p - A||_F / ||A||_F`` for ``X ~ A^(1/p)``.

    Backward-stable methods (eigh): write ``X = (A + E)^(-1/p)`` with
    ``||E||_2 <~ n eps ||A||_2`` (as in :func:`forward_tolerance`). Then
    ``X^p A - I = -(A + E)^(-1) E`` has norm ``<~ kappa n eps``, while
    ``X^p - A = E`` for the root has relative norm ``n eps`` with no
    ``kappa``. Evaluating ``X^p`` with ``p - 1`` rounded products adds
    ``p n eps ||X||^p ||A||``: ``p n eps kappa`` for the inverse root and
    ``p n eps`` for the root. So

        inverse: tol = safety * (p + 1) * n * eps * kappa
        root:    tol = safety * (p + 1) * n * eps

    Forward-stable methods (coupled Newton, ``backward_stable=False``): the
    error ``X = X_* (I + F)`` is small but has no structure, and each of the
    ``p`` terms of ``(X^p - X_*^p) A`` is at most ``||F|| kappa`` (inverse
    root; ``||F||`` for the root). With ``||F||`` bounded by
    :func:`forward_tolerance`:

        tol = (p + 1) * kappa_res * forward_tolerance(-+1/p, n, kappa, eps, safety)

    with ``kappa_res = kappa`` for the inverse root and 1 for the root. It is
    the price of forward stability: at kappa = 1e5 Newton's inverse 8th root
    has a residual near 1e-8 where eigh's is near 1e-11, with the same
    forward error.

    Parameters
    ----------
    p : int
        Root order.
    n : int
    cond : float
        2-norm condition number of ``A``.
    eps : float
        Unit roundoff (the coarser of compute and residual precision).
    inverse : bool
        Inverse root (``True``) or root.
    backward_stable : bool, default True
        ``False`` for methods that are only forward stable.
    safety : float, default 4
    """
    kappa_res = cond if inverse else 1.0
    if backward_stable:
        return safety * (p + 1) * n * eps * kappa_res
    t = -1.0 / p if inverse else 1.0 / p
    return (p + 1) * kappa_res * forward_tolerance(t, n, cond, eps, safety=safety)


# --------------------------------------------------------------------------- strategies


def _hypothesis():
    try:
        import hypothesis.strategies as st
    except ImportError as exc:  # pragma: no cover - exercised only without hypothesis
        raise ImportError(
            "rootsolve.testing strategies need hypothesis (pip install hypothesis)"
        ) from exc
    return st


def _strategy(st, value: Any, default: Any):
    if value is None:
        return default
    if isinstance(value, st.SearchStrategy):
        return value
    return st.just(value)


def _spectrum(draw, st, kind: str, n: int, cond: float) -> np.ndarray:
    if kind == "logspaced":
        return logspaced_spectrum(n, cond)
    if kind == "clustered":
        n_small = draw(st.integers(0, n))
        spread = draw(st.sampled_from([0.0, 1e-8, 1e-3]))
        return clustered_spectrum(n, cond, n_small=n_small, spread=spread)
    rank = draw(st.integers(0, n - 1)) if n > 1 else 0
    zeros = np.zeros(n - rank)
    return np.concatenate([zeros, logspaced_spectrum(rank, cond) if rank else []])


def spd_matrices(
    n: Any = None,
    *,
    cond: Any = None,
    dtype: Any = "float64",
    batch_shape: Any = (),
    kind: Any = "logspaced",
    scale: Any = None,
):
    """Hypothesis strategy for Hermitian positive (semi)definite test matrices.

    Each example is an :class:`SPDMatrix`: the matrix and the eigenpairs it
    was built from (:func:`spd_with_spectrum`), so a test has an independent
    reference in :meth:`SPDMatrix.power`. Every parameter takes a value or
    a strategy.

    Parameters
    ----------
    n : int or strategy, default ``st.integers(1, 12)``
        Matrix size.
    cond : float or strategy, optional
        Condition number of the nonzero spectrum. Default ``10**u`` with
        ``u`` uniform in ``[0, 6]`` for 64-bit dtypes and ``[0, 3]`` for
        32-bit ones, the range where a result is still meaningful.
    dtype : dtype or str or strategy, default "float64"
        ``"float32"``, ``"float64"``, ``"complex64"`` or ``"complex128"``;
        complex dtypes give complex Hermitian matrices.
    batch_shape : tuple or strategy, default ``()``
        Leading batch dimensions; each batch member has its own eigenvectors
        and its own scale.
    kind : {"logspaced", "clustered", "rank_deficient", "any"} or strategy
        Shape of the spectrum: geometric (:func:`logspaced_spectrum`), two
        clusters (:func:`clustered_spectrum`, random split and spread), or
        singular (random rank ``0 <= r < n``, zeros plus a geometric part).
    scale : float or strategy, optional
        Multiplies the spectrum (largest eigenvalue). Default ``10**u`` with
        ``u`` uniform in ``[-3, 3]``: roots are homogeneous, and a method
        should not depend on the units of its input.

    Returns
    -------
    hypothesis.strategies.SearchStrategy[SPDMatrix]

    Examples
    --------
    >>> from hypothesis import given
    >>> from rootsolve.testing import spd_matrices, root_orders
    >>> @given(spd_matrices(kind="any"), root_orders())
    ... def test_root(case, p): ...
    """
    st = _hypothesis()
    if isinstance(kind, str) and kind != "any" and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or 'any', got kind={kind!r}")
    n_st = _strategy(st, n, st.integers(1, 12))
    dtype_st = _strategy(st, dtype, st.just("float64")).map(np.dtype)
    batch_st = _strategy(st, batch_shape, st.just(()))
    kind_st = _strategy(st, None if kind == "any" else kind, st.sampled_from(KINDS))
    scale_st = _strategy(st, scale, st.floats(-3.0, 3.0).map(lambda u: 10.0**u))

    @st.composite
    def build(draw):
        size, dt, shape = draw(n_st), draw(dtype_st), tuple(draw(batch_st))
        if dt.kind not in "fc":
            raise ValueError(f"dtype must be a real or complex floating dtype, got {dt}")
        top = 6.0 if np.finfo(dt).eps < 1e-10 else 3.0
        kappa = draw(_strategy(st, cond, st.floats(0.0, top).map(lambda u: 10.0**u)))
        which = draw(kind_st)
        if which not in KINDS:
            raise ValueError(f"kind must be one of {KINDS} or 'any', got kind={which!r}")
        base = _spectrum(draw, st, which, size, kappa)
        count = math.prod(shape)
        scales = np.array([draw(scale_st) for _ in range(count)]).reshape((*shape, 1))
        seed = draw(st.integers(0, _SEED_MAX))
        return spd_with_spectrum(base * scales, np.random.default_rng(seed), dtype=dt)

    return build()


def root_orders(max_p: int = 8):
    """Hypothesis strategy for root orders ``p`` in ``1..max_p``.

    Includes the orders that are not powers of two (3, 5, 6, 7), where a
    matrix power exact only for ``p`` in {1, 2, 4, 8} goes wrong.
    """
    st = _hypothesis()
    if max_p < 1:
        raise ValueError(f"max_p must be >= 1, got max_p={max_p}")
    return st.integers(1, max_p)


# General (nonsymmetric, real or complex) matrices: generators, strategies and bounds.
from ._general_matrices import (  # noqa: E402, F401
    NAMED_MATRICES,
    GeneralMatrix,
    frank,
    general_exponents,
    general_matrices,
    general_power_condition,
    general_stability_factor,
    general_tolerance,
    grcar,
    jordan_like,
    kahan,
    lehmer,
    near_negative_axis,
    nonnormal,
    pascal,
    random_spectrum,
    with_spectrum,
)
