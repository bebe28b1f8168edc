"""Guo-Higham Schur-Newton method for rational powers of general matrices (numpy).

For a real or complex square ``A`` with no eigenvalue on the closed negative
real axis, ``A^(m/p)`` is computed as follows (Guo & Higham 2006, sec. 3-4):

1. Schur decomposition ``A = Z R Z^H``: the *real* Schur form for real ``A``
   (``R`` quasi-upper-triangular, complex-conjugate pairs in 2x2 blocks), so
   real input is never converted to complex; the complex Schur form otherwise.
2. ``p = 2^k0 q`` with ``q`` odd. ``k1 >= k0`` principal square roots of ``R``
   by the Schur square root (Higham 1987, real arithmetic), with ``k1`` chosen
   from the eigenvalues so that those of ``B = R^(1/2^k1)`` have a modulus
   spread of at most 2 and arguments of at most pi/8:
   ``k1 = max(k0, ceil(log2(log2(|lambda|max / |lambda|min))))``, raised to at
   least 1, 2, 3 when some ``|arg lambda|`` exceeds pi/8, pi/4, pi/2.
3. Coupled Newton (:func:`rootsolve.schur_free.general_newton`) for
   ``B^(-1/q)`` with ``X_0 = I / c``, ``M_0 = B / c^q`` (one inverse then
   gives ``B^(1/q)``), with products that skip the zero blocks
   (:class:`QuasiTriangular`). For a
   real spectrum ``[l, u]`` of ``B``, Guo and Higham's
   ``c^q = (alpha^(1/q) u - l) / ((alpha^(1/q) - 1)(q + 1))``, ``alpha = u / l``;
   for a non-real spectrum ``c^q`` is the mean of the extreme moduli, which
   puts every ``lambda / c^q`` in the disc ``|z - 1| < 1`` where the iteration
   converges (more roots are taken if it would not).
4. Square ``k1 - k0`` times, raise to ``|m|`` and transform back,
   ``X = Z X_R Z^H``.

The quasi-triangular square root is the recursive blocked form of Higham's
(1987) Schur method (Deadman, Higham & Ralha 2012): split ``R`` between two
diagonal blocks (never through a 2x2 block), take the roots of the two diagonal
parts recursively, and solve the Sylvester equation
``U11 X + X U22 = R12`` for the off-diagonal part, itself recursively
(Jonsson & Kagstrom 2002) so that most of the work is matrix products and only
small Sylvester equations reach LAPACK's ``trsyl``.

References
----------
C.-H. Guo and N. J. Higham, "A Schur-Newton method for the matrix p-th root and
its inverse", SIAM J. Matrix Anal. Appl. 28(3), 2006, doi:10.1137/050643374.
N. J. Higham, "Computing real square roots of a real matrix", Linear Algebra
Appl. 88/89, 1987, doi:10.1016/0024-3795(87)90118-2.
E. Deadman, N. J. Higham and R. Ralha, "Blocked Schur algorithms for computing
the matrix square root", PARA 2012, LNCS 7782, doi:10.1007/978-3-642-36803-5_12.
I. Jonsson and B. Kagstrom, "Recursive blocked algorithms for solving
triangular systems - Part I", ACM Trans. Math. Softw. 28(4), 2002,
doi:10.1145/592843.592845.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sl
from scipy.linalg import lapack

from ._backend import get_backend
from ._spectrum import check_eigenvalues, power_name
from .diagnostics import gemms_for_power, matrix_power_int
from .schur_free import GeneralResult, general_newton, split_order

__all__ = [
    "schur_newton_power",
    "quasi_triangular_sqrt",
    "schur_eigenvalues",
    "choose_square_roots",
    "newton_scaling",
    "QuasiTriangular",
]

#: Below this size a Sylvester equation goes straight to LAPACK ``trsyl``.
_SYLVESTER_LEAF = 32
#: Most square roots taken beyond ``k0`` (moduli spreads up to 2^(2^16) are covered).
_MAX_EXTRA_ROOTS = 16
#: Newton is started only when every scaled eigenvalue satisfies |z - 1| below this.
_DISC = 0.9
#: Below this size products and inverses of quasi-triangular factors are dense.
_STRUCTURED_LEAF = 96


def _cut(t: np.ndarray) -> int:
    """Split index near the middle that does not cut a 2x2 diagonal block."""
    k = t.shape[0] // 2
    return k + 1 if t[k, k - 1] != 0 else k


def _diagonal_block_sqrts(t: np.ndarray, u: np.ndarray) -> None:
    """Principal square roots of all 1x1 and 2x2 diagonal blocks of ``t``, written into ``u``.

    For a 2x2 block with eigenvalues ``theta +- i mu`` and ``alpha = Re sqrt(theta
    + i mu)``: ``U = alpha I + (T - theta I) / (2 alpha)`` (Higham 1987, eq. (4.4)),
    real and in the block's standard form. Vectorized over the blocks.
    """
    n = t.shape[0]
    first = np.flatnonzero(np.diag(t, -1)) if n > 1 and not np.iscomplexobj(t) else []
    single = np.ones(n, dtype=bool)
    single[first] = False
    single[np.asarray(first, dtype=int) + 1] = False
    idx = np.flatnonzero(single)
    u[idx, idx] = np.sqrt(t[idx, idx])
    if len(first) == 0:
        return
    i, j = first, first + 1
    a, b, c, d = t[i, i], t[i, j], t[j, i], t[j, j]
    theta, half = (a + d) / 2, (a - d) / 2
    mu = np.sqrt(np.maximum(-(half * half + b * c), 0.0))
    alpha = np.sqrt(theta + 1j * mu).real
    u[i, i] = alpha + half / (2 * alpha)
    u[j, j] = alpha - half / (2 * alpha)
    u[i, j] = b / (2 * alpha)
    u[j, i] = c / (2 * alpha)


def _sylvester(a: np.ndarray, b: np.ndarray, c: np.ndarray, trsyl) -> np.ndarray:
    """Solve ``A X + X B = C`` for quasi-upper-triangular ``A``, ``B`` (recursive blocked)."""
    m, n = c.shape
    if max(m, n) <= _SYLVESTER_LEAF:
        x, scale, info = trsyl(a, b, c)
        if info < 0:
            raise ValueError(f"trsyl rejected argument {-info}")
        return x / scale if scale != 1 else x
    if m >= n:
        k = _cut(a)
        x2 = _sylvester(a[k:, k:], b, c[k:], trsyl)
        x1 = _sylvester(a[:k, :k], b, c[:k] - a[:k, k:] @ x2, trsyl)
        return np.concatenate([x1, x2], axis=0)
    k = _cut(b)
    x1 = _sylvester(a, b[:k, :k], c[:, :k], trsyl)
    x2 = _sylvester(a, b[k:, k:], c[:, k:] - x1 @ b[:k, k:], trsyl)
    return np.concatenate([x1, x2], axis=1)


def _fill_off_diagonal(t: np.ndarray, u: np.ndarray, trsyl) -> None:
    """Complete ``u`` (diagonal blocks already set) so that ``u @ u = t``, in place."""
    n = t.shape[0]
    if n == 1 or (n == 2 and t[1, 0] != 0):
        return
    k = _cut(t)
    _fill_off_diagonal(t[:k, :k], u[:k, :k], trsyl)
    _fill_off_diagonal(t[k:, k:], u[k:, k:], trsyl)
    u[:k, k:] = _sylvester(u[:k, :k], u[k:, k:], t[:k, k:], trsyl)


def quasi_triangular_sqrt(t: np.ndarray) -> np.ndarray:
    """Principal square root of a (quasi-)upper-triangular Schur factor.

    Parameters
    ----------
    t : ndarray, shape (n, n)
        Real quasi-upper-triangular (2x2 blocks for complex-conjugate pairs,
        as ``scipy.linalg.schur(output="real")`` gives) or complex upper
        triangular, with no eigenvalue on the closed negative real axis.

    Returns
    -------
    ndarray
        ``U`` with ``U @ U = t``, same structure and dtype; real for real ``t``.
    """
    u = np.zeros_like(t)
    _diagonal_block_sqrts(t, u)
    (trsyl,) = lapack.get_lapack_funcs(("trsyl",), (t,))
    _fill_off_diagonal(t, u, trsyl)
    return u


class QuasiTriangular:
    """Products and inverses of quasi-upper-triangular matrices sharing one block structure.

    Every matrix the Newton phase forms is a polynomial in (or the inverse
    of) the rooted Schur factor, hence quasi-upper-triangular with its 2x2
    blocks in the same places. Splitting between blocks,
    ``[[A11, A12], [0, A22]] [[B11, B12], [0, B22]]`` needs the two diagonal
    products (recursively) and ``A11 B12 + A12 B22``: about ``2n^3/3`` flops
    instead of ``2n^3``; the inverse is
    ``[[A11^-1, -A11^-1 A12 A22^-1], [0, A22^-1]]`` (block back substitution,
    Golub & Van Loan, *Matrix Computations*, 4th ed., sec. 3.1.4).

    Parameters
    ----------
    t : ndarray, shape (n, n)
        A factor with the block structure (its nonzero subdiagonal entries
        mark the 2x2 blocks).
    leaf : int
        Diagonal blocks up to this size are multiplied and inverted densely.
    """

    def __init__(self, t: np.ndarray, leaf: int = _STRUCTURED_LEAF) -> None:
        self.leaf = max(leaf, 2)  # a 2x2 block is never split
        self.in_block = np.zeros(t.shape[0], dtype=bool)
        self.in_block[:-1] = np.diag(t, -1) != 0  # rows i, i+1 form a 2x2 block

    def _split(self, lo: int, hi: int) -> int:
        k = (lo + hi) // 2
        return k + 1 if self.in_block[k - 1] else k

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a @ b``; exact zeros below the block diagonal are not multiplied."""
        out = np.zeros(a.shape, dtype=np.result_type(a, b))
        self._matmul(a, b, out, 0, a.shape[0])
        return out

    def _matmul(self, a, b, out, lo: int, hi: int) -> None:
        if hi - lo <= self.leaf:
            out[lo:hi, lo:hi] = a[lo:hi, lo:hi] @ b[lo:hi, lo:hi]
            return
        k = self._split(lo, hi)
        self._matmul(a, b, out, lo, k)
        self._matmul(a, b, out, k, hi)
        out[lo:k, k:hi] = a[lo:k, lo:k] @ b[lo:k, k:hi] + a[lo:k, k:hi] @ b[k:hi, k:hi]

    def inv(self, a: np.ndarray) -> np.ndarray:
        """``a^-1`` by block back substitution."""
        out = np.zeros_like(a)
        self._inv(a, out, 0, a.shape[0])
        return out

    def _inv(self, a, out, lo: int, hi: int) -> None:
        if hi - lo <= self.leaf:
            out[lo:hi, lo:hi] = np.linalg.inv(a[lo:hi, lo:hi])
            return
        k = self._split(lo, hi)
        self._inv(a, out, lo, k)
        self._inv(a, out, k, hi)
        out[lo:k, k:hi] = -(out[lo:k, lo:k] @ (a[lo:k, k:hi] @ out[k:hi, k:hi]))


