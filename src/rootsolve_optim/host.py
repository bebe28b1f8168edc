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

Host-side state is keyed per block group (see :class:`HostRootFn`).
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import functools
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from rootsolve import Conditioning, inv_root
from rootsolve._validation import check_choice, check_order

from .preconditioner import check_root_call, default_rel_ridge

__all__ = ["host_root_fn", "HostRootFn", "HostRootMetrics"]

_METHODS = ("eigh", "newton", "auto")
_STATE_VERSION = 1


class HostRootMetrics(NamedTuple):
    """Counters of one block group, read on the host with :meth:`HostRootFn.metrics`.

    Attributes
    ----------
    calls : int
        Times the optimizer asked this group for roots.
    submitted : int
        Root batches computed (or queued) on the host.
    skipped : int
        Calls whose statistics were not submitted because a batch was still
        in flight (asynchronous mode without ``deterministic_delay``).
    delivered : int
        Calls that returned new roots (``converged`` true where they succeeded).
    blocked : int
        Calls that had to wait for the host (staleness bound or fixed delay).
    host_seconds_last, host_seconds_total : float
        Wall time of the host computation of one root batch (last, summed).
    wait_seconds_total : float
        Time the calls spent blocked waiting for the host.
    staleness_last, staleness_max : int
        Steps between the statistics a delivered batch was computed from and
        the step it was delivered at (0 in synchronous mode).
    """

    calls: int = 0
    submitted: int = 0
    skipped: int = 0
    delivered: int = 0
    blocked: int = 0
    host_seconds_last: float = 0.0
    host_seconds_total: float = 0.0
    wait_seconds_total: float = 0.0
    staleness_last: int = 0
    staleness_max: int = 0


class _Result(NamedTuple):
    roots: np.ndarray  # (..., n, n), the statistics' dtype
    residual: np.ndarray  # (...,) float32
    converged: np.ndarray  # (...,) bool
    seconds: float


@dataclasses.dataclass
class _Job:
    step: int
    stats: np.ndarray  # float64 copy, kept for state_dict()
    future: Future


class _Spec(NamedTuple):
    """What a traced call knows of its block group; the group itself is looked up per call."""

    label: str
    p: int
    dtype: np.dtype


@dataclasses.dataclass
class _Group:
    label: str
    p: int
    dtype: np.dtype
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    jobs: collections.deque = dataclasses.field(default_factory=collections.deque)
    last: tuple[int, _Job] | None = None  # (step delivered at, job) of the newest delivery
    metrics: HostRootMetrics = HostRootMetrics()


def _host_inv_root(
    stats64: np.ndarray, p: int, method: str, cond: Conditioning, residual: str = "probe"
) -> tuple:
    """``stats^(-1/p)`` for a stack of SPD matrices with numpy (LAPACK) in float64.

    A matrix whose root fails (non-finite entries, negative or zero
    eigenvalues beyond what the conditioning handles) gets ``converged=False``
    instead of an exception, so the optimizer keeps its previous root for that
    block only.
    """
    n = stats64.shape[-1]
    flat = stats64.reshape(-1, n, n)
    root = functools.partial(
        inv_root, p=p, method=method, conditioning=cond, return_info=True, residual=residual
    )
    try:
        roots, info = root(flat)
        res, converged = np.asarray(info.residual), np.asarray(info.converged)
    except (np.linalg.LinAlgError, ValueError):
        roots = np.zeros_like(flat)
        res = np.full(flat.shape[0], np.inf)
        converged = np.zeros(flat.shape[0], dtype=bool)
        for i, a in enumerate(flat):
            try:
                roots[i], info = root(a)
                res[i], converged[i] = info.residual, info.converged
            except (np.linalg.LinAlgError, ValueError):
                pass
    converged = converged & np.all(np.isfinite(roots), axis=(-2, -1))
    # A NaN residual with converged False means "no new root yet" to Shampoo; a failure
    # must read as one.
    res = np.where(~converged & np.isnan(res), np.inf, res)
    batch = stats64.shape[:-2]
    return roots.reshape(stats64.shape), res.reshape(batch), converged.reshape(batch)


