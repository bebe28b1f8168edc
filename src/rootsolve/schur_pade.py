"""Schur-Pade algorithm for real powers ``A^t`` of general matrices (numpy, host).

For a real or complex square ``A`` and any real ``t`` (Higham & Lin 2011, 2013);
this module computes steps 2-5 on the Schur factor (:func:`triangular_power`),
and :mod:`rootsolve.general_power` the Schur form, the branches, singular
matrices and batches (:func:`~rootsolve.general_power.schur_pade_power`):

1. Schur decomposition ``A = Z T Z^H``: the *real* Schur form for real ``A``
   whose principal power is real (``T`` quasi-upper-triangular, conjugate
   pairs in 2x2 blocks), so real input stays real; the complex form otherwise.
2. ``t = a + f`` with an integer ``a`` and ``|f| < 1``, ``a`` being ``floor(t)``
   or ``ceil(t)`` by the rule of Higham & Lin (2011, sec. 5), which weighs the
   two error bounds with the condition number ``kappa_1(T)``:
   ``f = t - floor(t)`` when ``f kappa^(1 - f) <= (ceil(t) - t) kappa``.
3. Inverse scaling: square roots ``T_s = T^(1/2^s)`` (the quasi-triangular
   Schur square root of :mod:`rootsolve.schur_newton`) until ``X = I - T_s``
   is small enough for a Pade degree ``m <= 7``: first ``s0`` roots chosen from
   the eigenvalues alone (``max |lambda^(1/2^s0) - 1| <= theta_7``), then the
   choice of Higham & Lin (2013, Alg. 5.1) from
   ``alpha_p(X) = max(||X^p||_1^(1/p), ||X^(p+1)||_1^(1/(p+1)))``, which may
   take up to two more roots when that lowers ``m`` enough to pay for them.
   The norms are computed exactly (structured products), not estimated.
4. ``T_s^f ~ r_m(X)``, the ``[m/m]`` Pade approximant of ``(1 - x)^f``. Its
   continued fraction ``1 + c_1 x / (1 + c_2 x / (1 + ... / (1 + c_2m x)))``
   with ``c_1 = -f``, ``c_2j = (f - j) / (2 (2j - 1))`` and
   ``c_2j+1 = -(f + j) / (2 (2j + 1))`` (Higham & Lin 2011, eq. (4.1) and
   sec. 4) is folded once, in scalar polynomial arithmetic, into
   ``r_m = p_m / q_m`` (:func:`pade_polynomials`); ``p_m(X)`` and ``q_m(X)``
   share the powers ``X^2 .. X^b`` of a Paterson-Stockmeyer evaluation
   (Higham 2008, sec. 4.2), and one (quasi-)triangular solve
   ``q_m(X)^-1 p_m(X)`` finishes: for ``m = 7`` five products and one solve
   instead of the ``2m - 1 = 13`` solves of the bottom-up continued fraction.
   The explicit sums lose accuracy when ``sum_k |p_k| ||X^k||`` is large
   against ``||p_m(X)||`` (about 1): up to 10x at ``x = THETA[7]`` for a
   normal ``X``, and without bound for a nonnormal one, whose ``||X^k||``
   fall far slower than ``alpha_p(X)^k``. So the ratio is taken only when
   those sums, with the norms of the computed powers, are at most 8 for
   both polynomials, and the continued fraction bottom-up (``2m - 1``
   solves) otherwise.
5. Square ``s`` times. Before the Pade step and after every squaring the
   diagonal blocks are replaced by their exact values and the first
   superdiagonal by Higham & Lin's (2011) eq. (5.6) (stable divided
   differences of ``z^p``); ``lambda^(1/2^s) - 1`` comes from Al-Mohy &
   Higham's (2012) product formula, free of cancellation. In real arithmetic a
   2x2 block ``B`` with eigenvalues ``theta +- i mu`` has the exact power
   ``f(B) = Re f(lambda) I + (Im f(lambda) / mu) (B - theta I)``
   (``lambda = theta + i mu``; Higham 2008, sec. 6.2, for the square root);
   eq. (5.6) is applied between adjacent 1x1 blocks.
6. ``A^t = Z T^a T^f Z^H``.

References
----------
N. J. Higham and L. Lin, "A Schur-Pade algorithm for fractional powers of a
matrix", SIAM J. Matrix Anal. Appl. 32(3), 2011, doi:10.1137/10081232X.
N. J. Higham and L. Lin, "An improved Schur-Pade algorithm for fractional
powers of a matrix and their Frechet derivatives", SIAM J. Matrix Anal. Appl.
34(3), 2013, doi:10.1137/120889526.
A. H. Al-Mohy and N. J. Higham, "Improved inverse scaling and squaring
algorithms for the matrix logarithm", SIAM J. Sci. Comput. 34(4), 2012,
doi:10.1137/110852553 (Alg. 2, ``a^(1/2^k) - 1``).
M. S. Paterson and L. J. Stockmeyer, "On the number of nonscalar
multiplications necessary to evaluate polynomials", SIAM J. Comput. 2(1), 1973.
N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM 2008.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.linalg as sl

from . import errors
from .schur_newton import QuasiTriangular, quasi_triangular_sqrt, schur_eigenvalues

__all__ = [
    "THETA",
    "SchurPadeResult",
    "pade_coefficients",
    "pade_polynomials",
    "briggs_minus_one",
    "power_superdiagonal",
    "triangular_power",
]

#: ``THETA[m]``: largest ``||X||`` (via ``alpha_p``) for which the degree-m Pade
#: approximant of ``(1 - x)^t`` is accurate to double precision for every
#: ``t`` in (-1, 1) (Higham & Lin 2011, Table 3.1; also used in 2013).
THETA = (None, 1.51e-5, 2.24e-3, 1.88e-2, 6.04e-2, 1.24e-1, 2.00e-1, 2.79e-1)
#: Below this size products of Schur factors are dense (see :func:`_matmul`).
_DENSE_BELOW = 512
#: Largest rounding growth of the Pade numerator and denominator sums for which
#: they are evaluated explicitly (see :func:`_pade`).
_PS_GROWTH = 8.0
#: Most square roots taken (moduli spreads up to 2^(2^60) are covered).
_MAX_ROOTS = 64


class SchurPadeResult(NamedTuple):
    """One matrix power.

    Attributes
    ----------
    x : ndarray, shape (n, n)
        ``A^t``: real for real ``A`` with a real power, complex otherwise.
    roots : int
        Square roots taken (``s``).
    degree : int
        Pade degree ``m`` (0 when no approximant was needed).
    products : int
        Products and solves of the Pade evaluation (each counted as one).
    """

    x: np.ndarray
    roots: int
    degree: int
    products: int = 0


def pade_coefficients(f: float, m: int) -> np.ndarray:
    """``c_1 .. c_2m`` of the continued fraction of ``(1 - x)^f`` (Higham & Lin 2011, sec. 4)."""
    c = np.empty(2 * m)
    c[0] = -f
    for i in range(2, 2 * m + 1):
        j = i // 2
        c[i - 1] = (f - j) / (2 * (2 * j - 1)) if i % 2 == 0 else -(f + j) / (2 * (2 * j + 1))
    return c


def pade_polynomials(f: float, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator of the ``[m/m]`` Pade approximant of ``(1 - x)^f``.

    Coefficients in increasing powers of ``x``, denominator normalized to
    ``q(0) = 1``, from the continued fraction of :func:`pade_coefficients`
    folded bottom-up in polynomial arithmetic: the tail ``y = N / D`` becomes
    ``c_j x D / (D + N)``, and ``r_m = 1 + y = (D + N) / D``.
    """
    c = pade_coefficients(f, m)
    num, den = np.array([0.0, c[-1]]), np.array([1.0])
    for cj in c[-2::-1]:
        num, den = cj * np.r_[0.0, den], np.polynomial.polynomial.polyadd(den, num)
    num = np.polynomial.polynomial.polyadd(den, num)
    return np.r_[num, np.zeros(m + 1 - num.size)], np.r_[den, np.zeros(m + 1 - den.size)]


