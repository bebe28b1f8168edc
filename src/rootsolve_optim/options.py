"""The options of :func:`~rootsolve_optim.shampoo`: checks, defaults and reference text.

Options are checked once, when the optimizer is built, and every error names
the option and echoes its value. Numeric options may be traced arrays (with
``optax.inject_hyperparams``): those are checked where they were numbers and
passed through as they are. The options that shape the optimizer state must
be static, and say how to keep them so (``static_args``).

:data:`OPTION_DOCS` holds the reference text of every option, from which the
Parameters sections of :func:`~rootsolve_optim.scale_by_shampoo` and
:func:`~rootsolve_optim.shampoo` are written (:func:`document`), so that
``help()`` shows every option with its default in one place.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
from jax import lax

from rootsolve._validation import check_choice, check_int, check_real

from . import blocking
from .blocking import BlockPlan
from .grafting import GRAFT_TYPES, GraftHyperparams
from .host import host_root_fn
from .root_functions import compute_dtype_name, device_root_fn

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_SKIP_GT",
    "DEFAULT_SKIP_RANK_LT",
    "OPTION_DOCS",
    "WEIGHT_DECAY_MODES",
    "Options",
    "build_root_fn",
    "default_root_fn",
    "chain_options",
    "check_int",
    "check_real",
    "check_static",
    "document",
    "planner",
    "precision",
    "resolve_stacking",
    "shampoo_options",
    "structural",
]

#: How ``weight_decay`` enters the update (see its reference text in :data:`OPTION_DOCS`).
WEIGHT_DECAY_MODES = ("decoupled", "before_momentum")

#: Defaults of the structural options (their signature default is None, see ``static_args``).
DEFAULT_BLOCK_SIZE = 256
DEFAULT_SKIP_GT = 4096
DEFAULT_SKIP_RANK_LT = 2

_STATIC_MSG = (
    "{name} is fixed when the update is traced (it shapes the optimizer state or the root "
    "computation) and cannot be a traced value; with optax.inject_hyperparams list it in "
    "static_args=(..., '{name}')"
)


def check_static(name: str, value: Any) -> Any:
    """``value`` must not be traced: it shapes the state or is read at trace time.

    Returns ``value``, a concrete 0-d array (what ``optax.inject_hyperparams``
    passes to ``init``) as the Python number it holds.
    """
    if isinstance(value, jax.core.Tracer):
        raise TypeError(_STATIC_MSG.format(name=name))
    if isinstance(value, (jax.Array, np.ndarray)) and value.shape == ():
        return value.item()
    return value


def structural(name: str, value: Any, default: int | None, low: int) -> int:
    """A static int option ``>= low``; None gives ``default``."""
    if value is None:
        return default
    value = check_static(name, value)
    check_int(name, value, low)
    return int(value)


def precision(name: str, value: Any) -> lax.Precision:
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


def default_root_fn(root_method: str, rel_ridge: Any, compute_dtype: Any) -> Any:
    """The root function Shampoo builds when given none.

    Where :func:`~rootsolve_optim.root_functions.device_root_fn` would compute
    float64 roots on a single CPU device (``jax_enable_x64`` on, or
    ``compute_dtype="float64"``), the same roots are computed by numpy on the
    host in the step that asks for them (a synchronous
    :func:`~rootsolve_optim.host_root_fn`: same method, relative ridge,
    residual and acceptance, so the same training up to rounding): XLA then
    compiles one callback per root call instead of the eigendecomposition's
    scaling, powers and residual, which cut the demo CNN's step from 3.4 to
    2.8 times AdamW's code (docs/optimizer.md, "Compile time"). Elsewhere the
    device roots: on accelerators, for float32 roots, and with several CPU
    devices (``--xla_force_host_platform_device_count``), where a callback
    runs on one device while the others wait for it in a collective on XLA's
    few worker threads, which can deadlock. The backend, the device count and
    ``x64`` are read here, when the optimizer is built.
    """
    dtype = compute_dtype_name(compute_dtype)
    float64 = dtype == "float64" or (dtype is None and jax.config.jax_enable_x64)
    if jax.default_backend() == "cpu" and jax.device_count() == 1 and float64:
        return host_root_fn(method=root_method, rel_ridge=rel_ridge)
    return device_root_fn(method=root_method, rel_ridge=rel_ridge, compute_dtype=compute_dtype)


def build_root_fn(root_fn: Any, root_method: str, rel_ridge: Any, compute_dtype: Any) -> Any:
    """``root_fn``, or the default root function (:func:`default_root_fn`) built from the
    three options that are exclusive with it."""
    rel_ridge = check_static("rel_ridge", rel_ridge)
    compute_dtype = check_static("compute_dtype", compute_dtype)
    if root_fn is None:
        return default_root_fn(root_method, rel_ridge, compute_dtype)
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


def resolve_stacking(stack_parameters: Any) -> bool:
    """``stack_parameters`` as a bool; None: stack on accelerators, not on the CPU."""
    if stack_parameters is None:
        return jax.default_backend() != "cpu"
    stack_parameters = check_static("stack_parameters", stack_parameters)
    if not isinstance(stack_parameters, (bool, np.bool_)):
        raise TypeError(
            f"stack_parameters must be a bool or None, got stack_parameters={stack_parameters!r}"
        )
    return bool(stack_parameters)


def planner(
    block_size: Any,
    merge_dims: bool,
    skip_gt: Any,
    skip_lt: Any,
    kind: str,
    exponent_override: Any,
) -> Callable[[tuple[int, ...]], BlockPlan]:
    """Check the structural options (None: their defaults) and return the cached
    ``shape -> BlockPlan`` they define."""
    block_size = structural("block_size", block_size, DEFAULT_BLOCK_SIZE, 1)
    skip_gt = structural("skip_preconditioning_dim_size_gt", skip_gt, DEFAULT_SKIP_GT, 1)
    skip_lt = structural("skip_preconditioning_rank_lt", skip_lt, DEFAULT_SKIP_RANK_LT, 0)
    if exponent_override is not None:
        exponent_override = structural("exponent_override", exponent_override, None, 1)
    check_choice(value=kind, name="preconditioner_type", choices=blocking.PRECONDITIONER_TYPES)
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


class Options(NamedTuple):
    """The checked options of :func:`~rootsolve_optim.scale_by_shampoo`, as its update reads
    them."""

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
    weight_decay: Any = 0.0
    weight_decay_mask: Any = None
    weight_decay_mode: str = "decoupled"


def shampoo_options(args: dict[str, Any]) -> Options:
    """Check the arguments of :func:`~rootsolve_optim.scale_by_shampoo` (a dict of every
    option by name) and bundle them for its update."""
    a = args
    plan_of = planner(
        a["block_size"], a["merge_small_dims"], a["skip_preconditioning_dim_size_gt"],
        a["skip_preconditioning_rank_lt"], a["preconditioner_type"], a["exponent_override"],
    )
    check_int("start_preconditioning_step", a["start_preconditioning_step"], 0)
    check_int("preconditioning_compute_steps", a["preconditioning_compute_steps"], 1)
    check_int("statistics_compute_steps", a["statistics_compute_steps"], 1)
    check_real("beta1", a["beta1"], 0.0, 1.0, high_open=True)
    check_real("beta2", a["beta2"], 0.0, 1.0, low_open=True)
    check_real("graft_beta1", a["graft_beta1"], 0.0, 1.0, high_open=True)
    graft_beta2 = a["beta2"] if a["graft_beta2"] is None else a["graft_beta2"]
    if a["graft_beta2"] is not None:
        check_real("graft_beta2", graft_beta2, 0.0, 1.0, low_open=True)
    check_real("graft_eps", a["graft_eps"], 0.0, math.inf)
    check_real("max_residual", a["max_residual"], 0.0, math.inf, low_open=True)
    check_choice(value=a["graft_type"], name="graft_type", choices=GRAFT_TYPES)
    check_choice(value=a["graft_norm"], name="graft_norm", choices=("block", "tensor"))
    weight_decay = a.get("weight_decay", 0.0)
    check_real("weight_decay", weight_decay, 0.0, math.inf)
    mode = a.get("weight_decay_mode", "decoupled")
    check_choice(value=mode, name="weight_decay_mode", choices=WEIGHT_DECAY_MODES)
    return Options(
        plan_of=plan_of,
        beta1=a["beta1"],
        beta2=a["beta2"],
        nesterov=bool(a["nesterov"]),
        moving_average=bool(a["moving_average_for_momentum"]),
        graft_type=a["graft_type"],
        graft_hp=GraftHyperparams(a["graft_beta1"], graft_beta2, a["graft_eps"]),
        graft_norm=a["graft_norm"],
        start=a["start_preconditioning_step"],
        refresh_every=a["preconditioning_compute_steps"],
        stats_every=a["statistics_compute_steps"],
        root_fn=build_root_fn(a["root_fn"], a["root_method"], a["rel_ridge"], a["compute_dtype"]),
        max_residual=a["max_residual"],
        precision=precision("precision", a["precision"]),
        statistics_precision=precision("statistics_precision", a["statistics_precision"]),
        stack=resolve_stacking(a["stack_parameters"]),
        weight_decay=weight_decay,
        weight_decay_mask=a.get("weight_decay_mask"),
        weight_decay_mode=mode,
    )


def chain_options(args: dict[str, Any]) -> None:
    """Check the options :func:`~rootsolve_optim.shampoo` adds around the direction."""
    check_real("weight_decay", args["weight_decay"], 0.0, math.inf)
    check_real("l2_regularization", args["l2_regularization"], 0.0, math.inf)
    if args["gradient_clip_norm"] is not None:
        check_real(
            "gradient_clip_norm", args["gradient_clip_norm"], 0.0, math.inf, low_open=True
        )


#: Reference text of every option, in numpydoc form (name, type and default, then meaning).
OPTION_DOCS: dict[str, str] = {
    "learning_rate": """learning_rate : float or optax schedule
    The step size; the update is ``-learning_rate`` times the direction of
    :func:`scale_by_shampoo`, weight decay included.""",
    "block_size": """block_size : int or None, default None (256)
    Largest extent of a block along a preconditioned dimension; also the
    threshold under which consecutive dimensions are merged.""",
    "beta1": """beta1 : float, default 0.9
    Momentum of the final update, in [0, 1); 0 disables momentum.""",
    "beta2": """beta2 : float, default 0.95
    Decay of the statistics, in (0, 1]; 1 accumulates plain sums (the
    original Shampoo). Also the grafting method's second-moment decay unless
    ``graft_beta2`` is given. The default, a memory of about 20 steps, won the
    ablations of the optimizer guide on two transformer tasks.""",
    "nesterov": """nesterov : bool, default True
    Nesterov momentum: the update is ``beta1 m_t + w D_t`` instead of ``m_t``.""",
    "moving_average_for_momentum": """moving_average_for_momentum : bool, default True
    ``m <- beta1 m + (1 - beta1) D`` (so Adam learning rates carry over)
    instead of ``m <- beta1 m + D``.""",
    "weight_decay": """weight_decay : float, default 0.0
    Weight decay ``lambda``, entering as ``weight_decay_mode`` says.""",
    "weight_decay_mask": """weight_decay_mask : pytree or callable, optional
    Which parameters decay (as in ``optax.add_decayed_weights``); None: all.""",
    "weight_decay_mode": """weight_decay_mode : {"decoupled", "before_momentum"},\
 default "decoupled"
    ``"decoupled"`` (Loshchilov & Hutter): ``lambda theta`` is added to the
    update after momentum and multiplied by the learning rate once,
    ``theta <- theta - lr (M + lambda theta)``; it also applies on skipped
    steps. ``"before_momentum"`` (the 2022 reference implementation's
    default): ``lambda theta`` is added to the grafted direction, ``D <- D +
    lambda theta``, before the momentum and Nesterov steps, and not to the
    statistics or the grafting method (unlike ``l2_regularization``).""",
    "l2_regularization": """l2_regularization : float, default 0.0
    Coupled L2: ``l2_regularization theta`` is added to the gradient before
    everything else.""",
    "gradient_clip_norm": """gradient_clip_norm : float, optional
    Clip the raw gradients to this global norm before the statistics; None:
    no clipping.""",
    "graft_type": """graft_type : str, default "rmsprop_normalized"
    The first-order method whose norm Shampoo's direction takes (per block or
    tensor, see ``graft_norm``), and the whole update of parameters without
    statistics and of the steps before ``start_preconditioning_step``: one
    of ``"none", "sgd", "adagrad", "rmsprop", "rmsprop_normalized",
    "adagrad_normalized", "adam", "sign"`` (see :mod:`rootsolve_optim.grafting`).
    ``"none"`` leaves Shampoo's direction unscaled.""",
    "graft_beta1": """graft_beta1 : float, default 0.9
    First-moment decay of the grafting method (``"adam"``), in [0, 1).""",
    "graft_beta2": """graft_beta2 : float, optional
    Second-moment decay of the grafting method, in (0, 1]; None: ``beta2``.""",
    "graft_eps": """graft_eps : float, default 1e-10
    Epsilon added to the grafting method's denominator.""",
    "graft_norm": """graft_norm : {"block", "tensor"}, default "block"
    Match the grafting method's norm per block, or per tensor.""",
    "start_preconditioning_step": """start_preconditioning_step : int, default 1
    Steps ``t < start_preconditioning_step`` (0-based) use the grafting
    direction alone; the statistics are collected from the first step. The
    default preconditions from the second step on. With
    ``graft_type="none"`` those steps are plain SGD steps.""",
    "preconditioning_compute_steps": """preconditioning_compute_steps : int, default 10
    Roots are refreshed at steps ``t >= start`` with ``(t - start) %
    preconditioning_compute_steps == 0`` (always at ``t = start``).""",
    "statistics_compute_steps": """statistics_compute_steps : int, default 1
    Statistics are updated at steps with ``t % statistics_compute_steps == 0``.""",
    "preconditioner_type": """preconditioner_type : {"all", "input", "output"}, default "all"
    Precondition every dimension, or one side only: ``"input"`` (every
    dimension but the last) or ``"output"`` (the last), for ``(in, out)``
    kernels.""",
    "merge_small_dims": """merge_small_dims : bool, default True
    Merge consecutive dimensions while their product stays <= ``block_size``
    (a 16 x 16 matrix becomes one 256-vector with one full statistic).""",
    "skip_preconditioning_dim_size_gt": """skip_preconditioning_dim_size_gt : int or None,\
 default None (4096)
    Dimensions larger than this get no statistic.""",
    "skip_preconditioning_rank_lt": """skip_preconditioning_rank_lt : int or None, default None (2)
    Tensors with fewer dimensions of size > 1 get grafting only (scalars,
    biases, vectors).""",
    "exponent_override": """exponent_override : int, optional
    Use ``S^(-1/exponent_override)`` for every statistic instead of
    ``S^(-1/(2k))`` for a block with ``k`` preconditioned dimensions.""",
    "root_fn": """root_fn : RootFn, optional
    The batched inverse-root computation (a
    :class:`~rootsolve_optim.root_functions.RootFn`). None builds
    ``device_root_fn(method=root_method, rel_ridge=rel_ridge,
    compute_dtype=compute_dtype)``, except where its roots would be float64
    on a single CPU device: there the synchronous
    ``host_root_fn(method=root_method, rel_ridge=rel_ridge)``, the same roots
    computed by numpy for less compiled code
    (``rootsolve_optim.options.default_root_fn``).
    Host (float64, asynchronous, :func:`~rootsolve_optim.host_root_fn`) and
    sharded (:func:`~rootsolve_optim.sharded_root_fn`) root functions plug in
    here. Exclusive with the three options that follow.""",
    "root_method": """root_method : {"auto", "eigh", "newton"}, default "auto"
    rootsolve's method in the default root function ("auto": eigh on the
    CPU, coupled Newton on GPUs for n >= 64).""",
    "rel_ridge": """rel_ridge : float, optional
    Relative ridge of the default root function: the root of
    ``S + rel_ridge lambda_max(S) I``. None: 1e-6 when statistics and roots
    are float64, ``max(1e-6, 4 n eps_32)`` when either is float32 (see
    :func:`~rootsolve_optim.root_functions.default_rel_ridge`).""",
    "compute_dtype": """compute_dtype : {"float32", "float64"}, optional
    Precision of the default root function's roots. None: float64 when
    ``jax_enable_x64`` is on and the backend is the CPU (or the statistics
    are float64), else float32.""",
    "max_residual": """max_residual : float, default 0.1
    Reject a root whose residual ``||X^p S - I||_F / sqrt(n)`` exceeds this:
    the previous preconditioner is kept and the failure counted in the
    state's metrics. The default root function estimates the residual from
    8 random probe vectors (``device_root_fn(residual="probe")``).""",
    "precision": """precision : str or jax.lax.Precision, default "highest"
    Precision of the products with the roots (``jax.lax.Precision`` or a
    name it accepts: ``"default"``, ``"tensorfloat32"``, ``"bfloat16"``,
    ...). Lower levels let accelerators trade accuracy for speed
    (TensorFloat-32 on recent NVIDIA GPUs, one or three bfloat16 passes on
    TPUs: relative errors of about 1e-3 per product, against 1e-7 in
    float32); the CPU computes float32 products in full whatever is asked.
    Roots are always computed at full precision (the reference
    implementation's ``precision`` also lowers them).""",
    "statistics_precision": """statistics_precision : str or jax.lax.Precision, default "highest"
    Precision of the statistics' products ``G G^T`` (as ``precision``).""",
    "stack_parameters": """stack_parameters : bool, optional
    Keep the statistics and roots of equally shaped blocks of *all*
    parameters in one array each (a :class:`~rootsolve_optim.BlockStack`),
    so that every per-step product (``G G^T``, ``G^T G``, ``P_L G P_R``) and
    every pass over the statistics runs once per block shape instead of once
    per parameter. None: True on GPUs and TPUs, where a step of many small
    kernels is bound by their number, False on the CPU, where per-parameter
    batches run faster. It changes the layout of ``ShampooState.factors``
    (see :func:`~rootsolve_optim.block_stacks`), not the arithmetic: both
    layouts give the same updates.""",
}


def document(fn: Callable, docs: dict[str, str] | None = None) -> Callable:
    """Write the Parameters section of ``fn``'s docstring from ``docs``.

    ``docs`` maps option names to their numpydoc entries (default
    :data:`OPTION_DOCS`, Shampoo's). The docstring's line ``{parameters}`` is
    replaced by the entries of every parameter of ``fn``'s signature, in its
    order, indented like that line (so a new option without reference text
    fails at import).
    """
    docs = OPTION_DOCS if docs is None else docs
    doc = fn.__doc__
    line = next(ln for ln in doc.splitlines() if ln.strip() == "{parameters}")
    indent = line[: len(line) - len(line.lstrip())]
    text = "\n".join(docs[n] for n in inspect.signature(fn).parameters)
    lines = (indent + ln if ln else ln for ln in text.splitlines())
    fn.__doc__ = doc.replace(line, "\n".join(lines))
    return fn
