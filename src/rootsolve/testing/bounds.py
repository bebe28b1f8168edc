"""Error bounds for computed matrix powers of Hermitian positive definite matrices.

Each bound follows from the unit roundoff, the size and the condition number;
the derivations are in the docstrings.

References
----------
N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM 2008,
sec. 3.2 (Frechet derivative) and ch. 7 (matrix p-th roots).

R. Bhatia, *Matrix Analysis*, Springer 1997, ch. V.3 (the Daleckii-Krein
formula).
"""

from __future__ import annotations

import math

__all__ = ["power_condition", "forward_tolerance", "residual_tolerance"]


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
