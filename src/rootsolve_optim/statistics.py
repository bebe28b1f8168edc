"""Shampoo's second-moment statistics, one per preconditioned dimension of a block.

For a block ``G`` of order ``k`` and a dimension ``i``, let ``G_(i)`` be the
matricization that keeps dimension ``i`` as rows and flattens the others into
columns. The statistic of that dimension is accumulated as

    ``S_i <- beta2 S_i + (1 - beta2) G_(i) G_(i)^T``

(Gupta, Koren, Singer, "Shampoo: Preconditioned Stochastic Tensor
Optimization", ICML 2018, Algorithm 2; Anil et al., arXiv 2002.09018, eq. (2)
with the exponential moving average of sec. 5). ``beta2 = 1`` means plain
sums, as in the original paper. For a matrix this is ``L <- L + G G^T`` and
``R <- R + G^T G``.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jax import lax

__all__ = ["ema_weight", "ema", "gram", "accumulate", "diagonal"]


def diagonal(x: jnp.ndarray) -> jnp.ndarray:
    """The diagonals of a stack of square matrices ``(..., n, n) -> (..., n)``.

    ``jnp.diagonal`` as a strided slice of the flattened matrices (every
    ``(n + 1)``-th entry), which XLA reads in place inside the kernel that
    uses it; ``jnp.diagonal`` builds an index array and a gather, two more
    kernels per size on the CPU.
    """
    n = x.shape[-1]
    return x.reshape(*x.shape[:-2], n * n)[..., :: n + 1]


def ema_weight(beta: Any) -> Any:
    """Weight of the new term: ``1 - beta``, or 1 when ``beta == 1`` (plain sums)."""
    return jnp.where(jnp.asarray(beta) == 1, 1.0, 1.0 - jnp.asarray(beta))


def ema(old: jnp.ndarray, new: jnp.ndarray, beta: Any) -> jnp.ndarray:
    """``beta old + w new`` with ``w = ema_weight(beta)``, in the dtype of ``old``."""
    w = ema_weight(beta)
    return (jnp.asarray(beta, old.dtype) * old + jnp.asarray(w, old.dtype) * new).astype(old.dtype)


def gram(
    blocks: jnp.ndarray, axis: int, precision: lax.Precision = lax.Precision.HIGHEST
) -> jnp.ndarray:
    """``G_(i) G_(i)^T`` for every block of a stack.

    Parameters
    ----------
    blocks : array, shape (num_blocks, b_0, ..., b_{k-1})
    axis : int
        Block dimension ``i`` (0-based, not counting the stacking axis).
    precision : jax.lax.Precision, default HIGHEST
        Of the product (lower ones use TF32 or bfloat16 passes on GPUs and TPUs;
        the CPU computes float32 products in full either way).

    Returns
    -------
    array, shape (num_blocks, b_i, b_i)
        The contraction of the block with itself over every other dimension.
    """
    # One contraction over the other dimensions, in place: no transposed copy of the blocks.
    others = tuple(d for d in range(1, blocks.ndim) if d != axis + 1)
    return lax.dot_general(
        blocks, blocks, ((others, others), ((0,), (0,))), precision=precision
    )


def accumulate(
    stats: tuple[jnp.ndarray, ...], blocks: jnp.ndarray, dims: tuple[int, ...], beta2: Any
) -> tuple[jnp.ndarray, ...]:
    """New statistics of one block group, one per preconditioned dimension in ``dims``."""
    g = blocks.astype(stats[0].dtype)
    return tuple(ema(s, gram(g, i), beta2) for s, i in zip(stats, dims, strict=True))
