"""Block stacks: equally shaped blocks of one or several parameters kept in one array.

:mod:`~rootsolve_optim.blocking` cuts each parameter into block groups of
equal shape; this module lays those groups out in the optimizer state. A
:class:`BlockStack` is a set of block groups with one block shape,
preconditioned dimensions, exponent and dtype, whose per-block state (for
Shampoo one statistic and one root per preconditioned dimension) is one array
with a leading block axis, so that every per-step product runs once per
stack. With stacking on, the groups of *all* parameters that agree form one
stack; with it off, every group of every parameter is its own stack.

Everything here is static (computed from shapes, dtypes and plans in plain
Python, identically in ``init`` and ``update``) except the few helpers that
slice or join arrays along the block axis. Nothing here depends on what the
per-block state holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from . import blocking
from .blocking import BlockPlan
from .control import concat
from .options import planner, resolve_stacking

__all__ = [
    "BlockStack",
    "StackMember",
    "block_stacks",
    "check_factors",
    "join_members",
    "member_slice",
    "member_sums",
    "param_stacks",
    "parameter_factors",
    "per_member",
    "per_stack",
    "stacks_of",
    "stats_dtype",
    "to_stacks",
    "from_stacks",
]


@dataclass(frozen=True)
class StackMember:
    """The blocks of one block group of one parameter inside a :class:`BlockStack`."""

    leaf: int  # index of the parameter in tree-flatten order
    group: int  # index into the parameter's ``BlockPlan.groups``
    start: int  # first position on the stack's block axis
    num_blocks: int


@dataclass(frozen=True)
class BlockStack:
    """Equally shaped blocks, from one or several parameters, kept in one array.

    Their statistics and roots are one :class:`~rootsolve_optim.Factor` per
    preconditioned dimension ``i`` in ``dims``, of shape ``(num_blocks, n_i,
    n_i)`` with ``n_i = block_shape[i]``, and every per-step product runs once
    on the whole stack.
    """

    block_shape: tuple[int, ...]
    dims: tuple[int, ...]
    exponent: int
    dtype: str
    members: tuple[StackMember, ...]

    @property
    def num_blocks(self) -> int:
        """Blocks in the stack, all members together."""
        return sum(m.num_blocks for m in self.members)


def stats_dtype(dtype: Any) -> Any:
    """The dtype of the state kept for a parameter of ``dtype`` (at least float32)."""
    return jnp.promote_types(dtype, jnp.float32)


def stacks_of(plans: list[BlockPlan], dtypes: list[Any], stack: bool) -> tuple[BlockStack, ...]:
    """The block stacks of parameters with plans ``plans`` and state dtypes ``dtypes``.

    With ``stack`` the block groups of all parameters that share a block shape,
    preconditioned dimensions, exponent and dtype form one stack; without, each
    block group of each parameter is its own stack. Stacks come in order of
    their first block group (parameters in order, then groups).
    """
    found: dict[tuple, list[StackMember]] = {}
    for leaf, (plan, dt) in enumerate(zip(plans, dtypes, strict=True)):
        for gi, g in enumerate(plan.groups):
            key = (g.block_shape, plan.precond_dims, plan.exponent, jnp.dtype(dt).name)
            members = found.setdefault(key if stack else key + (leaf, gi), [])
            start = members[-1].start + members[-1].num_blocks if members else 0
            members.append(StackMember(leaf, gi, start, g.num_blocks))
    # The first four entries of a key are the stack's description (the rest, without
    # stacking, only keeps block groups apart).
    return tuple(BlockStack(*k[:4], tuple(ms)) for k, ms in found.items())


def param_stacks(plan_of: Callable, leaves: list, stack: bool) -> tuple[BlockStack, ...]:
    """The block stacks of parameter leaves (arrays, or anything with a shape and dtype)."""
    plans = [plan_of(tuple(jnp.shape(x))) for x in leaves]
    return stacks_of(plans, [stats_dtype(x.dtype) for x in leaves], stack)


def fresh_factors(plan_of: Callable, leaves: list, stack: bool) -> list[tuple]:
    """``(statistic, identity, num_blocks)`` for every (stack, preconditioned dimension).

    The first state of a factor: a zero statistic and an identity stack (a
    root of Shampoo, a basis of SOAP) of shape ``(num_blocks, n, n)``, in the
    stack's statistics dtype, in the order the state keeps its factors.
    """
    return [
        (
            jnp.zeros((st.num_blocks, n, n), st.dtype),
            jnp.broadcast_to(jnp.eye(n, dtype=st.dtype), (st.num_blocks, n, n)),
            st.num_blocks,
        )
        for st in param_stacks(plan_of, leaves, stack)
        for n in (st.block_shape[i] for i in st.dims)
    ]


def per_stack(items: Any, stacks: tuple[BlockStack, ...]) -> list[tuple]:
    """Per-stack tuples of a flat (stack, dimension)-ordered sequence."""
    out, j = [], 0
    for st in stacks:
        out.append(tuple(items[j : j + len(st.dims)]))
        j += len(st.dims)
    return out


def member_slice(x: jax.Array, stack: BlockStack, m: StackMember) -> jax.Array:
    """The part of a stacked array (leading block axis) that holds member ``m``."""
    return x if len(stack.members) == 1 else x[m.start : m.start + m.num_blocks]


def join_members(stack: BlockStack, per_leaf: list) -> jax.Array:
    """Stack ``per_leaf[leaf][group]`` (leading block axis) over the stack's members."""
    return concat([per_leaf[m.leaf][m.group] for m in stack.members])