def schur_eigenvalues(t: np.ndarray) -> np.ndarray:
    """Eigenvalues of a Schur factor from its 1x1 and 2x2 diagonal blocks (complex array)."""
    lam = np.diag(t).astype(np.result_type(t.dtype, np.complex64))
    if np.iscomplexobj(t) or t.shape[0] == 1:
        return lam
    sub = np.flatnonzero(np.diag(t, -1))
    a, d = t[sub, sub], t[sub + 1, sub + 1]
    theta, half = (a + d) / 2, (a - d) / 2
    mu = np.sqrt(np.maximum(-(half * half + t[sub, sub + 1] * t[sub + 1, sub]), 0.0))
    lam[sub] = theta + 1j * mu
    lam[sub + 1] = theta - 1j * mu
    return lam


def _principal_root(lam: np.ndarray, k: int) -> np.ndarray:
    for _ in range(k):
        lam = np.sqrt(lam)
    return lam


def choose_square_roots(lam: np.ndarray, k0: int, q: int) -> int:
    """Number ``k1 >= k0`` of square roots before Newton (module docstring, step 2)."""
    if q == 1:
        return k0
    mod = np.abs(lam)
    spread = float(mod.max() / mod.min())
    k1 = max(k0, math.ceil(math.log2(math.log2(spread)))) if spread > 2 else k0
    arg = float(np.max(np.abs(np.angle(lam))))
    for limit, roots in ((math.pi / 2, 3), (math.pi / 4, 2), (math.pi / 8, 1)):
        if arg > limit:
            k1 = max(k1, roots)
            break
    while k1 < k0 + _MAX_EXTRA_ROOTS:
        z = _principal_root(lam, k1) * newton_scaling(_principal_root(lam, k1), q)
        if np.max(np.abs(z - 1)) < _DISC:
            break
        k1 += 1
    return k1


