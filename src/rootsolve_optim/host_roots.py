"""Inverse roots of a stack of statistics with numpy in float64, one failed block at a time.

The computation behind :func:`rootsolve_optim.host_root_fn`: plain numpy
(LAPACK) through :func:`rootsolve.inv_root`, no JAX, so it can run on worker
threads while the accelerator trains.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from rootsolve import Conditioning, inv_root
from rootsolve.batched_eigh import _MIN_WORK, get_num_threads

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
        roots, res, converged = _split_root(root, flat)
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


_pool: ThreadPoolExecutor | None = None
_pool_threads = 0
_pool_lock = threading.Lock()


def _split_root(root: Callable, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``root`` of a stack, in one chunk per core when the stack is large enough.

    rootsolve splits a stack's eigendecompositions over the cores
    (:mod:`rootsolve.batched_eigh`) but not the products that rebuild the roots
    and estimate their residuals, which with a one-thread BLAS (as the demo and
    the benchmarks set it, so that XLA's threads get the cores) run on one
    core; jitted, XLA spreads them over its threads. Chunks of the stack on
    threads of their own (numpy releases the GIL in its products) spread them
    too, and each chunk's eigendecompositions take turns on rootsolve's
    workers. Every matrix is rooted as alone, so the results do not depend on
    the split.
    """
    global _pool, _pool_threads
    k, n = flat.shape[0], flat.shape[-1]
    threads = min(get_num_threads(), k)
    if threads < 2 or k * n**3 < _MIN_WORK:
        roots, info = root(flat)
        return roots, np.asarray(info.residual), np.asarray(info.converged)
    with _pool_lock:
        if _pool is None or _pool_threads < threads:
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="host-roots")
            _pool_threads = threads
        pool = _pool
    parts = list(pool.map(root, np.array_split(flat, threads)))
    return (
        np.concatenate([x for x, _ in parts]),
        np.concatenate([np.asarray(info.residual) for _, info in parts]),
        np.concatenate([np.asarray(info.converged) for _, info in parts]),
    )


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