def _root_trace() -> Any:
    """The outermost trace the current call is being staged into, or None when eager.

    Used only to number repeated calls with the same signature within one
    traced program (``jax._src`` internals; falls back to None if they move).
    """
    try:
        from jax._src import core

        trace = core.trace_ctx.trace
    except (ImportError, AttributeError):
        return None
    if type(trace).__name__ == "EvalTrace":
        return None
    while True:
        parent = getattr(trace, "parent_trace", None)
        if parent is None or type(parent).__name__ == "EvalTrace":
            return trace
        trace = parent


def _nothing(shape: tuple, dtype: np.dtype) -> tuple:
    batch = shape[:-2]
    return (
        np.zeros(shape, dtype=dtype),
        np.full(batch, np.nan, dtype=np.float32),
        np.zeros(batch, dtype=bool),
    )


def _check_steps(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be None or an integer >= 0, got {name}={value!r}")
    return value


class HostRootFn:
    """A ``root_fn`` for :func:`rootsolve_optim.scale_by_shampoo` computing on the host.

    Build it with :func:`host_root_fn`. Calling it (inside or outside ``jit``)
    with ``(stats, p, step)`` returns ``(roots, residual, converged)``.

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
    from a checkpoint with ``deterministic_delay`` continues exactly like the
    uninterrupted one. A call at a step not after a group's pending jobs (a
    rewound run) discards them; a call repeating the step of the last
    delivery (Shampoo repeats the step count after skipping a non-finite
    update) delivers the same roots again. :meth:`reset` forgets everything.
    """

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
        self._groups: dict[str, _Group] = {}
        self._lock = threading.Lock()
        self._ordinals: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
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
            as a failure), inf where a root failed.
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
        trace = _root_trace()
        with self._lock:
            ordinal = 0
            if trace is not None:
                seen = self._ordinals.setdefault(trace, collections.Counter())
                ordinal = seen[sig]
                seen[sig] += 1
        spec = _Spec(f"{self.name}:{sig}#{ordinal}", p, np.dtype(stats.dtype))
        self._group(spec)
        return spec

    def _group(self, spec: _Spec) -> _Group:
        """The state of a group, created on first use (and again after ``reset``)."""
        with self._lock:
            group = self._groups.get(spec.label)
            if group is None:
                group = self._groups[spec.label] = _Group(*spec)
            return group

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

    def _compute(self, stats64: np.ndarray, p: int, dtype: np.dtype) -> _Result:
        start = time.perf_counter()
        cond = self.conditioning
        if self.default_ridge:
            # The statistics' own precision bounds what their small eigenvalues mean.
            n = stats64.shape[-1]
            cond = dataclasses.replace(cond, rel_ridge=default_rel_ridge(n, np.dtype(dtype).name))
        roots, residual, converged = _host_inv_root(
            stats64, p, self.method, cond, self.residual
        )
        return _Result(
            roots.astype(dtype), residual.astype(np.float32), converged,
            time.perf_counter() - start,
        )

    def _host_sync(self, spec: _Spec, stats: np.ndarray) -> tuple:
        group = self._group(spec)
        result = self._compute(np.array(stats, dtype=np.float64), group.p, group.dtype)
        with group.lock:
            group.metrics = _count(group.metrics, result, staleness=0, submitted=1)
        return result.roots, result.residual, result.converged

    def _host_async(self, spec: _Spec, stats: np.ndarray, step: np.ndarray) -> tuple:
        # The callback's buffers are only valid during the call: copy before queueing.
        stats64 = np.array(stats, dtype=np.float64)
        t = int(step)
        group = self._group(spec)
        with group.lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed; build a new one to keep training")
            _requeue_replayed(group, t)
            _drop_foreign(group, t, stats64.shape)
            group.metrics = group.metrics._replace(calls=group.metrics.calls + 1)
            if self.deterministic_delay is not None:
                job = self._due_fixed(group, stats64, t)
            else:
                job = self._due_bounded(group, stats64, t)
            if job is None:
                return _nothing(stats.shape, group.dtype)
            return self._deliver(group, job, t)

    def _submit(self, group: _Group, stats64: np.ndarray, t: int) -> None:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        self.max_workers, thread_name_prefix="rootsolve-host-root"
                    )
        future = self._executor.submit(self._compute, stats64, group.p, group.dtype)
        group.jobs.append(_Job(t, stats64, future))
        group.metrics = group.metrics._replace(submitted=group.metrics.submitted + 1)

    def _due_fixed(self, group: _Group, stats64: np.ndarray, t: int) -> _Job | None:
        """Every call submits; the newest job with ``step + d <= t`` is due now."""
        self._submit(group, stats64, t)
        due = [job for job in group.jobs if job.step + self.deterministic_delay <= t]
        for old in due[:-1]:
            old.future.cancel()
            group.jobs.remove(old)
        if due:
            group.jobs.remove(due[-1])
        return due[-1] if due else None

    def _due_bounded(self, group: _Group, stats64: np.ndarray, t: int) -> _Job | None:
        """At most one job in flight; deliver it once done, or once it is too stale."""
        ready = None
        if group.jobs and group.jobs[0].future.done():
            ready = group.jobs.popleft()
        if group.jobs:
            group.metrics = group.metrics._replace(skipped=group.metrics.skipped + 1)
        else:
            self._submit(group, stats64, t)
        bound = self.max_staleness_steps
        if bound is not None and t - group.jobs[0].step >= bound:
            ready = group.jobs.popleft()
        return ready

    def _deliver(self, group: _Group, job: _Job, t: int) -> tuple:
        waited = not job.future.done()
        start = time.perf_counter()
        result = job.future.result()
        wait = time.perf_counter() - start
        group.metrics = _count(
            group.metrics, result, staleness=t - job.step, blocked=int(waited), wait=wait
        )
        group.last = (t, job)
        return result.roots, result.residual, result.converged

    # -- control --------------------------------------------------------------------------

    def metrics(self) -> dict[str, HostRootMetrics]:
        """Counters per block group label ``"name:KxNxN/dtype/pP#ordinal"``."""
        with self._lock:
            groups = list(self._groups.values())
        out = {}
        for group in groups:
            with group.lock:
                out[group.label] = group.metrics
        return out

    def wait(self, timeout: float | None = None) -> None:
        """Block until every job in flight has finished (they stay undelivered)."""
        with self._lock:
            groups = list(self._groups.values())
        futures = []
        for group in groups:
            with group.lock:
                futures.extend(job.future for job in group.jobs)
        for future in futures:
            if not future.cancelled():
                future.exception(timeout=timeout)

    def state_dict(self) -> dict:
        """Host state to store with a checkpoint: the inputs of the jobs in flight."""
        with self._lock:
            groups = list(self._groups.values())
        pending = {}
        for group in groups:
            with group.lock:
                pending[group.label] = {
                    "p": group.p,
                    "dtype": group.dtype.name,
                    "steps": [job.step for job in group.jobs],
                    "stats": [job.stats for job in group.jobs],
                }
        return {"version": _STATE_VERSION, "pending": pending}

    def load_state_dict(self, state: dict) -> None:
        """Replace all host state by ``state`` (from :meth:`state_dict`), resubmitting jobs."""
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise ValueError(
                f"state must come from HostRootFn.state_dict() (version {_STATE_VERSION}), "
                f"got {type(state).__name__} with version "
                f"{state.get('version') if isinstance(state, dict) else None!r}"
            )
        self.reset()
        with self._lock:
            for label, entry in state["pending"].items():
                group = _Group(label, int(entry["p"]), np.dtype(entry["dtype"]))
                self._groups[label] = group
        for label, entry in state["pending"].items():
            group = self._groups[label]
            with group.lock:
                for step, stats in zip(entry["steps"], entry["stats"], strict=True):
                    self._submit(group, np.array(stats, dtype=np.float64), int(step))

    def reset(self) -> None:
        """Forget all host state: cancel the jobs in flight, clear metrics and deliveries."""
        self._cancel_all()
        with self._lock:
            self._groups = {}

    def _cancel_all(self) -> None:
        with self._lock:
            groups = list(self._groups.values())
        for group in groups:
            with group.lock:
                for job in group.jobs:
                    job.future.cancel()
                group.jobs.clear()

    def close(self) -> None:
        """Cancel queued jobs and stop the worker threads (idempotent).

        Asynchronous calls after ``close`` raise; synchronous ones keep working.
        Root functions still open are closed at interpreter exit; by then the
        standard library has already let the worker threads finish the jobs
        they held (at most one per group without ``deterministic_delay``), so
        call ``close()`` (or use ``with``) to drop queued work early.
        """
        self._closed = True
        self._cancel_all()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        HostRootFn._open.discard(self)

    def __enter__(self) -> HostRootFn:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _requeue_replayed(group: _Group, t: int) -> None:
    """A call at a step already answered (the optimizer skipped that step) gets the same roots.

    Shampoo does not advance its step count when it skips an update with
    non-finite values, so the next call repeats the step; putting the job
    delivered then back in front makes the repeated call deliver it again.
    """
    if group.last is not None and group.last[0] >= t:
        job = group.last[1]
        group.last = None
        if job.step < t:
            group.jobs.appendleft(job)


