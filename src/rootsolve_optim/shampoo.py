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
``static_args`` (a callable would be taken for a schedule).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
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
from .preconditioner import RootFn, device_root_fn, precondition_blocks, refresh_roots
from .statistics import ema, ema_weight, gram

__all__ = ["Factor", "ParamState", "ShampooState", "scale_by_shampoo", "shampoo"]


class Factor(NamedTuple):
    """One statistic of a block group and its preconditioner."""

    stat: jax.Array  # (num_blocks, n, n), statistics dtype: S <- b2 S + (1 - b2) G_(i) G_(i)^T
    root: jax.Array  # (num_blocks, n, n), statistics dtype: current preconditioner ~ S^(-1/p)
    metrics: FactorMetrics  # (num_blocks,) arrays: residual, iterations, failures, last_refresh


class ParamState(NamedTuple):
    """Shampoo's state for one parameter."""

    graft: Any  # grafting NamedTuple (grafting.py): param-shaped statistics-dtype arrays, or none
    momentum: jax.Array  # param shape, statistics dtype: first moment of the update
    factors: tuple[Factor, ...]  # one per (block group, preconditioned dim); () if grafting only


class ShampooState(NamedTuple):
    """State of :func:`scale_by_shampoo`: NamedTuples and arrays only (checkpoints exactly)."""

    count: jax.Array  # int32 (): updates applied so far (skipped steps are not counted)
    skipped_steps: jax.Array  # int32 (): steps skipped because a value was not finite
    param_states: Any  # pytree shaped like the parameters, one ParamState per leaf


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


def _init_param(opts: _Options, p: Any) -> ParamState:
    p = jnp.asarray(p)
    plan = opts.plan_of(p.shape)
    sdt = _stats_dtype(p.dtype)
    like = jnp.zeros(p.shape, sdt)
    factors = tuple(
        Factor(
            stat=jnp.zeros((nb, n, n), sdt),
            root=jnp.broadcast_to(jnp.eye(n, dtype=sdt), (nb, n, n)),
            metrics=init_factor_metrics(nb),
        )
        for nb, n in plan.factor_shapes()
    )
    return ParamState(graft_init(opts.graft_type, like), like, factors)


def _split(items: tuple, plan: BlockPlan) -> list[tuple]:
    """Per-group slices of a flat (group, dimension)-ordered tuple of factors."""
    k = len(plan.precond_dims)
    return [items[j * k : (j + 1) * k] for j in range(len(plan.groups))]


def _grams(plans, blocks, old_stats, precision) -> list[tuple]:
    """``G_(i) G_(i)^T`` of every preconditioned dimension, in the statistics' dtype."""
    out = []
    for plan, bl, old in zip(plans, blocks, old_stats, strict=True):
        new = []
        for b, stats in zip(bl, _split(old, plan), strict=True):
            g = b.astype(stats[0].dtype) if stats else b
            new.extend(gram(g, i, precision) for i in plan.precond_dims)
        out.append(tuple(new))
    return out


def _sum_of_squares(plan, gram_diags: tuple) -> jax.Array:
    """``||G||_F^2`` from the Gram diagonals of one dimension per block group."""
    k = len(plan.precond_dims)
    return sum(jnp.sum(gram_diags[j * k]) for j in range(len(plan.groups)))


def _commit_stats(opts: _Options, old_stats, grams, take) -> list[tuple]:
    """``beta2 S + (1 - beta2) G G^T`` where ``take``, else ``S`` (one fused pass per statistic)."""
    return [
        tuple(jnp.where(take, ema(s, g, opts.beta2), s) for s, g in zip(ss, gs, strict=True))
        for ss, gs in zip(old_stats, grams, strict=True)
    ]


def _roots(opts: _Options, plans, stats, states, count, due):
    """Roots and metrics of every factor (flat, in parameter order) after a possible refresh
    from the (committed) statistics ``stats``."""
    flat_stats, flat_roots, flat_metrics, exps = [], [], [], []
    for plan, st, ps in zip(plans, stats, states, strict=True):
        flat_stats.extend(st)
        flat_roots.extend(f.root for f in ps.factors)
        flat_metrics.extend(f.metrics for f in ps.factors)
        exps.extend([plan.exponent] * len(st))
    if not flat_roots:
        return (), ()

    def compute(ops):
        s, r, m, step = ops
        return refresh_roots(
            s, r, m, tuple(exps), root_fn=opts.root_fn, step=step,
            max_residual=opts.max_residual,
        )

    ops = (tuple(flat_stats), tuple(flat_roots), tuple(flat_metrics), count)
    return _when(due, compute, lambda ops: (ops[1], ops[2]), ops)


def _shampoo_direction(opts: _Options, plan, blocks, graft_dir, roots):
    """Grafted Shampoo direction of one parameter and whether it is finite."""
    dims = plan.precond_dims
    per_group = zip(blocks, _split(tuple(roots), plan), strict=True)
    dirs = [precondition_blocks(b, r, dims, opts.precision) for b, r in per_group]
    if opts.graft_type == "none":
        return blocking.from_blocks(tuple(dirs), plan), _all([_finite(d) for d in dirs])
    if opts.graft_norm == "block":
        # The graft's block norms come from a reshaped view of the graft (no copy); its
        # blocks are read only where a Shampoo block vanishes.
        gb = blocking.to_blocks(graft_dir, plan)
        gns = blocking.block_norms(graft_dir, plan)
        grafted = [_graft_blocks(d, g, n) for d, g, n in zip(dirs, gb, gns, strict=True)]
        out = blocking.from_blocks(tuple(d for d, _ in grafted), plan)
        return out, _all([f for _, f in grafted])
    d = blocking.from_blocks(tuple(dirs), plan)
    out, finite = _graft_blocks(d[None], graft_dir[None])
    return out[0], finite


