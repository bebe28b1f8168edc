"""SOAP's basis refresh: warm-started eigenbases of the statistics, and the moments
turned into them.

Every ``precondition_frequency`` steps each statistic's basis takes one step of
:func:`rootsolve.refine_eigenbasis` (the first by a cold ``eigh``); the first moment,
stored rotated, is turned by ``Q_new^T Q_old`` (the paper's ``M x_i Q_new^T``
exactly) and the second follows its columns through the refresh's sort (Vyas et al.,
"SOAP: Improving and Stabilizing Shampoo using Adam", arXiv:2409.11321; docs/optimizer.md,
"SOAP").
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

import rootsolve

from .control import after, concat, finite
from .preconditioner import FactorMetrics
from .rotation import permute, rotate

__all__ = ["eigenbases", "refresh_bases"]


def eigenbases(
    stats: list, bases: list, *, cold: bool, compute_dtype: str | None, orthonormalize: str
) -> list:
    """``(eigenvectors, info)`` of every factor's refresh, the factors of all stacks with
    one block size and dtype refreshed by one batched call.

    One call per block shape instead of one per (stack, dimension): without stacking (the
    CPU's default) a model has a stack per parameter, and each call was one product, one
    QR and a few dozen small operations on one matrix; batched, they are one of each per
    block shape (measured in docs/optimizer.md, "SOAP"). jaxlib's batched CPU LAPACK
    kernels wait for XLA's worker pool from inside a worker, so two batched calls running
    at once on a 2-thread pool deadlock: the calls of different block sizes are chained
    (:func:`~rootsolve_optim.control.after`), as Shampoo chains its roots.
    """
    groups: dict[tuple, list[int]] = {}
    for j, s in enumerate(stats):
        groups.setdefault((s.shape[-1], s.dtype), []).append(j)
    out: list = [None] * len(stats)
    previous = None
    for members in groups.values():
        s = concat([stats[j] for j in members])
        s = after(s, previous)
        if cold:
            res, info = rootsolve.refine_eigenbasis(
                s, compute_dtype=compute_dtype, return_info=True
            )
        else:
            # resort=False: one product and a QR, the columns in the QR's order (the
            # second moment follows them through the permutation either way).
            res, info = rootsolve.refine_eigenbasis(
                s, concat([bases[j] for j in members]), compute_dtype=compute_dtype,
                resort=False, orthonormalize=orthonormalize, return_info=True,
            )
        previous = res.eigenvectors
        start = 0
        for j in members:
            cut = lambda x, a=start, b=start + stats[j].shape[0]: x[a:b]  # noqa: E731
            out[j] = (cut(res.eigenvectors), info._replace(
                off_diagonal=cut(info.off_diagonal), permutation=cut(info.permutation),
                finite=cut(info.finite)))
            start += stats[j].shape[0]
    return out


def refresh_bases(found, bases, metrics, m, v, dims, count, *, precision: lax.Precision):
    """New bases of one stack's factors (``found`` from :func:`eigenbases`); the moments
    follow them (docs/optimizer.md, "SOAP")."""
    new_bases, new_metrics = [], []
    for (vecs, info), q, mt, i in zip(found, bases, metrics, dims, strict=True):
        ok = info.finite & finite(vecs, axis=(-2, -1))
        qn = jnp.where(ok[:, None, None], vecs.astype(q.dtype), q)
        perm = jnp.where(ok[:, None], info.permutation, jnp.arange(q.shape[-1]))
        # First moment: Q_new^T M = (Q_new^T Q_old) (Q_old^T M) along dimension i.
        turn = jnp.matmul(jnp.swapaxes(qn, -1, -2), q, precision=precision)
        m = rotate(m, (turn,), (i,), True, precision)
        v = permute(v, perm, i)
        new_bases.append(qn)
        new_metrics.append(
            FactorMetrics(
                residual=jnp.where(ok, info.off_diagonal, jnp.inf).astype(jnp.float32),
                iterations=jnp.full(ok.shape, info.steps, jnp.int32),
                failures=mt.failures + (~ok).astype(jnp.int32),
                last_refresh=jnp.where(ok, count, mt.last_refresh).astype(jnp.int32),
            )
        )
    return tuple(new_bases), tuple(new_metrics), m, v