def briggs_minus_one(lam: np.ndarray, k: int) -> np.ndarray:
    """``lam^(1/2^k) - 1`` without cancellation (Al-Mohy & Higham 2012, Alg. 2).

    ``z^(1/2^k) - 1 = (z - 1) / prod_{j=1..k} (1 + z^(1/2^j))``, principal roots.
    """
    lam = np.asarray(lam)
    if k == 0:
        return lam - 1
    z = np.sqrt(lam)
    prod = 1 + z
    for _ in range(k - 1):
        z = np.sqrt(z)
        prod = prod * (1 + z)
    return (lam - 1) / prod


def _unwinding(z: np.ndarray) -> np.ndarray:
    """Unwinding number ``ceil((Im z - pi) / (2 pi))`` (Higham 2008, eq. (11.3))."""
    return np.ceil((np.imag(z) - math.pi) / (2 * math.pi))


def power_superdiagonal(l1, l2, t12, p: float):
    """``t12 (l2^p - l1^p) / (l2 - l1)``: the (1, 2) entry of ``[[l1, t12], [0, l2]]^p``.

    Stable in all three regimes of Higham & Lin (2011), eq. (5.6): equal
    eigenvalues (the derivative), well separated ones (the plain divided
    difference) and close ones, where
    ``(l2^p - l1^p) / (l2 - l1) = 2 exp(p (log l1 + log l2) / 2)
    sinh(p (atanh(z) + i pi U(log l2 - log l1))) / (l2 - l1)``,
    ``z = (l2 - l1) / (l2 + l1)`` (their eq. (5.5)). Vectorized; complex
    arithmetic, with the real part returned when every input is real.
    """
    real = not (np.iscomplexobj(l1) or np.iscomplexobj(l2) or np.iscomplexobj(t12))
    l1 = np.asarray(l1, dtype=complex)
    l2 = np.asarray(l2, dtype=complex)
    diff = l2 - l1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        equal = p * l1 ** (p - 1)
        plain = (l2**p - l1**p) / diff
        log1, log2 = np.log(l1), np.log(l2)
        z = diff / (l2 + l1)
        arg = p * (np.arctanh(z) + 1j * math.pi * _unwinding(log2 - log1))
        close = 2 * np.exp(p * (log1 + log2) / 2) * np.sinh(arg) / diff
    dd = np.where(diff == 0, equal, np.where(np.abs(diff) > np.abs(l1 + l2) / 2, plain, close))
    out = np.asarray(t12) * dd
    return out.real if real else out


