"""Blocked Shampoo as an optax transformation: its state, ``init``/``update`` and factories.

Anil et al., "Scalable Second Order Optimization for Deep Learning" (arXiv
2002.09018). The options are documented on :func:`scale_by_shampoo` and
:func:`shampoo`; docs/optimizer.md is the user guide (dtypes, non-finite
steps, state layout, metrics, ``inject_hyperparams``) and maps the modules
that hold the parts: blocking, stacking, statistics, preconditioner,
grafting, directions, options and control.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from .control import (
    all_true,
    computed_once,
    due,
    finite,
    is_static,
    squares_finite,
    started,
    when,
)
from .directions import grafted_directions
from .grafting import (
    graft_direction,
    graft_init,
    graft_input,
    graft_moments,
    join_grafts,
    split_grafts,
)
from .options import Options, chain_options, document, shampoo_options
from .preconditioner import (
    FactorMetrics,
    RootFn,
    init_factor_metrics,
    precondition_blocks,
    refresh_roots,
)
from .stacking import (
    BlockStack,
    StackMember,
    block_stacks,
    check_factors,
    fresh_factors,
    member_sums,
    parameter_factors,
    per_stack,
    stacks_of,
    stats_dtype,
    to_stacks,
)
from .statistics import diagonal, ema, ema_weight, gram

__all__ = [
    "Factor",
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


class ShampooState(NamedTuple):
    """State of :func:`scale_by_shampoo`: NamedTuples and arrays only (checkpoints exactly).

    Laid out like optax's own states: the parameter-shaped parts are pytrees
    of arrays shaped like the parameters inside one NamedTuple, never
    NamedTuples inside the parameters' tree, so that libraries that rebuild
    the parameters' containers (``flax.nnx``, checkpointers) round-trip it.
    ``factors`` holds every statistic and root, one :class:`Factor` per (block
    stack, preconditioned dimension); :func:`block_stacks` says which blocks of
    which parameter each stack holds.
    """

    count: jax.Array  # int32 (): updates applied so far (skipped steps are not counted)
    skipped_steps: jax.Array  # int32 (): steps skipped because a value was not finite
    graft: Any  # grafting NamedTuple (grafting.py), each field a param-shaped tree; may be empty
    momentum: Any  # param-shaped tree, statistics dtype: first moment of the update
    factors: tuple[Factor, ...]  # (stack, preconditioned dimension) order


def _init_state(opts: Options, params: Any) -> ShampooState:
    leaves, treedef = jax.tree_util.tree_flatten(params)
    leaves = [jnp.asarray(p) for p in leaves]
    momenta = [jnp.zeros(p.shape, stats_dtype(p.dtype)) for p in leaves]
    grafts = [graft_init(opts.graft_type, m) for m in momenta]
    factors = tuple(
        Factor(stat=stat, root=eye, metrics=init_factor_metrics(k))
        for stat, eye, k in fresh_factors(opts.plan_of, leaves, opts.stack)
    )
    return ShampooState(
        count=jnp.zeros((), jnp.int32),
        skipped_steps=jnp.zeros((), jnp.int32),
        graft=join_grafts(opts.graft_type, grafts, treedef),
        momentum=treedef.unflatten(momenta),
        factors=factors,
    )


def _commit_stats(opts: Options, old_stats, grams, take) -> list[tuple]:
    """``beta2 S + (1 - beta2) G G^T`` where ``take``, else ``S`` (one fused pass per statistic)."""
    return [
        tuple(jnp.where(take, ema(s, g, opts.beta2), s) for s, g in zip(ss, gs, strict=True))
        for ss, gs in zip(old_stats, grams, strict=True)
    ]


def _roots(opts: Options, stacks, stats, factors, count, due):
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
    return when(due, compute, lambda ops: (ops[1], ops[2]), ops)


def _directions(opts: Options, plans, stacks, blocks, graft_dirs, roots):
    """Grafted Shampoo directions of every parameter (the graft alone where no factor), and
    whether they are all finite (grafting directions are, given finite squared gradients)."""
    dirs = [
        precondition_blocks(b, r, st.dims, opts.precision)
        for st, b, r in zip(stacks, blocks, per_stack(roots, stacks), strict=True)
    ]
    return grafted_directions(stacks, plans, dirs, graft_dirs, opts.graft_type, opts.graft_norm)


def _started_directions(opts: Options, plans, stacks, go, blocks, graft_dirs, roots):
    """The grafted Shampoo directions once preconditioning has started (``go``), else the
    grafting directions, and whether they are finite (always before the start).

    A traced ``go`` selects with ``jnp.where`` rather than a conditional: after the start
    (every step but the first few) a conditional computes the same directions, and its
    boundary would keep XLA from fusing the per-parameter passes after it (momentum,
    update) with the grafting, which doubles the kernels that those passes compile to.
    """
    if isinstance(go, bool):
        return when(
            go,
            lambda ops: _directions(opts, plans, stacks, *ops),
            lambda ops: (ops[1], jnp.asarray(True)),
            (blocks, graft_dirs, roots),
        )
    dirs, ok = _directions(opts, plans, stacks, blocks, graft_dirs, roots)
    dirs = [jnp.where(go, d, g) for d, g in zip(dirs, graft_dirs, strict=True)]
    return dirs, ok | ~go


def _momentum(opts: Options, m: jax.Array, d: jax.Array) -> jax.Array:
    """``beta1 m + w d``: the first moment after direction ``d`` (``w = 1 - beta1`` for a
    moving average, else 1), and with Nesterov also the update from the new moment."""
    w = ema_weight(opts.beta1).astype(m.dtype) if opts.moving_average else 1.0
    return jnp.asarray(opts.beta1, m.dtype) * m + w * d


def _decays(opts: Options) -> bool:
    return not (is_static(opts.weight_decay) and opts.weight_decay == 0)


def _add_decay(opts: Options, updates, params):
    """``updates + weight_decay * params`` where the mask allows (``optax.add_decayed_weights``)."""
    tx = optax.add_decayed_weights(opts.weight_decay, opts.weight_decay_mask)
    return tx.update(updates, tx.init(params), params)[0]


def _update(opts: Options, updates, state: ShampooState, params=None, **extra):
    del extra
    leaves, treedef = jax.tree_util.tree_flatten(updates)
    old_momenta = treedef.flatten_up_to(state.momentum)
    old_grafts = split_grafts(state.graft, treedef)
    plans = [opts.plan_of(jnp.shape(g)) for g in leaves]
    dtypes = [m.dtype for m in old_momenta]
    stacks = stacks_of(plans, dtypes, opts.stack)
    check_factors(state.factors, stacks)
    count = state.count
    grads = [jnp.asarray(g).astype(dt) for g, dt in zip(leaves, dtypes, strict=True)]
    blocks = to_stacks(stacks, plans, grads)
    old_stats = per_stack([f.stat for f in state.factors], stacks)
    stats_due = due(count, 0, opts.stats_every)
    grams = when(
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
    gram_diags = [tuple(diagonal(g) for g in gs) for gs in grams]
    diags = [
        ema(diagonal(s), d, opts.beta2)
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
    kind = opts.graft_type
    sums = member_sums(stacks, [ds[0] for ds in gram_diags], len(leaves))
    # A gradient without that cover needs a pass of its own. The normalized grafts need
    # its ||G||^2 = sum G^2 anyway, and that sum is finite exactly when the gradient and
    # its squares are (and the sum does not overflow, as above): one reduction serves both.
    normalized = kind.endswith("_normalized")
    own = [
        jnp.sum(g * g) if normalized and not c else None
        for g, c in zip(grads, covered, strict=True)
    ]
    finite_in = computed_once(
        all_true(
            [
                squares_finite(g) if ss is None else jnp.isfinite(ss)
                for g, ss, c in zip(grads, own, covered, strict=True)
                if not c
            ]
            + [finite(d) for d in diags]
        )
    )
    take = stats_due & finite_in
    # Every piece of state is committed (or kept, after a non-finite step) before anything
    # else reads it, so that each old value has a single reader and XLA updates it in place
    # (the roots are computed from the committed statistics, the grafting direction from
    # the committed moments, the update from the committed momentum). The selects on
    # finite_in fuse into the passes that write the state.
    stats = _commit_stats(opts, old_stats, grams, take)
    graft_in = [
        graft_input(kind, g, ss if c else o)
        for g, ss, o, c in zip(grads, sums, own, covered, strict=True)
    ]
    moments = [
        graft_moments(kind, x, gs, opts.graft_hp)
        for x, gs in zip(graft_in, old_grafts, strict=True)
    ]
    # Given finite inputs, the moving averages (statistics, grafting moments, momentum with
    # moving_average_for_momentum) are convex combinations of finite values; what can still
    # overflow is the direction (its norms are checked), Adagrad's running sums and a
    # momentum kept as a plain sum.
    graft_ok = finite_in
    if kind.startswith("adagrad"):
        graft_ok = computed_once(graft_ok & all_true([finite(x) for m in moments for x in m]))
    grafts = [
        jax.tree_util.tree_map(lambda a, b: jnp.where(graft_ok, a, b), m, gs)
        for m, gs in zip(moments, old_grafts, strict=True)
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
        due(count, opts.start, opts.refresh_every) & finite_in,
    )
    dirs, finite_dir = _started_directions(
        opts, plans, stacks, started(count, opts.start), blocks, graft_dirs, roots
    )
    if opts.weight_decay_mode == "before_momentum" and _decays(opts):
        dirs = treedef.flatten_up_to(_add_decay(opts, treedef.unflatten(dirs), params))
    moved = [_momentum(opts, m, d) for m, d in zip(old_momenta, dirs, strict=True)]
    ok = graft_ok & finite_dir
    if not opts.moving_average:
        ok = ok & all_true([finite(m) for m in moved])
    # Every per-parameter kernel below selects with ok: one computation of it, not one each.
    ok = computed_once(ok)
    momenta = [jnp.where(ok, m, m0) for m, m0 in zip(moved, old_momenta, strict=True)]
    outs = momenta
    if opts.nesterov:
        outs = [_momentum(opts, m, d) for m, d in zip(momenta, dirs, strict=True)]
    if not opts.moving_average and opts.nesterov:
        # beta1 m + d of a finite plain-sum momentum can still overflow: zero such an update
        # (the momentum keeps its new, finite value).
        ok = computed_once(ok & all_true([finite(o) for o in outs]))
    flat_stats = [s for ss in stats for s in ss]
    factors = tuple(
        Factor(s, r, mt) for s, r, mt in zip(flat_stats, roots, metrics, strict=True)
    )
    new_updates = [
        jnp.where(ok, o, 0).astype(jnp.asarray(g).dtype)
        for o, g in zip(outs, leaves, strict=True)
    ]
    new_updates = treedef.unflatten(new_updates)
    if opts.weight_decay_mode == "decoupled" and _decays(opts):
        new_updates = _add_decay(opts, new_updates, params)
    new_state = ShampooState(
        count=count + ok.astype(jnp.int32),
        skipped_steps=state.skipped_steps + (~ok).astype(jnp.int32),
        graft=join_grafts(kind, grafts, treedef),
        momentum=treedef.unflatten(momenta),
        factors=factors,
    )
    return new_updates, new_state


def scale_by_shampoo(
    *,
    block_size: int | None = None,
    beta1: float = 0.9,
    beta2: float = 0.95,
    nesterov: bool = True,
    moving_average_for_momentum: bool = True,
    weight_decay: float = 0.0,
    weight_decay_mask: Any = None,
    weight_decay_mode: str = "decoupled",
    graft_type: str = "rmsprop_normalized",
    graft_beta1: float = 0.9,
    graft_beta2: float | None = None,
    graft_eps: float = 1e-10,
    graft_norm: str = "block",
    start_preconditioning_step: int = 1,
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

    Blocked Shampoo (Anil et al. 2020): per block ``G`` of a gradient, the
    statistics ``L <- beta2 L + (1 - beta2) G G^T`` and ``R <- beta2 R + (1 -
    beta2) G^T G``, and the direction ``L^(-1/4) G R^(-1/4)``
    (``S_i^(-1/(2k))`` along each of the ``k`` preconditioned dimensions of a
    tensor), with its norm grafted from a first-order method (Agarwal et al.
    2020), then momentum and weight decay (before or after the momentum, see
    ``weight_decay_mode``). :func:`shampoo` adds the learning rate, L2 and
    clipping. Every option is keyword-only.

    Parameters
    ----------
    {parameters}

    Returns
    -------
    optax.GradientTransformationExtraArgs
        ``init(params) -> ShampooState``; ``update(updates, state, params=None)``
        returns the direction (to be scaled by ``-lr``) in each gradient's
        dtype. A step whose gradients, statistics or update are not finite is
        skipped whole (zero update, ``skipped_steps`` counted).

    Notes
    -----
    With ``optax.inject_hyperparams`` every numeric option may be traced
    except those that shape the state (``block_size``, the two
    ``skip_preconditioning_*``) and ``exponent_override``, ``rel_ridge``,
    ``root_fn``: these default to None, which ``inject_hyperparams`` leaves
    static; to set one, list it in ``static_args``. ``stack_parameters``, a
    bool, stays static by itself. docs/optimizer.md describes dtypes,
    non-finite steps, the state layout and the metrics.

    References
    ----------
    R. Anil, V. Gupta, T. Koren, K. Regan, Y. Singer, "Scalable Second Order
    Optimization for Deep Learning", arXiv:2002.09018, 2020.
    V. Gupta, T. Koren, Y. Singer, "Shampoo: Preconditioned Stochastic Tensor
    Optimization", ICML 2018, arXiv:1802.09568.
    N. Agarwal, R. Anil, E. Hazan, T. Koren, C. Zhang, "Disentangling Adaptive
    Gradient Methods from Learning Rates", arXiv:2002.11803, 2020.

    Examples
    --------
    >>> import jax.numpy as jnp, optax, rootsolve_optim
    >>> params = {"w": jnp.ones((64, 32))}
    >>> direction = rootsolve_optim.scale_by_shampoo(block_size=32, start_preconditioning_step=0)
    >>> opt = optax.chain(direction, optax.scale(-1e-2))
    >>> state = opt.init(params)
    >>> updates, state = opt.update({"w": jnp.full((64, 32), 0.5)}, state)
    >>> [f.stat.shape for f in state[0].factors]  # two 32 x 32 blocks, L and R of each
    [(2, 32, 32), (2, 32, 32)]
    """
    opts = shampoo_options(locals())
    return optax.GradientTransformationExtraArgs(
        functools.partial(_init_state, opts), functools.partial(_update, opts)
    )


