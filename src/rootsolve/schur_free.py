"""Rational powers ``A^(m/p)`` of general square matrices without a Schur decomposition.

The plan is Guo and Higham's Schur-Newton method (see :mod:`rootsolve.schur_newton`)
with the Schur factor replaced by the matrix itself, so that it runs on every
array-API backend, including cupy and jax under ``jit``/``vmap``:

1. Scale by the geometric mean of the eigenvalue moduli, ``s = |det A|^(1/n)``
   (from ``slogdet``), so that ``A / s`` has eigenvalues on both sides of the
   unit circle; roots are positively homogeneous, ``(sA)^t = s^t A^t``.
2. Write ``p = 2^k0 q`` with ``q`` odd and take ``k1 >= k0`` principal square
   roots by the scaled product-form Denman-Beavers iteration, stopping when
   ``||B - I||_1 <= 1/2`` (or at once after ``k0`` roots when ``q = 1``). The
   spectrum of ``B`` then lies in the disc ``|z - 1| <= 1/2``, inside the
   region where the coupled Newton iteration converges without further
   scaling (Guo & Higham 2006, sec. 3). At most :data:`MAX_EXTRA_ROOTS` roots
   are taken beyond ``k0``: by then the spectrum is close to 1 unless it was
   extreme, and what keeps the norm large is nonnormality, which more roots
   (squared back later) would only turn into error.
3. Coupled Newton for ``B^(-1/q)`` (inverted once when a root is wanted).
4. Square the result ``k1 - k0`` times and raise it to ``|m|``.

Every loop is a ``while_loop`` over a batch with per-matrix masks, so the
number of square roots may differ from matrix to matrix, and each reports
non-convergence instead of returning an unconverged iterate as an answer.

Accuracy: the Denman-Beavers steps invert ``A`` itself, so errors of order
``cond_2(A) eps`` enter before any structure is known; on strongly nonnormal
matrices the result is correspondingly less accurate than Schur-Newton's,
whose errors stay at the power's own condition number times ``eps`` (the
tests bound the difference by both). Use Schur-Newton where the data can
reach the host.

References
----------
C.-H. Guo and N. J. Higham, "A Schur-Newton method for the matrix p-th root and
its inverse", SIAM J. Matrix Anal. Appl. 28(3), 2006, doi:10.1137/050643374.
S. H. Cheng, N. J. Higham, C. S. Kenney and A. J. Laub, "Approximating the
logarithm of a matrix to specified accuracy", SIAM J. Matrix Anal. Appl. 22(4),
2001, doi:10.1137/S0895479899364015 (the scaled product-form Denman-Beavers
iteration).
N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM 2008,
eq. (6.17) and sec. 7.3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ._backend import Backend
from ._linalg import eye_like, norm1
from ._spectrum import check_eigenvalues, diagnose_spectrum, power_name
from .diagnostics import gemms_for_power, matrix_power_int
from .newton import IterationResult

__all__ = [
    "GeneralResult",
    "IterationResult",
    "split_order",
    "general_newton",
    "db_sqrt",
    "schur_free_power",
    "diagnose_spectrum",
    "check_eigenvalues",
    "power_name",
]

#: Error below which the quadratic phase is certain: one more step of either
#: iteration at least halves an error this small unless rounding dominates.
QUADRATIC = 1e-2
#: ``||B - I||_1`` at which square-rooting stops and Newton takes over.
CLOSE_TO_I = 0.5
#: Most square roots taken beyond ``k0``. Five more roots bring every argument
#: within pi/32 of the positive axis and moduli spreads up to 2^32 within 2, which
#: puts the spectrum where Newton converges; a matrix whose ``||B - I||_1`` stays
#: large after that is far from normal, and more roots (each squared back later,
#: doubling the error) would cost accuracy without helping convergence.
MAX_EXTRA_ROOTS = 5


class GeneralResult(NamedTuple):
    """Output of a general-matrix power; batch-shaped except ``x``.

    Attributes
    ----------
    x : array, shape (..., n, n)
    iterations : int32 array
        Newton plus Denman-Beavers iterations.
    converged : bool array
    gemms : int32 array
        Matrix products, inverses and solves, each counted as one.
    """

    x: Any
    iterations: Any
    converged: Any
    gemms: Any


def split_order(p: int) -> tuple[int, int]:
    """``(k0, q)`` with ``p = 2^k0 q`` and ``q`` odd."""
    k0 = (p & -p).bit_length() - 1
    return k0, p >> k0


def _real_dtype(xp, dtype):
    if xp.isdtype(dtype, "complex floating"):
        return xp.float32 if dtype == xp.complex64 else xp.float64
    return dtype


def _start(be: Backend, batch, rdt):
    """Initial bookkeeping: iteration counter, best error, counts and flags."""
    xp = be.xp
    k = 0
    if be.name == "jax":
        import jax.numpy as jnp

        k = jnp.int32(0)
    inf = xp.full(batch, float("inf"), dtype=rdt)
    zero = xp.zeros(batch, dtype=xp.int32)
    false = xp.zeros(batch, dtype=xp.bool)
    return k, inf, zero, false


def _stopping(xp, err, prev_err, best_err, tol):
    """Stop and convergence flags of the rule shared by both iterations.

    Stop when ``err <= tol``; when the error stops halving although the
    previous one was already in the quadratic phase (rounding has taken over:
    the best iterate is kept and counts as converged if its error is below
    ``sqrt(tol)``); or when the error is no longer finite.
    """
    finite = xp.isfinite(err)
    reached = finite & (err <= tol)
    stalled = finite & (prev_err <= QUADRATIC) & (err > prev_err / 2)
    best = xp.minimum(best_err, xp.where(finite, err, best_err))
    conv = reached | (stalled & (best <= tol**0.5))
    return reached | stalled | ~finite, conv


def _pick(be: Backend, mask: Any, new: Any, old: Any) -> Any:
    """``where(mask, new, old)`` per matrix; eager backends skip the pass when all agree."""
    xp = be.xp
    if be.eager:
        if bool(xp.all(mask)):
            return new
        if not bool(xp.any(mask)):
            return old
    return xp.where(mask[..., None, None], new, old)


def _advance(be: Backend, c: tuple, x_new: Any, m_new: Any, err: Any, tol: float) -> tuple:
    """The next carry of either iteration: update active matrices, keep the best iterate."""
    xp = be.xp
    k, x, m, prev, best_x, best_err, its, done, conv = c
    stop, conv_now = _stopping(xp, err, prev, best_err, tol)
    act = ~done
    better = xp.isfinite(err) & (err < best_err) & act
    return (
        k + 1,
        _pick(be, act, x_new, x),
        _pick(be, act, m_new, m),
        xp.where(act, err, prev),
        _pick(be, better, x_new, best_x),
        xp.where(better, err, best_err),
        its + xp.astype(act, xp.int32),
        done | stop,
        xp.where(act, conv_now, conv),
    )


def general_newton(
    be: Backend,
    b: Any,
    q: int,
    *,
    theta: Any,
    tol: float,
    max_iter: int,
    matmul: Callable[[Any, Any], Any] | None = None,
) -> IterationResult:
    """Coupled Newton iteration for the inverse root ``B^(-1/q)`` of a general ``B``.

    With ``M_0 = theta B``, ``X_0 = theta^(1/q) I`` and
    ``T_k = ((q + 1) I - M_k) / q``: ``X_{k+1} = X_k T_k`` and
    ``M_{k+1} = T_k^q M_k`` (Higham 2008, eq. (7.18); Guo & Higham 2006,
    eq. (3.8) for the scaling ``theta = c^-q``). It converges when the
    spectrum of ``theta B`` lies in the disc ``|z - 1| < 1`` (more generally
    in Guo and Higham's convex region). Stopping rule: see :func:`_stopping`.

    Only matrix products: callers wanting ``B^(1/q)`` invert the result once
    (one solve instead of one per iteration, as the companion iteration
    ``X_{k+1} = T_k^-1 X_k`` would need; measured as accurate relative to the
    root's condition number on the test families of
    :mod:`rootsolve.testing.general`).

    When every active matrix has ``3 ||M_k - I||_1^2 <= tol`` the next error
    is below ``tol`` (the map ``M -> T^q M`` is ``I + O(E^2)`` with
    coefficients below 1 for ``M = I + E``), so eager backends take the last
    step without forming ``M_{k+1}``.

    Parameters
    ----------
    be : Backend
    b : array, shape (..., n, n)
    q : int
        Root order, ``>= 1``.
    theta : array, shape (..., 1, 1), real
        The scaling ``c^-q``.
    tol : float
        Stop when ``||M - I||_1 <= tol``.
    max_iter : int
    matmul : callable, optional
        The matrix product (default ``be.matmul``); the Schur-Newton method
        passes one that exploits the quasi-triangular structure.

    Returns
    -------
    IterationResult
    """
    xp = be.xp
    mm = be.matmul if matmul is None else matmul
    batch = b.shape[:-2]
    eye = eye_like(xp, b)
    theta = xp.astype(theta, b.dtype)
    x0 = eye * theta ** (1.0 / q)
    k, inf, zero, false = _start(be, batch, _real_dtype(xp, b.dtype))

    def body(c):
        _, x, m, prev, _, _, _, done, _ = c
        t = ((q + 1) * eye - m) / q
        x_new = mm(x, t)
        if be.eager and bool(xp.all(done | (3 * prev**2 <= tol))):
            m_new, err = m, 3 * prev**2  # a bound on ||M_{k+1} - I||_1, not formed
        else:
            m_new = mm(matrix_power_int(mm, t, q), m)
            err = norm1(xp, m_new - eye)
        return _advance(be, c, x_new, m_new, err, tol)

    carry = (k, x0, theta * b, inf, x0, inf, zero, false, false)
    out = be.while_loop(lambda c: (c[0] < max_iter) & ~xp.all(c[7]), body, carry)
    return IterationResult(out[4], out[5], out[6], out[8])


def db_sqrt(be: Backend, b: Any, *, tol: float, max_iter: int) -> IterationResult:
    """Principal square root by the scaled product-form Denman-Beavers iteration.

    ``M_0 = Y_0 = B``; with ``mu_k = |det M_k|^(-1/(2n))`` (determinantal
    scaling, switched off once ``||M_k - I||_1 <= 1e-2``)::

        M_{k+1} = (I + (mu_k^2 M_k + mu_k^-2 M_k^-1) / 2) / 2
        Y_{k+1} = mu_k Y_k (I + mu_k^-2 M_k^-1) / 2

    ``M_k -> I`` and ``Y_k -> B^(1/2)`` for ``B`` with no eigenvalue on the
    closed negative real axis (Higham 2008, eq. (6.17) and sec. 6.3; Cheng,
    Higham, Kenney & Laub 2001). Real input stays real. Stopping rule: see
    :func:`_stopping`.
    """
    xp = be.xp
    n = b.shape[-1]
    batch = b.shape[:-2]
    eye = eye_like(xp, b)
    k, inf, zero, false = _start(be, batch, _real_dtype(xp, b.dtype))

    def body(c):
        _, y, m, prev, *_ = c
        logdet = xp.linalg.slogdet(m).logabsdet
        mu = xp.exp(-logdet / (2 * n))
        mu = xp.where(xp.isfinite(mu) & (prev > QUADRATIC), mu, xp.ones_like(mu))
        mu = xp.astype(mu, b.dtype)[..., None, None]
        m_inv = xp.linalg.inv(m) / mu**2
        y_new = mu * be.matmul(y, eye + m_inv) / 2
        m_new = (eye + (mu**2 * m + m_inv) / 2) / 2
        err = norm1(xp, m_new - eye)
        return _advance(be, c, y_new, m_new, err, tol)

    carry = (k, b, b, inf, b, inf, zero, false, false)
    out = be.while_loop(lambda c: (c[0] < max_iter) & ~xp.all(c[7]), body, carry)
    return IterationResult(out[4], out[5], out[6], out[8])


def _geometric_scale(be: Backend, b: Any):
    """``s = |det B|^(1/n)`` and whether it is usable (finite and nonzero)."""
    xp = be.xp
    logdet = xp.linalg.slogdet(b).logabsdet
    s = xp.exp(logdet / b.shape[-1])
    ok = xp.isfinite(s) & (s > 0)
    return xp.where(ok, s, xp.ones_like(s)), ok


def _square_roots(be: Backend, b: Any, k0: int, q: int, tol: float, max_iter: int):
    """``k1 >= k0`` square roots of each matrix; returns ``B^(1/2^k1)``, ``k1``, counts, flags."""
    xp = be.xp
    batch = b.shape[:-2]
    eye = eye_like(xp, b)
    k, _, zero, _ = _start(be, batch, _real_dtype(xp, b.dtype))
    ok = xp.ones(batch, dtype=xp.bool)
    limit = k0 + (MAX_EXTRA_ROOTS if q > 1 else 0)

    def wanted(c):
        _, bk, j, *_ = c
        far = norm1(xp, bk - eye) > CLOSE_TO_I
        return (j < k0) | ((j < limit) & far & (q > 1))

    def body(c):
        k, bk, j, its, ok = c
        need = wanted(c)
        res = db_sqrt(be, xp.where(need[..., None, None], bk, eye), tol=tol, max_iter=max_iter)
        return (
            k + 1,
            xp.where(need[..., None, None], res.x, bk),
            j + xp.astype(need, xp.int32),
            its + xp.where(need, res.iterations, xp.zeros_like(res.iterations)),
            ok & (res.converged | ~need),
        )

    carry = (k, b, zero, zero, ok)
    _, bk, j, its, ok = be.while_loop(
        lambda c: (c[0] < limit) & xp.any(wanted(c)), body, carry
    )
    return bk, j, its, ok


def _square_back(be: Backend, x: Any, times: Any):
    """``x^(2^times)`` per matrix, ``times`` an int32 batch array."""
    xp = be.xp
    k, _, zero, _ = _start(be, x.shape[:-2], xp.float32)

    def body(c):
        k, x, j = c
        more = j < times
        return k + 1, xp.where(more[..., None, None], be.matmul(x, x), x), j + 1

    _, x, _ = be.while_loop(lambda c: xp.any(c[2] < times), body, (k, x, zero))
    return x


def schur_free_power(
    be: Backend, b: Any, m: int, p: int, *, tol: float, max_iter: int
) -> GeneralResult:
    """``B^(m/p)`` for general ``B`` by square roots, coupled Newton and squaring.

    Parameters
    ----------
    be : Backend
    b : array, shape (..., n, n)
        Real or complex, finite; no eigenvalue on the closed negative real axis.
    m : int
        Nonzero numerator (negative for inverse powers).
    p : int
        Denominator, ``>= 1``.
    tol, max_iter
        Stopping tolerance and iteration cap of every inner iteration.

    Returns
    -------
    GeneralResult
        ``converged`` is False where the determinant was zero or non-finite or
        an iteration failed; the caller turns that into an error or NaN.
    """
    xp = be.xp
    k0, q = split_order(p)
    s, ok = _geometric_scale(be, b)
    ok_b = ok[..., None, None]
    b1 = xp.where(ok_b, b / xp.astype(s, b.dtype)[..., None, None], eye_like(xp, b))
    bk, k1, its, db_ok = _square_roots(be, b1, k0, q, tol, max_iter)
    gemms = 2 * its
    inverse = m < 0
    if q > 1:
        theta = xp.ones((*b.shape[:-2], 1, 1), dtype=_real_dtype(xp, b.dtype))
        res = general_newton(be, bk, q, theta=theta, tol=tol, max_iter=max_iter)
        x, conv = res.x, res.converged
        if not inverse:
            x = be.solve(x, eye_like(xp, x))
        its = its + res.iterations
        gemms = gemms + res.iterations * (2 + gemms_for_power(q)) + int(not inverse)
    else:
        x = be.solve(bk, eye_like(xp, bk)) if inverse else bk
        conv = xp.ones_like(ok)
        gemms = gemms + int(inverse)
    x = _square_back(be, x, k1 - k0)
    gemms = gemms + (k1 - k0)
    if abs(m) > 1:
        x = matrix_power_int(be.matmul, x, abs(m))
        gemms = gemms + gemms_for_power(abs(m))
    x = x * xp.astype(s ** (m / p), b.dtype)[..., None, None]
    converged = ok & db_ok & conv & xp.all(xp.isfinite(x), axis=(-2, -1))
    return GeneralResult(x, its, converged, xp.astype(gemms, xp.int32))