class _Blocks:
    """Diagonal block structure of a Schur factor and its eigenvalues.

    ``first`` are the first rows of 2x2 blocks (real form only); ``single``
    the 1x1 blocks; ``pairs`` the rows ``j`` whose ``j`` and ``j + 1`` are both
    1x1 blocks (their superdiagonal entry gets eq. (5.6)).
    """

    def __init__(self, t0: np.ndarray) -> None:
        n = t0.shape[0]
        self.t0 = t0
        self.lam = schur_eigenvalues(t0)
        if np.iscomplexobj(t0) or n == 1:
            self.first = np.zeros(0, dtype=int)
        else:
            self.first = np.flatnonzero(np.diag(t0, -1))
        single = np.ones(n, dtype=bool)
        single[self.first] = False
        single[self.first + 1] = False
        self.single = np.flatnonzero(single)
        self.pairs = np.flatnonzero(single[:-1] & single[1:])
        i, j = self.first, self.first + 1
        self.theta = (t0[i, i] + t0[j, j]) / 2
        self.mu = self.lam[i].imag
        self.qt = QuasiTriangular(t0)

    def set_exact(self, u: np.ndarray, p: float, minus_identity: bool = False) -> None:
        """Overwrite ``u``'s diagonal blocks and eq. (5.6) entries with those of ``T0^p``.

        With ``minus_identity`` (``p = 2^-s``) the values are those of
        ``T0^p - I``, the diagonal taken from :func:`briggs_minus_one`.
        """
        t0, lam, s = self.t0, self.lam, self.single
        if minus_identity:
            k = round(-math.log2(p))
            vals = briggs_minus_one(lam, k)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                vals = lam**p
        u[s, s] = vals[s] if np.iscomplexobj(u) else vals[s].real
        j = self.pairs
        u[j, j + 1] = power_superdiagonal(t0[j, j], t0[j + 1, j + 1], t0[j, j + 1], p)
        if self.first.size:
            i, i1 = self.first, self.first + 1
            w = vals[i]  # f(lambda) (minus 1) for lambda = theta + i mu
            beta = w.imag / self.mu
            alpha = w.real
            u[i, i] = alpha + beta * (t0[i, i] - self.theta)
            u[i1, i1] = alpha + beta * (t0[i1, i1] - self.theta)
            u[i, i1] = beta * t0[i, i1]
            u[i1, i] = beta * t0[i1, i]


