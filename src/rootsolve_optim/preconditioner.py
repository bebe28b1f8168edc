"""Preconditioners: inverse roots of the statistics, their refresh and their use.

Every statistic ``S`` of a block gets the preconditioner ``S^(-1/p)`` with
``p = 2k`` for a block with ``k`` preconditioned dimensions (Anil et al.,
"Scalable Second Order Optimization for Deep Learning", arXiv 2002.09018,
sec. 3, eq. (3): ``L^(-1/4) G R^(-1/4)`` for matrices; Gupta, Koren, Singer,
ICML 2018, Algorithm 2 for order-k tensors). Roots come from a *root
function* (:class:`~rootsolve_optim.root_functions.RootFn`, defined with the
default on accelerators, :func:`device_root_fn`, in
:mod:`rootsolve_optim.root_functions`, and re-exported here).

Statistics of equal size, from every block of every parameter, are stacked
and rooted by one batched call per size when their exponents all divide the
largest one, ``q`` (a vector's ``p = 2`` and a matrix's ``p = 4``):
``S^(-1/p) = (S^(-1/q))^(q/p)``, so the call computes ``S^(-1/q)`` and the
statistics with ``p < q`` take its ``q/p``-th power (one or two matrix
products). Its residual ``||X^q S - I||`` is that of the power,
``||(X^(q/p))^p S - I||``, and the relative ridge and Newton's tolerance
depend on the size alone, so the roots are those of separate calls up to
rounding (eigh) or to Newton's tolerance, for one call's program instead of
two (each call compiles to its own kernels; see docs/optimizer.md, "Compile
time"). Other exponents get a call each. A root is *rejected*, and the
previous preconditioner kept, when it is not finite, when its residual
exceeds ``max_residual`` or when the root function reports no convergence;
the rejection is counted per block in a :class:`FactorMetrics`, which this
module writes at every refresh and :mod:`rootsolve_optim.metrics` summarizes.
A block whose roots have never been accepted uses the scaled identity
``(tr(S)/n)^(-1/p) I``, the inverse root of the isotropic matrix with the
same mean eigenvalue, so the first preconditioned steps have a sensible scale
even before a root exists. An all-zero statistic (a block that has only seen
zero gradients) has nothing to root, and a NaN residual with ``converged``
False means "no new root yet"; both keep the preconditioner without counting
a failure.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .control import after, concat, finite
from .root_functions import (
    DeviceRootFn,
    RootFn,
    RootResult,
    check_root_call,
    default_rel_ridge,
    device_root_fn,
    solve_roots,
)
from .statistics import diagonal

__all__ = [
    "FactorMetrics",
    "init_factor_metrics",
    "RootFn",
    "RootResult",
    "DeviceRootFn",
    "check_root_call",
    "device_root_fn",
    "default_rel_ridge",
    "solve_roots",
    "refresh_roots",
    "scaled_identity",
    "precondition_blocks",
]


class FactorMetrics(NamedTuple):
    """Per-block record of the roots of one statistic; every field has shape (num_blocks,)."""

    residual: jnp.ndarray  # float32: residual of the latest root attempt (0 before any)
    iterations: jnp.ndarray  # int32: iterations of the latest attempt (-1: not reported)
    failures: jnp.ndarray  # int32: attempts rejected so far (non-finite, residual, converged)
    last_refresh: jnp.ndarray  # int32: step of the last accepted root; -1 if none yet


def init_factor_metrics(num_blocks: int) -> FactorMetrics:
    """Metrics of a statistic that has never been rooted."""
    return FactorMetrics(
        residual=jnp.zeros((num_blocks,), jnp.float32),
        iterations=jnp.zeros((num_blocks,), jnp.int32),
        failures=jnp.zeros((num_blocks,), jnp.int32),
        last_refresh=jnp.full((num_blocks,), -1, jnp.int32),
    )


def scaled_identity(stats: jax.Array, p: Any, trace: jax.Array | None = None) -> jax.Array:
    """``(tr(S)/n)^(-1/p) I`` per block; the plain identity where the trace is 0 or not finite.

    ``p`` is one exponent, or one per block (shape (num_blocks,)); ``trace`` is
    ``tr(S)`` per block when already known.
    """
    n = stats.shape[-1]
    if trace is None:
        trace = jnp.sum(diagonal(stats), axis=-1)
    mean_eig = trace / n
    good = jnp.isfinite(mean_eig) & (mean_eig > 0)
    c = jnp.where(good, jnp.where(good, mean_eig, 1.0) ** (-1.0 / p), 1.0)
    return c[:, None, None] * jnp.eye(n, dtype=stats.dtype)


def _accept(
    trace, old_root, metrics: FactorMetrics, new: RootResult, p, step, max_residual, check
):
    """Accept or reject a stack of new roots; ``trace`` is ``tr(S)`` of each statistic."""
    ok = new.converged & jnp.isfinite(new.residual) & (new.residual <= max_residual)
    if check:
        ok = ok & finite(new.roots, axis=(-2, -1))
    # A PSD statistic has a diagonal of non-negative entries, which sum to 0 only when all
    # are 0, and a zero diagonal makes it zero (|S_ij| <= sqrt(S_ii S_jj)); one reduction
    # (the trace) tells an empty statistic and gives the scaled identity.
    empty = trace == 0
    pending = jnp.isnan(new.residual) & ~new.converged
    never = metrics.last_refresh < 0
    # The old roots are shaped like the statistics, all scaled_identity reads of them.
    fallback = jnp.where(never[:, None, None], scaled_identity(old_root, p, trace), old_root)
    root = jnp.where(ok[:, None, None], new.roots, fallback)
    metrics = FactorMetrics(
        residual=jnp.where(pending, metrics.residual, new.residual),
        iterations=jnp.where(pending, metrics.iterations, new.iterations),
        failures=metrics.failures + (~ok & ~empty & ~pending).astype(jnp.int32),
        last_refresh=jnp.where(ok, step, metrics.last_refresh).astype(jnp.int32),
    )
    return root, metrics


def _accept_ops(ops, *, p, step, max_residual, check):
    return _accept(*ops, p, step, max_residual, check)


def _exponent_calls(
    stats: tuple[jax.Array, ...], exponents: tuple[int, ...]
) -> list[tuple[int, list[int]]]:
    """The root calls of a refresh: ``(q, statistics)``, one per size and dtype when every
    exponent of that size divides the largest, ``q``; else one per exponent too."""
    sizes: dict[tuple, list[int]] = {}
    for i, s in enumerate(stats):
        sizes.setdefault((s.shape[-1], jnp.dtype(s.dtype).name), []).append(i)
    calls = []
    for idx in sizes.values():
        ps = sorted({exponents[i] for i in idx}, reverse=True)
        if all(ps[0] % p == 0 for p in ps):
            calls.append((ps[0], idx))
        else:
            calls.extend((p, [i for i in idx if exponents[i] == p]) for p in ps)
    return calls


def _matrix_power(x: jax.Array, k: int) -> jax.Array:
    """``x^k`` for a stack of matrices and an integer ``k >= 1``, by binary powering."""
    result, base = None, x
    while k:
        if k & 1:
            result = base if result is None else jnp.matmul(
                result, base, precision=lax.Precision.HIGHEST
            )
        k >>= 1
        if k:
            base = jnp.matmul(base, base, precision=lax.Precision.HIGHEST)
    return result


def _raise_roots(roots: jax.Array, q: int, block_exponents: list[int]) -> jax.Array:
    """``S^(-1/p) = (S^(-1/q))^(q/p)`` for every block of a stack of ``S^(-1/q)``, where
    ``block_exponents`` says each block's ``p``.

    Every power is taken of the whole stack and selected per block: the extra products
    (one or two per block) cost little next to the roots, and one select compiles to less
    code than slicing the stack and joining the pieces.
    """
    exps = np.asarray(block_exponents)
    for p in sorted(set(block_exponents) - {q}):
        roots = jnp.where((exps == p)[:, None, None], _matrix_power(roots, q // p), roots)
    return roots


def refresh_roots(
    stats: tuple[jax.Array, ...],
    roots: tuple[jax.Array, ...],
    metrics: tuple[FactorMetrics, ...],
    exponents: tuple[int, ...],
    *,
    root_fn: Any,
    step: jax.Array,
    max_residual: Any,
) -> tuple[tuple[jax.Array, ...], tuple[FactorMetrics, ...]]:
    """New roots for every statistic, one batched ``root_fn`` call per (n, dtype), or per
    (n, p, dtype) where exponents of one size do not all divide the largest.

    ``stats[i]`` has shape (num_blocks_i, n_i, n_i) and exponent
    ``exponents[i]``; rejected roots keep ``roots[i]`` (see the module docs).
    Everything from the call to the acceptance test runs on the stacked
    arrays, so the program grows with the number of calls, not with the
    number of parameters.
    """
    # A root function whose residual is finite only for finite roots spares a pass over them.
    check = not getattr(root_fn, "finite_where_residual_is", False)
    new_roots, new_metrics = list(roots), list(metrics)
    previous = None
    for q, idx in _exponent_calls(stats, exponents):
        block_exponents = [exponents[i] for i in idx for _ in range(stats[i].shape[0])]
        stacked = concat([stats[i] for i in idx])
        # The scaled identity of a never-rooted block needs the block's own exponent.
        p = q if len(set(block_exponents)) == 1 else np.asarray(block_exponents, stacked.dtype)
        # The acceptance reads the statistics' traces alone: passing it the stack would
        # compile one more pass over the stack per call.
        trace = jnp.sum(diagonal(stacked), axis=-1)
        stacked = after(stacked, previous)  # the buckets' root calls one after another
        old = concat([roots[i] for i in idx])
        old_metrics = FactorMetrics(*(concat([metrics[i][f] for i in idx]) for f in range(4)))
        res = solve_roots(root_fn, stacked, q, step)
        previous = res.roots
        res = res._replace(roots=_raise_roots(res.roots, q, block_exponents))
        # Accepting per statistic would save stacking the old roots but would grow the
        # program (and its compile time) with the number of parameters. So would fusing the
        # stacked acceptance into every per-statistic slice below, which XLA does; running
        # it as a branch of a conditional (always taken: steps count from 0) makes XLA
        # materialize the stacked result once, and the slices are plain copies.
        root, met = lax.cond(
            step >= 0,
            functools.partial(
                _accept_ops, p=p, step=step, max_residual=max_residual, check=check
            ),
            lambda ops: (ops[1], ops[2]),
            (trace, old, old_metrics, res),
        )
        start = 0
        for i in idx:
            stop = start + stats[i].shape[0]
            new_roots[i] = root[start:stop]
            new_metrics[i] = FactorMetrics(*(x[start:stop] for x in met))
            start = stop
    return tuple(new_roots), tuple(new_metrics)


def _apply_along(
    blocks: jax.Array, root: jax.Array, axis: int, precision: lax.Precision
) -> jax.Array:
    """Multiply every block by its root along block dimension ``axis``:
    ``y[..., i, ...] = sum_k root[k, i] x[..., k, ...]``, the mode product with ``root``."""
    if axis + 2 == blocks.ndim:  # the last dimension: one matrix product as the blocks lie
        shape = blocks.shape
        x = blocks.reshape(shape[0], -1, shape[-1])
        return jnp.matmul(x, root, precision=precision).reshape(shape)
    y = lax.dot_general(root, blocks, (((1,), (axis + 1,)), ((0,), (0,))), precision=precision)
    return jnp.moveaxis(y, 1, axis + 1)


def precondition_blocks(
    blocks: jax.Array,
    roots: tuple[jax.Array, ...],
    dims: tuple[int, ...],
    precision: lax.Precision = lax.Precision.HIGHEST,
) -> jax.Array:
    """Shampoo's direction ``G x_1 P_1 x_2 ... x_k P_k`` for a stack of blocks.

    For a matrix block this is ``L^(-1/4) G R^(-1/4)`` (Anil et al., eq. (3)).
    ``precision`` is that of the products (see :func:`~rootsolve_optim.statistics.gram`).
    """
    for root, axis in zip(roots, dims, strict=True):
        blocks = _apply_along(blocks, root, axis, precision)
    return blocks
