"""Small helpers for code that runs under ``jit``: branches, step schedules, finiteness.

Each works both on Python values, where it decides at trace time and adds
nothing to the program, and on traced arrays. Nothing here knows about a
particular optimizer.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

__all__ = [
    "after",
    "all_true",
    "computed_once",
    "concat",
    "due",
    "finite",
    "is_static",
    "squares_finite",
    "started",
    "when",
]


def is_static(x: Any) -> bool:
    """Whether ``x`` is a Python (or numpy scalar) number, known at trace time (bools are not)."""
    return isinstance(x, numbers.Number) and not isinstance(x, bool)


def when(pred: Any, on_true: Callable, on_false: Callable, operands: Any) -> Any:
    """``on_true(operands)`` if ``pred`` else ``on_false(operands)``.

    Static when ``pred`` is a Python bool, else ``lax.cond``. The arrays go in
    as operands, not closures, so that the branches see traced values even
    when the update runs eagerly (rootsolve validates concrete arrays eagerly).
    """
    if isinstance(pred, bool):
        return on_true(operands) if pred else on_false(operands)
    return lax.cond(pred, on_true, on_false, operands)


def all_true(flags: list[Any]) -> jax.Array:
    """The logical and of boolean scalars (True for none)."""
    return functools.reduce(jnp.logical_and, flags, jnp.asarray(True))


def computed_once(flag: Any) -> Any:
    """The boolean scalar ``flag``, computed by one kernel and read from memory by the rest.

    XLA copies a cheap scalar computation into every kernel (fusion) that
    reads its result, so a flag made of many per-parameter checks (finite
    gradients, finite norms) would be recomputed, with all its inputs, in
    each kernel that selects with it: the generated code, and with it XLA's
    CPU compile time, grows with the parameters times the checks. A square
    root is among the operations XLA never duplicates into several
    consumers, so ``sqrt(float(flag)) > 0`` (exactly ``flag``) is computed
    once. A Python bool passes through.
    """
    if isinstance(flag, bool):
        return flag
    return jnp.sqrt(jnp.asarray(flag).astype(jnp.float32)) > 0


def finite(x: jax.Array, axis: Any = None) -> jax.Array:
    """Whether every entry of ``x`` (along ``axis``; all by default) is finite.

    One sum of ``x * 0``: 0 for finite entries, NaN for an infinite or NaN one,
    and a sum propagates NaN (IEEE 754 addition). Cheaper than
    ``all(isfinite(x))``, which XLA's CPU backend lowers to a materialized
    boolean array and a second reduction; and unlike a max-reduction of ``|x|``,
    which XLA's CPU backend vectorizes with instructions that drop NaN (a NaN in
    a 256 x 256 array went unseen under ``jit``).
    """
    return jnp.isfinite(jnp.sum(x * 0, axis=axis))


def squares_finite(x: jax.Array) -> jax.Array:
    """Whether every entry of ``x`` and its square are finite (``x^2`` feeds second moments).

    One sum of ``x * x * 0``, NaN as soon as a square is not finite (see :func:`finite`).
    """
    return jnp.isfinite(jnp.sum(x * x * 0))


def due(count: jax.Array, start: Any, every: Any) -> Any:
    """Whether step ``count`` is ``start + j * every`` for some ``j >= 0``.

    The Python ``True`` when that holds for every step (``start == 0`` and
    ``every == 1``, both static), so that :func:`when` drops the branch.
    """
    if is_static(start) and is_static(every) and every == 1 and start == 0:
        return True
    return (count >= start) & ((count - start) % every == 0)


def started(count: jax.Array, start: Any) -> Any:
    """Whether step ``count >= start`` (the Python ``True`` for a static ``start == 0``)."""
    if is_static(start) and start == 0:
        return True
    return count >= start


def after(x: jax.Array, previous: jax.Array | None) -> jax.Array:
    """``x``, computed only once ``previous`` is (an exact 0 from it is added).

    Chains batched CPU LAPACK calls (eigh, QR) with a real data dependency: jaxlib's
    batched kernels wait on subtasks in XLA's worker pool, and two such calls running
    at once on a 2-thread pool deadlock. An ``optimization_barrier`` is compiled away
    and does not prevent it. ``previous=None`` returns ``x`` as it is.
    """
    if previous is None:
        return x
    return x + (jnp.nan_to_num(previous[(0,) * previous.ndim]) * 0).astype(x.dtype)


def concat(xs: list[jax.Array], dtype: Any = None) -> jax.Array:
    """``xs`` joined along their leading axis, without a copy when there is only one.

    An empty list gives an empty vector of ``dtype``.
    """
    if not xs:
        return jnp.zeros((0,), dtype)
    return jnp.concatenate(xs) if len(xs) > 1 else xs[0]
