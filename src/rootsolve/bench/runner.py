"""Timing and checking methods on problems: the measuring loop of ``python -m rootsolve compare``.

:func:`measure` times one :class:`~rootsolve.bench.methods.Method` on one
:class:`~rootsolve.testing.Problem` (median of a few calls, ``jit``
compilation excluded) and checks its answer against the problem's
reference; :func:`run` does so for every applicable method on every problem.
:func:`environment` and :func:`load_warning` say what the numbers were
measured on, and whether other processes made them unreliable.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..testing.problems import Problem, inverse_root_residual, relative_error
from .methods import BASELINE, BASELINES, Method, Runner

__all__ = [
    "Row",
    "TIME_BUDGET_S",
    "SETTLE_S",
    "time_runner",
    "measure",
    "run",
    "environment",
    "LOAD_LIMIT",
    "load_warning",
]


@dataclass
class Row:
    """One method's result on one problem (all plain JSON values)."""

    method: str
    time_s: float | None = None
    times_s: list[float] = field(default_factory=list)
    time_ratio: float | None = None
    rel_error: float | None = None
    residual: float | None = None
    iterations: int | None = None
    gemms: int | None = None
    status: str = "ok"


#: Stop repeating a method once its timed calls add up to this many seconds.
TIME_BUDGET_S = 2.0
#: Pause after a jax method. XLA's CPU worker threads keep spinning for a few
#: tens of milliseconds after a computation; a BLAS call made meanwhile
#: shares the cores with them and runs up to twice as slow on 2 cores.
SETTLE_S = 0.1


def time_runner(
    runner: Runner, repeats: int, budget_s: float = TIME_BUDGET_S
) -> tuple[list[float], Any]:
    """Wall times of up to ``repeats`` calls of ``runner``, and the last result.

    Calls stop early once they add up to ``budget_s`` seconds (at least one
    call is made): a call that long is timed well enough by few samples.
    """
    times, out = [], None
    while len(times) < repeats and sum(times) < budget_s:
        t0 = time.perf_counter()
        out = runner()
        times.append(time.perf_counter() - t0)
    return times, out


def measure(prob: Problem, method: Method, repeats: int) -> Row:
    """Time ``method`` on ``prob`` and check its answer; failures become the row's status.

    The time is the median of up to ``repeats`` calls (see :func:`time_runner`).
    ``jit`` functions are called once first, untimed, to compile them.
    """
    row = Row(method.name)
    try:
        runner = method.prepare(prob)
        if method.counts is not None:
            row.iterations, row.gemms = method.counts(prob)
        if method.jit:
            runner()
        times, x = time_runner(runner, repeats)
        x = np.asarray(x)
        row.times_s = times
        row.time_s = float(np.median(times))
        row.rel_error = relative_error(x, prob.reference)
        row.residual = inverse_root_residual(x, prob.a, prob.p)
    except Exception as exc:  # a failing peer is a result, not a crash
        row.status = f"error: {type(exc).__name__}: {exc}"
    return row


def _add_ratios(rows: list[Row], baseline: str = BASELINE) -> None:
    base = next((r.time_s for r in rows if r.method == baseline and r.time_s), None)
    for r in rows:
        if base and r.time_s is not None:
            r.time_ratio = r.time_s / base


def run(
    problems: Sequence[Problem],
    methods: Sequence[Method],
    repeats: int,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure every applicable method on every problem.

    Returns one dict per problem: ``{"problem": ..., "rows": [...],
    "skipped": {method: reason}}``.
    """
    results = []
    for prob in problems:
        rows, skipped = [], {}
        for m in methods:
            reason = m.unavailable() or (
                None if prob.family in m.families else f"no {prob.family} support"
            ) or (m.skip(prob) if m.skip else None)
            if reason is None:
                if progress:
                    progress(f"n={prob.n} p={prob.p}: {m.name}")
                rows.append(measure(prob, m, repeats))
                if m.jit:
                    time.sleep(SETTLE_S)
            else:
                skipped[m.name] = reason
            if progress:
                progress("")
        _add_ratios(rows, BASELINES.get(prob.family, BASELINE))
        results.append(
            {"problem": prob.describe(), "rows": [asdict(r) for r in rows], "skipped": skipped}
        )
    return results


def environment() -> dict[str, Any]:
    """Versions and machine, recorded with every JSON report."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    for mod in ("numpy", "scipy", "rootsolve", "jax", "optax"):
        if importlib.util.find_spec(mod) is not None:
            info[mod] = getattr(__import__(mod), "__version__", "?")
    return info


#: Load average per CPU above which timings are flagged: multithreaded BLAS
#: wants every core, and a core that another process holds slows a call that
#: waits for its slowest thread by up to orders of magnitude.
LOAD_LIMIT = 0.25


def load_warning(env: dict[str, Any] | None = None) -> str | None:
    """A warning when the 1-minute load average says other processes hold the CPUs, or None.

    ``env`` is an :func:`environment` record taken before measuring (so the
    load is other processes'); without it the load is read now.
    """
    env = env if env is not None else environment()
    load, cpus = env.get("load_average_1min"), env.get("cpus") or 1
    if load is None or load <= LOAD_LIMIT * cpus:
        return None
    return (
        f"warning: load average {load:.2f} on {cpus} CPUs (above {LOAD_LIMIT * cpus:.2f}): "
        "other processes are using the cores, so the timings are unreliable; "
        "rerun on a quiet machine for numbers to quote"
    )
