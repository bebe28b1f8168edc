"""The one place where rootsolve_optim reads JAX internals (``jax._src``).

Why: a host root function keeps separate host state for each block group,
and two groups of the same shape inside one traced program are told apart
only by the order in which they are traced. Numbering them needs to know
which program is being traced, and JAX has no public API for the current
trace. Everything here degrades to "not tracing" if the internals move, so a
JAX upgrade can at worst merge the state of same-shaped groups, never fail.
"""

from __future__ import annotations

from typing import Any

__all__ = ["staging_trace"]


def staging_trace() -> Any:
    """The outermost trace the current call is being staged into, or None when eager.

    Used as a weak-referenceable key: its identity is the traced program.
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
