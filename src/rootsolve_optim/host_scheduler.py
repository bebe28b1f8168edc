"""When host roots are computed and which ones each call receives: plain Python, no JAX.

:class:`HostScheduler` holds the host side of asynchronous Shampoo roots
(Anil et al., arXiv 2002.09018, sec. 5): per block group, the jobs in flight
on a thread pool, the rule that decides which finished (or late) job a call
receives, the counters, and the state a checkpoint must keep. It computes
nothing itself: the function that turns statistics into a :class:`RootBatch`
is given to it, so its rules are testable with any stand-in.

The rules, for a call at step ``t`` with the group's newest statistics:

* ``deterministic_delay=d``: every call submits; the newest job of a step
  ``s <= t - d`` is delivered (waiting for it if needed), older due jobs
  are dropped; nothing is delivered early.
* otherwise: at most one job in flight per group; a call delivers it once it
  has finished (or, with ``max_staleness_steps=b``, waits for it once
  ``t - s >= b``) and submits its own statistics only when nothing is in flight.
* A call at a step not after a pending job's step (a rewound run) drops that
  job; a call at the step of the last delivery (the optimizer repeats a step
  it skipped) receives the same batch again.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

__all__ = ["HostScheduler", "HostRootMetrics", "RootBatch", "SchedulerClosed"]

STATE_VERSION = 1


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


class RootBatch(NamedTuple):
    """The roots of one group's statistics, as the compute function returns them."""

    roots: np.ndarray  # (k, n, n), the statistics' dtype
    residual: np.ndarray  # (k,) float32
    converged: np.ndarray  # (k,) bool
    seconds: float  # wall time of the computation


class SchedulerClosed(RuntimeError):
    """Raised by a call or a submission after :meth:`HostScheduler.close`."""


@dataclasses.dataclass
class _Job:
    step: int
    stats: np.ndarray  # float64 copy, kept for state_dict()
    future: Future


@dataclasses.dataclass
class _Group:
    label: str
    p: int
    dtype: np.dtype
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    jobs: collections.deque = dataclasses.field(default_factory=collections.deque)
    last: tuple[int, _Job] | None = None  # (step delivered at, job) of the newest delivery
    metrics: HostRootMetrics = HostRootMetrics()


Compute = Callable[[np.ndarray, int, np.dtype], RootBatch]


