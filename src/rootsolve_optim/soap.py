"""SOAP: Adam in the eigenbasis of Shampoo's statistics, as an optax transformation.

Vyas, Morwani, Zhao, Shapira, Brandfonbrener, Janson, Kakade, "SOAP: Improving and
Stabilizing Shampoo using Adam" (arXiv:2409.11321). Per block ``G`` with one
statistic ``S_i`` and orthonormal basis ``Q_i`` per rotated dimension: Adam on
``G' = G x_i Q_i^T``, the direction rotated back, the statistics updated after the
step, and every ``precondition_frequency`` steps each basis refreshed by one step of
:func:`rootsolve.refine_eigenbasis`. The first moment is stored rotated and turned
by ``Q_new^T Q_old`` at a refresh (the paper's ``M x_i Q_new^T`` exactly); the second
moment follows its columns through the refresh's sort.

The whole algorithm (first call, moments at a basis change, what is shared with
Shampoo, dtypes, skipped steps, metrics, cost and state size) is in the optimizer
guide, docs/optimizer.md, section "SOAP"; every option with its default is in
:func:`scale_by_soap` and :func:`soap`.

References
----------
N. Vyas, D. Morwani, R. Zhao, I. Shapira, D. Brandfonbrener, L. Janson,
S. Kakade, "SOAP: Improving and Stabilizing Shampoo using Adam",
arXiv:2409.11321, 2024.
D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization",
arXiv:1412.6980, 2014.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from rootsolve._validation import check_choice
from rootsolve.eigenbasis import ORTHONORMALIZE_METHODS

from .control import all_true, finite, squares_finite, when
from .options import check_int, check_real, check_static, document, planner, resolve_stacking
from .options import precision as as_precision
from .preconditioner import FactorMetrics, init_factor_metrics
from .root_functions import compute_dtype_name
from .rotation import rotate
from .soap_bases import eigenbases, refresh_bases
from .stacking import (
    check_factors,
    fresh_factors,
    from_stacks,
    per_stack,
    stacks_of,
    stats_dtype,
    to_stacks,
)
from .statistics import diagonal, ema, gram

__all__ = ["SOAPFactor", "SOAPState", "scale_by_soap", "soap"]

#: Defaults of the structural options (their signature default is None, see docs/optimizer.md).
DEFAULT_BLOCK_SIZE = 1024
DEFAULT_SKIP_GT = 10000
DEFAULT_SKIP_RANK_LT = 2

#: Reference text of every option (numpydoc), shared by both factories' docstrings.
_DOCS = {
    "learning_rate": """learning_rate : float or optax schedule, default 3e-3
    The step size (the paper's default); the update is ``-learning_rate``
    times the direction plus the decoupled weight decay.""",
    "beta1": """beta1 : float, default 0.9
    Adam's first-moment decay, in [0, 1). The paper uses 0.95; 0.9 took fewer
    steps on every transformer and CNN run of the optimizer guide's ablations.""",
    "beta2": """beta2 : float, default 0.95
    Adam's second-moment decay, in [0, 1) (the paper's default).""",
    "shampoo_beta": """shampoo_beta : float, optional
    Decay of the statistics ``S_i``, in [0, 1); None: ``beta2``.""",
    "eps": """eps : float, default 1e-8
    Adam's epsilon, added to ``sqrt(v_hat)`` (as ``optax.adam``; the
    authors' code adds it to ``sqrt(v)`` before the bias correction).""",
    "weight_decay": """weight_decay : float, default 0.01
    Decoupled weight decay, multiplied by the learning rate once:
    ``theta <- theta - lr (N + weight_decay theta)`` (as ``optax.adamw``;
    the paper's default).""",
    "weight_decay_mask": """weight_decay_mask : pytree or callable, optional
    Which parameters decay (as in ``optax.add_decayed_weights``); None: all.""",
    "precondition_frequency": """precondition_frequency : int, default 10
    Refresh the bases every this many Adam steps (the paper's default).""",
    "bias_correction": """bias_correction : bool, default True
    Adam's bias corrections ``1 - beta1^t`` and ``1 - beta2^t``.""",
    "block_size": """block_size : int or None, default None (1024)
    Largest extent of a block along a rotated dimension, and the threshold
    for ``merge_small_dims``. The paper does not block; blocks bound the cost
    of the ``eigh`` and QR of the bases.""",
    "merge_small_dims": """merge_small_dims : bool, default False
    Merge consecutive dimensions while their product stays <= ``block_size``
    (as Shampoo does). Off by default, as in the paper: merging turns a
    small matrix into a vector whose single basis has the matrix's size.""",
    "skip_preconditioning_dim_size_gt": """skip_preconditioning_dim_size_gt : int or None,\
 default None (10000)
    Dimensions larger than this get no basis; the others are still rotated
    (one-sided for a matrix). The paper's ``max_precond_dim``.""",
    "skip_preconditioning_rank_lt": """skip_preconditioning_rank_lt : int or None, default None (2)
    Tensors with fewer dimensions of size > 1 get plain Adam (scalars,
    biases, vectors: the paper's ``precondition_1d=False``; 1 rotates
    vectors too).""",
    "preconditioner_type": """preconditioner_type : {"all", "input", "output"}, default "all"
    Rotate every dimension, or one side only: ``"input"`` (every dimension
    but the last) or ``"output"`` (the last).""",
    "compute_dtype": """compute_dtype : {"float32", "float64"}, optional
    Precision of the basis refreshes (``eigh``, QR); None: the statistics'
    dtype (float32 for float32, bfloat16 and float16 parameters, as the
    paper computes them). ``"float64"`` (with ``jax_enable_x64``) refreshes
    float32 statistics in float64 on a CPU, at about twice the refresh's cost.
    The bases are stored in the statistics' dtype.""",
    "orthonormalize": """orthonormalize : {"auto", "householder", "cholesky"}, default "auto"
    How a refresh orthonormalizes ``S Q``
    (:func:`rootsolve.refine_eigenbasis`'s option of that name): ``"auto"``
    takes shifted Cholesky QR on GPUs (a step 5.5x faster than by jax's batched
    QR on an H200, but 24 s more compile time) and LAPACK's Householder QR on
    the CPU.""",
    "precision": """precision : str or jax.lax.Precision, default "highest"
    Precision of the rotations (``jax.lax.Precision`` or a name it accepts).""",
    "statistics_precision": """statistics_precision : str or jax.lax.Precision, default "highest"
    Precision of the statistics' products ``G G^T`` (as ``precision``).""",
    "stack_parameters": """stack_parameters : bool, optional
    Keep equally shaped blocks of all parameters in one array (a
    :class:`~rootsolve_optim.BlockStack`), so that every product runs once
    per block shape. None: True on GPUs and TPUs, False on the CPU. It
    changes the layout of ``SOAPState.factors``
    (:func:`~rootsolve_optim.block_stacks` with the same structural options
    describes it), not the arithmetic.""",
}