def _solve(first: np.ndarray, u: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``u^-1 c`` for (quasi-)upper-triangular ``u`` whose 2x2 blocks start at rows ``first``.

    A quasi-triangular matrix is upper Hessenberg with isolated subdiagonal
    entries, so Gaussian elimination with partial pivoting touches only the
    row pairs of the 2x2 blocks, and those eliminations are independent of
    one another: one vectorized step (``O(n^2)``) leaves an upper triangular
    factor for LAPACK's ``trtrs`` (Golub & Van Loan, *Matrix Computations*,
    4th ed., sec. 4.3.4, Hessenberg LU). Overwrites ``u`` and ``c``.
    """
    if first.size:
        i, j = first, first + 1
        swap = np.abs(u[j, i]) > np.abs(u[i, i])
        a, b = i[swap], j[swap]
        u[np.r_[a, b]] = u[np.r_[b, a]]
        c[np.r_[a, b]] = c[np.r_[b, a]]
        mult = u[j, i] / u[i, i]
        u[j] -= mult[:, None] * u[i]
        c[j] -= mult[:, None] * c[i]
        u[j, i] = 0
    return sl.solve_triangular(u, c, check_finite=False)


def _matmul(qt: QuasiTriangular, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x @ y`` for quasi-triangular factors of one block structure.

    Below :data:`_DENSE_BELOW` one dense product: it keeps the exact zeros below
    the block diagonal (each such entry sums products with a zero factor) and is
    one BLAS call instead of the structured recursion's several small ones,
    which cost more than the flops they save at these sizes, most of all when
    BLAS threads compete for the cores.
    """
    return x @ y if x.shape[0] < _DENSE_BELOW else qt.matmul(x, y)


