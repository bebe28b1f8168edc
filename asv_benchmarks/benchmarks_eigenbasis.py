"""A warm-started eigenbasis against a cold ``eigh``, on statistics that moved.

The problem is what an eigenvalue-corrected optimizer (SOAP) refreshes: a
Shampoo statistic ``L = G G^T / m`` (rows of ``G`` scaled over two decades, a
persistent part plus noise) whose eigenbasis ``Q0`` is known exactly, moved
by ten steps of an exponential average with ``beta = 0.95``:
``L1 = beta^10 L0 + (1 - beta^10) L_new``. The warm start refines ``Q0`` with
one step of :func:`rootsolve.refine_eigenbasis` (two products and a QR); the
peers decompose ``L1`` from nothing (numpy's ``eigh``, jax's ``eigh`` under
``jit``). ``track_off_diagonal`` reports the relative off-diagonal mass
``||offdiag(Q^T L1 Q)||_F / ||diag(Q^T L1 Q)||_2`` of each result, and of the
stale ``Q0`` for scale.

``python -m asv_benchmarks.benchmarks_eigenbasis [word ...]`` prints the medians of the
same cases as a table (the numbers in ``docs/choosing.md``), for the methods whose
names contain one of the words (all without words); cupy's ``eigh`` and the warm start
on cupy arrays join where cupy sees a GPU.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import rootsolve

from .smoke import sized

SHAPES = sized(full=("256x64", "32x256", "8x512", "2x1024"), smoke=("16x64",))
DTYPES = sized(full=("float32", "float64"), smoke=("float32",))
METHODS = (
    "numpy.linalg.eigh",
    "rootsolve warm (numpy)",
    "jax.numpy.linalg.eigh, jit",
    "rootsolve warm (jax jit)",
    "rootsolve warm, householder (jax jit)",
    "rootsolve warm, cholesky (jax jit)",
)
GPU_METHODS = ("cupy.linalg.eigh", "rootsolve warm (cupy)", "rootsolve warm, householder (cupy)")
BETA_SPAN = 0.95**10


def moved_statistic(shape: str, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(L1, Q0)``: a statistic after ten decayed steps, and the exact basis of the old one.

    ``Q0`` holds the eigenvectors of ``L0``, largest eigenvalue first, as
    :func:`rootsolve.refine_eigenbasis` orders them.
    """
    batch, n = (int(x) for x in shape.split("x"))
    rng = np.random.default_rng(seed)
    rows = np.geomspace(1.0, 1e-2, n)[:, None]
    signal = rng.standard_normal((batch, n, 2 * n))

    def stat(noise):
        g = rows * (signal + 0.5 * noise)
        return g @ np.swapaxes(g, -1, -2) / (2 * n)

    l0 = stat(rng.standard_normal((batch, n, 2 * n)))
    l1 = BETA_SPAN * l0 + (1 - BETA_SPAN) * stat(rng.standard_normal((batch, n, 2 * n)))
    _, v = np.linalg.eigh(l0)
    return l1.astype(dtype), v[..., ::-1].astype(dtype)


def off_diagonal(a: np.ndarray, q: np.ndarray) -> float:
    """Largest relative off-diagonal mass of ``Q^T A Q`` over the batch, in float64."""
    a, q = np.asarray(a, np.float64), np.asarray(q, np.float64)
    b = np.swapaxes(q, -1, -2) @ a @ q
    d = np.diagonal(b, axis1=-2, axis2=-1)
    off = np.linalg.norm(b - d[..., None] * np.eye(b.shape[-1]), axis=(-2, -1))
    return float(np.max(off / np.linalg.norm(d, axis=-1)))


