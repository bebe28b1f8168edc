"""Batched Hermitian eigendecompositions on the CPU, spread over its cores.

LAPACK's divide-and-conquer driver (``syevd``/``heevd``) is what both
``numpy.linalg.eigh`` and jax's CPU ``eigh`` call, one matrix after another
over a batch. For the matrix sizes of preconditioners (n of a few hundred)
its inner BLAS calls are too small to keep several threads busy, so a
multithreaded BLAS gains little, and inside jax it oversubscribes the cores
XLA's threads already use. jax's batched kernel spreads the batch over XLA's
worker threads only when they are idle, which inside a training step they
seldom are. A batch, however, splits into independent problems. This module
runs one contiguous chunk of the batch per worker thread, each with a
single-threaded BLAS (LAPACK releases the GIL), which scales with the number
of cores. Measured on 2 cores, 128 matrices of n = 256 in float64: 0.37 s
split over two threads, 0.60 s for ``numpy.linalg.eigh`` with OpenBLAS on
2 threads and 0.74 s on one; jax's jitted ``eigh`` 0.38-0.72 s from call to
call with a one-thread BLAS and 0.7-0.9 s with OpenBLAS's default threads,
this module's jitted path (a callback, below) 0.45-0.5 s
(``asv_benchmarks.benchmarks_batched``, ``BatchedEigh``).

* :func:`eigh_numpy` is the numpy path.
* :func:`eigh_jax` is the jax path: on the CPU a :func:`jax.pure_callback`
  to :func:`eigh_numpy` (selected per platform by
  :func:`jax.lax.platform_dependent`, so GPU and TPU programs keep jax's own
  ``eigh``), with the usual first-order perturbation formulas as its JVP, so
  it stays differentiable. Under ``jit`` it never raises: a matrix LAPACK
  cannot diagonalize (non-finite entries) comes back as NaN, like jax's.

Two limits of jaxlib's CPU kernels (jaxlib 0.10) shape the jax path. Its
batched LAPACK kernel queues the batch on XLA's worker pool and waits for it
from inside a worker of that pool: when as many run at once as the pool has
workers (one per device of a ``shard_map``, or independent ``eigh`` in one
program), none finishes. So a stack never reaches it: on the CPU it goes to
the callback or, where the callback is not used, to jax's ``eigh`` one
matrix at a time (``lax.map``). And jax copies a callback's operands to
the first CPU device before calling it; with several devices in one program
that copy was seen to wait until XLA's collective timeout aborted the
process (8 simulated devices, some already in the all-gather). A program
that may run on several CPU devices (inside ``shard_map``, or in a process
with several CPU devices) therefore takes the one-at-a-time path, its
devices providing the parallelism. jaxlib's LAPACK is the one scipy ships; called
from XLA's workers with OpenBLAS's default threads, 64 roots of 256 x 256 on
8 simulated devices and 2 cores took 228 s instead of 12 s, so the first
CPU trace limits that library to one thread (see
:func:`_limit_blas_under_xla`).

While a threaded decomposition runs, BLAS libraries loaded by the process
are limited to one thread (through threadpoolctl), so BLAS calls made
meanwhile by other threads run on one thread too; concurrent decompositions
take turns. Where another thread holds a threadpoolctl limit on OpenBLAS,
that limit stays in force (threadpoolctl lets one thread at a time set it).
:func:`set_num_threads` (or the environment variable ``ROOTSOLVE_NUM_THREADS``)
sets the number of workers; 1 turns the splitting off (and the callback:
jax's ``eigh`` one matrix at a time). jax decides between
the callback and its own ``eigh`` when a function is traced, so a change
reaches jitted functions traced afterwards. A host callback lives in the
Python process that traced it: a program meant for ``jax.export`` should be
traced with one thread (``set_num_threads(1)``), which keeps jax's ``eigh``.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["eigh_numpy", "eigh_jax", "set_num_threads", "get_num_threads"]

# Below this much work (sum of n^3 over the batch) the thread hand-off costs more
# than it saves: two 64 x 64 decompositions take about 0.3 ms.
_MIN_WORK = 2 * 64**3
_BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _default_threads() -> int:
    env = os.environ.get("ROOTSOLVE_NUM_THREADS")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(
                f"ROOTSOLVE_NUM_THREADS must be a positive integer, got {env!r}"
            ) from None
        if value < 1:
            raise ValueError(f"ROOTSOLVE_NUM_THREADS must be a positive integer, got {env!r}")
        return value
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_lock = threading.Lock()
_threads: int | None = None
_pool: ThreadPoolExecutor | None = None
_controller: Any = None
# One threaded decomposition at a time: each uses every worker already, and the BLAS
# limit is set and restored by the thread that holds this lock (threadpoolctl lets
# only one thread at a time change OpenBLAS's process-wide setting).
_serial = threading.RLock()
# Whether the BLAS under jax's CPU LAPACK kernels has been given its thread budget.
_xla_blas_done = False


def get_num_threads() -> int:
    """Worker threads that batched eigendecompositions are split over."""
    global _threads
    with _lock:
        if _threads is None:
            _threads = _default_threads()
        return _threads


def set_num_threads(threads: int | None) -> int:
    """Set the worker threads of batched CPU eigendecompositions; returns the old value.

    Parameters
    ----------
    threads : int or None
        At least 1 (1: no splitting, LAPACK and BLAS run as the caller set
        them up). None: the default, ``ROOTSOLVE_NUM_THREADS`` or the number
        of cores this process may run on.
    """
    global _threads, _pool
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    new = _default_threads() if threads is None else threads
    with _serial:  # not while a decomposition uses the pool
        old = get_num_threads()
        with _lock:
            _threads = new
            if _pool is not None and new != old:
                _pool.shutdown(wait=False)
                _pool = None
    return old


def _get_pool() -> ThreadPoolExecutor:
    """The worker pool, ``get_num_threads()`` threads; call with ``_serial`` held."""
    global _pool
    threads = get_num_threads()
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rootsolve-eigh")
        return _pool


def _single_threaded_blas() -> Any:
    """A context that limits the process's BLAS libraries to one thread, if possible."""
    global _controller
    try:
        if _controller is None:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        return _controller.limit(limits=1, user_api="blas")
    except Exception:  # the limit is a speed matter; never fail a decomposition on it
        return contextlib.nullcontext()


