"""Blocked Shampoo as an optax transformation.

Implements Anil, Gupta, Koren, Regan, Singer, "Scalable Second Order
Optimization for Deep Learning" (arXiv 2002.09018): for every block ``G`` of
a gradient, statistics ``L <- b2 L + (1 - b2) G G^T``, ``R <- b2 R + (1 - b2)
G^T G`` and the direction ``L^(-1/4) G R^(-1/4)`` (``S_i^(-1/(2k))`` along
each of the ``k`` preconditioned dimensions of a tensor), with its norm
grafted from a first-order method, then momentum. Roots come from
:mod:`rootsolve` through a pluggable :class:`~rootsolve_optim.preconditioner.RootFn`.

``shampoo(learning_rate, ...)`` is the ready optimizer::

    optax.chain(
        add_decayed_weights(l2_regularization),   # L2: added to the gradient
        clip_by_global_norm(gradient_clip_norm),
        scale_by_shampoo(...),                     # direction, grafting, momentum
        add_decayed_weights(weight_decay, mask),   # decoupled weight decay
        scale_by_learning_rate(learning_rate),     # -lr * (...)
    )

so decoupled weight decay is multiplied by the learning rate once:
``theta <- theta - lr (D + wd theta)`` (the 2022 reference implementation
multiplies it by lr twice).

Options (defaults in parentheses)
---------------------------------
learning_rate
    Float or optax schedule (``shampoo`` only).
block_size (None: 256)
    Largest extent of a block along a preconditioned dimension; also the
    threshold under which consecutive dimensions are merged.
beta1 (0.9)
    Momentum of the final update; 0 disables momentum.
beta2 (0.999)
    Decay of the statistics; 1 accumulates plain sums (the original Shampoo).
nesterov (True)
    Nesterov momentum: the update is ``b1 m_t + w D_t`` instead of ``m_t``.
moving_average_for_momentum (True)
    ``m <- b1 m + (1 - b1) D`` (so Adam learning rates carry over) instead of
    ``m <- b1 m + D``.
weight_decay (0.0), weight_decay_mask (None)
    Decoupled weight decay, scaled by the learning rate once (``shampoo`` only).
l2_regularization (0.0)
    Coupled L2: ``l2 theta`` is added to the gradient before everything else
    (``shampoo`` only).
gradient_clip_norm (None)
    Clip the raw gradients to this global norm before the statistics
    (``shampoo`` only).
graft_type ("rmsprop_normalized")
    One of ``none, sgd, adagrad, rmsprop, rmsprop_normalized,
    adagrad_normalized, adam, sign`` (see :mod:`rootsolve_optim.grafting`).
    Shampoo gives the direction, grafting its norm.
graft_beta1 (0.9), graft_beta2 (None: ``beta2``), graft_eps (1e-10)
    Moment decays and denominator epsilon of the grafting method.
graft_norm ("block")
    Match the grafting norm per block, or per ``"tensor"``.
start_preconditioning_step (10)
    Steps ``t < start`` (0-based) use the grafting direction alone; the
    statistics are collected from the first step. With ``graft_type="none"``
    those steps are plain SGD steps (``-lr g``).
preconditioning_compute_steps (10)
    Roots are refreshed at steps ``t >= start`` with ``(t - start) %
    preconditioning_compute_steps == 0`` (always at ``t = start``).
statistics_compute_steps (1)
    Statistics are updated at steps with ``t % statistics_compute_steps == 0``.
preconditioner_type ("all")
    ``"all"`` dimensions, or one-sided: ``"input"`` (every dimension but the
    last) or ``"output"`` (the last), for ``(in, out)`` kernels.
merge_small_dims (True)
    Merge consecutive small dimensions (product <= block_size) first.
skip_preconditioning_dim_size_gt (None: 4096)
    Dimensions larger than this get no statistic.
skip_preconditioning_rank_lt (None: 2)
    Tensors with fewer dimensions of size > 1 get grafting only (scalars,
    biases, vectors).
exponent_override (None)
    Use ``S^(-1/exponent_override)`` for every statistic instead of
    ``S^(-1/(2k))``.
root_fn (None)
    A :class:`~rootsolve_optim.preconditioner.RootFn`; None builds
    ``device_root_fn(method=root_method, rel_ridge=rel_ridge,
    compute_dtype=compute_dtype)``. Host (float64, asynchronous) and sharded
    root functions plug in here.
root_method ("auto"), rel_ridge (None), compute_dtype (None)
    Options of the default root function (see
    :func:`~rootsolve_optim.preconditioner.device_root_fn`): rootsolve's
    method; the relative ridge (None: 1e-6 when statistics and roots are
    float64, ``max(1e-6, 4 n eps_32)`` when either is float32); the
    precision of the roots (None: float64 when ``jax_enable_x64`` is on and
    the backend is the CPU, else float32).
    Exclusive with ``root_fn``.
max_residual (0.1)
    Reject a root whose residual ``||X^p S - I||_F / sqrt(n)`` exceeds this
    (the previous preconditioner is kept and the failure counted). The
    default root function estimates it from 8 random probe vectors
    (``device_root_fn(residual="probe")``).
precision ("highest"), statistics_precision ("highest")
    ``jax.lax.Precision`` (or a name it accepts) of the products with the
    roots and of the statistics' products ``G G^T``. Lower levels let
    accelerators trade accuracy for speed (TensorFloat-32 on recent NVIDIA
    GPUs, one or three bfloat16 passes on TPUs: relative errors of about 1e-3
    per product, against 1e-7 in float32); the CPU computes float32 products
    in full whatever is asked. The reference implementation's ``precision``
    also lowers the root computation; here rootsolve always computes roots at
    full precision.
stack_parameters (None)
    Keep the statistics and roots of equally shaped blocks of *all*
    parameters in one array each (a :class:`BlockStack`), so that every
    per-step product (``G G^T``, ``G^T G``, ``P_L G P_R``) and every pass
    over the statistics runs once per block shape instead of once per
    parameter. None: True on GPUs and TPUs, where a step of many small
    kernels is bound by their number, False on the CPU, where per-parameter
    batches run faster. It changes the layout of ``ShampooState.factors``
    (see :func:`block_stacks`), not the arithmetic: both layouts give the
    same updates.

Dtypes: statistics, roots, grafting state and momentum are float32 for
float32, bfloat16 and float16 parameters (float64 for float64 parameters);
updates are cast back to the gradient's dtype.

Non-finite values: a step whose gradients or new statistics contain NaN or
inf is skipped as a whole (zero updates, state unchanged, ``skipped_steps``
incremented), as ``optax.apply_if_finite`` does; roots are never computed
from such statistics and a rejected root never replaces a preconditioner, so
no NaN reaches the preconditioners. Gradients so large that their squares
overflow (above about 1.8e19 in float32) count as non-finite too (a
global-norm clip cannot rescue them: their norm overflows as well); below
that, Shampoo's direction and the normalized grafts are invariant to the
gradient's scale. Given finite inputs, the statistics and the grafting
moments are moving averages of finite values; what can still overflow is
the preconditioned direction (its per-block norms are checked), Adagrad's
running sums and a momentum kept as a plain sum
(``moving_average_for_momentum=False``; it is checked, and so is its
Nesterov update). If one does, the update is zero, the momentum is kept and
the step counts as skipped, while the statistics, grafting moments (but not
overflowing Adagrad sums) and any refreshed roots, all computed from finite
values, are kept (and so is the new momentum when only its Nesterov update
overflowed). The checks read the statistics' diagonals
(``|S_ij| <= sqrt(S_ii S_jj)`` bounds the rest), which also hold the
squares of every gradient entry, so a gradient needs a max-reduction of its
own only on steps without new statistics, with a lowered
``statistics_precision``, or when it has no statistic; the selects fuse into
the passes that write the state. Each piece of state
is committed before anything else reads it (the roots are computed from the
committed statistics, the grafting direction from the committed moments,
the update from the committed momentum), so every old value has one reader
and XLA overwrites it in place instead of copying it each step.

State: ``ShampooState.param_states`` mirrors the parameters (grafting state and
momentum, :class:`ParamState`); ``ShampooState.factors`` holds the statistics
and roots of the block stacks (:func:`block_stacks` maps them back to
parameters).

Metrics: root residuals, iterations, rejected roots and the step of the last
accepted root live in the state (:class:`~rootsolve_optim.metrics.FactorMetrics`
per statistic); :func:`~rootsolve_optim.metrics.shampoo_metrics` summarizes
them after any step without recompiling.

``optax.inject_hyperparams(shampoo)(learning_rate=...)`` works as is: every
numeric option becomes a traced array in the state, and all of them may be
traced except the three that shape the state (``block_size``,
``skip_preconditioning_dim_size_gt``, ``skip_preconditioning_rank_lt``) and
``exponent_override``/``rel_ridge``. Those default to None (meaning the
value in parentheses above) so that inject_hyperparams leaves them static;
to set one, list it in ``static_args``. ``root_fn`` must also be in
``static_args`` (a callable would be taken for a schedule). The fourth
option that shapes the state, ``stack_parameters``, is a bool, which
inject_hyperparams leaves static by itself.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from . import blocking
from .blocking import BlockPlan
from .grafting import (
    GRAFT_TYPES,
    GraftHyperparams,
    graft_direction,
    graft_init,
    graft_input,
    graft_moments,
)
from .metrics import FactorMetrics, init_factor_metrics
from .preconditioner import (
    RootFn,
    _cat,
    device_root_fn,
    precondition_blocks,
    refresh_roots,
)
from .statistics import ema, ema_weight, gram

__all__ = [
    "Factor",
    "ParamState",
    "ShampooState",
    "BlockStack",
    "StackMember",
    "block_stacks",
    "parameter_factors",
    "scale_by_shampoo",
    "shampoo",
]


class Factor(NamedTuple):
    """One statistic of a stack of equally shaped blocks and its preconditioner."""

    stat: jax.Array  # (num_blocks, n, n), statistics dtype: S <- b2 S + (1 - b2) G_(i) G_(i)^T
    root: jax.Array  # (num_blocks, n, n), statistics dtype: current preconditioner ~ S^(-1/p)
    metrics: FactorMetrics  # (num_blocks,) arrays: residual, iterations, failures, last_refresh


class ParamState(NamedTuple):
    """Shampoo's per-parameter state: what has the parameter's own shape."""

    graft: Any  # grafting NamedTuple (grafting.py): param-shaped statistics-dtype arrays, or none
    momentum: jax.Array  # param shape, statistics dtype: first moment of the update


class ShampooState(NamedTuple):
    """State of :func:`scale_by_shampoo`: NamedTuples and arrays only (checkpoints exactly).

    ``factors`` holds every statistic and root, one :class:`Factor` per (block
    stack, preconditioned dimension); :func:`block_stacks` says which blocks of
    which parameter each stack holds.
    """

    count: jax.Array  # int32 (): updates applied so far (skipped steps are not counted)
    skipped_steps: jax.Array  # int32 (): steps skipped because a value was not finite
    param_states: Any  # pytree shaped like the parameters, one ParamState per leaf
    factors: tuple[Factor, ...]  # (stack, preconditioned dimension) order


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

    Their statistics and roots are one :class:`Factor` per preconditioned
    dimension ``i`` in ``dims``, of shape ``(num_blocks, n_i, n_i)`` with
    ``n_i = block_shape[i]``, and every per-step product runs once on the
    whole stack.
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


def _stacks(plans: list[BlockPlan], dtypes: list[Any], stack: bool) -> tuple[BlockStack, ...]:
    """The block stacks of parameters with plans ``plans`` and statistics dtypes ``dtypes``.

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