def runner(method: str, a: np.ndarray, q: np.ndarray) -> Callable[[], Any]:
    """A call of ``method`` returning the basis; jax methods compiled and run once."""
    if method == "numpy.linalg.eigh":
        return lambda: np.linalg.eigh(a)[1]
    if method == "rootsolve warm (numpy)":
        return lambda: rootsolve.refine_eigenbasis(a, q).eigenvectors
    orth = next((o for o in ("householder", "cholesky") if o in method), "auto")
    if method in GPU_METHODS:
        import cupy as cp

        x, y = cp.asarray(a), cp.asarray(q)
        if method == "cupy.linalg.eigh":
            def call():
                return cp.linalg.eigh(x)[1]
        else:
            def call():
                return rootsolve.refine_eigenbasis(x, y, orthonormalize=orth).eigenvectors

        def run_cupy():
            out = call()
            cp.cuda.get_current_stream().synchronize()
            return out

        run_cupy()
        return run_cupy
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    if method == "jax.numpy.linalg.eigh, jit":
        fn = jax.jit(lambda x, _: jnp.linalg.eigh(x)[1])
    elif method.startswith("rootsolve warm") and method.endswith("(jax jit)"):
        fn = jax.jit(
            lambda x, y: rootsolve.refine_eigenbasis(x, y, orthonormalize=orth).eigenvectors
        )
    else:
        raise ValueError(f"unknown method {method!r}")
    x, y = jnp.asarray(a), jnp.asarray(q)
    f = fn.lower(x, y).compile()

    def run():
        return jax.block_until_ready(f(x, y))

    run()
    return run


class WarmEigenbasis:
    """Wall time and accuracy of a refreshed eigenbasis, warm against cold."""

    params = (list(METHODS + GPU_METHODS), list(SHAPES), list(DTYPES))
    param_names = ("method", "shape", "dtype")
    timeout = 600

    def setup(self, method, shape, dtype):
        if method in GPU_METHODS and not cupy_on_a_gpu():
            raise NotImplementedError("cupy with a CUDA device is not available")
        if "jax" in method:
            try:
                import jax  # noqa: F401
            except ImportError:
                raise NotImplementedError("jax is not installed") from None
        self.a, self.q = moved_statistic(shape, dtype)
        self.run = runner(method, self.a, self.q)
        self.run()

    def time_refresh(self, method, shape, dtype):
        self.run()

    def track_off_diagonal(self, method, shape, dtype):
        return off_diagonal(self.a, host(self.run()))

    track_off_diagonal.unit = "relative"


def host(x: Any) -> np.ndarray:
    """``x`` as a numpy array (cupy arrays are copied from the device)."""
    return x.get() if hasattr(x, "get") and not isinstance(x, np.ndarray) else np.asarray(x)


def cupy_on_a_gpu() -> bool:
    """Whether cupy is installed and sees a CUDA device."""
    try:
        import cupy as cp

        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no cupy, or cupy without a driver
        return False


def _median_time(run: Callable[[], Any], budget: float = 1.0) -> float:
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget and len(times) < 25):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(only: tuple[str, ...] = ()) -> None:
    """Print medians and accuracies of every case (ms; off-diagonal mass).

    ``only``: words; when given, only the methods whose names contain one of them
    run (``python -m asv_benchmarks.benchmarks_eigenbasis jax cupy`` on a GPU), and
    only the dtypes named among them (both when none is).

    jax runs on its default device (a GPU where jax's CUDA build finds one); cupy's
    methods join when cupy sees a GPU.
    """
    import jax

    methods = METHODS + (GPU_METHODS if cupy_on_a_gpu() else ())
    dtypes = tuple(d for d in DTYPES if d in only) or DTYPES
    only = tuple(w for w in only if w not in DTYPES)
    methods = tuple(m for m in methods if not only or any(w in m for w in only))
    print(f"jax devices: {jax.devices()}")
    print(f"{'shape':>8} {'dtype':>8} {'method':>38} {'ms':>9} {'off-diag':>9} {'stale Q0':>9}")
    for dtype in dtypes:
        for shape in SHAPES:
            a, q = moved_statistic(shape, dtype)
            stale = off_diagonal(a, q)
            for method in methods:
                run = runner(method, a, q)
                ms = 1e3 * _median_time(run)
                acc = off_diagonal(a, host(run()))
                print(f"{shape:>8} {dtype:>8} {method:>38} {ms:9.2f} {acc:9.1e} {stale:9.1e}")
                sys.stdout.flush()


if __name__ == "__main__":
    main(tuple(sys.argv[1:]))