_DIRECTION_OPTIONS = tuple(inspect.signature(scale_by_shampoo).parameters)
scale_by_shampoo = document(scale_by_shampoo)


def shampoo(
    learning_rate: optax.ScalarOrSchedule,
    *,
    block_size: int | None = None,
    beta1: float = 0.9,
    beta2: float = 0.95,
    nesterov: bool = True,
    moving_average_for_momentum: bool = True,
    weight_decay: float = 0.0,
    weight_decay_mask: Any = None,
    weight_decay_mode: str = "decoupled",
    l2_regularization: float = 0.0,
    gradient_clip_norm: float | None = None,
    graft_type: str = "rmsprop_normalized",
    graft_beta1: float = 0.9,
    graft_beta2: float | None = None,
    graft_eps: float = 1e-10,
    graft_norm: str = "block",
    start_preconditioning_step: int = 1,
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

    The chain ``add_decayed_weights(l2_regularization)``,
    ``clip_by_global_norm(gradient_clip_norm)``, :func:`scale_by_shampoo`
    (with the weight decay), ``scale_by_learning_rate(learning_rate)`` (the
    first two only when used), so ``theta <- theta - lr (M + weight_decay
    theta)`` for momentum ``M`` with the default decoupled weight decay.
    Every option but ``learning_rate`` is keyword-only.

    Parameters
    ----------
    {parameters}

    Returns
    -------
    optax.GradientTransformationExtraArgs
        An ``optax.chain``; its :class:`ShampooState` is ``opt_state[0]`` when
        neither L2 nor clipping comes first.

    Notes
    -----
    ``optax.inject_hyperparams(shampoo)(learning_rate=...)`` works as is; see
    :func:`scale_by_shampoo` for the options that must be listed in
    ``static_args`` when set.

    References
    ----------
    R. Anil, V. Gupta, T. Koren, K. Regan, Y. Singer, "Scalable Second Order
    Optimization for Deep Learning", arXiv:2002.09018, 2020.
    I. Loshchilov, F. Hutter, "Decoupled Weight Decay Regularization",
    arXiv:1711.05101, 2017.

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
    args = locals()
    chain_options(args)
    parts = []
    if not (is_static(l2_regularization) and l2_regularization == 0):
        parts.append(optax.add_decayed_weights(l2_regularization))
    if gradient_clip_norm is not None:
        parts.append(optax.clip_by_global_norm(gradient_clip_norm))
    parts.append(scale_by_shampoo(**{k: args[k] for k in _DIRECTION_OPTIONS}))
    parts.append(optax.scale_by_learning_rate(learning_rate))
    return optax.chain(*parts)


shampoo = document(shampoo)