def _drop_foreign(group: _Group, t: int, shape: tuple) -> None:
    """Drop jobs that cannot be delivered to this call.

    Jobs from steps at or after ``t`` belong to an abandoned (rewound or
    replayed) timeline; jobs of another shape were submitted by another
    program with the same key (e.g. the same group with and without ``vmap``).
    """
    for job in [j for j in group.jobs if j.step >= t or j.stats.shape != shape]:
        job.future.cancel()
        group.jobs.remove(job)


def _count(
    m: HostRootMetrics, result: _Result, *, staleness: int, submitted: int = 0,
    blocked: int = 0, wait: float = 0.0,
) -> HostRootMetrics:
    return m._replace(
        calls=m.calls + submitted,
        submitted=m.submitted + submitted,
        delivered=m.delivered + 1,
        blocked=m.blocked + blocked,
        host_seconds_last=result.seconds,
        host_seconds_total=m.host_seconds_total + result.seconds,
        wait_seconds_total=m.wait_seconds_total + wait,
        staleness_last=staleness,
        staleness_max=max(m.staleness_max, staleness),
    )


@atexit.register
def _close_open() -> None:
    for fn in list(HostRootFn._open):
        fn.close()


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
        ``floor`` (see :class:`rootsolve.Conditioning`). ``rel_ridge=None``
        takes the device root function's default for the statistics' dtype
        (:func:`~rootsolve_optim.preconditioner.default_rel_ridge`: 1e-6 for
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
        :func:`~rootsolve_optim.preconditioner.device_root_fn`: ``"probe"``
        estimates ``||X^p S - I||_F / sqrt(n)`` from 8 random sign vectors,
        ``"exact"`` forms ``X^p S`` (for p = 4, three more n x n products per
        root: on a 2-core CPU 128 roots of n = 256 took 1.2 s with it and
        0.5 s without).

    Returns
    -------
    HostRootFn
        A :class:`~rootsolve_optim.preconditioner.RootFn`
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
        conditioning = Conditioning(ridge=ridge, rel_ridge=rel_ridge, floor=floor)
    elif not isinstance(conditioning, Conditioning):
        raise TypeError(f"conditioning must be a Conditioning, got {type(conditioning).__name__}")
    elif (ridge, rel_ridge, floor) != (0.0, None, None):
        raise ValueError("pass either conditioning= or ridge/rel_ridge/floor, not both")
    if not isinstance(asynchronous, bool):
        raise TypeError(f"asynchronous must be a bool, got asynchronous={asynchronous!r}")
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"max_workers must be an integer >= 1, got max_workers={max_workers!r}")
    max_staleness_steps = _check_steps("max_staleness_steps", max_staleness_steps)
    deterministic_delay = _check_steps("deterministic_delay", deterministic_delay)
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
        asynchronous=asynchronous,
        max_workers=max_workers, max_staleness_steps=max_staleness_steps,
        deterministic_delay=deterministic_delay, name=name, residual=residual,
    )