def _directions(opts: _Options, plans, sizes, blocks, graft_dirs, roots):
    """Grafted Shampoo directions of every parameter (the graft alone where no factor), and
    whether they are all finite (grafting directions are, given finite squared gradients)."""
    out, flags, j = [], [], 0
    for pl, bl, gd, n in zip(plans, blocks, graft_dirs, sizes, strict=True):
        if pl.graft_only:
            out.append(gd)
        else:
            d, f = _shampoo_direction(opts, pl, bl, gd, roots[j : j + n])
            out.append(d)
            flags.append(f)
        j += n
    return out, _all(flags)


def _momentum(opts: _Options, m: jax.Array, d: jax.Array) -> jax.Array:
    """``beta1 m + w d``: the first moment after direction ``d`` (``w = 1 - beta1`` for a
    moving average, else 1), and with Nesterov also the update from the new moment."""
    w = ema_weight(opts.beta1).astype(m.dtype) if opts.moving_average else 1.0
    return jnp.asarray(opts.beta1, m.dtype) * m + w * d


def _update(opts: _Options, updates, state: ShampooState, params=None, **extra):
    del params, extra
    leaves, treedef = jax.tree_util.tree_flatten(updates)
    leaves = [jnp.asarray(g) for g in leaves]
    states = treedef.flatten_up_to(state.param_states)
    plans = [opts.plan_of(g.shape) for g in leaves]
    count = state.count
    grads = [g.astype(_stats_dtype(g.dtype)) for g in leaves]
    blocks = [
        () if pl.graft_only else blocking.to_blocks(g, pl)
        for g, pl in zip(grads, plans, strict=True)
    ]
    old_stats = [tuple(f.stat for f in ps.factors) for ps in states]
    stats_due = _due(count, 0, opts.stats_every)
    grams = _when(
        stats_due,
        lambda ops: _grams(plans, *ops, opts.statistics_precision),
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
    # overflow), and its sums add up to ||G||_F^2. So a gradient with statistics needs no
    # pass of its own for the finite check or for the normalized grafts' norm.
    covered = [
        stats_due is True and bool(st) and opts.statistics_precision == lax.Precision.HIGHEST
        for st in old_stats
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
    graft_in = [
        graft_input(kind, g, _sum_of_squares(pl, ds) if c else None)
        for g, pl, ds, c in zip(grads, plans, gram_diags, covered, strict=True)
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
        opts, plans, stats, states, count, _due(count, opts.start, opts.refresh_every) & finite_in
    )
    sizes = [len(st) for st in old_stats]
    dirs, finite_dir = _when(
        _started(count, opts.start),
        lambda ops: _directions(opts, plans, sizes, *ops),
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
    new_states, j = [], 0
    for st, gs, m, n in zip(stats, grafts, momenta, sizes, strict=True):
        parts = zip(st, roots[j : j + n], metrics[j : j + n], strict=True)
        factors = tuple(Factor(s, r, mt) for s, r, mt in parts)
        j += n
        new_states.append(ParamState(gs, m, factors))
    new_updates = [jnp.where(ok, o, 0).astype(g.dtype) for o, g in zip(outs, leaves, strict=True)]
    new_state = ShampooState(
        count=count + ok.astype(jnp.int32),
        skipped_steps=state.skipped_steps + (~ok).astype(jnp.int32),
        param_states=treedef.unflatten(new_states),
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
    block_size = _structural("block_size", block_size, DEFAULT_BLOCK_SIZE, 1)
    skip_gt = _structural(
        "skip_preconditioning_dim_size_gt", skip_preconditioning_dim_size_gt, DEFAULT_SKIP_GT, 1
    )
    skip_lt = _structural(
        "skip_preconditioning_rank_lt", skip_preconditioning_rank_lt, DEFAULT_SKIP_RANK_LT, 0
    )
    if exponent_override is not None:
        exponent_override = _structural("exponent_override", exponent_override, None, 1)
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
    _check_choice("preconditioner_type", preconditioner_type, blocking.PRECONDITIONER_TYPES)
    root_fn = _build_root_fn(root_fn, root_method, rel_ridge, compute_dtype)

    plan_of = functools.lru_cache(maxsize=None)(
        functools.partial(
            blocking.make_plan,
            block_size=block_size,
            merge_dims=merge_small_dims,
            skip_dim_size_gt=skip_gt,
            skip_rank_lt=skip_lt,
            preconditioner_type=preconditioner_type,
            exponent_override=exponent_override,
        )
    )
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
    )

    def init_fn(params: Any) -> ShampooState:
        return ShampooState(
            count=jnp.zeros((), jnp.int32),
            skipped_steps=jnp.zeros((), jnp.int32),
            param_states=jax.tree_util.tree_map(functools.partial(_init_param, opts), params),
        )

    return optax.GradientTransformationExtraArgs(init_fn, functools.partial(_update, opts))


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
        )
    )
    if not (_is_static(weight_decay) and weight_decay == 0):
        parts.append(optax.add_decayed_weights(weight_decay, weight_decay_mask))
    parts.append(optax.scale_by_learning_rate(learning_rate))
    return optax.chain(*parts)
