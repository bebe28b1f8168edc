"""Coupled Newton iterations for ``B^(-1/p)`` and ``B^(1/p)``.

With ``T_k = ((p + 1) I - theta_k M_k) / p`` the coupled iteration

    X_{k+1} = theta_k^(1/p)  T_k X_k          (inverse root)
    X_{k+1} = theta_k^(-1/p) T_k^{-1} X_k     (root; a solve, not an inverse)
    M_{k+1} = theta_k T_k^p M_k,   X_0 = I,  M_0 = B

keeps the invariant ``M_k = X_k^p B`` (inverse root) or ``M_k = X_k^{-p} B``
(root) and drives ``M_k -> I``, hence ``X_k -> B^(-1/p)`` or ``B^(1/p)``
(Higham, *Functions of Matrices*, SIAM 2008, eq. (7.18); Guo & Higham,
"A Schur-Newton method for the matrix p-th root and its inverse", SIAM J.
Matrix Anal. Appl. 28(3), 2006, doi:10.1137/050643374). The uncoupled
iteration is unstable; the coupled one is not. ``T_k^p`` is formed by binary
powering.

``T_k`` multiplies ``X_k`` from the left, on the same side as in ``M``'s
update, so that the invariant survives rounding in ``T_k`` better. In exact
arithmetic ``T_k`` and ``X_k`` are polynomials in ``B`` and commute; in
floating point ``T_k`` carries ``M_k``'s rounding, which does not commute
with ``X_k``. For ``p = 1``, ``T (X B) = (T X) B`` keeps ``M = X B``
exactly whatever ``T`` is, whereas ``X T B`` does not; for ``p > 1`` the
mismatch ``T^p X^p B - (T X)^p B`` holds commutators ``[T, X]`` next to
``X B``, whose entries between the eigenvectors of small and large
eigenvalues of ``B`` are ``kappa(B)^(1/p)`` times smaller than those of
``T^p X^p B - (X T)^p B``, which sit next to ``B`` itself. Measured in float32
under ``jit`` at a condition number of 1e6 (20 seeds, n = 16 and 128,
p = 2 and 4), the mean residual ``||X^p B - I||_F / sqrt(n)`` falls 10-35 %
for both the dynamic and the Frobenius scaling, at the same iteration counts.

The products take increments, at the same number of products:
``T_k X_k = X_k + D_k X_k`` with ``D_k = T_k - I = (I - theta_k M_k) / p``,
and ``T_k^p M_k = c^p (M_k + ((I + E_k)^p - I) M_k)`` with ``T_k = c (I + E_k)``,
``(I + E_k)^p - I`` powered from ``E_k`` alone (:func:`power_increment`).
Once ``M_k`` nears ``I`` a product with ``T_k`` rounds every entry by about
``n`` times the unit roundoff, the sum ``M_k + (...) M_k`` by one rounding;
and an error in ``M_k`` passes into ``X`` through the next ``D_k`` and is
never corrected, since the coupled iteration carries no check of
``M_k = X_k^p B``. The scalar ``c <= 1`` is 1 unless the least eigenvalue of
``T_k^p``, ``((p + 1 - theta_k u_k) / p)^p`` by the tracked interval, is below
1/4; then ``c`` keeps that of ``(I + E_k)^p`` at 1/4 (``c >= 1/2``), since
``M_k + P M_k`` with ``I + P`` near singular cancels (Frobenius scaling of a
1x1 matrix with p = 10 took ``(I + D_0)^10 = 0.55^10``). Measured at a
condition number of 1e6 (p = 2, 3, 4, 8), the residual
``||X^p B - I||_F / sqrt(n)`` falls 3-9x in float64 (n = 64, 256) and 3-7x
in float32 (n = 16, 128) for every scaling, with the same iteration counts.

The scalars ``theta_k`` choose the scaling:

``"frobenius"``
    ``theta_0 = (p + 1) / (2 ||B||_F)``, ``theta_k = 1`` after: guarantees the
    spectrum of ``theta_0 B`` lies in ``(0, p + 1)`` for Hermitian PSD ``B``.
``"optimal"``
    ``theta_0 = 1 / c^p`` with Guo & Higham's (2006, sec. 3) choice
    ``c^p = (alpha^(1/p) u - l) / ((alpha^(1/p) - 1)(p + 1))``,
    ``alpha = u / l``, for a spectrum in ``[l, u]``; ``theta_k = 1`` after.
``"dynamic"``
    The same choice made at *every* step for the interval that the current
    ``M_k`` occupies. For Hermitian ``B`` the eigenvalues of ``M_k`` are those
    of ``M_0`` mapped by the scalar iteration, so ``[l_k, u_k]`` is tracked
    exactly by two scalar recurrences at no matrix cost. Each step equalizes
    the images of both ends, in the spirit of the scaled Newton iteration for
    the polar decomposition (Higham 2008, sec. 8.6), and the step is capped
    so that the top of the interval is not pushed far below 1: ``theta_k u_k
    <= x_p``, where ``f(x_p) = 0.6`` for the scalar map
    ``f(x) = x ((p + 1 - x) / p)^p`` (``x_p / (p + 1)`` is 0.62 for p = 2,
    0.41 for p = 4) in float64, and ``f(x_p) = 0.7`` at float32's precision
    or coarser (0.58 and 0.37). The cap keeps ``T_k`` well away from singular and the
    iteration as accurate as the unscaled one: on the eigenvector of
    ``lambda_i`` the iterate is ``x_i = (m_i / lambda_i)^(1/p)``, so a step
    that sends the images ``m_i`` of the large eigenvalues to ``f(x) << 1``
    shrinks those components of ``X`` against its norm, and the rounding
    of the following products (relative to ``||X||``) stays in them when they
    grow back. A cap of ``3(p + 1)/4`` (``f = 0.036`` for p = 4) cost a
    float32 residual up to 10x that of Frobenius scaling at a condition
    number of 1e6. In float32 the mean residual over 20 seeds at a condition
    number of 1e6 (p = 2 and 4) was 1.4-1.5x Frobenius scaling's at n = 128
    and 1024 with ``f(x_p) = 0.6``, and 1.1-1.3x with 0.7, at one more
    iteration (14-15 against Frobenius's 19-23); in float64 every cap reaches
    the same accuracy, and 0.6 saves that iteration. This is the polynomial
    step adapted to the spectrum bounds; it needs about 0.7x the matrix
    products of ``"optimal"`` for a condition number of 1e6 when a lower
    bound is known (a ridge, or the inverse-iteration estimate).

Stopping rule: ``||M_k - I||_1 <= tol`` (default ``sqrt(n) eps / 2``, as in
Higham's Matrix Function Toolbox). Stagnation is judged against the tracked
interval, which bounds the error exact arithmetic would have: ``M_k`` is a
function of Hermitian ``B`` with spectrum in ``[l_k, u_k]``, so
``||M_k - I||_1 <= sqrt(n) w_k`` with ``w_k = max(1 - l_k, u_k - 1)``. The
iteration stops and returns the best iterate when the error fails to improve
and either exact arithmetic is done (``w_k <= tol``) or the best error is
already acceptable: what is left is rounding, typically a plateau a few ulps
above ``sqrt(n) eps / 2``. A stagnated iterate counts as converged when its
error is within 10x of ``max(tol, (p + 1) sqrt(n) eps / 2)``: forming
``T^p M`` takes about ``p`` rounded products, so the rounding floor of
``||M - I||_1`` grows with ``p`` (a 1x1 input with p = 6 stalls at
5.5 eps). It also stops, in the quadratic phase (``w_k <= 0.05``), when the
error grows by more than 1.2x (the reference rule) to beyond
``sqrt(n) w_k``. An error that rises while exact arithmetic
allows it is not stagnation: it does so for Frobenius scaling and p = 2, and
with dynamic scaling when the lower bound is loose, where a step sized for
the tracked interval moves a spectrum already near 1 away from it before
the next step corrects it.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from ._backend import Backend
from ._linalg import norm1
from .diagnostics import gemms_for_power

__all__ = [
    "IterationResult",
    "NewtonResult",
    "coupled_newton",
    "SCALINGS",
    "default_tol",
    "newton_gemms",
]

SCALINGS = ("dynamic", "optimal", "frobenius")

#: The cap on theta_k * u_k is where the scalar map falls to this value (module docstring):
#: in float64, and at float32's precision or coarser (unit roundoff above 1e-10).
_CAP_IMAGE = 0.6
_CAP_IMAGE_SINGLE = 0.7
#: T_k^p M_k is formed as c^p (M_k + ((I + E_k)^p - I) M_k) with (I + E_k)^p's least
#: eigenvalue at least this (module docstring).
_LEAST_FACTOR = 0.25
#: Quadratic phase: tracked interval within this distance of 1.
_QUADRATIC = 0.05
#: Growth of the error over its best value that counts as stagnation.
_GROWTH = 1.2
#: An iteration that stagnated still counts as converged within this multiple of
#: max(tol, its rounding floor (p + 1) sqrt(n) eps / 2).
_STAGNATION_ACCEPT = 10.0


class IterationResult(NamedTuple):
    """Output of an iteration (:func:`coupled_newton`, and the general-matrix iterations
    of :mod:`rootsolve.schur_free`); batch-shaped except ``x``.

    Attributes
    ----------
    x : array, shape (..., n, n)
        The best iterate.
    error : float array
        Its stopping error ``||M - I||_1``.
    iterations : int32 array
    converged : bool array
    """

    x: Any
    error: Any
    iterations: Any
    converged: Any


#: The name :func:`coupled_newton`'s result had first; the same type.
NewtonResult = IterationResult


def default_tol(n: int, eps: float) -> float:
    """``sqrt(n) * eps / 2``: Higham's Matrix Function Toolbox default."""
    return (n**0.5) * eps / 2


