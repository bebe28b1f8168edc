"""Inverse roots of Shampoo statistics on the host CPU, in float64, in step or in the background.

Anil et al. (arXiv 2002.09018, sec. 5) observe that accelerators are fast at
matrix products but slow (or imprecise: no float64) at the eigendecompositions
and iterations an inverse p-th root needs, while the CPUs of the host sit idle
during training. Their design computes the roots on the host in float64 and
lets the accelerator keep training with the previous, slightly stale
preconditioners until fresh ones arrive; preconditioners change slowly, so a
delay of a few hundred steps costs little.

:func:`host_root_fn` builds a root function (the ``root_fn`` argument of
:func:`rootsolve_optim.scale_by_shampoo`) that does exactly this with
:func:`rootsolve.inv_root` on numpy float64 arrays (LAPACK):

* synchronous (``asynchronous=False``): a :func:`jax.pure_callback`; the new
  roots are used in the same step. Same training as the on-device float64 root
  up to rounding.
* asynchronous: a :func:`jax.experimental.io_callback` that copies the
  statistics to the host, submits them to a thread pool and returns at once,
  with the newest finished roots of that block group if one arrived since the
  last delivery (``converged=True``) or ``converged=False`` ("nothing new",
  the optimizer keeps its stale roots). When roots arrive depends on thread
  timing, so runs are not bit-reproducible; ``deterministic_delay=d`` instead
  delivers the roots of the statistics seen at step ``s`` exactly at the first
  call at step ``>= s + d`` (blocking if they are late), which is reproducible.

Host-side state is keyed per block group (see :class:`HostRootFn`). This module is
the JAX side (callbacks, ``vmap``, group keys, options); the delivery rules and
checkpoint state are :class:`~rootsolve_optim.host_scheduler.HostScheduler`'s, the
numpy roots :func:`~rootsolve_optim.host_roots.root_batch`'s.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from rootsolve import Conditioning
from rootsolve._validation import check_choice, check_optional_int, check_order

from ._jax_internals import staging_trace
from .host_roots import no_new_roots, root_batch
from .host_scheduler import HostRootMetrics, HostScheduler, RootBatch, SchedulerClosed
from .root_functions import check_root_call, default_rel_ridge

__all__ = ["host_root_fn", "HostRootFn", "HostRootMetrics"]

_METHODS = ("eigh", "newton", "auto")


class _Spec(NamedTuple):
    """What a traced call knows of its block group; the group itself is looked up per call."""

    label: str
    p: int
    dtype: np.dtype


class HostRootFn:
    """A ``root_fn`` for :func:`rootsolve_optim.scale_by_shampoo` computing on the host.

    Build it with :func:`host_root_fn`. Calling it (inside or outside ``jit``)
    with ``(stats, p, step)`` returns ``(roots, residual, converged)``. This
    class is the JAX side (callbacks, ``vmap``, block group keys); which roots
    a call receives is decided by a
    :class:`~rootsolve_optim.host_scheduler.HostScheduler`, and the roots are
    computed by :func:`~rootsolve_optim.host_roots.root_batch`.

    Notes
    -----
    *Block groups.* The optimizer calls the root function once per group of
    equally shaped blocks. Host state (jobs in flight, metrics) is keyed by
    ``(name, stats.shape, dtype, p, ordinal)``, fixed when the call is
    traced; ``ordinal`` numbers calls with the same signature inside one
    traced program, so two groups of identical shape keep separate state.
    Give each optimizer its own root function (or distinct ``name=``) when
    several share a program and are traced separately.

    *jit.* The key and ``p`` are baked into the callback at trace time; the
    step number and the statistics are runtime values, so training does not
    recompile from step to step.

    *vmap.* Synchronous mode receives the whole batch in one host call
    (``vmap_method="expand_dims"``). In asynchronous mode a ``custom_vmap``
    rule folds the batch into the block axis, so a vmapped group is one host
    job; a batched ``step`` is reduced to its maximum. JAX refuses
    side-effecting callbacks inside a ``lax.cond`` under ``vmap``, so the
    asynchronous mode cannot be vmapped through a conditional refresh.

    *Threads.* Callbacks may run on several runtime threads; each group has
    its own lock and the worker threads touch only numpy arrays (never JAX),
    so waiting on them from a callback cannot deadlock the runtime.

    *Checkpoints.* In asynchronous mode the jobs in flight are part of the
    training state: :meth:`state_dict` returns their inputs and
    :meth:`load_state_dict` resubmits them (also into a program already
    compiled: groups are looked up by key at every call), so a run resumed
    with ``deterministic_delay`` continues exactly like the uninterrupted one.
    Rewound and repeated steps follow the rules of :mod:`~rootsolve_optim.host_scheduler`.
    """

    #: The residual of a delivered root is computed from it (a non-finite entry makes it
    #: non-finite), is that of ``X = 0`` where the root raised, and is set to inf where the
    #: cast to the statistics' dtype overflows, so a finite residual proves finite roots
    #: and Shampoo's acceptance needs no pass over them (as
    #: :attr:`~rootsolve_optim.root_functions.DeviceRootFn.finite_where_residual_is`).
    finite_where_residual_is: ClassVar[bool] = True

    _open: weakref.WeakSet = weakref.WeakSet()

    def __init__(
        self,
        *,
        method: str,
        conditioning: Conditioning,
        asynchronous: bool,
        max_workers: int,
        max_staleness_steps: int | None,
        deterministic_delay: int | None,
        name: str,
        default_ridge: bool = False,
        residual: str = "probe",
    ) -> None:
        self.method = method
        self.residual = residual
        self.conditioning = conditioning
        self.default_ridge = default_ridge
        self.asynchronous = asynchronous
        self.max_workers = max_workers
        self.max_staleness_steps = max_staleness_steps
        self.deterministic_delay = deterministic_delay
        self.name = name
        self._scheduler = HostScheduler(
            self._compute, max_workers=max_workers, max_staleness_steps=max_staleness_steps,
            deterministic_delay=deterministic_delay,
        )
        self._lock = threading.Lock()
        self._ordinals: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        HostRootFn._open.add(self)

    def __repr__(self) -> str:
        mode = "synchronous" if not self.asynchronous else (
            f"asynchronous, deterministic_delay={self.deterministic_delay}"
            if self.deterministic_delay is not None
            else f"asynchronous, max_staleness_steps={self.max_staleness_steps}"
        )
        return f"HostRootFn(method={self.method!r}, {mode}, max_workers={self.max_workers})"

    # -- the RootFn call ------------------------------------------------------------------

    def __call__(self, stats: Any, p: int | None = None, step: Any = None) -> tuple[Any, Any, Any]:
        """Roots ``stats^(-1/p)`` of a stack ``(k, n, n)`` computed on the host.

        Returns
        -------
        roots : (k, n, n) array in ``stats.dtype``
        residual : (k,) float32 array
            ``||X^p A - I||_F / sqrt(n)`` of the delivered roots; NaN where
            nothing new was delivered (Shampoo's "no new root yet", not counted
            as a failure); 1 where a root raised (the residual of the zero
            root returned in its place), inf where it is not finite.
        converged : (k,) bool array
            True where new roots were delivered and succeeded.
        """
        check_root_call(stats, p)
        p = check_order(p)
        stats = jnp.asarray(stats)
        if stats.ndim != 3 or stats.shape[-1] != stats.shape[-2]:
            raise ValueError(f"stats must have shape (k, n, n), got {stats.shape}")
        spec = self._spec_for(stats, p)
        shapes = (
            jax.ShapeDtypeStruct(stats.shape, stats.dtype),
            jax.ShapeDtypeStruct(stats.shape[:1], jnp.float32),
            jax.ShapeDtypeStruct(stats.shape[:1], jnp.bool_),
        )
        if not self.asynchronous:
            host = functools.partial(self._host_sync, spec)
            return jax.pure_callback(host, shapes, stats, vmap_method="expand_dims")
        return self._async_call(spec, shapes)(stats, jnp.asarray(step, jnp.int32))

    def _spec_for(self, stats: Any, p: int) -> _Spec:
        sig = "x".join(map(str, stats.shape)) + f"/{np.dtype(stats.dtype).name}/p{p}"
        trace = staging_trace()
        with self._lock:
            ordinal = 0
            if trace is not None:
                seen = self._ordinals.setdefault(trace, collections.Counter())
                ordinal = seen[sig]
                seen[sig] += 1
        spec = _Spec(f"{self.name}:{sig}#{ordinal}", p, np.dtype(stats.dtype))
        self._scheduler.group(*spec)
        return spec

    def _async_call(self, spec: _Spec, shapes: tuple) -> Callable:
        def call(stats, step):
            host = functools.partial(self._host_async, spec)
            return io_callback(host, shapes, stats, step, ordered=False)

        @jax.custom_batching.custom_vmap
        def batched(stats, step):
            return call(stats, step)

        @batched.def_vmap
        def _rule(axis_size, in_batched, stats, step):
            if not in_batched[0]:
                stats = jnp.broadcast_to(stats, (axis_size, *stats.shape))
            step = jnp.max(step) if in_batched[1] else step
            k, n = stats.shape[1], stats.shape[-1]
            flat = (
                jax.ShapeDtypeStruct((axis_size * k, n, n), stats.dtype),
                jax.ShapeDtypeStruct((axis_size * k,), jnp.float32),
                jax.ShapeDtypeStruct((axis_size * k,), jnp.bool_),
            )
            host = functools.partial(self._host_async, spec)
            out = io_callback(host, flat, stats.reshape(-1, n, n), step, ordered=False)
            out = (out[0].reshape(stats.shape), out[1].reshape(stats.shape[:2]),
                   out[2].reshape(stats.shape[:2]))
            return out, (True, True, True)

        return batched

    # -- host side ------------------------------------------------------------------------

    def _compute(self, stats64: np.ndarray, p: int, dtype: np.dtype) -> RootBatch:
        cond = self.conditioning
        if self.default_ridge:
            # The statistics' own precision bounds what their small eigenvalues mean.
            n = stats64.shape[-1]
            cond = dataclasses.replace(cond, rel_ridge=default_rel_ridge(n, np.dtype(dtype).name))
        return root_batch(
            stats64, p, dtype, method=self.method, cond=cond, residual=self.residual
        )

    def _host_sync(self, spec: _Spec, stats: np.ndarray) -> tuple:
        result = self._scheduler.run(*spec, np.array(stats, dtype=np.float64))
        return result[:3]

    def _host_async(self, spec: _Spec, stats: np.ndarray, step: np.ndarray) -> tuple:
        # The callback's buffers are only valid during the call: copy before queueing.
        stats64 = np.array(stats, dtype=np.float64)
        try:
            result = self._scheduler.ask(*spec, stats64, int(step))
        except SchedulerClosed:
            raise RuntimeError(
                f"{self!r} is closed; build a new one to keep training. close() waits for the "
                "steps dispatched from the thread that calls it: a step that reaches the host "
                "later was dispatched after close() or from another thread"
            ) from None
        return no_new_roots(stats.shape, spec.dtype) if result is None else result[:3]

    # -- control --------------------------------------------------------------------------

    def _drain(self) -> None:
        """Wait until the steps dispatched from this thread have made their host calls.

        JAX runs steps ahead of the host (on accelerators always, on a CPU when
        a step's inputs are still being computed). The callbacks are unordered
        effects, so each dispatched step leaves a runtime token that
        ``jax.effects_barrier`` waits for; JAX keeps them per thread.
        """
        if self.asynchronous:
            jax.effects_barrier()

    def metrics(self) -> dict[str, HostRootMetrics]:
        """Counters per block group label ``"name:KxNxN/dtype/pP#ordinal"`` (does not wait)."""
        return self._scheduler.metrics()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the dispatched steps have called and their jobs are done (undelivered)."""
        self._drain()
        self._scheduler.wait(timeout)

    def state_dict(self) -> dict:
        """The inputs of the jobs in flight, after the dispatched steps: checkpoint with it."""
        self._drain()
        return self._scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Replace all host state by ``state`` (from :meth:`state_dict`), resubmitting jobs."""
        self._drain()
        self._scheduler.load_state_dict(state)

    def reset(self) -> None:
        """Forget all host state: cancel the jobs in flight, clear metrics and deliveries."""
        self._drain()
        self._scheduler.reset()

    def close(self) -> None:
        """Wait for the dispatched steps, cancel queued jobs, stop the threads (idempotent).

        Steps dispatched (from this thread) before ``close`` complete with the
        roots the rules give them, so leaving a ``with`` block right after the
        training loop, without blocking on its results, is safe; the jobs they
        leave queued are dropped. Asynchronous calls after ``close`` raise;
        synchronous ones keep working. Root functions still open are closed
        at interpreter exit, without waiting for steps in flight.
        """
        try:
            self._drain()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._scheduler.close()
        HostRootFn._open.discard(self)

    def __enter__(self) -> HostRootFn:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@atexit.register
def _close_open() -> None:
    for fn in list(HostRootFn._open):
        fn._shutdown()


def host_root_fn(
    *,
    method: str = "eigh",
    ridge: float = 0.0,
    rel_ridge: float | None = None,
    floor: float | None = None,
    conditioning: Conditioning | None = None,
    asynchronous: bool = False,
    max_workers: int = 1,
    max_staleness_steps: int | None = None,
    deterministic_delay: int | None = None,
    name: str = "host",
    residual: str = "probe",
) -> HostRootFn:
    """A Shampoo ``root_fn`` that computes inverse roots on the host CPU in float64.

    Parameters
    ----------
    method : {"eigh", "newton", "auto"}, default "eigh"
        :func:`rootsolve.inv_root` method; on a CPU in float64 the
        eigendecomposition (LAPACK ``syevd``) is the fastest and most accurate.
    ridge, rel_ridge, floor : float
        Conditioning of the statistics: the root of
        ``A + (ridge + rel_ridge * lambda_max) I`` with eigenvalues floored at
        ``floor`` (see :class:`rootsolve.Conditioning`; not symmetrized: the
        statistics are Gram sums, symmetric up to rounding). ``rel_ridge=None``
        takes the device root function's default for the statistics' dtype
        (:func:`~rootsolve_optim.root_functions.default_rel_ridge`: 1e-6 for
        float64 statistics, ``max(1e-6, 4 n eps_32)`` for float32 ones), so
        the synchronous mode trains like ``device_root_fn()`` with x64 on.
    conditioning : Conditioning, optional
        The same controls as one object (exclusive with the keywords above).
    asynchronous : bool, default False
        False: the roots are computed during the step that asks for them
        (:func:`jax.pure_callback`). True: computed in background threads while
        training continues with stale roots (:func:`jax.experimental.io_callback`).
    max_workers : int, default 1
        Background threads; each block group has at most one job in flight
        (without ``deterministic_delay``), so more workers let different
        groups compute in parallel. LAPACK itself may use several cores.
    max_staleness_steps : int, optional
        Asynchronous only: roots computed from the statistics of step ``s``
        are delivered at the latest at the first call at step
        ``>= s + max_staleness_steps``, blocking if needed. 0 is synchronous.
    deterministic_delay : int, optional
        Asynchronous only: deliver the roots of the statistics of step ``s``
        exactly at the first call at step ``>= s + deterministic_delay``,
        blocking if they are not ready, and never earlier. Reproducible run
        to run and across checkpoints (with :meth:`HostRootFn.state_dict`).
        Exclusive with ``max_staleness_steps``.
    name : str, default "host"
        Prefix of the block group keys and metric labels.
    residual : {"probe", "exact"}, default "probe"
        How the residual tested against Shampoo's ``max_residual`` is
        computed, as in
        :func:`~rootsolve_optim.root_functions.device_root_fn`: ``"probe"``
        estimates ``||X^p S - I||_F / sqrt(n)`` from 8 random sign vectors,
        ``"exact"`` forms ``X^p S`` (for p = 4, three more n x n products per
        root: on a 2-core CPU 128 roots of n = 256 took 1.2 s with it and
        0.5 s without).

    Returns
    -------
    HostRootFn
        A :class:`~rootsolve_optim.root_functions.RootFn`
        ``(stats, p, step) -> (roots, residual, converged)``; also a context
        manager (``close()`` stops its threads).

    Notes
    -----
    Shampoo calls its root function only at refresh steps (every
    ``preconditioning_compute_steps`` from ``start_preconditioning_step``),
    so asynchronous roots arrive at a later refresh: with period ``P``, a
    ``deterministic_delay`` in ``1..P`` means "the roots of one refresh are
    used from the next one on". Until the first roots arrive Shampoo uses
    its scaled-identity preconditioner.

    With several CPU devices in one program
    (``--xla_force_host_platform_device_count``), a callback runs on one
    device while the others wait for it in a collective, on XLA's few worker
    threads: an 8-device training step on two cores deadlocked that way, so
    Shampoo's default keeps the device roots there.

    References
    ----------
    R. Anil, V. Gupta, T. Koren, K. Regan, Y. Singer, "Scalable Second Order
    Optimization for Deep Learning", arXiv 2002.09018, sec. 5.

    Examples
    --------
    >>> import rootsolve_optim as ro
    >>> with ro.host_root_fn(asynchronous=True, deterministic_delay=10) as root_fn:
    ...     opt = ro.shampoo(1e-3, root_fn=root_fn)  # doctest: +SKIP
    """
    check_choice(method, "method", _METHODS)
    default_ridge = conditioning is None and rel_ridge is None
    if conditioning is None:
        rel_ridge = default_rel_ridge(1, "float64") if rel_ridge is None else rel_ridge
        # Gram sums are symmetric up to the rounding of G G^T, which eigh (one triangle)
        # and Newton tolerate: no symmetrizing pass, as in device_root_fn.
        conditioning = Conditioning(ridge=ridge, rel_ridge=rel_ridge, floor=floor, symmetrize=False)
    elif not isinstance(conditioning, Conditioning):
        raise TypeError(f"conditioning must be a Conditioning, got {type(conditioning).__name__}")
    elif (ridge, rel_ridge, floor) != (0.0, None, None):
        raise ValueError("pass either conditioning= or ridge/rel_ridge/floor, not both")
    if not isinstance(asynchronous, bool):
        raise TypeError(f"asynchronous must be a bool, got asynchronous={asynchronous!r}")
    if max_workers is None:
        raise ValueError("max_workers must be an integer >= 1, got max_workers=None")
    check_optional_int("max_workers", max_workers, 1)
    check_optional_int("max_staleness_steps", max_staleness_steps, 0)
    check_optional_int("deterministic_delay", deterministic_delay, 0)
    if not asynchronous and (max_staleness_steps is not None or deterministic_delay is not None):
        raise ValueError(
            "max_staleness_steps and deterministic_delay need asynchronous=True, got "
            f"{max_staleness_steps=}, {deterministic_delay=}"
        )
    if max_staleness_steps is not None and deterministic_delay is not None:
        raise ValueError(
            "deterministic_delay already bounds staleness; pass one of max_staleness_steps="
            f"{max_staleness_steps} and deterministic_delay={deterministic_delay}"
        )
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r}")
    check_choice(residual, "residual", ("probe", "exact"))
    return HostRootFn(
        method=method, conditioning=conditioning, default_ridge=default_ridge,
        asynchronous=asynchronous, max_workers=max_workers, max_staleness_steps=max_staleness_steps,
        deterministic_delay=deterministic_delay, name=name, residual=residual,
    )