def per_member(stacks: tuple[BlockStack, ...], stacked: list, plans: list[BlockPlan]) -> list:
    """The inverse of :func:`join_members`: ``out[leaf][group]``, the slice of
    ``stacked[i]`` (one array per stack) that holds that block group."""
    out: list[list] = [[None] * len(pl.groups) for pl in plans]
    for st, x in zip(stacks, stacked, strict=True):
        for m in st.members:
            out[m.leaf][m.group] = member_slice(x, st, m)
    return out


def to_stacks(stacks: tuple[BlockStack, ...], plans: list[BlockPlan], leaves: list) -> list:
    """One array of blocks per stack, cut from parameter-shaped ``leaves``: the blocks of
    several parameters are copied side by side in the pass that cuts each into blocks."""
    per_leaf = [() if pl.graft_only else blocking.to_blocks(x, pl)
                for x, pl in zip(leaves, plans, strict=True)]
    return [join_members(st, per_leaf) for st in stacks]


def from_stacks(
    stacks: tuple[BlockStack, ...], plans: list[BlockPlan], stacked: list, fallback: list
) -> list:
    """The inverse of :func:`to_stacks`: parameter-shaped arrays from per-stack blocks
    (``fallback[j]`` for parameters without blocks)."""
    parts = per_member(stacks, stacked, plans)
    return [
        fb if pl.graft_only else blocking.from_blocks(tuple(ps), pl)
        for pl, ps, fb in zip(plans, parts, fallback, strict=True)
    ]


def member_sums(stacks: tuple[BlockStack, ...], stacked: list, num_leaves: int) -> list:
    """Per parameter, the sum of every entry of ``stacked[i]`` (one array per stack, leading
    block axis) over the blocks it holds; None for a parameter in no stack."""
    out: list = [None] * num_leaves
    for st, x in zip(stacks, stacked, strict=True):
        for m in st.members:
            part = jnp.sum(member_slice(x, st, m))
            out[m.leaf] = part if out[m.leaf] is None else out[m.leaf] + part
    return out


def check_factors(factors: tuple, stacks: tuple[BlockStack, ...]) -> None:
    """The state's factors (anything with a ``stat``) must match the stacks' layout."""
    want = [
        (st.num_blocks, st.block_shape[i], st.block_shape[i]) for st in stacks for i in st.dims
    ]
    got = [tuple(f.stat.shape) for f in factors]
    if got != want:
        raise ValueError(
            f"the optimizer state holds statistics of shapes {got}, but these gradients with "
            f"these options need {want}; was the state made by init with the same options and "
            "parameters of the same shapes?"
        )