def newton_scaling(lam_b: np.ndarray, q: int) -> float:
    """``theta = c^-q`` for the Newton start (module docstring, step 3)."""
    mod = np.abs(lam_b)
    lo, hi = float(mod.min()), float(mod.max())
    real = np.all(np.abs(lam_b.imag) <= 1e-12 * mod)
    if not real:
        return 2.0 / (lo + hi)
    alpha = hi / lo
    if alpha < 1 + 1e-8:
        return 1.0 / lo
    r = alpha ** (1.0 / q)
    return (r - 1) * (q + 1) / (r * hi - lo)


def _one(b: np.ndarray, m: int, p: int, *, tol: float, max_iter: int, eps: float, order: str):
    real = not np.iscomplexobj(b)
    t, z = sl.schur(b, output="real" if real else "complex", check_finite=False)
    lam = schur_eigenvalues(t)
    check_eigenvalues(lam, float(np.linalg.norm(b)), inverse=m < 0, eps=eps, order=order)
    k0, q = split_order(p)
    k1 = choose_square_roots(lam, k0, q)
    for _ in range(k1):
        t = quasi_triangular_sqrt(t)
    its, conv, gemms = 0, True, 2
    qt = QuasiTriangular(t)
    if q > 1:
        theta = np.array([[newton_scaling(_principal_root(lam, k1), q)]])
        res = general_newton(
            get_backend(t), t, q, theta=theta, tol=tol, max_iter=max_iter, matmul=qt.matmul
        )
        x, its, conv = res.x, int(res.iterations), bool(res.converged)
        if m > 0:
            x = qt.inv(x)
        gemms += its * (2 + gemms_for_power(q)) + int(m > 0)
    else:
        x = qt.inv(t) if m < 0 else t
        gemms += int(m < 0)
    for _ in range(k1 - k0):
        x = qt.matmul(x, x)
    if abs(m) > 1:
        x = matrix_power_int(qt.matmul, x, abs(m))
    x = z @ x @ z.conj().T
    gemms += k1 - k0 + (gemms_for_power(abs(m)) if abs(m) > 1 else 0)
    return x, its, conv and bool(np.all(np.isfinite(x))), gemms