def _ps_products(m: int, b: int) -> int:
    """Products for a numerator and a denominator of degree ``m`` by Paterson-Stockmeyer
    with blocks of ``b``: ``min(b, m) - 1`` for the powers of ``X``, then
    ``ceil((m + 1) / b) - 1`` for each Horner recurrence in ``X^b``."""
    return min(b, m) - 1 + 2 * (-(-(m + 1) // b) - 1)


def _ps_block(m: int) -> int:
    """The Paterson-Stockmeyer block size with the fewest products for degree ``m``."""
    return min(range(1, m + 2), key=lambda b: _ps_products(m, b))


def _powers(qt: QuasiTriangular, x: np.ndarray, k: int) -> list[np.ndarray]:
    """``[I, X, ..., X^k]``."""
    out = [np.eye(x.shape[0], dtype=x.dtype), x]
    for _ in range(k - 1):
        out.append(_matmul(qt, out[-1], x))
    return out


def _paterson_stockmeyer(qt: QuasiTriangular, coef: np.ndarray, powers: list,
                         b: int) -> np.ndarray:
    """``sum_k coef[k] X^k``, Horner in ``X^b`` over blocks of ``b`` coefficients
    (Paterson & Stockmeyer 1973; Higham 2008, sec. 4.2), from ``powers``
    ``[I, X, ..., X^min(b, m)]``."""
    blocks = [coef[i:i + b] for i in range(0, coef.size, b)]
    acc = None
    for blk in reversed(blocks):
        part = sum(ck * pk for ck, pk in zip(blk, powers, strict=False))
        acc = part if acc is None else part + _matmul(qt, acc, powers[b])
    return acc


def _norm1(x: np.ndarray) -> float:
    return float(np.max(np.sum(np.abs(x), axis=0))) if x.size else 0.0


def _roots_and_degree(t: np.ndarray, lam: np.ndarray, qt: QuasiTriangular):
    """Square roots and Pade degree (Higham & Lin 2013, Alg. 5.1, lines 4-20).

    Returns ``(T^(1/2^s), s, m)``.
    """
    n = t.shape[0]
    eye = np.eye(n)
    s0, d = 0, lam
    while np.max(np.abs(d - 1), initial=0.0) > THETA[7] and s0 < _MAX_ROOTS:
        d = np.sqrt(d)
        s0 += 1
    for _ in range(s0):
        t = quasi_triangular_sqrt(t)
    s, extra = s0, 0

    def powers(t_s):
        x = eye - t_s
        x2 = _matmul(qt, x, x)
        x3 = _matmul(qt, x2, x)
        return x, x2, x3

    x, x2, x3 = powers(t)
    d3 = _norm1(x3) ** (1 / 3)
    a2 = max(_norm1(x2) ** 0.5, d3)
    for m in (1, 2):
        if a2 <= THETA[m]:
            return t, s, m
    while s < _MAX_ROOTS:
        if s > s0:
            x, x2, x3 = powers(t)
            d3 = _norm1(x3) ** (1 / 3)
        x4 = _matmul(qt, x2, x2)
        d4 = _norm1(x4) ** 0.25
        a3 = max(d3, d4)
        if a3 <= THETA[7]:
            j1 = min(i for i in (3, 4, 5, 6, 7) if a3 <= THETA[i])
            if j1 <= 6:
                return t, s, j1
            if a3 / 2 <= THETA[5] and extra < 2:
                extra += 1
                t = quasi_triangular_sqrt(t)
                s += 1
                continue
        d5 = _norm1(_matmul(qt, x4, x)) ** 0.2
        eta = min(a3, max(d4, d5))
        for m in (6, 7):
            if eta <= THETA[m]:
                return t, s, m
        t = quasi_triangular_sqrt(t)
        s += 1
    raise errors.ConvergenceError(f"no Pade degree fits after {s} square roots")


def _fractional(blocks: _Blocks, f: float) -> SchurPadeResult:
    """``T0^f`` for ``|f| < 1`` (module docstring, steps 3-5)."""
    t0, qt = blocks.t0, blocks.qt
    n = t0.shape[0]
    u = np.zeros_like(t0)
    if not np.any(np.triu(t0, 1)) and not blocks.first.size:  # diagonal: nothing to approximate
        blocks.set_exact(u, f)
        return SchurPadeResult(u, 0, 0)
    t_s, s, m = _roots_and_degree(t0, blocks.lam, qt)
    r = t_s - np.eye(n)
    blocks.set_exact(r, 2.0**-s, minus_identity=True)
    u, products = _pade(blocks, -r, f, m)
    blocks.set_exact(u, f * 2.0**-s)
    for i in range(s - 1, -1, -1):
        u = _matmul(qt, u, u)
        blocks.set_exact(u, f * 2.0**-i)
    return SchurPadeResult(u, s, m, products)


def _pade(blocks: _Blocks, x: np.ndarray, f: float, m: int) -> tuple[np.ndarray, int]:
    """``r_m(X)``, the ``[m/m]`` Pade approximant of ``(I - X)^f`` (module docstring,
    step 4), and the products and solves it took.

    The ratio ``q_m(X)^-1 p_m(X)`` by Paterson-Stockmeyer when its rounding
    is bounded: ``sum_k |c_k| ||X^k||_1 <= _PS_GROWTH`` for the coefficients
    of both polynomials (``||X^k||`` of the computed powers, and
    ``||X^b|| ||X^(k-b)||`` beyond them), so that the explicit sums lose at
    most that factor against a unit-size result (Higham 2008, sec. 4.2,
    error bound of polynomial evaluation). Otherwise (strongly nonnormal
    ``X``, where ``||X^k||`` falls far slower than ``alpha_p(X)^k``) the
    continued fraction bottom-up, ``2m - 1`` solves, as Higham & Lin (2011).
    """
    first, qt = blocks.first, blocks.qt
    num, den = pade_polynomials(f, m)
    b = _ps_block(m)
    powers = _powers(qt, x, min(b, m))
    norms = [_norm1(pk) for pk in powers]
    while len(norms) <= m:
        norms.append(norms[b] * norms[len(norms) - b])
    norms = np.asarray(norms)
    made = len(powers) - 2
    if max(np.abs(num) @ norms, np.abs(den) @ norms) <= _PS_GROWTH:
        u = _solve(first, _paterson_stockmeyer(qt, den, powers, b),
                   _paterson_stockmeyer(qt, num, powers, b))
        return u, _ps_products(m, b) + 1
    c = pade_coefficients(f, m)
    eye = np.eye(x.shape[0])
    y = c[-1] * x
    for cj in c[-2::-1]:
        y = _solve(first, eye + y, cj * x)  # both arguments are fresh arrays
    return eye + y, made + 2 * m - 1


def _split_exponent(t: float, blocks: _Blocks) -> tuple[int, float]:
    """``t = a + f`` with ``a`` in ``{floor(t), ceil(t)}`` (Higham & Lin 2011, sec. 5).

    ``f1 = t - floor(t)`` is taken when ``f1 kappa^(1 - f1) <= (ceil(t) - t) kappa``,
    ``kappa = kappa_1(T)``, the rule that weighs the error bounds of the two
    choices; for ``0 < t < 1`` it always keeps ``a = 0``.
    """
    lo, hi = math.floor(t), math.ceil(t)
    f1, f2 = t - lo, t - hi
    if lo == 0:
        return 0, t
    t0 = blocks.t0
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        kappa = _norm1(t0) * _norm1(blocks.qt.inv(t0))
    if not math.isfinite(kappa):
        return lo, f1
    return (lo, f1) if f1 * kappa ** (1 - f1) <= -f2 * kappa else (hi, f2)


def _integer_power(qt: QuasiTriangular, t0: np.ndarray, k: int) -> np.ndarray:
    """``T0^k`` by binary powering (``T0^-1`` first for ``k < 0``)."""
    from .diagnostics import matrix_power_int

    if k == 0:
        return np.eye(t0.shape[0], dtype=t0.dtype)
    base = qt.inv(t0) if k < 0 else t0
    return matrix_power_int(lambda x, y: _matmul(qt, x, y), base, abs(k))


def triangular_power(t0: np.ndarray, t: float) -> SchurPadeResult:
    """``T0^t`` of a Schur factor with no eigenvalue on the closed negative real axis.

    Parameters
    ----------
    t0 : ndarray, shape (n, n)
        Real quasi-upper-triangular (real Schur form) or complex upper triangular.
    t : float
        Any real exponent.

    Returns
    -------
    SchurPadeResult
        The power, with the same structure and dtype as ``t0``.
    """
    blocks = _Blocks(t0)
    a, f = _split_exponent(t, blocks) if t != int(t) else (int(t), 0.0)
    if f == 0:
        return SchurPadeResult(_integer_power(blocks.qt, t0, a), 0, 0)
    res = _fractional(blocks, f)
    if a:
        res = res._replace(x=_matmul(blocks.qt, _integer_power(blocks.qt, t0, a), res.x))
    return res