def _param_stacks(plan_of: Callable, leaves: list, stack: bool) -> tuple[BlockStack, ...]:
    """The block stacks of parameter leaves (arrays, or anything with a shape and dtype)."""
    plans = [plan_of(tuple(jnp.shape(x))) for x in leaves]
    return _stacks(plans, [_stats_dtype(x.dtype) for x in leaves], stack)


def _stats_dtype(dtype: Any) -> Any:
    return jnp.promote_types(dtype, jnp.float32)


def _is_static(x: Any) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, bool)


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, jax.Array)):
        raise TypeError(f"{name} must be an int, got {name}={value!r}")
    if isinstance(value, numbers.Integral) and value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {name}={value!r}")


#: Defaults of the structural options (their signature default is None, see the module docs).
DEFAULT_BLOCK_SIZE = 256
DEFAULT_SKIP_GT = 4096
DEFAULT_SKIP_RANK_LT = 2

_STATIC_MSG = (
    "{name} shapes the optimizer state and cannot be a traced value; with "
    "optax.inject_hyperparams list it in static_args=(..., '{name}')"
)


def _structural(name: str, value: Any, default: int | None, low: int) -> int:
    """A static int option; None gives its default."""
    if value is None:
        return default
    if isinstance(value, jax.core.Tracer):
        raise TypeError(_STATIC_MSG.format(name=name))
    if isinstance(value, (jax.Array, np.ndarray)) and value.shape == ():
        value = value.item()
    _check_int(name, value, low)
    return int(value)


