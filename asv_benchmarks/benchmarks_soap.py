"""SOAP (``rootsolve_optim.soap``) against its own GEMM floor, AdamW, and its state's size.

The workload is the one of :mod:`asv_benchmarks.benchmarks_shampoo`: ``LAYERS``
square float32 weights of n x n, cut into blocks of ``BLOCK`` = 256.
``jax_enable_x64`` is on (as there), but SOAP's basis refreshes run at its
default ``compute_dtype``, the statistics' float32, and every product, SOAP's
and the floor's, is a float32 product at ``Precision.HIGHEST`` (SOAP's default
``precision`` and ``statistics_precision``).

* ``SOAPUpdate``: ``STEPS`` = 20 updates (10 in the smoke grid) in one jitted ``lax.scan``, from the
  state after SOAP's initializing call, with bases refreshed every
  ``FREQUENCY`` = 10 steps (the paper's default): the amortized cost, two QR
  power steps per 20 updates. ``adamw`` runs the same 20 steps, and ``gemm
  floor`` the products every 2-D block needs each step and nothing else: the
  two statistics ``G G^T`` and ``G^T G`` and the four rotations ``Q_L^T G``,
  ``(.) Q_R`` and back, ``Q_L (.)``, ``(.) Q_R^T``, on gradients already cut
  into blocks.
* ``SOAPStateMemory``: bytes of the state against the analytic size: per
  block 2 statistics and 2 bases of b x b, 2 metrics records (4 numbers of 4
  bytes per block each), plus Adam's two parameter-sized moments and two
  int32 counters.

``python -m asv_benchmarks.benchmarks_soap [n ...]`` prints the ratio to the floor, and
that of the same 20 steps without a refresh (``soap, no refresh``: the bases' refresh
every ``10**6`` steps), which separates the per-step cost from the refreshes'.
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

from .benchmarks_shampoo import (
    BLOCK,
    LAYERS,
    gradient_pair,
    layer_params,
    scanned_updates,
    set_blas_threads,
    state_bytes,
    to_blocks,
)
from .smoke import sized

jax.config.update("jax_enable_x64", True)
set_blas_threads(1)

SIZES = sized(full=(256, 512), smoke=(256,))
STEPS = sized(full=20, smoke=10)
FREQUENCY = 10
LR = 3e-3
WEIGHT_DECAY = 1e-2
KINDS = ("soap", "adamw", "gemm floor")
NO_REFRESH = "soap, no refresh"


def make_optimizer(kind: str) -> optax.GradientTransformation:
    """``soap`` (blocks of ``BLOCK``, bases every ``FREQUENCY`` steps), ``soap, no refresh``
    (no refresh within the timed steps) or ``adamw``."""
    if kind == "adamw":
        return optax.adamw(LR, b1=0.95, b2=0.95, weight_decay=WEIGHT_DECAY)
    if kind in ("soap", NO_REFRESH):
        return rootsolve_optim.soap(LR, weight_decay=WEIGHT_DECAY, block_size=BLOCK,
                                    precondition_frequency=FREQUENCY if kind == "soap"
                                    else 10**6)
    raise ValueError(f"unknown optimizer kind {kind!r}")


def gemm_floor_step(blocks: tuple[jax.Array, ...], bases: tuple[jax.Array, ...]):
    """The 6 products per block and step: ``G G^T``, ``G^T G``, ``Q_L^T G Q_R`` and back."""
    hi = jax.lax.Precision.HIGHEST
    out = []
    for g, q in zip(blocks, bases, strict=True):
        qt = jnp.swapaxes(q, -1, -2)
        left = jnp.matmul(g, jnp.swapaxes(g, -1, -2), precision=hi)
        right = jnp.matmul(jnp.swapaxes(g, -1, -2), g, precision=hi)
        rot = jnp.matmul(jnp.matmul(qt, g, precision=hi), q, precision=hi)
        back = jnp.matmul(jnp.matmul(q, rot, precision=hi), qt, precision=hi)
        out.append((left, right, back))
    return tuple(out)


@functools.cache
def update_steps(kind: str, n: int) -> Callable[[], Any]:
    """``STEPS`` updates (or floor steps) in one scan, compiled and warmed up."""
    pair = gradient_pair(n)
    if kind == "gemm floor":
        blocks = tuple(jax.vmap(to_blocks)(pair[f"w{i}"]) for i in range(LAYERS))
        q, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(0), (BLOCK, BLOCK)))
        bases = tuple(jnp.broadcast_to(q.astype(jnp.float32), b.shape[1:]) for b in blocks)

        def floor_body(carry, i):
            return gemm_floor_step(tuple(b[i % 2] for b in blocks), bases), None

        init = gemm_floor_step(tuple(b[0] for b in blocks), bases)
        f = jax.jit(lambda c: jax.lax.scan(floor_body, c, jnp.arange(STEPS))[0])
        compiled = f.lower(init).compile()
        return _ready(compiled, init)
    opt = make_optimizer(kind)
    params = layer_params(n)

    steps = scanned_updates(opt, pair, STEPS)
    state = opt.init(params)
    # SOAP's first call computes the first bases (a cold eigh) and is not timed.
    _, state = jax.jit(opt.update)(jax.tree_util.tree_map(lambda x: x[0], pair), state, params)
    return _ready(jax.jit(steps).lower(params, state).compile(), params, state)


def _ready(f: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    run = lambda: jax.block_until_ready(f(*args))  # noqa: E731
    run()
    return run


def analytic_state_bytes(n: int, b: int = BLOCK, itemsize: int = 4) -> int:
    """SOAP's state for ``LAYERS`` n x n layers (see the module docs)."""
    blocks = math.ceil(n / b) ** 2
    per_layer = blocks * (4 * b * b * itemsize + 2 * 4 * 4) + 2 * n * n * itemsize
    return LAYERS * per_layer + 2 * 4