class SOAPFactor(NamedTuple):
    """One statistic of a stack of equally shaped blocks and its eigenbasis."""

    stat: jax.Array  # (num_blocks, n, n), statistics dtype: S <- b_s S + (1 - b_s) G_(i) G_(i)^T
    basis: jax.Array  # (num_blocks, n, n), statistics dtype: eigenvectors of S, largest first
    metrics: FactorMetrics  # (num_blocks,): off-diagonal mass, power steps, failures, last refresh


class SOAPState(NamedTuple):
    """State of :func:`scale_by_soap`: NamedTuples and arrays only (checkpoints exactly).

    ``mu`` and ``nu`` are shaped like the parameters and hold Adam's moments in
    the rotated coordinates of each block, at the block's place (Adam's own
    coordinates for dimensions without a basis); ``factors`` holds one
    :class:`SOAPFactor` per (block stack, rotated dimension), laid out as
    :func:`~rootsolve_optim.block_stacks` says.
    """

    count: jax.Array  # int32 (): calls applied, the initializing one included (skipped: not)
    skipped_steps: jax.Array  # int32 (): calls skipped because a value was not finite
    mu: Any  # pytree like the parameters, statistics dtype: first moment (rotated)
    nu: Any  # pytree like the parameters, statistics dtype: second moment (rotated)
    factors: tuple[SOAPFactor, ...]  # (stack, rotated dimension) order