def newton_gemms(p: int, root: bool) -> int:
    """Matrix products (a solve counted as one) per iteration."""
    del root  # the root's solve counts as one product, like the inverse root's X T
    return 2 + gemms_for_power(p)


def power_increment(mm, d: Any, q: int) -> Any:
    """``(I + d)^q - I`` for an integer ``q >= 1``, formed from ``d`` alone.

    Binary powering (:func:`rootsolve.diagnostics.matrix_power_int`, the same
    ``gemms_for_power(q)`` products) on increments: with ``P_a = (I + d)^a - I``,
    ``P_2a = 2 P_a + P_a P_a`` and ``P_(a+b) = P_a + P_b + P_a P_b``. No sum
    ever holds the identity, so for small ``d`` the rounding stays relative to
    ``d`` rather than to 1.
    """
    result = None
    base = d
    while True:
        if q & 1:
            result = base if result is None else result + base + mm(result, base)
        q >>= 1
        if not q:
            return result
        base = 2 * base + mm(base, base)


def _scalar_map(xp, x, p: int):
    """The scalar iteration ``x ((p + 1 - x) / p)^p`` that M's eigenvalues follow."""
    return x * ((p + 1 - x) / p) ** p


def _cap_image(eps: float) -> float:
    """The scalar map's value at the step cap for a working precision of unit ``eps``."""
    return _CAP_IMAGE if eps < 1e-10 else _CAP_IMAGE_SINGLE


