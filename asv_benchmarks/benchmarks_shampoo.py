"""Blocked Shampoo (``rootsolve_optim``) against AdamW and against its own GEMM floor.

The workload is a stack of ``LAYERS`` square float32 weight matrices of size
n x n (n = 256 for a quick look, n = 1024 for the goals), cut into blocks of
``BLOCK`` = 256, with roots in float64 on the CPU (``jax_enable_x64`` is on;
parameters stay float32), as Anil et al. (arXiv 2002.09018, sec. 5) compute
them.

* ``ShampooUpdate``: one jitted optimizer update. ``adamw``; Shampoo on a step
  whose roots are not due (``shampoo``) and on one that refreshes every root
  (``shampoo, refresh``); and the *GEMM floor*: the four products every 2-D
  block needs each step, ``G G^T``, ``G^T G`` (the statistics) and ``P_L G
  P_R`` (the preconditioned direction), on gradients already cut into
  blocks, nothing else: one batched product per layer (``gemm floor``), or one
  for the blocks of all layers together (``gemm floor, stacked``, what
  Shampoo's ``stack_parameters`` does; faster on GPUs, slower on the CPU).
* ``ShampooUpdate100``: 100 updates in one jitted ``lax.scan``; Shampoo
  refreshes its roots once (every 100 steps), so the time is the amortized
  cost the goal compares with 100 times the GEMM floor. ``shampoo, stacked``
  and ``shampoo, per parameter`` force either layout of the statistics
  (``stack_parameters``; ``shampoo`` takes the backend's default).
  ``bare shampoo`` is the same 100 steps of the Shampoo formulas alone
  (statistics, products with fixed roots, per-block RMSProp graft, momentum,
  weight decay; no refresh, checks or metrics), per layer or on one stack
  (``bare shampoo, stacked``): with ``RootsEigh``, the bare ``eigh`` of every
  statistic, the faster of the two bounds what any implementation can reach
  on the machine.
* ``ShampooTrainStep``: one full training step (forward, backward, update) of
  the MLP made of the same layers (ReLU between them, squared error) on a
  batch of ``BATCH`` = 4096, Shampoo (roots not due) against AdamW, and the
  same step with the bare formulas (``bare shampoo``, per layer or stacked).
* ``ShampooStateMemory``: bytes of the optimizer state against Adam's and
  against the analytic size: per block 2 statistics and 2 roots of b x b,
  plus one parameter-sized grafting accumulator (RMSProp) and one momentum.

Inside the scans the gradients alternate between two fixed arrays, so that XLA
cannot hoist ``G G^T`` out of the loop as loop-invariant. Compilation happens
in ``setup`` (cached per process), never in the timed call.

OpenBLAS (the LAPACK behind jax's CPU ``eigh``) is limited to one thread on
import (:func:`set_blas_threads`): inside a jitted step its threads compete
with XLA's worker threads, and on a 2-core machine a refresh of 8 roots of
256 x 256 was measured at 6.5 s instead of 0.12 s.

``python -m asv_benchmarks.shampoo_goals`` measures the goal ratios in one run.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rootsolve_optim

from .smoke import sized

jax.config.update("jax_enable_x64", True)  # float64 roots; every array below is float32

LAYERS = 4
BLOCK = 256
BATCH = sized(full=4096, smoke=512)
REFRESH_EVERY = 100
SIZES = sized(full=(256, 1024), smoke=(256,))
LR = 1e-3
WEIGHT_DECAY = 1e-4

Params = dict[str, jax.Array]
_BLAS_LIMIT: Any = None


def set_blas_threads(threads: int | None) -> None:
    """Limit the BLAS/LAPACK thread pools to ``threads`` (None: restore the defaults)."""
    global _BLAS_LIMIT
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the limit is an optimization only
        return
    if _BLAS_LIMIT is not None:
        _BLAS_LIMIT.restore_original_limits()
        _BLAS_LIMIT = None
    if threads is not None:
        _BLAS_LIMIT = threadpool_limits(limits=threads, user_api="blas")


set_blas_threads(1)


# -- workload -----------------------------------------------------------------------------


def layer_params(n: int, seed: int = 0) -> Params:
    """``LAYERS`` float32 n x n weights, scaled like a He initialization."""
    keys = jax.random.split(jax.random.PRNGKey(seed), LAYERS)
    return {
        f"w{i}": jax.random.normal(k, (n, n), jnp.float32) * np.float32(math.sqrt(2.0 / n))
        for i, k in enumerate(keys)
    }


def gradient_pair(n: int) -> Params:
    """Two gradient-like pytrees stacked on a leading axis of 2 (see the module docs)."""
    a, b = layer_params(n, seed=1), layer_params(n, seed=2)
    return jax.tree_util.tree_map(lambda x, y: jnp.stack([x, y]), a, b)


def make_optimizer(kind: str) -> optax.GradientTransformation:
    """``adamw`` or Shampoo (``shampoo``: roots every 100 steps; ``shampoo, refresh``: every step;
    ``shampoo, stacked`` / ``shampoo, per parameter``: every 100 steps with that layout of
    the statistics, see ``stack_parameters``; the others take the default layout).

    Both with the same learning rate and decoupled weight decay; Shampoo
    preconditions from the first step so that every timed step is a
    preconditioned one.
    """
    if kind == "adamw":
        return optax.adamw(LR, weight_decay=WEIGHT_DECAY)
    every = {"shampoo, refresh": 1}.get(kind, REFRESH_EVERY)
    stack = {"shampoo, stacked": True, "shampoo, per parameter": False}.get(kind)
    if kind not in ("shampoo", "shampoo, refresh") and stack is None:
        raise ValueError(f"unknown optimizer kind {kind!r}")
    return rootsolve_optim.shampoo(
        LR,
        block_size=BLOCK,
        weight_decay=WEIGHT_DECAY,
        start_preconditioning_step=0,
        preconditioning_compute_steps=every,
        stack_parameters=stack,
    )


def to_blocks(g: jax.Array, b: int = BLOCK) -> jax.Array:
    """(n, n) -> (n/b * n/b, b, b): the block layout Shampoo's statistics live in."""
    n = g.shape[0]
    k = n // b
    return g.reshape(k, b, k, b).transpose(0, 2, 1, 3).reshape(k * k, b, b)