class _Options(NamedTuple):
    plan_of: Any
    beta1: Any
    beta2: Any
    shampoo_beta: Any
    eps: Any
    frequency: Any
    bias_correction: bool
    compute_dtype: str | None
    orthonormalize: str
    precision: lax.Precision
    statistics_precision: lax.Precision
    stack: bool


def _moments(opts: _Options, g, m, v):
    """Adam's moments after ``g``: ``b1 m + (1 - b1) g`` and ``b2 v + (1 - b2) g^2``."""
    dt = m.dtype
    b1, b2 = jnp.asarray(opts.beta1, dt), jnp.asarray(opts.beta2, dt)
    return b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g


def _adam(opts: _Options, g, m, v, t):
    """Adam's moments after ``g`` and the direction ``m_hat / (sqrt(v_hat) + eps)``."""
    dt = m.dtype
    b1, b2 = jnp.asarray(opts.beta1, dt), jnp.asarray(opts.beta2, dt)
    m, v = _moments(opts, g, m, v)
    m_hat, v_hat = m, v
    if opts.bias_correction:
        tf = jnp.maximum(t, 1).astype(dt)  # t = 0 only on the initializing call (discarded)
        m_hat = m / (1 - b1**tf)
        v_hat = v / (1 - b2**tf)
    return m, v, m_hat / (jnp.sqrt(v_hat) + jnp.asarray(opts.eps, dt))


def _init_state(opts: _Options, params: Any) -> SOAPState:
    leaves, treedef = jax.tree_util.tree_flatten(params)
    leaves = [jnp.asarray(p) for p in leaves]
    factors = tuple(
        SOAPFactor(stat=stat, basis=eye, metrics=init_factor_metrics(k))
        for stat, eye, k in fresh_factors(opts.plan_of, leaves, opts.stack)
    )
    return SOAPState(
        count=jnp.zeros((), jnp.int32),
        skipped_steps=jnp.zeros((), jnp.int32),
        # Distinct buffers for the two moments, so that a step can donate the state.
        mu=treedef.unflatten([jnp.zeros(p.shape, stats_dtype(p.dtype)) for p in leaves]),
        nu=treedef.unflatten([jnp.zeros(p.shape, stats_dtype(p.dtype)) for p in leaves]),
        factors=factors,
    )