@functools.cache
def _cap(p: int, image: float) -> float:
    """The ``x > 1`` where ``x ((p + 1 - x) / p)^p = image``, by bisection.

    The map decreases from 1 at ``x = 1`` to 0 at ``x = p + 1``.
    """
    lo, hi = 1.0, float(p + 1)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid * ((p + 1 - mid) / p) ** p > image else (lo, mid)
    return lo


def _equalizing_theta(xp, lo, hi, p: int, image: float):
    """Guo-Higham ``1 / c^p`` for the interval ``[lo, hi]``, capped where the scalar map
    falls to ``image`` (see module docstring)."""
    alpha = hi / lo
    # The formula tends to 1 / lo as alpha -> 1 and is 0/0 at alpha = 1. The
    # threshold must survive float32, where 1 + 1e-8 rounds to 1.
    close = alpha <= 1 + 1e-4
    safe_alpha = xp.where(close, xp.full_like(alpha, 2.0), alpha)
    r = safe_alpha ** (1.0 / p)
    x = (p + 1) * (r - 1) / (r * safe_alpha - 1)
    theta = xp.where(close, 1.0 / lo, x / lo)
    return xp.minimum(theta, _cap(p, image) / hi)


def _next_interval(xp, lo, hi, theta, p: int):
    a, b = theta * lo, theta * hi
    fa, fb = _scalar_map(xp, a, p), _scalar_map(xp, b, p)
    straddles = (a <= 1) & (b >= 1)
    new_hi = xp.where(straddles, xp.ones_like(fa), xp.maximum(fa, fb))
    return xp.minimum(fa, fb), new_hi


def _stagnated(xp, err, best_err, l_new, u_new, n: int, tol: float, accept: float):
    """Whether rounding, not the iteration, now drives the error (see module docstring)."""
    width = xp.maximum(1 - l_new, u_new - 1)[..., 0, 0]
    flat = ~(err < best_err)
    settled = (width <= tol) | (best_err <= accept)
    growing = (width <= _QUADRATIC) & (err > _GROWTH * best_err) & (err > n**0.5 * width)
    return (flat & settled) | growing


