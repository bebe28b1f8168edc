"""Inverse roots of a stack of statistics with numpy in float64, one failed block at a time.

The computation behind :func:`rootsolve_optim.host_root_fn`: plain numpy
(LAPACK) through :func:`rootsolve.inv_root`, no JAX, so it can run on worker
threads while the accelerator trains.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from rootsolve import Conditioning, inv_root

from .host_scheduler import RootBatch

__all__ = ["batched_inv_root", "root_batch", "no_new_roots"]


def batched_inv_root(
    stats64: np.ndarray, p: int, method: str, cond: Conditioning, residual: str = "probe"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``stats^(-1/p)`` for a stack of SPD matrices with numpy (LAPACK) in float64.

    The whole stack is rooted in one call; if that raises, each matrix is
    rooted alone, so a matrix whose root fails (non-finite entries, negative
    or zero eigenvalues beyond what the conditioning handles) gets
    ``converged=False``, a zero root and its residual 1 instead of an
    exception, and the optimizer keeps its previous root for that block only.

    Returns
    -------
    roots : (..., n, n) float64
    residual : (...,) float64
        ``||X^p A - I||_F / sqrt(n)`` as ``residual`` asks; 1 where the root raised
        (the residual of ``X = 0``), inf where it is not finite.
    converged : (...,) bool
    """
    n = stats64.shape[-1]
    flat = stats64.reshape(-1, n, n)
    # Shampoo's statistics are finite Gram sums, so rootsolve's input checks (finite,
    # Hermitian up to rounding) are skipped as the device roots skip them; a non-finite
    # matrix fails in the decomposition (or gives a non-finite root) and is caught below.
    root = functools.partial(
        inv_root, p=p, method=method, conditioning=cond, return_info=True, residual=residual,
        check_finite=False,
    )
    try:
        roots, info = root(flat)
        res, converged = np.asarray(info.residual), np.asarray(info.converged)
    except (np.linalg.LinAlgError, ValueError):
        # A matrix whose root raises gets X = 0 and that root's residual,
        # ||0 A - I||_F / sqrt(n) = 1, as rootsolve reports for the zero matrix on jax.
        roots = np.zeros_like(flat)
        res = np.ones(flat.shape[0])
        converged = np.zeros(flat.shape[0], dtype=bool)
        for i, a in enumerate(flat):
            try:
                roots[i], info = root(a)
                res[i], converged[i] = info.residual, info.converged
            except (np.linalg.LinAlgError, ValueError):
                pass
    converged = converged & np.all(np.isfinite(roots), axis=(-2, -1))
    # A NaN residual with converged False means "no new root yet" to Shampoo; a failure
    # must read as one.
    res = np.where(~converged & np.isnan(res), np.inf, res)
    batch = stats64.shape[:-2]
    return roots.reshape(stats64.shape), res.reshape(batch), converged.reshape(batch)


def root_batch(
    stats64: np.ndarray, p: int, dtype: Any, *, method: str, cond: Conditioning, residual: str
) -> RootBatch:
    """:func:`batched_inv_root`, timed, with the roots cast to ``dtype`` (rounded once).

    A root that the cast makes non-finite (beyond ``dtype``'s range) fails, with an
    infinite residual: the residual is finite only where the delivered roots are.
    """
    start = time.perf_counter()
    roots, res, converged = batched_inv_root(stats64, p, method, cond, residual)
    with np.errstate(over="ignore"):  # an overflow is reported as a failure below
        roots = roots.astype(dtype)
    finite = np.all(np.isfinite(roots), axis=(-2, -1))
    return RootBatch(
        roots, np.where(finite, res, np.inf).astype(np.float32), converged & finite,
        time.perf_counter() - start,
    )


def no_new_roots(shape: tuple, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shampoo's "nothing new yet": zero roots, NaN residuals, ``converged`` false."""
    batch = shape[:-2]
    return (
        np.zeros(shape, dtype=dtype),
        np.full(batch, np.nan, dtype=np.float32),
        np.zeros(batch, dtype=bool),
    )