def _update(opts: _Options, updates, state: SOAPState, params=None, **extra):
    del params, extra
    leaves, treedef = jax.tree_util.tree_flatten(updates)
    mus = treedef.flatten_up_to(state.mu)
    nus = treedef.flatten_up_to(state.nu)
    plans = [opts.plan_of(tuple(jnp.shape(g))) for g in leaves]
    stacks = stacks_of(plans, [m.dtype for m in mus], opts.stack)
    check_factors(state.factors, stacks)
    count = state.count
    # With a basis to compute, the first call only initializes (it is Adam step 0).
    initializing = bool(stacks)
    t = count if initializing else count + 1
    is_init = (count == 0) if initializing else False
    grads = [jnp.asarray(g).astype(m.dtype) for g, m in zip(leaves, mus, strict=True)]
    g_st = to_stacks(stacks, plans, grads)
    grams = [tuple(gram(g, i, opts.statistics_precision) for i in st.dims)
             for st, g in zip(stacks, g_st, strict=True)]
    # Every entry's square is a term of the first statistic's diagonal, so a finite
    # diagonal means a finite gradient whose squares are finite (and no pass over it).
    finite_in = all_true(
        [squares_finite(g) for g, pl in zip(grads, plans, strict=True) if pl.graft_only]
        + [finite(diagonal(gs[0])) for gs in grams]
    )

    # The direction: Adam in the rotated coordinates of every stack, with the bases of
    # the last refresh; plain Adam for leaves without blocks.
    m_st = to_stacks(stacks, plans, mus)
    v_st = to_stacks(stacks, plans, nus)
    bases = per_stack([f.basis for f in state.factors], stacks)
    g_rot_st, d_st = [], []
    for st, g, m, v, qs in zip(stacks, g_st, m_st, v_st, bases, strict=True):
        g_rot = rotate(g, qs, st.dims, False, opts.precision)
        n_rot = _adam(opts, g_rot, m, v, t)[2]
        g_rot_st.append(g_rot)
        d_st.append(rotate(n_rot, qs, st.dims, True, opts.precision))
    plain = [_adam(opts, g, m, v, t) if pl.graft_only else (m, v, None)
             for g, m, v, pl in zip(grads, mus, nus, plans, strict=True)]
    dirs = from_stacks(stacks, plans, d_st, [p[2] for p in plain])
    # A step is applied whole or not at all; everything below keeps the old state where
    # ``ok`` (or, on the initializing call, ``keep``) says so, inside the passes that
    # compute the new one, so that a step adds no pass over the state to select it.
    ok = finite_in & all_true([finite(d) for d in dirs])
    keep = ok if is_init is False else ok & ~is_init
    sel = lambda new, old: jnp.where(ok, new, old)  # noqa: E731

    # Statistics after the step, then the bases (and the moments that follow them).
    old_stats = per_stack([f.stat for f in state.factors], stacks)
    b_s = opts.beta2 if opts.shampoo_beta is None else opts.shampoo_beta
    stats = [tuple(sel(ema(s, gg, b_s), s) for s, gg in zip(ss, gs, strict=True))
             for ss, gs in zip(old_stats, grams, strict=True)]
    metrics = per_stack([f.metrics for f in state.factors], stacks)
    # A skipped step refreshes nothing, so the bases, their metrics and the moments they
    # turn come out of the refresh (or of the branch that keeps them) as they are.
    due = (t % opts.frequency == 0) & ok
    flat = lambda per: [x for xs in per for x in xs]  # noqa: E731

    def moments(ops):
        # The new moments inside both branches, from the rotated gradients: the selection
        # then writes the conditional's result itself, and the direction's pass above
        # does not also store them.
        _, _, _, gs, ms, vs, keep = ops
        new = [_moments(opts, g, m, v) for g, m, v in zip(gs, ms, vs, strict=True)]
        return ([jnp.where(keep, m1, m) for (m1, _), m in zip(new, ms, strict=True)],
                [jnp.where(keep, v1, v) for (_, v1), v in zip(new, vs, strict=True)])

    def refresh(cold):
        def run(ops):
            stats, bases, metrics = ops[:3]
            ms, vs = moments(ops)
            found = eigenbases(flat(stats), flat(bases), cold=cold,
                               compute_dtype=opts.compute_dtype,
                               orthonormalize=opts.orthonormalize)
            found = per_stack(found, stacks)
            out = [
                refresh_bases(f, q, mt, m, v, st.dims, count, precision=opts.precision)
                for st, f, q, mt, m, v in zip(stacks, found, bases, metrics, ms, vs, strict=True)
            ]
            return tuple(tuple(o[k] for o in out) for k in range(4))

        return run

    unchanged = lambda ops: (tuple(ops[1]), tuple(ops[2]), *map(tuple, moments(ops)))  # noqa: E731
    ops = (stats, tuple(bases), tuple(metrics), tuple(g_rot_st), tuple(m_st), tuple(v_st), keep)
    if not stacks:
        new_bases, new_metrics, m_st, v_st = (), (), (), ()
    else:
        warm_or_cold = (
            refresh(False) if is_init is False
            else lambda o: when(is_init, refresh(True), refresh(False), o)
        )
        new_bases, new_metrics, m_st, v_st = when(due, warm_or_cold, unchanged, ops)

    plain = [(jnp.where(keep, m1, m), jnp.where(keep, v1, v)) if pl.graft_only else (None, None)
             for (m1, v1, _), m, v, pl in zip(plain, mus, nus, plans, strict=True)]
    mus_out = from_stacks(stacks, plans, m_st, [p[0] for p in plain])
    nus_out = from_stacks(stacks, plans, v_st, [p[1] for p in plain])
    factors = tuple(
        SOAPFactor(s, q, mt)
        for s, q, mt in zip(flat(stats), flat(new_bases), flat(new_metrics), strict=True)
    )
    new_updates = [jnp.where(keep, d, 0).astype(jnp.asarray(g).dtype)
                   for d, g in zip(dirs, leaves, strict=True)]
    new_state = SOAPState(
        count=count + ok.astype(jnp.int32),
        skipped_steps=state.skipped_steps + (~ok).astype(jnp.int32),
        mu=treedef.unflatten(mus_out),
        nu=treedef.unflatten(nus_out),
        factors=factors,
    )
    return treedef.unflatten(new_updates), new_state