def schur_newton_power(
    b: np.ndarray, m: int, p: int, *, tol: float, max_iter: int, eps: float
) -> GeneralResult:
    """``B^(m/p)`` for a batch of general numpy matrices by the Schur-Newton method.

    Parameters
    ----------
    b : array_like, shape (..., n, n)
        Real or complex, finite; numpy or anything ``numpy.asarray`` takes.
    m : int
        Nonzero numerator (negative for inverse powers).
    p : int
        Denominator, ``>= 1``.
    tol, max_iter
        Newton's stopping tolerance and iteration cap.
    eps : float
        Unit roundoff, for the eigenvalue checks.

    Returns
    -------
    GeneralResult
        Real for real ``b``.

    Raises
    ------
    NegativeEigenvalueError
        An eigenvalue on the closed negative real axis.
    SingularMatrixError
        An inverse power of a matrix with an eigenvalue zero to working precision.
    """
    b = np.asarray(b)  # a concrete jax array on the CPU is copied to the host
    batch = b.shape[:-2]
    x = np.empty_like(b)
    its = np.zeros(batch, dtype=np.int32)
    conv = np.zeros(batch, dtype=bool)
    gemms = np.zeros(batch, dtype=np.int32)
    order = power_name(m, p)
    for idx in np.ndindex(batch):
        try:
            x[idx], its[idx], conv[idx], gemms[idx] = _one(
                b[idx], m, p, tol=tol, max_iter=max_iter, eps=eps, order=order
            )
        except np.linalg.LinAlgError as exc:
            if batch:
                raise type(exc)(f"matrix {idx}: {exc}") from None
            raise
    return GeneralResult(x, its, conv, gemms)