def block_stacks(
    params: Any,
    *,
    block_size: int | None = None,
    preconditioner_type: str = "all",
    merge_small_dims: bool = True,
    skip_preconditioning_dim_size_gt: int | None = None,
    skip_preconditioning_rank_lt: int | None = None,
    exponent_override: int | None = None,
    stack_parameters: bool | None = None,
) -> tuple[BlockStack, ...]:
    """Which blocks of which parameter each :class:`~rootsolve_optim.Factor` of a state holds.

    Takes the parameters (or anything with their shapes and dtypes, such as
    ``jax.ShapeDtypeStruct`` leaves) and the structural options given to
    :func:`~rootsolve_optim.shampoo` or :func:`~rootsolve_optim.scale_by_shampoo`.
    ``ShampooState.factors`` holds, for each stack in order, one factor per
    dimension in its ``dims``; a member's blocks are
    ``factor.stat[m.start : m.start + m.num_blocks]``, and ``m.leaf`` indexes
    ``jax.tree_util.tree_leaves(params)``.

    Examples
    --------
    >>> import jax.numpy as jnp, rootsolve_optim
    >>> params = {"a": jnp.zeros((512, 256)), "b": jnp.zeros((256, 256))}
    >>> [(s.block_shape, s.num_blocks) for s in
    ...  rootsolve_optim.block_stacks(params, stack_parameters=True)]
    [((256, 256), 3)]
    """
    plan_of = planner(
        block_size, merge_small_dims, skip_preconditioning_dim_size_gt,
        skip_preconditioning_rank_lt, preconditioner_type, exponent_override,
    )
    leaves = jax.tree_util.tree_leaves(params)
    return param_stacks(plan_of, leaves, resolve_stacking(stack_parameters))


def parameter_factors(state: Any, params: Any, **structural: Any) -> Any:
    """Each parameter's statistics and roots, read out of a Shampoo state.

    Parameters
    ----------
    state : ShampooState
        The state of :func:`~rootsolve_optim.shampoo` or
        :func:`~rootsolve_optim.scale_by_shampoo` (for ``shampoo``,
        ``opt_state[0]`` when no L2 or clipping comes first); any state whose
        ``factors`` follow :func:`block_stacks`.
    params : pytree
        The parameters (or leaves with their shapes and dtypes).
    **structural
        The options given to the optimizer that shape the state
        (``block_size``, ``preconditioner_type``, ``merge_small_dims``, the two
        ``skip_preconditioning_*``, ``exponent_override``,
        ``stack_parameters``); see :func:`block_stacks`.

    Returns
    -------
    pytree shaped like ``params``
        For every parameter a tuple of :class:`~rootsolve_optim.Factor`, one
        per (block group, preconditioned dimension) in that order, each
        restricted to the parameter's own blocks (``()`` for a grafting-only
        parameter). Slices of the state's arrays: usable eagerly and under
        ``jit``.

    Examples
    --------
    >>> import jax.numpy as jnp, rootsolve_optim
    >>> params = {"w": jnp.zeros((300, 40)), "b": jnp.zeros(40)}
    >>> state = rootsolve_optim.scale_by_shampoo().init(params)
    >>> per = rootsolve_optim.parameter_factors(state, params)
    >>> [f.stat.shape for f in per["w"]], per["b"]
    ([(1, 256, 256), (1, 40, 40), (1, 44, 44), (1, 40, 40)], ())
    """
    stacks = block_stacks(params, **structural)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    check_factors(state.factors, stacks)
    found: list[list] = [[] for _ in leaves]
    for st, factors in zip(stacks, per_stack(state.factors, stacks), strict=True):
        for m in st.members:
            for f in factors:
                cut = jax.tree_util.tree_map(lambda x, st=st, m=m: member_slice(x, st, m), f)
                found[m.leaf].append((m.group, cut))
    per_leaf = [tuple(f for _, f in sorted(fs, key=lambda gf: gf[0])) for fs in found]
    return treedef.unflatten(per_leaf)