def _checked_compute_dtype(compute_dtype: Any) -> str | None:
    """``compute_dtype`` as a name (None: the statistics' dtype)."""
    name = compute_dtype_name(compute_dtype)
    if name == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("compute_dtype='float64' needs jax_enable_x64")
    return name


@functools.partial(document, docs=_DOCS)
def scale_by_soap(
    *,
    beta1: float = 0.9,
    beta2: float = 0.95,
    shampoo_beta: float | None = None,
    eps: float = 1e-8,
    precondition_frequency: int = 10,
    bias_correction: bool = True,
    block_size: int | None = None,
    merge_small_dims: bool = False,
    skip_preconditioning_dim_size_gt: int | None = None,
    skip_preconditioning_rank_lt: int | None = None,
    preconditioner_type: str = "all",
    compute_dtype: Any = None,
    orthonormalize: str = "auto",
    precision: str | lax.Precision = "highest",
    statistics_precision: str | lax.Precision = "highest",
    stack_parameters: bool | None = None,
) -> optax.GradientTransformationExtraArgs:
    """SOAP's direction (Adam in Shampoo's eigenbasis), without the learning rate.

    The algorithm, its first call and how the moments follow a changing basis
    are described in docs/optimizer.md ("SOAP"); :func:`soap` adds the
    learning rate and decoupled weight decay. Every option is keyword-only.

    Parameters
    ----------
    {parameters}

    Returns
    -------
    optax.GradientTransformationExtraArgs
        ``init(params) -> SOAPState``; ``update(updates, state, params=None)``
        returns the direction (to be scaled by ``-lr``) in each gradient's dtype.

    References
    ----------
    N. Vyas, D. Morwani, R. Zhao, I. Shapira, D. Brandfonbrener, L. Janson,
    S. Kakade, "SOAP: Improving and Stabilizing Shampoo using Adam",
    arXiv:2409.11321, 2024.
    """
    plan_of = planner(
        DEFAULT_BLOCK_SIZE if block_size is None else block_size,
        merge_small_dims,
        DEFAULT_SKIP_GT if skip_preconditioning_dim_size_gt is None
        else skip_preconditioning_dim_size_gt,
        DEFAULT_SKIP_RANK_LT if skip_preconditioning_rank_lt is None
        else skip_preconditioning_rank_lt,
        preconditioner_type,
        None,
    )
    check_int("precondition_frequency", precondition_frequency, 1)
    check_real("beta1", beta1, 0.0, 1.0, high_open=True)
    check_real("beta2", beta2, 0.0, 1.0, high_open=True)
    if shampoo_beta is not None:
        check_real("shampoo_beta", shampoo_beta, 0.0, 1.0, high_open=True)
    check_real("eps", eps, 0.0, float("inf"))
    check_static("compute_dtype", compute_dtype)
    check_choice(check_static("orthonormalize", orthonormalize), "orthonormalize",
                 ORTHONORMALIZE_METHODS)
    opts = _Options(
        plan_of=plan_of,
        beta1=beta1,
        beta2=beta2,
        shampoo_beta=shampoo_beta,
        eps=eps,
        frequency=precondition_frequency,
        bias_correction=bool(bias_correction),
        compute_dtype=_checked_compute_dtype(compute_dtype),
        orthonormalize=orthonormalize,
        precision=as_precision("precision", precision),
        statistics_precision=as_precision("statistics_precision", statistics_precision),
        stack=resolve_stacking(stack_parameters),
    )
    return optax.GradientTransformationExtraArgs(
        functools.partial(_init_state, opts), functools.partial(_update, opts)
    )