class HostScheduler:
    """Jobs, delivery rules and checkpoint state of host roots, per block group.

    Parameters
    ----------
    compute : callable ``(stats64, p, dtype) -> RootBatch``
        The root computation; runs on the worker threads (asynchronous calls)
        or in the calling thread (:meth:`run`). It must not call back into JAX
        runtime functions that wait for the caller.
    max_workers : int
        Threads of the pool, started at the first submission.
    max_staleness_steps, deterministic_delay : int or None
        The delivery rule (see the module docstring); at most one is set.

    Notes
    -----
    Every group has its own lock, held for the whole of a call (including a
    wait for its job), so calls of one group are served one at a time and
    calls of different groups never wait for each other. Options are
    validated by :func:`rootsolve_optim.host_root_fn`, not here.
    """

    def __init__(
        self,
        compute: Compute,
        *,
        max_workers: int = 1,
        max_staleness_steps: int | None = None,
        deterministic_delay: int | None = None,
    ) -> None:
        self.compute = compute
        self.max_workers = max_workers
        self.max_staleness_steps = max_staleness_steps
        self.deterministic_delay = deterministic_delay
        self._groups: dict[str, _Group] = {}
        self._lock = threading.Lock()  # guards _groups, _executor and _closed
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    def group(self, label: str, p: int, dtype: Any) -> _Group:
        """The state of a group, created on first use (and again after :meth:`reset`)."""
        with self._lock:
            group = self._groups.get(label)
            if group is None:
                group = self._groups[label] = _Group(label, p, np.dtype(dtype))
            return group

    # -- calls ----------------------------------------------------------------------------

    def run(self, label: str, p: int, dtype: Any, stats64: np.ndarray) -> RootBatch:
        """Compute now, in the calling thread (the synchronous mode; works after close)."""
        group = self.group(label, p, dtype)
        result = self.compute(stats64, group.p, group.dtype)
        with group.lock:
            group.metrics = _count(group.metrics, result, staleness=0, submitted=1)
        return result

    def ask(
        self, label: str, p: int, dtype: Any, stats64: np.ndarray, step: int
    ) -> RootBatch | None:
        """Submit ``stats64`` of step ``step`` as the rules say; the batch due now, or None.

        ``stats64`` must be a float64 array the caller no longer writes to.
        Raises :class:`SchedulerClosed` after :meth:`close`.
        """
        group = self.group(label, p, dtype)
        with group.lock:
            if self._closed:
                raise SchedulerClosed("the host root scheduler is closed")
            _requeue_replayed(group, step)
            _drop_foreign(group, step, stats64.shape)
            group.metrics = group.metrics._replace(calls=group.metrics.calls + 1)
            if self.deterministic_delay is not None:
                job = self._due_fixed(group, stats64, step)
            else:
                job = self._due_bounded(group, stats64, step)
            return None if job is None else self._deliver(group, job, step)

    def _submit(self, group: _Group, stats64: np.ndarray, step: int) -> None:
        with self._lock:
            if self._closed:
                raise SchedulerClosed("the host root scheduler is closed")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.max_workers, thread_name_prefix="rootsolve-host-root"
                )
            future = self._executor.submit(self.compute, stats64, group.p, group.dtype)
        group.jobs.append(_Job(step, stats64, future))
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

    def _deliver(self, group: _Group, job: _Job, t: int) -> RootBatch:
        waited = not job.future.done()
        start = time.perf_counter()
        result = job.future.result()
        wait = time.perf_counter() - start
        group.metrics = _count(
            group.metrics, result, staleness=t - job.step, blocked=int(waited), wait=wait
        )
        group.last = (t, job)
        return result

    # -- control --------------------------------------------------------------------------

    def _snapshot(self) -> list[_Group]:
        with self._lock:
            return list(self._groups.values())

    def metrics(self) -> dict[str, HostRootMetrics]:
        """Counters per group label."""
        out = {}
        for group in self._snapshot():
            with group.lock:
                out[group.label] = group.metrics
        return out

    def wait(self, timeout: float | None = None) -> None:
        """Block until every job in flight has finished (they stay undelivered)."""
        futures = []
        for group in self._snapshot():
            with group.lock:
                futures.extend(job.future for job in group.jobs)
        for future in futures:
            if not future.cancelled():
                future.exception(timeout=timeout)

    def state_dict(self) -> dict:
        """The inputs of the jobs in flight, per group: what a checkpoint must keep."""
        pending = {}
        for group in self._snapshot():
            with group.lock:
                pending[group.label] = {
                    "p": group.p,
                    "dtype": group.dtype.name,
                    "steps": [job.step for job in group.jobs],
                    "stats": [job.stats for job in group.jobs],
                }
        return {"version": STATE_VERSION, "pending": pending}

    def load_state_dict(self, state: dict) -> None:
        """Replace all state by ``state`` (from :meth:`state_dict`), resubmitting its jobs."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(
                f"state must come from HostRootFn.state_dict() (version {STATE_VERSION}), "
                f"got {type(state).__name__} with version "
                f"{state.get('version') if isinstance(state, dict) else None!r}"
            )
        if self._closed:
            raise SchedulerClosed("the host root scheduler is closed; load into a new one")
        self.reset()
        for label, entry in state["pending"].items():
            group = self.group(label, int(entry["p"]), entry["dtype"])
            with group.lock:
                for step, stats in zip(entry["steps"], entry["stats"], strict=True):
                    self._submit(group, np.array(stats, dtype=np.float64), int(step))

    def reset(self) -> None:
        """Forget all state: cancel the jobs in flight, clear metrics and deliveries."""
        self._cancel_all()
        with self._lock:
            self._groups = {}

    def _cancel_all(self) -> None:
        for group in self._snapshot():
            with group.lock:
                for job in group.jobs:
                    job.future.cancel()
                group.jobs.clear()

    def close(self) -> None:
        """Refuse further calls, cancel queued jobs and stop the threads (idempotent).

        A call in progress finishes first (its group's lock is held meanwhile);
        a job a worker has started runs to its end.
        """
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        self._cancel_all()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


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
    m: HostRootMetrics, result: RootBatch, *, staleness: int, submitted: int = 0,
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