class SOAPUpdate:
    """Wall time of ``STEPS`` updates: SOAP (amortized refreshes), AdamW, the GEMM floor."""

    params = (list(KINDS), list(SIZES))
    param_names = ("kind", "n")
    timeout = 900

    def setup(self, kind, n):
        self.run = update_steps(kind, n)

    def time_steps(self, kind, n):
        self.run()


class SOAPStateMemory:
    """Bytes of SOAP's state, and its ratio to the analytic size (1 when nothing extra)."""

    params = (list(SIZES),)
    param_names = ("n",)

    def setup(self, n):
        self.state = make_optimizer("soap").init(layer_params(n))

    def track_state_bytes(self, n):
        return state_bytes(self.state[0])

    def track_ratio_to_analytic(self, n):
        return state_bytes(self.state[0]) / analytic_state_bytes(n)

    track_state_bytes.unit = "bytes"
    track_ratio_to_analytic.unit = "ratio"


def best_times(runs: dict[str, Callable[[], Any]], repeats: int = 7) -> dict[str, float]:
    """The fastest of ``repeats`` calls of each run, the runs interleaved.

    On a shared machine the minimum is the estimate least disturbed by other
    work, and interleaving exposes every run to the same load.
    """
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.min(v)) for k, v in times.items()}


def main(sizes: tuple[int, ...] = SIZES) -> None:
    """Print per-step times (best of 7), the ratio to the GEMM floor, and the state's size."""
    for n in sizes:
        best = best_times({k: update_steps(k, n) for k in KINDS + (NO_REFRESH,)})
        t = {k: v / STEPS for k, v in best.items()}
        state = make_optimizer("soap").init(layer_params(n))
        print(
            f"n={n}: soap {1e3 * t['soap']:.2f} ms/step (amortized, refresh every {FREQUENCY}), "
            f"adamw {1e3 * t['adamw']:.2f}, gemm floor {1e3 * t['gemm floor']:.2f}; "
            f"soap / floor = {t['soap'] / t['gemm floor']:.2f} "
            f"({t[NO_REFRESH] / t['gemm floor']:.2f} without the refreshes), "
            f"soap / adamw = {t['soap'] / t['adamw']:.2f}; state {state_bytes(state[0])} bytes, "
            f"analytic {analytic_state_bytes(n)}",
            flush=True,
        )


if __name__ == "__main__":
    import sys

    main(tuple(int(a) for a in sys.argv[1:]) or SIZES)