def _check_real(name: str, value: Any, low: float, high: float, *, low_open=False, high_open=False):
    if not _is_static(value):
        return  # traced (inject_hyperparams): checked where it was a number
    v = float(value)
    bad = (
        not math.isfinite(v)
        or v < low
        or v > high
        or (low_open and v == low)
        or (high_open and v == high)
    )
    if bad:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {lo}{low}, {high}{hi}, got {name}={value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {name}={value!r}")


def _precision(name: str, value: Any) -> lax.Precision:
    """A ``jax.lax.Precision`` from itself or a name it knows ("highest", "tensorfloat32", ...)."""
    if isinstance(value, lax.Precision):
        return value
    if isinstance(value, str):
        try:
            return lax.Precision(value.lower())
        except ValueError:
            pass
    raise ValueError(
        f"{name} must be a jax.lax.Precision or one of its names ('default', 'high', "
        f"'highest', 'bfloat16', 'tensorfloat32', 'float32', ...), got {name}={value!r}"
    )


def _build_root_fn(root_fn, root_method, rel_ridge, compute_dtype) -> Any:
    if root_fn is None:
        return device_root_fn(method=root_method, rel_ridge=rel_ridge, compute_dtype=compute_dtype)
    if not callable(root_fn):
        raise TypeError(f"root_fn must be callable, got root_fn={root_fn!r}")
    given = {
        k: v
        for k, v, d in (
            ("root_method", root_method, "auto"),
            ("rel_ridge", rel_ridge, None),
            ("compute_dtype", compute_dtype, None),
        )
        if v != d
    }
    if given:
        raise ValueError(
            f"{sorted(given)} configure the default root function; with root_fn= configure "
            "the root function itself"
        )
    return root_fn


def _when(pred: Any, on_true: Callable, on_false: Callable, operands: Any) -> Any:
    """``on_true(operands)`` if ``pred`` else ``on_false(operands)``.

    Static when ``pred`` is a Python bool, else ``lax.cond``. The arrays go in
    as operands, not closures, so that the branches see traced values even
    when the update runs eagerly (rootsolve validates concrete arrays eagerly).
    """
    if isinstance(pred, bool):
        return on_true(operands) if pred else on_false(operands)
    return lax.cond(pred, on_true, on_false, operands)


def _all(flags: list[jax.Array]) -> jax.Array:
    return functools.reduce(jnp.logical_and, flags, jnp.asarray(True))


def _finite(x: jax.Array) -> jax.Array:
    """Whether every entry of ``x`` is finite, by one max-reduction (NaN propagates through max).

    Cheaper than ``all(isfinite(x))``, which XLA's CPU backend lowers to a
    materialized boolean array and a second reduction.
    """
    return jnp.isfinite(jnp.max(jnp.abs(x), initial=0))


def _squares_finite(x: jax.Array) -> jax.Array:
    """Whether every entry of ``x`` and its square are finite (``x^2`` feeds the statistics)."""
    m = jnp.max(jnp.abs(x), initial=0)
    return jnp.isfinite(m * m)


def _graft_blocks(
    direction: jax.Array, graft: jax.Array, gn: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """Per block ``D ||graft|| / ||D||`` (the graft itself where ``D`` vanishes).

    ``gn`` are the graft's block norms when already known. Also returns
    whether every norm and scale is finite, which (the graft being finite)
    makes the grafted direction finite.
    """
    nb = direction.shape[0]
    dn = jnp.linalg.norm(direction.reshape(nb, -1), axis=1)
    if gn is None:
        gn = jnp.linalg.norm(graft.reshape(nb, -1), axis=1)
    shape = (nb,) + (1,) * (direction.ndim - 1)
    scale = gn / jnp.where(dn > 0, dn, 1.0)
    out = jnp.where((dn > 0).reshape(shape), direction * scale.reshape(shape), graft)
    return out, _finite(jnp.stack([dn, gn, scale]))


class _Options(NamedTuple):
    plan_of: Callable[[tuple[int, ...]], BlockPlan]
    beta1: Any
    beta2: Any
    nesterov: bool
    moving_average: bool
    graft_type: str
    graft_hp: GraftHyperparams
    graft_norm: str
    start: Any
    refresh_every: Any
    stats_every: Any
    root_fn: Any
    max_residual: Any
    precision: lax.Precision
    statistics_precision: lax.Precision
    stack: bool


def _per_stack(items: Any, stacks: tuple[BlockStack, ...]) -> list[tuple]:
    """Per-stack tuples of a flat (stack, dimension)-ordered sequence."""
    out, j = [], 0
    for st in stacks:
        out.append(tuple(items[j : j + len(st.dims)]))
        j += len(st.dims)
    return out


def _member_slice(x: jax.Array, stack: BlockStack, m: StackMember) -> jax.Array:
    """The part of a stacked array (leading block axis) that holds member ``m``."""
    return x if len(stack.members) == 1 else x[m.start : m.start + m.num_blocks]


def _stack(stack: BlockStack, per_leaf: list) -> jax.Array:
    """Stack ``per_leaf[leaf][group]`` (leading block axis) over the stack's members."""
    return _cat([per_leaf[m.leaf][m.group] for m in stack.members])


def _init_state(opts: _Options, params: Any) -> ShampooState:
    leaves, treedef = jax.tree_util.tree_flatten(params)
    leaves = [jnp.asarray(p) for p in leaves]
    states = []
    for p in leaves:
        like = jnp.zeros(p.shape, _stats_dtype(p.dtype))
        states.append(ParamState(graft_init(opts.graft_type, like), like))
    factors = tuple(
        Factor(
            stat=jnp.zeros((st.num_blocks, n, n), st.dtype),
            root=jnp.broadcast_to(jnp.eye(n, dtype=st.dtype), (st.num_blocks, n, n)),
            metrics=init_factor_metrics(st.num_blocks),
        )
        for st in _param_stacks(opts.plan_of, leaves, opts.stack)
        for n in (st.block_shape[i] for i in st.dims)
    )
    return ShampooState(
        count=jnp.zeros((), jnp.int32),
        skipped_steps=jnp.zeros((), jnp.int32),
        param_states=treedef.unflatten(states),
        factors=factors,
    )


def _check_factors(factors: tuple[Factor, ...], stacks: tuple[BlockStack, ...]) -> None:
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


def _sums_of_squares(stacks, gram_diags, num_leaves: int) -> list:
    """``||G||_F^2`` of every parameter with blocks, from the Gram diagonals of one dimension
    (None for a grafting-only parameter)."""
    out: list = [None] * num_leaves
    for st, ds in zip(stacks, gram_diags, strict=True):
        for m in st.members:
            part = jnp.sum(_member_slice(ds[0], st, m))
            out[m.leaf] = part if out[m.leaf] is None else out[m.leaf] + part
    return out


def _commit_stats(opts: _Options, old_stats, grams, take) -> list[tuple]:
    """``beta2 S + (1 - beta2) G G^T`` where ``take``, else ``S`` (one fused pass per statistic)."""
    return [
        tuple(jnp.where(take, ema(s, g, opts.beta2), s) for s, g in zip(ss, gs, strict=True))
        for ss, gs in zip(old_stats, grams, strict=True)
    ]


def _roots(opts: _Options, stacks, stats, factors, count, due):
    """Roots and metrics of every factor (flat, in (stack, dimension) order) after a possible
    refresh from the (committed) statistics ``stats``."""
    if not factors:
        return (), ()
    exps = tuple(st.exponent for st in stacks for _ in st.dims)

    def compute(ops):
        s, r, m, step = ops
        return refresh_roots(
            s, r, m, exps, root_fn=opts.root_fn, step=step, max_residual=opts.max_residual
        )

    flat_stats = tuple(s for ss in stats for s in ss)
    ops = (flat_stats, tuple(f.root for f in factors), tuple(f.metrics for f in factors), count)
    return _when(due, compute, lambda ops: (ops[1], ops[2]), ops)


def _directions(opts: _Options, plans, stacks, blocks, graft_dirs, roots):
    """Grafted Shampoo directions of every parameter (the graft alone where no factor), and
    whether they are all finite (grafting directions are, given finite squared gradients)."""
    roots = _per_stack(roots, stacks)
    dirs = [
        precondition_blocks(b, r, st.dims, opts.precision)
        for st, b, r in zip(stacks, blocks, roots, strict=True)
    ]
    flags = []
    if opts.graft_type == "none":
        flags = [_finite(d) for d in dirs]
    elif opts.graft_norm == "block":
        # The graft's block norms come from reshaped views of the graft (no copy); its
        # blocks are read only where a Shampoo block vanishes.
        norms = [
            blocking.block_norms(gd, pl) if not pl.graft_only else ()
            for gd, pl in zip(graft_dirs, plans, strict=True)
        ]
        gblocks = [
            blocking.to_blocks(gd, pl) if not pl.graft_only else ()
            for gd, pl in zip(graft_dirs, plans, strict=True)
        ]
        grafted = [
            _graft_blocks(d, _stack(st, gblocks), _stack(st, norms))
            for st, d in zip(stacks, dirs, strict=True)
        ]
        dirs = [d for d, _ in grafted]
        flags = [f for _, f in grafted]
    per_leaf: list[list] = [[None] * len(pl.groups) for pl in plans]
    for st, d in zip(stacks, dirs, strict=True):
        for m in st.members:
            per_leaf[m.leaf][m.group] = _member_slice(d, st, m)
    out = []
    for pl, gd, parts in zip(plans, graft_dirs, per_leaf, strict=True):
        if pl.graft_only:
            out.append(gd)
            continue
        d = blocking.from_blocks(tuple(parts), pl)
        if opts.graft_type != "none" and opts.graft_norm == "tensor":
            d, f = _graft_blocks(d[None], gd[None])
            d = d[0]
            flags.append(f)
        out.append(d)
    return out, _all(flags)


def _momentum(opts: _Options, m: jax.Array, d: jax.Array) -> jax.Array:
    """``beta1 m + w d``: the first moment after direction ``d`` (``w = 1 - beta1`` for a
    moving average, else 1), and with Nesterov also the update from the new moment."""
    w = ema_weight(opts.beta1).astype(m.dtype) if opts.moving_average else 1.0
    return jnp.asarray(opts.beta1, m.dtype) * m + w * d


def _update(opts: _Options, updates, state: ShampooState, params=None, **extra):
    del params, extra
    leaves, treedef = jax.tree_util.tree_flatten(updates)
    states = treedef.flatten_up_to(state.param_states)
    plans = [opts.plan_of(jnp.shape(g)) for g in leaves]
    dtypes = [ps.momentum.dtype for ps in states]
    stacks = _stacks(plans, dtypes, opts.stack)
    _check_factors(state.factors, stacks)
    count = state.count
    grads = [jnp.asarray(g).astype(dt) for g, dt in zip(leaves, dtypes, strict=True)]
    leaf_blocks = [
        () if pl.graft_only else blocking.to_blocks(g, pl)
        for g, pl in zip(grads, plans, strict=True)
    ]
    # One array per stack: the blocks of several parameters are copied side by side in
    # the same pass that cuts each parameter into blocks.
    blocks = [_stack(st, leaf_blocks) for st in stacks]
    old_stats = _per_stack([f.stat for f in state.factors], stacks)
    stats_due = _due(count, 0, opts.stats_every)
    grams = _when(
        stats_due,
        lambda ops: [
            tuple(gram(b, i, opts.statistics_precision) for i in st.dims)
            for st, b in zip(stacks, ops[0], strict=True)
        ],
        lambda ops: [tuple(jnp.zeros_like(s) for s in st) for st in ops[1]],
        (blocks, old_stats),
    )
    # Inputs: finite gradients whose squares are finite, and finite new statistics, judged
    # on their diagonals without forming the statistics: a statistic is an average of Gram
    # matrices, so |S_ij| <= sqrt(S_ii S_jj) (Cauchy-Schwarz) and finite diagonals bound
    # every entry.
    gram_diags = [tuple(jnp.diagonal(g, axis1=-2, axis2=-1) for g in gs) for gs in grams]
    diags = [
        ema(jnp.diagonal(s, axis1=-2, axis2=-1), d, opts.beta2)
        for ss, ds in zip(old_stats, gram_diags, strict=True)
        for s, d in zip(ss, ds, strict=True)
    ]
    # When new statistics come every step, the diagonal of any one Gram matrix of a block,
    # diag(G_(i) G_(i)^T)_r = sum_c G_(i)[r, c]^2, holds every entry of the block squared:
    # it is finite exactly when the block and its squares are (and their sums do not
    # overflow), and its sums add up to ||G||_F^2. The blocks of a parameter cover it, so
    # a gradient with statistics needs no pass of its own for the finite check or for the
    # normalized grafts' norm.
    covered = [
        stats_due is True
        and not pl.graft_only
        and opts.statistics_precision == lax.Precision.HIGHEST
        for pl in plans
    ]
    finite_in = _all(
        [_squares_finite(g) for g, c in zip(grads, covered, strict=True) if not c]
        + [_finite(d) for d in diags]
    )
    take = stats_due & finite_in
    # Every piece of state is committed (or kept, after a non-finite step) before anything
    # else reads it, so that each old value has a single reader and XLA updates it in place.
    stats = _commit_stats(opts, old_stats, grams, take)
    kind = opts.graft_type
    sums = _sums_of_squares(stacks, gram_diags, len(leaves))
    graft_in = [
        graft_input(kind, g, ss if c else None)
        for g, ss, c in zip(grads, sums, covered, strict=True)
    ]
    moments = [
        graft_moments(kind, x, ps.graft, opts.graft_hp)
        for x, ps in zip(graft_in, states, strict=True)
    ]
    # Given finite inputs, the moving averages (statistics, grafting moments, momentum with
    # moving_average_for_momentum) are convex combinations of finite values; what can still
    # overflow is the direction (its norms are checked), Adagrad's running sums and a
    # momentum kept as a plain sum.
    graft_ok = finite_in
    if kind.startswith("adagrad"):
        graft_ok = graft_ok & _all([_finite(x) for m in moments for x in m])
    grafts = [
        jax.tree_util.tree_map(lambda a, b: jnp.where(graft_ok, a, b), m, ps.graft)
        for m, ps in zip(moments, states, strict=True)
    ]
    graft_dirs = [
        graft_direction(kind, x, gs, count, opts.graft_hp)
        for x, gs in zip(graft_in, grafts, strict=True)
    ]
    roots, metrics = _roots(
        opts,
        stacks,
        stats,
        state.factors,
        count,
        _due(count, opts.start, opts.refresh_every) & finite_in,
    )
    dirs, finite_dir = _when(
        _started(count, opts.start),
        lambda ops: _directions(opts, plans, stacks, *ops),
        lambda ops: (ops[1], jnp.asarray(True)),
        (blocks, graft_dirs, roots),
    )
    moved = [_momentum(opts, ps.momentum, d) for ps, d in zip(states, dirs, strict=True)]
    ok = graft_ok & finite_dir
    if not opts.moving_average:
        ok = ok & _all([_finite(m) for m in moved])
    momenta = [jnp.where(ok, m, ps.momentum) for m, ps in zip(moved, states, strict=True)]
    outs = momenta
    if opts.nesterov:
        outs = [_momentum(opts, m, d) for m, d in zip(momenta, dirs, strict=True)]
    if not opts.moving_average and opts.nesterov:
        # beta1 m + d of a finite plain-sum momentum can still overflow: zero such an update
        # (the momentum keeps its new, finite value).
        ok = ok & _all([_finite(o) for o in outs])
    new_states = [ParamState(gs, m) for gs, m in zip(grafts, momenta, strict=True)]
    flat_stats = [s for ss in stats for s in ss]
    factors = tuple(
        Factor(s, r, mt) for s, r, mt in zip(flat_stats, roots, metrics, strict=True)
    )
    new_updates = [
        jnp.where(ok, o, 0).astype(jnp.asarray(g).dtype)
        for o, g in zip(outs, leaves, strict=True)
    ]
    new_state = ShampooState(
        count=count + ok.astype(jnp.int32),
        skipped_steps=state.skipped_steps + (~ok).astype(jnp.int32),
        param_states=treedef.unflatten(new_states),
        factors=factors,
    )
    return treedef.unflatten(new_updates), new_state


def _due(count: jax.Array, start: Any, every: Any) -> Any:
    """Whether step ``count`` is ``start + j * every`` for some ``j >= 0``."""
    if _is_static(start) and _is_static(every) and every == 1 and start == 0:
        return True
    return (count >= start) & ((count - start) % every == 0)


def _started(count: jax.Array, start: Any) -> Any:
    if _is_static(start) and start == 0:
        return True
    return count >= start


def _planner(block_size, merge_dims, skip_gt, skip_lt, kind, exponent_override):
    """Check the structural options (None: their defaults) and return the cached
    ``shape -> BlockPlan`` they define."""
    block_size = _structural("block_size", block_size, DEFAULT_BLOCK_SIZE, 1)
    skip_gt = _structural("skip_preconditioning_dim_size_gt", skip_gt, DEFAULT_SKIP_GT, 1)
    skip_lt = _structural("skip_preconditioning_rank_lt", skip_lt, DEFAULT_SKIP_RANK_LT, 0)
    if exponent_override is not None:
        exponent_override = _structural("exponent_override", exponent_override, None, 1)
    _check_choice("preconditioner_type", kind, blocking.PRECONDITIONER_TYPES)
    return functools.lru_cache(maxsize=None)(
        functools.partial(
            blocking.make_plan,
            block_size=block_size,
            merge_dims=merge_dims,
            skip_dim_size_gt=skip_gt,
            skip_rank_lt=skip_lt,
            preconditioner_type=kind,
            exponent_override=exponent_override,
        )
    )


def _resolve_stacking(stack_parameters: Any) -> bool:
    """``stack_parameters`` as a bool; None: stack on accelerators, not on the CPU."""
    if stack_parameters is None:
        return jax.default_backend() != "cpu"
    if isinstance(stack_parameters, jax.core.Tracer):
        raise TypeError(_STATIC_MSG.format(name="stack_parameters"))
    if isinstance(stack_parameters, (jax.Array, np.ndarray)) and stack_parameters.shape == ():
        stack_parameters = stack_parameters.item()  # concrete, from inject_hyperparams' init
    if not isinstance(stack_parameters, (bool, np.bool_)):
        raise TypeError(
            f"stack_parameters must be a bool or None, got stack_parameters={stack_parameters!r}"
        )
    return bool(stack_parameters)


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
    """Which blocks of which parameter each :class:`Factor` of a Shampoo state belongs to.

    Takes the parameters (or anything with their shapes and dtypes, such as
    ``jax.ShapeDtypeStruct`` leaves) and the structural options given to
    :func:`shampoo` or :func:`scale_by_shampoo`. ``ShampooState.factors``
    holds, for each stack in order, one factor per dimension in its ``dims``;
    a member's blocks are ``factor.stat[m.start : m.start + m.num_blocks]``,
    and ``m.leaf`` indexes ``jax.tree_util.tree_leaves(params)``.

    Examples
    --------
    >>> import jax.numpy as jnp, rootsolve_optim
    >>> params = {"a": jnp.zeros((512, 256)), "b": jnp.zeros((256, 256))}
    >>> [(s.block_shape, s.num_blocks) for s in
    ...  rootsolve_optim.block_stacks(params, stack_parameters=True)]
    [((256, 256), 3)]
    """
    plan_of = _planner(
        block_size, merge_small_dims, skip_preconditioning_dim_size_gt,
        skip_preconditioning_rank_lt, preconditioner_type, exponent_override,
    )
    leaves = jax.tree_util.tree_leaves(params)
    return _param_stacks(plan_of, leaves, _resolve_stacking(stack_parameters))


def parameter_factors(state: ShampooState, params: Any, **structural: Any) -> Any:
    """Each parameter's statistics and roots, read out of a Shampoo state.

    Parameters
    ----------
    state : ShampooState
        The state of :func:`shampoo` or :func:`scale_by_shampoo` (for
        :func:`shampoo`, ``opt_state[0]`` when no L2 or clipping comes first).
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
        For every parameter a tuple of :class:`Factor`, one per (block group,
        preconditioned dimension) in that order, each restricted to the
        parameter's own blocks (``()`` for a grafting-only parameter). Slices
        of the state's arrays: usable eagerly and under ``jit``.

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
    _check_factors(state.factors, stacks)
    found: list[list] = [[] for _ in leaves]
    for st, factors in zip(stacks, _per_stack(state.factors, stacks), strict=True):
        for m in st.members:
            for f in factors:
                cut = jax.tree_util.tree_map(lambda x, st=st, m=m: _member_slice(x, st, m), f)
                found[m.leaf].append((m.group, cut))
    per_leaf = [tuple(f for _, f in sorted(fs, key=lambda gf: gf[0])) for fs in found]
    return treedef.unflatten(per_leaf)


def scale_by_shampoo(
    *,
    block_size: int | None = None,
    beta1: float = 0.9,
    beta2: float = 0.999,
    nesterov: bool = True,
    moving_average_for_momentum: bool = True,
    graft_type: str = "rmsprop_normalized",
    graft_beta1: float = 0.9,
    graft_beta2: float | None = None,
    graft_eps: float = 1e-10,
    graft_norm: str = "block",
    start_preconditioning_step: int = 10,
    preconditioning_compute_steps: int = 10,
    statistics_compute_steps: int = 1,
    preconditioner_type: str = "all",
    merge_small_dims: bool = True,
    skip_preconditioning_dim_size_gt: int | None = None,
    skip_preconditioning_rank_lt: int | None = None,
    exponent_override: int | None = None,
    root_fn: RootFn | None = None,
    root_method: str = "auto",
    rel_ridge: float | None = None,
    compute_dtype: Any = None,
    max_residual: float = 0.1,
    precision: str | lax.Precision = "highest",
    statistics_precision: str | lax.Precision = "highest",
    stack_parameters: bool | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Shampoo's direction with grafting and momentum, without the learning rate.

    Every option is described in the module docstring of
    :mod:`rootsolve_optim.shampoo`; :func:`shampoo` adds the learning rate,
    weight decay, L2 and clipping.

    Returns
    -------
    optax.GradientTransformationExtraArgs
        ``init(params) -> ShampooState``; ``update(updates, state, params=None)``
        returns the direction (to be scaled by ``-lr``) in each gradient's dtype.

    References
    ----------
    R. Anil, V. Gupta, T. Koren, K. Regan, Y. Singer, "Scalable Second Order
    Optimization for Deep Learning", arXiv:2002.09018, 2020.
    V. Gupta, T. Koren, Y. Singer, "Shampoo: Preconditioned Stochastic Tensor
    Optimization", ICML 2018, arXiv:1802.09568.
    """
    plan_of = _planner(
        block_size, merge_small_dims, skip_preconditioning_dim_size_gt,
        skip_preconditioning_rank_lt, preconditioner_type, exponent_override,
    )
    _check_int("start_preconditioning_step", start_preconditioning_step, 0)
    _check_int("preconditioning_compute_steps", preconditioning_compute_steps, 1)
    _check_int("statistics_compute_steps", statistics_compute_steps, 1)
    for name, value in (("rel_ridge", rel_ridge), ("compute_dtype", compute_dtype)):
        if isinstance(value, jax.core.Tracer):
            raise TypeError(_STATIC_MSG.format(name=name))
    _check_real("beta1", beta1, 0.0, 1.0, high_open=True)
    _check_real("beta2", beta2, 0.0, 1.0, low_open=True)
    _check_real("graft_beta1", graft_beta1, 0.0, 1.0, high_open=True)
    if graft_beta2 is not None:
        _check_real("graft_beta2", graft_beta2, 0.0, 1.0, low_open=True)
    _check_real("graft_eps", graft_eps, 0.0, math.inf)
    _check_real("max_residual", max_residual, 0.0, math.inf, low_open=True)
    _check_choice("graft_type", graft_type, GRAFT_TYPES)
    _check_choice("graft_norm", graft_norm, ("block", "tensor"))
    root_fn = _build_root_fn(root_fn, root_method, rel_ridge, compute_dtype)

    opts = _Options(
        plan_of=plan_of,
        beta1=beta1,
        beta2=beta2,
        nesterov=bool(nesterov),
        moving_average=bool(moving_average_for_momentum),
        graft_type=graft_type,
        graft_hp=GraftHyperparams(
            graft_beta1, beta2 if graft_beta2 is None else graft_beta2, graft_eps
        ),
        graft_norm=graft_norm,
        start=start_preconditioning_step,
        refresh_every=preconditioning_compute_steps,
        stats_every=statistics_compute_steps,
        root_fn=root_fn,
        max_residual=max_residual,
        precision=_precision("precision", precision),
        statistics_precision=_precision("statistics_precision", statistics_precision),
        stack=_resolve_stacking(stack_parameters),
    )

    return optax.GradientTransformationExtraArgs(
        functools.partial(_init_state, opts), functools.partial(_update, opts)
    )


def shampoo(
    learning_rate: optax.ScalarOrSchedule,
    *,
    block_size: int | None = None,
    beta1: float = 0.9,
    beta2: float = 0.999,
    nesterov: bool = True,
    moving_average_for_momentum: bool = True,
    weight_decay: float = 0.0,
    weight_decay_mask: Any = None,
    l2_regularization: float = 0.0,
    gradient_clip_norm: float | None = None,
    graft_type: str = "rmsprop_normalized",
    graft_beta1: float = 0.9,
    graft_beta2: float | None = None,
    graft_eps: float = 1e-10,
    graft_norm: str = "block",
    start_preconditioning_step: int = 10,
    preconditioning_compute_steps: int = 10,
    statistics_compute_steps: int = 1,
    preconditioner_type: str = "all",
    merge_small_dims: bool = True,
    skip_preconditioning_dim_size_gt: int | None = None,
    skip_preconditioning_rank_lt: int | None = None,
    exponent_override: int | None = None,
    root_fn: RootFn | None = None,
    root_method: str = "auto",
    rel_ridge: float | None = None,
    compute_dtype: Any = None,
    max_residual: float = 0.1,
    precision: str | lax.Precision = "highest",
    statistics_precision: str | lax.Precision = "highest",
    stack_parameters: bool | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Blocked Shampoo with grafting, momentum, weight decay and a learning rate.

    Every option is described in the module docstring of
    :mod:`rootsolve_optim.shampoo`.

    Examples
    --------
    >>> import jax.numpy as jnp, optax, rootsolve_optim
    >>> params = {"w": jnp.ones((4, 3)), "b": jnp.zeros(3)}
    >>> opt = rootsolve_optim.shampoo(1e-2, start_preconditioning_step=0)
    >>> state = opt.init(params)
    >>> grads = {"w": jnp.full((4, 3), 0.5), "b": jnp.ones(3)}
    >>> updates, state = opt.update(grads, state, params)
    >>> params = optax.apply_updates(params, updates)
    """
    _check_real("weight_decay", weight_decay, 0.0, math.inf)
    _check_real("l2_regularization", l2_regularization, 0.0, math.inf)
    if gradient_clip_norm is not None:
        _check_real("gradient_clip_norm", gradient_clip_norm, 0.0, math.inf, low_open=True)
    parts = []
    if not (_is_static(l2_regularization) and l2_regularization == 0):
        parts.append(optax.add_decayed_weights(l2_regularization))
    if gradient_clip_norm is not None:
        parts.append(optax.clip_by_global_norm(gradient_clip_norm))
    parts.append(
        scale_by_shampoo(
            block_size=block_size, beta1=beta1, beta2=beta2, nesterov=nesterov,
            moving_average_for_momentum=moving_average_for_momentum, graft_type=graft_type,
            graft_beta1=graft_beta1, graft_beta2=graft_beta2, graft_eps=graft_eps,
            graft_norm=graft_norm, start_preconditioning_step=start_preconditioning_step,
            preconditioning_compute_steps=preconditioning_compute_steps,
            statistics_compute_steps=statistics_compute_steps,
            preconditioner_type=preconditioner_type, merge_small_dims=merge_small_dims,
            skip_preconditioning_dim_size_gt=skip_preconditioning_dim_size_gt,
            skip_preconditioning_rank_lt=skip_preconditioning_rank_lt,
            exponent_override=exponent_override, root_fn=root_fn, root_method=root_method,
            rel_ridge=rel_ridge, compute_dtype=compute_dtype, max_residual=max_residual,
            precision=precision, statistics_precision=statistics_precision,
            stack_parameters=stack_parameters,
        )
    )
    if not (_is_static(weight_decay) and weight_decay == 0):
        parts.append(optax.add_decayed_weights(weight_decay, weight_decay_mask))
    parts.append(optax.scale_by_learning_rate(learning_rate))
    return optax.chain(*parts)
