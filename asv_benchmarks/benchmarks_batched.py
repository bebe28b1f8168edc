"""Batches of symmetric matrices: eigendecompositions and inverse roots, rootsolve and peers.

A batch is what a preconditioner refresh roots (one statistic per block), so
this is where :mod:`rootsolve.batched_eigh` (the batch split over cores, one
BLAS thread each) meets what users would otherwise write: one
``numpy.linalg.eigh`` over the stack, or ``jax.numpy.linalg.eigh`` under
``jit``, followed by ``V diag(w^(-1/p)) V^T``. Shapes: 128 matrices of
n = 256 (the 4 x 1024^2 layers of :mod:`asv_benchmarks.benchmarks_shampoo`,
blocks of 256), 512 of n = 64, 8 of n = 1024; float64; p = 4.

Peers run with the process's BLAS settings as they are (OpenBLAS's default
thread count), which is what a user gets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import rootsolve
from rootsolve.batched_eigh import eigh_numpy

try:
    from rootsolve.testing import eigh_power
except ImportError:  # a library from before rootsolve.bench (make dashboard COMMITS=N)
    from rootsolve.compare import _eigh_power as eigh_power

from .smoke import sized

SHAPES = sized(full=("128x256", "512x64", "8x1024"), smoke=("32x64",))
P = 4

EIGH_METHODS = (
    "numpy.linalg.eigh",
    "rootsolve (numpy)",
    "jax.numpy.linalg.eigh, jit",
    "rootsolve (jax jit)",
)
ROOT_METHODS = (
    "numpy eigh-and-rebuild",
    "rootsolve inv_root (numpy)",
    "jax eigh-and-rebuild, jit",
    "rootsolve inv_root (jax jit)",
)


def batch_problem(shape: str, seed: int = 0) -> np.ndarray:
    """``batch`` SPD matrices ``G G^T / m + 1e-3 I`` of size n (shape "BATCHxN"), float64."""
    batch, n = (int(x) for x in shape.split("x"))
    g = np.random.default_rng(seed).standard_normal((batch, n, 2 * n))
    return g @ np.swapaxes(g, -1, -2) / (2 * n) + 1e-3 * np.eye(n)


def runner(method: str, a: np.ndarray) -> Callable[[], Any]:
    """A call of ``method`` on the stack ``a``; jax methods compiled and run once."""
    if method == "numpy.linalg.eigh":
        return lambda: np.linalg.eigh(a)
    if method == "rootsolve (numpy)":
        return lambda: eigh_numpy(a)
    if method == "numpy eigh-and-rebuild":
        return lambda: eigh_power(a, -1.0 / P)
    if method == "rootsolve inv_root (numpy)":
        return lambda: rootsolve.inv_root(a, P, method="eigh")
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    hi = jax.lax.Precision.HIGHEST

    def jax_rebuild(x):
        w, v = jnp.linalg.eigh(x)
        return jnp.matmul(v * w[..., None, :] ** (-1.0 / P), jnp.swapaxes(v, -1, -2), precision=hi)

    fn = {
        "jax.numpy.linalg.eigh, jit": lambda x: jnp.linalg.eigh(x),
        "rootsolve (jax jit)": lambda x: rootsolve.batched_eigh.eigh_jax(x),
        "jax eigh-and-rebuild, jit": jax_rebuild,
        "rootsolve inv_root (jax jit)": lambda x: rootsolve.inv_root(x, P, method="eigh"),
    }[method]
    x = jnp.asarray(a)
    f = jax.jit(fn).lower(x).compile()

    def run():
        return jax.block_until_ready(f(x))

    run()
    return run


class _Batched:
    timeout = 600

    def setup(self, method, shape):
        if "jax" in method:
            try:
                import jax  # noqa: F401
            except ImportError:
                raise NotImplementedError("jax is not installed") from None
        self.run = runner(method, batch_problem(shape))
        self.run()  # thread pools started, pages touched


class BatchedEigh(_Batched):
    """Wall time of the eigendecomposition of a stack."""

    params = (list(EIGH_METHODS), list(SHAPES))
    param_names = ("method", "shape")

    def time_eigh(self, method, shape):
        self.run()


class BatchedInvRoot(_Batched):
    """Wall time of ``a^(-1/4)`` of every matrix of a stack."""

    params = (list(ROOT_METHODS), list(SHAPES))
    param_names = ("method", "shape")

    def time_inv_root(self, method, shape):
        self.run()
