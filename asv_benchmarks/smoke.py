"""The smoke-test sizes of the benchmark suite, chosen by ``ROOTSOLVE_BENCH=smoke``.

Every ``benchmarks_*.py`` module builds its parameter grids with :func:`sized`::

    SIZES = sized(full=(64, 256, 1024), smoke=(64,))

so that ``ROOTSOLVE_BENCH=smoke`` (set by ``make bench`` and, by default,
``make dashboard``) runs every benchmark class of every module, with every
method and peer, on small problems only; unset (or ``full``) runs the whole
grid. The variable is read when a module is imported: asv passes the
environment on to the processes it runs benchmarks in.
"""

from __future__ import annotations

import os
from typing import TypeVar

__all__ = ["ENV", "MODES", "mode", "sized"]

#: The environment variable that picks the grid.
ENV = "ROOTSOLVE_BENCH"
#: Its values; unset means ``"full"``.
MODES = ("full", "smoke")

T = TypeVar("T")


def mode() -> str:
    """``"smoke"`` or ``"full"``, from :data:`ENV`; any other value is refused."""
    value = os.environ.get(ENV, "full").strip().lower() or "full"
    if value not in MODES:
        raise ValueError(f"{ENV} must be one of {MODES}, got {ENV}={value!r}")
    return value


def sized(*, full: T, smoke: T) -> T:
    """``smoke`` under ``ROOTSOLVE_BENCH=smoke``, ``full`` otherwise."""
    return smoke if mode() == "smoke" else full
