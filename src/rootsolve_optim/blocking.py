"""How a parameter tensor is cut into the blocks Shampoo preconditions.

Anil et al., "Scalable Second Order Optimization for Deep Learning"
(arXiv 2002.09018), sec. 3 and 5: a preconditioner for a dimension of size
``d`` costs a ``d x d`` statistic and a root of it, so large dimensions are cut
into blocks of at most ``block_size`` and each block gets its own statistics.
Small dimensions are merged first (with a merge threshold of 1024 a
``(3, 3, 64, 128)`` convolution kernel is treated as ``(576, 128)`` instead of
carrying two 3 x 3 statistics), dimensions of size 1 are dropped, and
dimensions too large to be worth a statistic are left unpreconditioned.

Everything here is static: a :class:`BlockPlan` is computed from a shape and
the options, in plain Python, identically in ``init`` and ``update``; only
:func:`to_blocks` and :func:`from_blocks` touch arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from typing import Literal

import jax.numpy as jnp

__all__ = [
    "PRECONDITIONER_TYPES",
    "BlockGroup",
    "BlockPlan",
    "merge_small_dims",
    "make_plan",
    "to_blocks",
    "from_blocks",
    "block_norms",
]

PreconditionerType = Literal["all", "input", "output"]
PRECONDITIONER_TYPES = ("all", "input", "output")


def merge_small_dims(shape: tuple[int, ...], max_dim: int) -> tuple[int, ...]:
    """Greedily merge consecutive dimensions while their product stays <= ``max_dim``.

    Dimensions of size 1 disappear (they merge into a neighbour for free).
    A tensor whose dimensions are all 1 (or a scalar) gives ``()``.

    Examples
    --------
    >>> merge_small_dims((1, 2, 512, 1, 2048), 1024)
    (1024, 2048)
    >>> merge_small_dims((3, 3, 64, 128), 1024)
    (576, 128)
    """
    merged: list[int] = []
    run = 1
    for d in shape:
        if run * d <= max_dim:
            run *= d
            continue
        if run > 1:
            merged.append(run)
        run = d
    if run > 1:
        merged.append(run)
    return tuple(merged)


@dataclass(frozen=True)
class BlockGroup:
    """Blocks of one shape, cut from one rectangular region of the merged tensor.

    Attributes
    ----------
    start : tuple of int
        Corner of the region in the merged tensor.
    counts : tuple of int
        Number of blocks along each dimension of the region.
    block_shape : tuple of int
        Shape of every block of the group.
    """

    start: tuple[int, ...]
    counts: tuple[int, ...]
    block_shape: tuple[int, ...]

    @property
    def num_blocks(self) -> int:
        """How many blocks the group stacks."""
        return math.prod(self.counts)

    @property
    def region(self) -> tuple[slice, ...]:
        """Slices selecting the region in the merged tensor."""
        runs = zip(self.start, self.counts, self.block_shape, strict=True)
        return tuple(slice(s, s + c * b) for s, c, b in runs)


@dataclass(frozen=True)
class BlockPlan:
    """The static plan for one parameter.

    Attributes
    ----------
    shape : tuple of int
        The parameter's shape.
    merged : tuple of int
        Shape after dropping unit dimensions and merging small ones.
    preconditioned : tuple of bool
        Which merged dimensions get a statistic and a root.
    groups : tuple of BlockGroup
        The blocks, grouped by block shape (at most ``2**rank`` groups).
    exponent : int
        Order ``p`` of the inverse root ``S^(-1/p)`` for every statistic of
        this parameter: ``2 k`` for ``k`` preconditioned dimensions (the
        paper's Algorithm 1 uses 1/4 for matrices, ``1/(2k)`` for order-``k``
        tensors), or the override. 0 for a grafting-only parameter.
    """

    shape: tuple[int, ...]
    merged: tuple[int, ...]
    preconditioned: tuple[bool, ...]
    groups: tuple[BlockGroup, ...]
    exponent: int

    @property
    def graft_only(self) -> bool:
        """True when the parameter gets the grafting update alone."""
        return self.exponent == 0

    @property
    def precond_dims(self) -> tuple[int, ...]:
        """Indices of the preconditioned merged dimensions."""
        return tuple(i for i, f in enumerate(self.preconditioned) if f)

    def factor_shapes(self) -> tuple[tuple[int, int], ...]:
        """``(num_blocks, n)`` of every statistic, in (group, dimension) order."""
        return tuple(
            (g.num_blocks, g.block_shape[i]) for g in self.groups for i in self.precond_dims
        )


def _graft_only(shape: tuple[int, ...]) -> BlockPlan:
    return BlockPlan(shape, (), (), (), 0)


def _merge(squeezed: tuple[int, ...], max_dim: int | None, kind: str) -> tuple[int, ...]:
    if max_dim is None:
        return squeezed
    if kind == "all" or len(squeezed) < 2:
        return merge_small_dims(squeezed, max_dim)
    # One-sided: the last dimension is the output; merge only the inputs among themselves.
    return merge_small_dims(squeezed[:-1], max_dim) + squeezed[-1:]


def _mask(merged: tuple[int, ...], kind: str, skip_gt: int) -> tuple[bool, ...]:
    r = len(merged)
    if kind == "all" or r < 2:
        mask = [True] * r
    elif kind == "input":
        mask = [True] * (r - 1) + [False]
    else:
        mask = [False] * (r - 1) + [True]
    return tuple(m and d <= skip_gt for m, d in zip(mask, merged, strict=True))


def _pieces(size: int, block_size: int, cut: bool) -> list[tuple[int, int, int]]:
    """(start, count, length) runs of equal blocks along one dimension."""
    if not cut or size <= block_size:
        return [(0, 1, size)]
    full, rem = divmod(size, block_size)
    runs = [(0, full, block_size)]
    if rem:
        runs.append((full * block_size, 1, rem))
    return runs


def make_plan(
    shape: tuple[int, ...],
    *,
    block_size: int,
    merge_dims: bool = True,
    skip_dim_size_gt: int = 4096,
    skip_rank_lt: int = 2,
    preconditioner_type: PreconditionerType = "all",
    exponent_override: int | None = None,
) -> BlockPlan:
    """Plan the blocks of a parameter of shape ``shape``.

    Parameters
    ----------
    shape : tuple of int
    block_size : int
        Largest block extent along a preconditioned dimension; also the merge
        threshold.
    merge_dims : bool
        Merge consecutive small dimensions (:func:`merge_small_dims`).
    skip_dim_size_gt : int
        Merged dimensions larger than this get no statistic (and are not cut).
    skip_rank_lt : int
        Tensors with fewer dimensions of size > 1 than this get grafting only
        (the default 2 sends scalars and vectors to grafting).
    preconditioner_type : {"all", "input", "output"}
        Which dimensions to precondition. The last dimension is the output
        (the ``(in, out)`` kernel layout of Flax and Haiku); ``"input"``
        preconditions every other dimension, ``"output"`` only the last.
    exponent_override : int or None
        Use ``S^(-1/exponent_override)`` instead of ``S^(-1/(2k))``.
    """
    shape = tuple(int(d) for d in shape)
    squeezed = tuple(d for d in shape if d != 1)
    if math.prod(shape) == 0 or len(squeezed) < skip_rank_lt or not squeezed:
        return _graft_only(shape)
    merged = _merge(squeezed, block_size if merge_dims else None, preconditioner_type)
    mask = _mask(merged, preconditioner_type, skip_dim_size_gt)
    k = sum(mask)
    if k == 0:
        return _graft_only(shape)
    runs = [_pieces(d, block_size, m) for d, m in zip(merged, mask, strict=True)]
    groups = tuple(
        BlockGroup(
            start=tuple(r[0] for r in combo),
            counts=tuple(r[1] for r in combo),
            block_shape=tuple(r[2] for r in combo),
        )
        for combo in product(*runs)
    )
    return BlockPlan(shape, merged, mask, groups, exponent_override or 2 * k)


def _interleaved(counts: tuple[int, ...], block_shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x for cb in zip(counts, block_shape, strict=True) for x in cb)


def to_blocks(x: jnp.ndarray, plan: BlockPlan) -> tuple[jnp.ndarray, ...]:
    """Cut ``x`` (shape ``plan.shape``) into one stacked array per block group.

    Returns
    -------
    tuple of arrays
        Group ``g`` gives shape ``(g.num_blocks, *g.block_shape)``; block
        order is row-major over the block grid of the group's region.
    """
    y = x.reshape(plan.merged)
    r = len(plan.merged)
    out = []
    for g in plan.groups:
        part = y[g.region].reshape(_interleaved(g.counts, g.block_shape))
        part = part.transpose(tuple(range(0, 2 * r, 2)) + tuple(range(1, 2 * r, 2)))
        out.append(part.reshape((g.num_blocks, *g.block_shape)))
    return tuple(out)


def _region_from_blocks(blocks: jnp.ndarray, g: BlockGroup) -> jnp.ndarray:
    r = len(g.block_shape)
    part = blocks.reshape(g.counts + g.block_shape)
    order = tuple(x for i in range(r) for x in (i, r + i))
    part = part.transpose(order)
    return part.reshape(tuple(c * b for c, b in zip(g.counts, g.block_shape, strict=True)))


def from_blocks(blocks: tuple[jnp.ndarray, ...], plan: BlockPlan) -> jnp.ndarray:
    """Inverse of :func:`to_blocks`: reassemble a tensor of shape ``plan.shape``."""
    if len(plan.groups) == 1:
        return _region_from_blocks(blocks[0], plan.groups[0]).reshape(plan.shape)
    out = jnp.zeros(plan.merged, dtype=blocks[0].dtype)
    for b, g in zip(blocks, plan.groups, strict=True):
        out = out.at[g.region].set(_region_from_blocks(b, g))
    return out.reshape(plan.shape)


def block_norms(x: jnp.ndarray, plan: BlockPlan) -> tuple[jnp.ndarray, ...]:
    """Frobenius norm of every block of ``x``, per group, in :func:`to_blocks` order.

    Equal to ``norm(to_blocks(x, plan)[i].reshape(num_blocks, -1), axis=1)``
    but reduced over a reshaped view of ``x`` itself, so that the blocks are
    never copied out.
    """
    y = x.reshape(plan.merged)
    r = len(plan.merged)
    out = []
    for g in plan.groups:
        part = y[g.region].reshape(_interleaved(g.counts, g.block_shape))
        sq = jnp.sum(jnp.square(part), axis=tuple(range(1, 2 * r, 2)))
        out.append(jnp.sqrt(sq).reshape(g.num_blocks))
    return tuple(out)