@functools.partial(document, docs=_DOCS)
def soap(
    learning_rate: optax.ScalarOrSchedule = 3e-3,
    *,
    beta1: float = 0.9,
    beta2: float = 0.95,
    shampoo_beta: float | None = None,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    weight_decay_mask: Any = None,
    precondition_frequency: int = 10,
    bias_correction: bool = True,
    block_size: int | None = None,
    merge_small_dims: bool = False,
    skip_preconditioning_dim_size_gt: int | None = None,
    skip_preconditioning_rank_lt: int | None = None,
    preconditioner_type: str = "all",
    compute_dtype: Any = None,
    orthonormalize: str = "auto",
    precision: str | lax.Precision = "highest",
    statistics_precision: str | lax.Precision = "highest",
    stack_parameters: bool | None = None,
) -> optax.GradientTransformationExtraArgs:
    """SOAP (Vyas et al., arXiv:2409.11321): Adam in the eigenbasis of Shampoo's statistics.

    ``optax.chain(scale_by_soap(...), add_decayed_weights(weight_decay,
    weight_decay_mask), scale_by_learning_rate(learning_rate))``; the
    algorithm is described in docs/optimizer.md ("SOAP").

    Parameters
    ----------
    {parameters}

    Returns
    -------
    optax.GradientTransformationExtraArgs

    References
    ----------
    N. Vyas, D. Morwani, R. Zhao, I. Shapira, D. Brandfonbrener, L. Janson,
    S. Kakade, "SOAP: Improving and Stabilizing Shampoo using Adam",
    arXiv:2409.11321, 2024.

    Examples
    --------
    >>> import jax.numpy as jnp, rootsolve_optim
    >>> params = {"w": jnp.ones((4, 3))}
    >>> opt = rootsolve_optim.soap(3e-3, weight_decay=0.01)
    >>> state = opt.init(params)
    >>> updates, state = opt.update({"w": jnp.full((4, 3), 0.1)}, state, params)
    >>> float(updates["w"][0, 0])  # the first call computes the bases: weight decay only
    -3e-05

    Notes
    -----
    On the initializing call the direction is zero, so the update is the
    weight decay alone, ``-lr wd theta`` (the authors' code skips that step
    entirely, decay included).
    """
    check_real("weight_decay", weight_decay, 0.0, float("inf"))
    return optax.chain(
        scale_by_soap(
            beta1=beta1, beta2=beta2, shampoo_beta=shampoo_beta, eps=eps,
            precondition_frequency=precondition_frequency, bias_correction=bias_correction,
            block_size=block_size, merge_small_dims=merge_small_dims,
            skip_preconditioning_dim_size_gt=skip_preconditioning_dim_size_gt,
            skip_preconditioning_rank_lt=skip_preconditioning_rank_lt,
            preconditioner_type=preconditioner_type, compute_dtype=compute_dtype,
            orthonormalize=orthonormalize, precision=precision,
            statistics_precision=statistics_precision, stack_parameters=stack_parameters,
        ),
        optax.add_decayed_weights(weight_decay, weight_decay_mask),
        optax.scale_by_learning_rate(learning_rate),
    )