def from_blocks(d: jax.Array, n: int, b: int = BLOCK) -> jax.Array:
    """The inverse of :func:`to_blocks`: (n/b * n/b, b, b) -> (n, n)."""
    k = n // b
    return d.reshape(k, k, b, b).transpose(0, 2, 1, 3).reshape(n, n)


def gemm_floor_step(blocks: tuple[jax.Array, ...], roots: tuple[jax.Array, ...]):
    """The 4 GEMMs per block and step: ``G G^T``, ``G^T G`` and ``P_L G P_R``."""
    hi = jax.lax.Precision.HIGHEST
    out = []
    for g, p in zip(blocks, roots, strict=True):
        left = jnp.matmul(g, jnp.swapaxes(g, -1, -2), precision=hi)
        right = jnp.matmul(jnp.swapaxes(g, -1, -2), g, precision=hi)
        direction = jnp.matmul(jnp.matmul(p, g, precision=hi), p, precision=hi)
        out.append((left, right, direction))
    return tuple(out)


def _bare_groups(params: Params, stacked: bool) -> list[list[str]]:
    """The layers whose blocks share one array: each alone, or (``stacked``) all together."""
    names = sorted(params)
    return [names] if stacked else [[k] for k in names]


def bare_shampoo_step(
    params: Params, state: tuple, grads: Params, b: int = BLOCK, stacked: bool = False
):
    """The Shampoo formulas with nothing around them: a bound, not an optimizer.

    Per layer (or, ``stacked``, once for the blocks of every layer in one array):
    the block statistics' moving averages, ``P_L G P_R`` with fixed roots, an
    RMSProp graft per block, momentum and decoupled weight decay; no root
    refresh, no checks, no metrics, no options. What every implementation of the
    same update pays besides the GEMM floor (the blocking transposes and the
    elementwise passes over the state).
    """
    hi = jax.lax.Precision.HIGHEST
    new_p, new_s = {}, []
    for names, (left, right, p_left, p_right, nus, moms) in zip(
        _bare_groups(params, stacked), state, strict=True
    ):
        blocks = jnp.concatenate([to_blocks(grads[k], b) for k in names])
        left = 0.999 * left + 0.001 * jnp.matmul(blocks, jnp.swapaxes(blocks, 1, 2), precision=hi)
        right = 0.999 * right + 0.001 * jnp.matmul(jnp.swapaxes(blocks, 1, 2), blocks, precision=hi)
        nus = {k: 0.999 * nus[k] + 0.001 * grads[k] * grads[k] for k in names}
        graft = jnp.concatenate(
            [to_blocks(grads[k] / (jnp.sqrt(nus[k]) + 1e-8), b) for k in names]
        )
        d = jnp.matmul(jnp.matmul(p_left, blocks, precision=hi), p_right, precision=hi)
        dn = jnp.linalg.norm(d.reshape(d.shape[0], -1), axis=1)
        gn = jnp.linalg.norm(graft.reshape(d.shape[0], -1), axis=1)
        d = d * (gn / jnp.where(dn > 0, dn, 1.0))[:, None, None]
        moms, start = dict(moms), 0
        for k in names:
            n = grads[k].shape[0]
            stop = start + (n // b) ** 2
            moms[k] = 0.9 * moms[k] + from_blocks(d[start:stop], n, b)
            new_p[k] = params[k] - LR * (moms[k] + WEIGHT_DECAY * params[k])
            start = stop
        new_s.append((left, right, p_left, p_right, nus, moms))
    return new_p, tuple(new_s)


def bare_state(params: Params, b: int = BLOCK, stacked: bool = False) -> tuple:
    """State of :func:`bare_shampoo_step`: zero statistics, scaled identities as roots."""
    out = []
    for names in _bare_groups(params, stacked):
        nb = sum((params[k].shape[0] // b) ** 2 for k in names)
        # Four separate arrays (not one twice): a training step donates its state.
        zeros = [jnp.zeros((nb, b, b), jnp.float32) for _ in range(2)]
        roots = [jnp.tile(jnp.eye(b, dtype=jnp.float32) * 0.5, (nb, 1, 1)) for _ in range(2)]
        nus = {k: jnp.zeros_like(params[k]) for k in names}
        moms = {k: jnp.zeros_like(params[k]) for k in names}
        out.append((*zeros, *roots, nus, moms))
    return tuple(out)


@functools.cache
def all_roots_eigh(n: int, impl: str = "jax") -> Callable[[], Any]:
    """One batched float64 ``eigh`` of every statistic of the workload (2 per block), compiled.

    The part of a root refresh no implementation on jax's CPU backend avoids.
    ``impl``: ``"jax"`` (``jax.numpy.linalg.eigh``) or ``"split"`` (rootsolve's
    :func:`rootsolve.batched_eigh.eigh_jax`, which Shampoo's refresh uses on the
    CPU); ``"root fn"`` is instead the whole refresh of Shampoo's default root
    function on the float32 statistics (float64 ``eigh`` and rebuild on the CPU,
    float32 coupled Newton on GPUs, probe residuals included).
    """
    from rootsolve.batched_eigh import eigh_jax

    k = (n // BLOCK) ** 2 * 2 * LAYERS
    g = jax.random.normal(jax.random.PRNGKey(4), (k, BLOCK, BLOCK), jnp.float64)
    stats = jnp.matmul(g, jnp.swapaxes(g, 1, 2)) / BLOCK
    if impl == "root fn":
        stats = (stats + 1e-3 * jnp.eye(BLOCK)).astype(jnp.float32)
    root_fn = rootsolve_optim.device_root_fn()
    fn = {
        "jax": lambda s: jnp.linalg.eigh(s, symmetrize_input=False),
        "split": lambda s: eigh_jax(s),
        "root fn": lambda s: root_fn.with_info(s, 4, jnp.int32(1)),
    }[impl]
    f = jax.jit(fn).lower(stats).compile()
    run = _ready(f, stats)
    run()
    return run


def floor_inputs(
    n: int, stacked: bool = False
) -> tuple[tuple[jax.Array, ...], tuple[jax.Array, ...]]:
    """Blocked gradients (pair-stacked) and SPD stand-ins for the roots: one batch per
    layer, or (``stacked``) the blocks of every layer in one batch."""
    pair = gradient_pair(n)
    blocks = tuple(jax.vmap(to_blocks)(pair[f"w{i}"]) for i in range(LAYERS))
    if stacked:
        blocks = (jnp.concatenate(blocks, axis=1),)
    eye = jnp.eye(BLOCK, dtype=jnp.float32)
    roots = tuple(jnp.broadcast_to(eye, b.shape[1:]) * 0.5 for b in blocks)
    return blocks, roots


def state_bytes(state: Any) -> int:
    """Bytes of every array in a pytree."""
    return int(sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(state)))


def analytic_state_bytes(n: int, b: int = BLOCK, itemsize: int = 4) -> int:
    """Shampoo's state for ``LAYERS`` n x n layers: (2 statistics + 2 roots) per b x b block,
    plus a parameter-sized grafting accumulator and a parameter-sized momentum."""
    blocks = math.ceil(n / b) ** 2
    per_layer = blocks * 4 * b * b + 2 * n * n
    return LAYERS * per_layer * itemsize


def mlp_loss(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Squared error of the ReLU MLP made of the layers."""
    for i in range(LAYERS):
        x = x @ params[f"w{i}"]
        if i < LAYERS - 1:
            x = jax.nn.relu(x)
    return 0.5 * jnp.mean(jnp.sum((x - y) ** 2, axis=-1))


# -- compiled callables (one compilation per process and configuration) --------------------


def steps_per_call() -> int:
    """Training steps the goals time per call of :func:`train_step`.

    One on the CPU, where a step takes hundreds of milliseconds. ``REFRESH_EVERY``
    elsewhere: a GPU step takes about a millisecond, and waiting for each one
    separately would add the host's round trip to every step, which a training
    loop (it dispatches the next step before the last one is done) does not pay;
    and ``REFRESH_EVERY`` consecutive steps hold exactly one root refresh, so the
    time is Shampoo's amortized one.
    """
    return 1 if jax.default_backend() == "cpu" else REFRESH_EVERY


def scanned_updates(opt: Any, pair: Any, steps: int) -> Callable[[Any, Any], Any]:
    """``(params, state) -> (params, state)`` after ``steps`` updates of ``opt`` in one
    ``lax.scan``, the gradients alternating between the two of ``pair``."""

    def body(carry, i):
        p, s = carry
        g = jax.tree_util.tree_map(lambda x: x[i % 2], pair)
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    return lambda p, s: jax.lax.scan(body, (p, s), jnp.arange(steps))[0]


def _ready(f: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """A no-argument callable that runs ``f(*args)`` to completion."""
    return lambda: jax.block_until_ready(f(*args))


def _carried(
    f: Callable[..., Any], args: list[Any], carry: dict[int, int], steps: int = 1
) -> Callable[[], Any]:
    """Like :func:`_ready` for an ``f`` that donates some arguments: each call passes the
    outputs ``carry[i]`` of the previous one as argument ``i`` (state in, state out), the
    way a training loop calls a donated step; only the last of the ``steps`` calls is
    waited for."""

    def run():
        for _ in range(steps):
            out = f(*args)
            for i, j in carry.items():
                args[i] = out[j]
        return jax.block_until_ready(out)

    return run


@functools.cache
def update_step(kind: str, n: int) -> Callable[[], Any]:
    """One update (or one GEMM floor step) at n, compiled and warmed up.

    Shampoo is timed from the state after one step: with roots every 100
    steps the timed steps (counts 1 to 99) compute none, with roots every step
    they compute all of them. Optimizer states are donated and carried from
    call to call, as the docs recommend (see :func:`_carried`).
    """
    if kind.startswith("gemm floor"):
        blocks, roots = floor_inputs(n, stacked=kind == "gemm floor, stacked")
        g0 = tuple(b[0] for b in blocks)
        f = jax.jit(gemm_floor_step).lower(g0, roots).compile()
        run = _ready(f, g0, roots)
    else:
        opt = make_optimizer(kind)
        params = layer_params(n)
        grads = jax.tree_util.tree_map(lambda x: x[0], gradient_pair(n))
        upd = jax.jit(opt.update, donate_argnums=(1,))
        _, state = upd(grads, opt.init(params), params)
        f = upd.lower(grads, state, params).compile()
        run = _carried(f, [grads, state, params], {1: 1})
    run()
    return run


@functools.cache
def update_100(kind: str, n: int) -> Callable[[], Any]:
    """``REFRESH_EVERY`` updates in one scan, compiled and warmed up.

    Shampoo (``shampoo``) starts at count 0, refreshes its roots at the first
    step and at no other: one refresh per 100 steps, every call. ``bare
    shampoo`` is :func:`bare_shampoo_step` (no refresh at all), per layer or
    (``bare shampoo, stacked``) on one stack; ``gemm floor, stacked`` runs the floor's
    products on one stack of every layer's blocks.
    """
    pair = gradient_pair(n)
    if kind.startswith("bare shampoo"):
        params = layer_params(n)
        stacked = kind == "bare shampoo, stacked"
        step = functools.partial(bare_shampoo_step, stacked=stacked)

        def bare_body(carry, i):
            p, s = carry
            return step(p, s, jax.tree_util.tree_map(lambda x: x[i % 2], pair)), None

        f = jax.jit(lambda p, s: jax.lax.scan(bare_body, (p, s), jnp.arange(REFRESH_EVERY))[0])
        state = bare_state(params, stacked=stacked)
        run = _ready(f.lower(params, state).compile(), params, state)
    elif kind.startswith("gemm floor"):
        blocks, roots = floor_inputs(n, stacked=kind == "gemm floor, stacked")

        def floor_body(carry, i):
            g = tuple(b[i % 2] for b in blocks)
            return gemm_floor_step(g, roots), None

        init = gemm_floor_step(tuple(b[0] for b in blocks), roots)
        f = jax.jit(lambda c: jax.lax.scan(floor_body, c, jnp.arange(REFRESH_EVERY))[0])
        run = _ready(f.lower(init).compile(), init)
    else:
        opt = make_optimizer(kind)
        params = layer_params(n)

        steps = scanned_updates(opt, pair, REFRESH_EVERY)
        state = opt.init(params)
        run = _ready(jax.jit(steps).lower(params, state).compile(), params, state)
    run()
    return run


@functools.cache
def train_step(kind: str, n: int, batch: int = BATCH, steps: int = 1) -> Callable[[], Any]:
    """One forward/backward/update step of the MLP, compiled and warmed up; parameters and
    optimizer state donated and carried from call to call (:func:`_carried`); ``steps``
    of them per call (see :func:`steps_per_call`).

    ``bare shampoo`` and ``bare shampoo, stacked`` update with
    :func:`bare_shampoo_step` instead of an optimizer: with the roots' cost, what
    bounds Shampoo's training step on the machine at hand.
    """
    params = layer_params(n)
    kx, ky = jax.random.split(jax.random.PRNGKey(3))
    x = jax.random.normal(kx, (batch, n), jnp.float32)
    y = jax.random.normal(ky, (batch, n), jnp.float32)
    if kind.startswith("bare shampoo"):
        stacked = kind == "bare shampoo, stacked"
        state0 = bare_state(params, stacked=stacked)

        def step(p, s):
            grads = jax.grad(mlp_loss)(p, x, y)
            return bare_shampoo_step(p, s, grads, stacked=stacked)
    else:
        opt = make_optimizer(kind)
        state0 = opt.init(params)

        def step(p, s):
            grads = jax.grad(mlp_loss)(p, x, y)
            u, s = opt.update(grads, s, p)
            return optax.apply_updates(p, u), s

    jstep = jax.jit(step, donate_argnums=(0, 1))
    params1, state1 = jstep(params, state0)  # counts 1 to 99: roots not due
    run = _carried(jstep.lower(params1, state1).compile(), [params1, state1], {0: 0, 1: 1}, steps)
    run()
    return run


@functools.cache
def training_run(kind: str, n: int, steps: int = 50, batch: int = 512) -> tuple[float, Any]:
    """Train the MLP for ``steps`` steps on one fixed regression batch from the same start.

    Returns the final loss over the initial one, and the final optimizer state
    (Shampoo's holds the metrics of its latest roots). Roots refresh every 10 steps.
    """
    params = layer_params(n)
    kx, ky = jax.random.split(jax.random.PRNGKey(5))
    x = jax.random.normal(kx, (batch, n), jnp.float32)
    y = jax.random.normal(ky, (batch, n), jnp.float32)
    if kind == "adamw":
        opt = optax.adamw(LR, weight_decay=WEIGHT_DECAY)
    else:
        opt = rootsolve_optim.shampoo(
            LR, block_size=BLOCK, weight_decay=WEIGHT_DECAY, preconditioning_compute_steps=10
        )

    def body(carry, _):
        p, s = carry
        loss, grads = jax.value_and_grad(mlp_loss)(p, x, y)
        u, s = opt.update(grads, s, p)
        return (optax.apply_updates(p, u), s), loss

    (p, state), _ = jax.jit(lambda p, s: jax.lax.scan(body, (p, s), None, length=steps))(
        params, opt.init(params)
    )
    ratio = float(mlp_loss(p, x, y) / mlp_loss(params, x, y))
    return ratio, state


def many_params(count: int) -> Params:
    """``count`` 256 x 256 weights and ``count`` 256-vectors: a model of many small tensors."""
    out = {f"w{i}": jnp.full((BLOCK, BLOCK), 0.01, jnp.float32) for i in range(count)}
    out.update({f"b{i}": jnp.full((BLOCK,), 0.01, jnp.float32) for i in range(count)})
    return out


def compile_update(kind: str, count: int) -> float:
    """Seconds to compile one update (``adamw`` or ``shampoo``) for :func:`many_params`.

    A new optimizer each call, so that no cached executable is reused.
    """
    params = many_params(count)
    opt = make_optimizer(kind)
    lowered = jax.jit(opt.update).lower(params, opt.init(params), params)
    start = time.perf_counter()
    lowered.compile()
    return time.perf_counter() - start


# -- asv classes ----------------------------------------------------------------------------


class ShampooUpdate:
    """One optimizer update of ``LAYERS`` n x n float32 layers."""

    params = (
        sized(
            full=["adamw", "shampoo", "shampoo, refresh", "gemm floor"],
            smoke=["adamw", "shampoo, refresh", "gemm floor"],
        ),
        list(SIZES),
    )
    param_names = ("kind", "n")
    number = 1
    repeat = (3, 10, 30.0)
    warmup_time = 0.0
    timeout = 600

    def setup(self, kind, n):
        self.run = update_step(kind, n)

    def time_update(self, kind, n):
        self.run()

    def peakmem_update(self, kind, n):
        self.run()


class ShampooUpdate100:
    """100 updates in one scan: Shampoo amortizes one root refresh over them."""

    params = (
        sized(
            full=[
                "adamw", "shampoo", "shampoo, stacked", "shampoo, per parameter",
                "bare shampoo", "bare shampoo, stacked", "gemm floor", "gemm floor, stacked",
            ],
            smoke=["adamw", "shampoo", "gemm floor"],
        ),
        list(SIZES),
    )
    param_names = ("kind", "n")
    number = 1
    repeat = (2, 5, 60.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, kind, n):
        self.run = update_100(kind, n)

    def time_100_updates(self, kind, n):
        self.run()

    def peakmem_100_updates(self, kind, n):
        self.run()


class RootsEigh:
    """The float64 ``eigh`` of all 2 x 16 x ``LAYERS`` statistics (n = 1024), nothing else:
    jax's batched ``eigh`` and rootsolve's split one (:mod:`rootsolve.batched_eigh`); and
    the default root function's whole refresh of them (``root fn``)."""

    params = (sized(full=["jax", "split", "root fn"], smoke=["jax", "root fn"]), list(SIZES))
    param_names = ("impl", "n")
    number = 1
    repeat = (2, 5, 60.0)
    warmup_time = 0.0
    timeout = 600

    def setup(self, impl, n):
        self.run = all_roots_eigh(n, impl)

    def time_eigh(self, impl, n):
        self.run()


class ShampooTrainStep:
    """Forward, backward and update of the n x n MLP at batch 4096."""

    params = (
        sized(
            full=["adamw", "shampoo", "bare shampoo", "bare shampoo, stacked"],
            smoke=["adamw", "shampoo"],
        ),
        list(SIZES),
    )
    param_names = ("kind", "n")
    number = 1
    repeat = (2, 5, 60.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, kind, n):
        self.run = train_step(kind, n)

    def time_train_step(self, kind, n):
        self.run()

    def peakmem_train_step(self, kind, n):
        self.run()


class ShampooStateMemory:
    """Bytes of the optimizer state of ``LAYERS`` n x n float32 layers."""

    params = (["shampoo", "adam", "shampoo analytic"], list(SIZES))
    param_names = ("kind", "n")

    def track_state_bytes(self, kind, n):
        if kind == "shampoo analytic":
            return analytic_state_bytes(n)
        opt = make_optimizer("shampoo") if kind == "shampoo" else optax.adam(LR)
        return state_bytes(jax.eval_shape(opt.init, layer_params(n)))

    track_state_bytes.unit = "bytes"


class ShampooCompile:
    """Compile time of one update for ``count`` weight matrices and ``count`` bias vectors.

    Shampoo's program has per-parameter parts (statistics, preconditioning, grafting),
    so it grows with the number of tensors; the root refresh grows with the number of
    distinct block shapes only.
    """

    params = (
        sized(full=["adamw", "shampoo", "shampoo, stacked"], smoke=["adamw", "shampoo"]),
        sized(full=[16, 64], smoke=[4]),
    )
    param_names = ("kind", "count")
    timeout = 600

    def track_compile_seconds(self, kind, count):
        return compile_update(kind, count)

    track_compile_seconds.unit = "seconds"


class ShampooTrainingAccuracy:
    """How far 50 steps get: the loss ratio of Shampoo and AdamW from the same start (same
    learning rate and weight decay), and the worst residual of Shampoo's latest roots.

    Both numbers come from one training run per kind and size, made once for the class
    (``setup_cache``), not once per benchmark."""

    params = (["adamw", "shampoo"], list(SIZES))
    param_names = ("kind", "n")
    timeout = 900

    def setup_cache(self):
        out = {}
        for kind in ("adamw", "shampoo"):
            for n in SIZES:
                ratio, state = training_run(kind, n)
                residual = (
                    math.nan  # AdamW computes no roots: n/a on the dashboard
                    if kind == "adamw"
                    else float(rootsolve_optim.shampoo_metrics(state).max_residual)
                )
                out[(kind, n)] = (ratio, residual)
        return out

    def track_loss_ratio(self, runs, kind, n):
        return runs[(kind, n)][0]

    track_loss_ratio.unit = "final / initial loss"

    def track_root_residual(self, runs, kind, n):
        return runs[(kind, n)][1]

    track_root_residual.unit = "max residual of the latest roots"