def coupled_newton(
    be: Backend,
    b: Any,
    p: int,
    *,
    lo: Any,
    hi: Any,
    root: bool = False,
    scaling: str = "dynamic",
    tol: float,
    max_iter: int,
) -> IterationResult:
    """Run the coupled Newton iteration on a batch of matrices.

    Parameters
    ----------
    be : Backend
    b : array, shape (..., n, n)
        Matrices with spectrum in ``[lo, hi]`` (Hermitian PSD for the
        interval tracking to be exact; any matrix whose spectrum ``theta_0 b``
        puts in the convergence region otherwise, e.g. near-identity Schur
        factors with ``scaling="optimal"``).
    p : int
        Root order, ``>= 1``.
    lo, hi : array, shape (..., 1, 1)
        Lower and upper bounds of the spectrum (``lo > 0``).
    root : bool
        Compute ``b^(1/p)`` instead of ``b^(-1/p)``.
    scaling : {"dynamic", "optimal", "frobenius"}
    tol : float
        Stop when ``||M - I||_1 <= tol``.
    max_iter : int

    Returns
    -------
    IterationResult
        The best iterate, its error ``||M - I||_1``, iterations taken and the
        converged flag, each with the batch shape.
    """
    xp = be.xp
    n = b.shape[-1]
    batch = b.shape[:-2]
    eye = xp.eye(n, dtype=b.dtype)
    rdt = xp.real(hi).dtype if xp.isdtype(hi.dtype, "complex floating") else hi.dtype
    lo = xp.astype(lo, rdt)
    hi = xp.astype(hi, rdt)
    eps = float(xp.finfo(b.dtype).eps)
    image = _cap_image(eps)
    if scaling == "frobenius":
        fro = xp.sqrt(xp.sum(xp.abs(b) ** 2, axis=(-2, -1)))[..., None, None]
        theta0 = (p + 1) / (2 * fro)
    else:
        theta0 = _equalizing_theta(xp, lo, hi, p, image)
    x0 = xp.broadcast_to(eye, b.shape)
    rounding_floor = (p + 1) * default_tol(n, eps)
    accept = _STAGNATION_ACCEPT * max(tol, rounding_floor)
    err0 = xp.full(batch, float("inf"), dtype=rdt)
    zero_i = xp.zeros(batch, dtype=xp.int32)
    false = xp.zeros(batch, dtype=xp.bool)
    # carry: k, X, M, lo, hi, best_X, best_err, iterations, done, converged
    carry = (0, x0, b, lo, hi, x0, err0, zero_i, false, false)
    if be.name == "jax":
        import jax.numpy as jnp

        carry = (jnp.int32(0),) + carry[1:]

    def cond(c):
        k, *_, done, _conv = c
        return (k < max_iter) & ~xp.all(done)

    def body(c):
        k, x, m, l_k, u_k, best_x, best_err, its, done, conv = c
        if scaling == "dynamic":
            theta = _equalizing_theta(xp, l_k, u_k, p, image)
        else:
            # k is a Python int outside jax; strict array-API namespaces want an array.
            theta = xp.where(xp.asarray(k == 0), theta0, xp.ones_like(theta0))
        # T_k = I + D_k = c (I + E_k); the products take the increments (module docstring).
        d = (eye - theta * m) / p
        if root:
            x_new = be.solve(eye + d, x) * theta ** (-1.0 / p)
        else:
            x_new = (x + be.matmul(d, x)) * theta ** (1.0 / p)
        c = xp.clip((p + 1 - theta * u_k) / p * _LEAST_FACTOR ** (-1.0 / p), 0.5, 1.0)
        e = ((p + 1 - p * c) * eye - theta * m) / (p * c)
        m_new = (theta * c**p) * (m + be.matmul(power_increment(be.matmul, e, p), m))
        l_new, u_new = _next_interval(xp, l_k, u_k, theta, p)
        err = norm1(xp, m_new - eye)
        finite = xp.isfinite(err)
        better = finite & (err < best_err)
        best_x_new = xp.where(better[..., None, None], x_new, best_x)
        best_err_new = xp.where(better, err, best_err)
        reached = finite & (err <= tol)
        stagnated = _stagnated(xp, err, best_err, l_new, u_new, n, tol, accept)
        stop = reached | stagnated | ~finite
        active = ~done
        upd = active[..., None, None]
        conv_now = reached | (stagnated & (best_err_new <= accept))
        return (
            k + 1,
            xp.where(upd, x_new, x),
            xp.where(upd, m_new, m),
            xp.where(upd, l_new, l_k),
            xp.where(upd, u_new, u_k),
            xp.where(upd, best_x_new, best_x),
            xp.where(active, best_err_new, best_err),
            its + xp.astype(active, xp.int32),
            done | stop,
            xp.where(active, conv_now, conv),
        )

    out = be.while_loop(cond, body, carry)
    _, _, _, _, _, best_x, best_err, its, _, conv = out
    return IterationResult(best_x, best_err, its, conv)