def _chunks(batch: int, parts: int) -> list[slice]:
    bounds = [round(i * batch / parts) for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def eigh_numpy(a: np.ndarray, *, nan_on_failure: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.linalg.eigh`` (lower triangle) of a stack, split over worker threads.

    Parameters
    ----------
    a : numpy array, shape (..., n, n)
        Hermitian matrices (only the lower triangle is read).
    nan_on_failure : bool, default False
        False: raise ``numpy.linalg.LinAlgError`` as numpy does when LAPACK
        fails. True: give that matrix NaN eigenvalues and eigenvectors
        instead (what a traced caller needs).

    Returns
    -------
    w : numpy array, shape (..., n)
        Eigenvalues in ascending order (real).
    v : numpy array, shape (..., n, n)
        Orthonormal eigenvectors in the columns, dtype of ``a``.
    """
    a = np.asarray(a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"a must be a stack of square matrices (..., n, n), got shape {a.shape}")
    n = a.shape[-1]
    batch = math.prod(a.shape[:-2])
    flat = a.reshape(batch, n, n)
    threads = min(get_num_threads(), batch)
    if threads < 2 or batch * n**3 < _MIN_WORK:
        w, v = _eigh_chunk(flat, nan_on_failure)
    else:
        w = np.empty((batch, n), dtype=np.finfo(a.dtype).dtype)
        v = np.empty_like(flat)

        def work(sl: slice) -> None:
            w[sl], v[sl] = _eigh_chunk(flat[sl], nan_on_failure)

        with _serial, _single_threaded_blas():
            pool = _get_pool()
            futures = [pool.submit(work, sl) for sl in _chunks(batch, threads)]
            for f in futures:
                f.result()
    return w.reshape(a.shape[:-1]), v.reshape(a.shape)


def _eigh_chunk(a: np.ndarray, nan_on_failure: bool) -> tuple[np.ndarray, np.ndarray]:
    try:
        return np.linalg.eigh(a)
    except np.linalg.LinAlgError:
        if not nan_on_failure:
            raise
    # Some matrix of the chunk failed: decompose one by one, NaN for the failures.
    w = np.empty(a.shape[:-1], dtype=np.finfo(a.dtype).dtype)
    v = np.empty_like(a)
    for i in range(a.shape[0]):
        try:
            w[i], v[i] = np.linalg.eigh(a[i])
        except np.linalg.LinAlgError:
            w[i], v[i] = np.nan, np.nan
    return w, v


def _host_eigh_callback(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    # This runs on one of XLA's worker threads, next to the others: one BLAS thread.
    with _serial, _single_threaded_blas():
        return eigh_numpy(a, nan_on_failure=True)


def _limit_blas_under_xla() -> None:
    """Give the BLAS library that jax's CPU LAPACK kernels call one thread, once.

    jaxlib's CPU ``eigh`` (and its other LAPACK kernels) calls the LAPACK
    that scipy ships, from XLA's worker threads, one call per device or per
    independent operation at a time. A multithreaded OpenBLAS then spins its
    own threads against XLA's: 64 roots of 256 x 256 spread over 8 simulated
    devices on 2 cores took 228 s with OpenBLAS's default threads and 12 s
    with one. Only that library is limited (numpy's own BLAS, where it is a
    separate library, keeps its threads), and only when the user has not
    chosen a count through ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` or
    ``MKL_NUM_THREADS``.
    """
    global _xla_blas_done
    if _xla_blas_done:
        return
    with _serial:
        _xla_blas_done = True
        if any(os.environ.get(v) for v in _BLAS_THREAD_VARIABLES):
            return
        try:
            import scipy
            import scipy.linalg.cython_lapack  # noqa: F401  (loads the library)
            from threadpoolctl import ThreadpoolController

            site = os.path.dirname(os.path.dirname(os.path.abspath(scipy.__file__)))
            own = (os.path.join(site, "scipy") + os.sep, os.path.join(site, "scipy.libs") + os.sep)
            blas = ThreadpoolController().select(user_api="blas").lib_controllers
            # scipy linked against a system BLAS (shared with numpy): that one.
            for lib in [b for b in blas if b.filepath.startswith(own)] or blas:
                lib.set_num_threads(1)
        except Exception:  # a speed matter; never fail a trace on it
            pass


def _one_program_per_device() -> bool:
    """Whether the program being traced may run on several CPU devices at once.

    True inside ``jax.shard_map`` and whenever the process has more than one
    CPU device (simulated ones included).
    """
    import jax

    get_mesh = getattr(jax.sharding, "get_abstract_mesh", None)
    if get_mesh is not None and getattr(get_mesh(), "manual_axes", ()):
        return True
    try:
        return jax.local_device_count("cpu") > 1
    except RuntimeError:  # no CPU backend
        return False


def _eigh_primal(a: Any) -> tuple[Any, Any]:
    import jax
    import jax.numpy as jnp
    from jax import lax

    def xla(x):
        return tuple(jnp.linalg.eigh(x, symmetrize_input=False))

    def host(x):
        real = jnp.finfo(x.dtype).dtype
        shapes = (
            jax.ShapeDtypeStruct(x.shape[:-1], real),
            jax.ShapeDtypeStruct(x.shape, x.dtype),
        )
        return jax.pure_callback(_host_eigh_callback, shapes, x, vmap_method="expand_dims")

    def one_at_a_time(x):
        n = x.shape[-1]
        w, v = lax.map(xla, x.reshape(-1, n, n))
        return w.reshape(x.shape[:-1]), v.reshape(x.shape)

    if jax.default_backend() == "cpu":
        _limit_blas_under_xla()
    # A single matrix has nothing to split: the callback would only add its copies
    # (1.5-5 ms at n = 256-512, 10-20 %), and jaxlib decomposes it on the calling thread.
    if math.prod(a.shape[:-2]) < 2:
        return xla(a)
    # A stack never reaches jaxlib's batched CPU kernel, and a program that may run on
    # several devices never calls back to Python: see the module docs.
    cpu = host if get_num_threads() >= 2 and not _one_program_per_device() else one_at_a_time
    return lax.platform_dependent(a, cpu=cpu, default=xla)


def _make_eigh_jax():
    import jax
    import jax.numpy as jnp

    @jax.custom_jvp
    def eigh(a):
        return _eigh_primal(a)

    @eigh.defjvp
    def _jvp(primals, tangents):
        # First-order perturbation of a Hermitian eigenproblem with simple
        # eigenvalues (e.g. Magnus, "On differentiating eigenvalues and
        # eigenvectors", Econometric Theory 1(2), 1985): with W = V^H dA V,
        # dw = Re diag(W) and dV = V (F o W), F_ij = 1/(w_j - w_i) off the diagonal.
        (a,), (da,) = primals, tangents
        w, v = eigh(a)
        vh = jnp.conj(jnp.swapaxes(v, -1, -2))
        hi = jax.lax.Precision.HIGHEST
        wdot = jnp.matmul(jnp.matmul(vh, da, precision=hi), v, precision=hi)
        eye = jnp.eye(a.shape[-1], dtype=w.dtype)
        f = 1.0 / (eye + w[..., None, :] - w[..., :, None]) - eye
        dw = jnp.real(jnp.diagonal(wdot, axis1=-2, axis2=-1))
        dv = jnp.matmul(v, f.astype(wdot.dtype) * wdot, precision=hi)
        return (w, v), (dw, dv)

    return eigh


_eigh_jax = None


def eigh_jax(a: Any) -> tuple[Any, Any]:
    """Eigenvalues (ascending) and eigenvectors of Hermitian jax arrays (lower triangle).

    On the CPU a stack of at least two matrices goes to :func:`eigh_numpy`
    through a callback and is split over threads; with one thread, inside
    ``shard_map`` and in a process with several CPU devices it is
    ``jax.numpy.linalg.eigh`` one matrix at a time (see the module docs).
    Elsewhere, and for single matrices, it is ``jax.numpy.linalg.eigh``. The
    stack is the traced shape: under ``vmap`` that of the function being
    mapped, whose callback then receives the whole mapped batch. Traceable
    under ``jit``, ``vmap`` and forward- and reverse-mode differentiation.
    """
    global _eigh_jax
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"a must be a stack of square matrices (..., n, n), got shape {a.shape}")
    if _eigh_jax is None:
        _eigh_jax = _make_eigh_jax()
    return _eigh_jax(a)
