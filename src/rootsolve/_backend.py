"""Which array library an input belongs to, and the few primitives that differ.

Everything else in rootsolve is written once against an array-API namespace
``xp`` (numpy through ``array_api_compat``, ``jax.numpy``, cupy, or any other
library that implements the standard with its ``linalg`` extension). This
module answers three questions about an input array:

* which namespace to compute with (``Backend.xp``);
* whether its values may be inspected on the host (``Backend.eager``): true
  for numpy, cupy and concrete jax arrays, false for jax tracers under
  ``jit``/``vmap``, where validation becomes a flag in the result's info;
* how to run a data-dependent loop (``Backend.while_loop``): a Python loop
  that stops as soon as every batch element is done, or ``lax.while_loop``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

__all__ = ["Backend", "get_backend"]


@dataclass(frozen=True)
class Backend:
    """The array namespace and capabilities of one input.

    Attributes
    ----------
    name : {"numpy", "jax", "cupy", "array_api"}
        Which code path the input takes.
    xp : module
        Array-API namespace used for every computation.
    eager : bool
        Whether values can be read on the host (no tracing).
    on_gpu : bool
        Whether the data lives on an accelerator (changes defaults only).
    """

    name: str
    xp: Any
    eager: bool
    on_gpu: bool

    @property
    def has_float64(self) -> bool:
        """Whether float64 arrays can be created in this namespace."""
        if self.name == "jax":
            import jax

            return bool(jax.config.jax_enable_x64)
        return True

    def while_loop(self, cond: Callable, body: Callable, carry: Any) -> Any:
        """``while cond(carry): carry = body(carry)``, traceable under jax.

        Concrete jax arrays take the Python loop too: ``lax.while_loop``
        outside ``jit`` traces and compiles its (fresh) body on every call,
        about a second each, where the Python loop costs milliseconds.
        """
        if self.name == "jax" and not self.eager:
            from jax import lax

            return lax.while_loop(cond, body, carry)
        while bool(cond(carry)):
            carry = body(carry)
        return carry

    def matmul(self, a: Any, b: Any) -> Any:
        """Matrix product at full precision (jax on TPU/GPU defaults lower)."""
        if self.name == "jax":
            import jax

            return self.xp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)
        return a @ b

    def eigh(self, a: Any) -> tuple[Any, Any]:
        """Eigenvalues (ascending) and eigenvectors of Hermitian ``a``."""
        if self.name == "numpy":
            # numpy's eigh is LAPACK syevd/heevd: the fastest driver on CPU.
            return np.linalg.eigh(a)
        if self.name == "jax":
            import jax.numpy as jnp

            w, v = jnp.linalg.eigh(a, symmetrize_input=False)
            return w, v
        res = self.xp.linalg.eigh(a)
        return res.eigenvalues, res.eigenvectors

    def solve(self, a: Any, b: Any) -> Any:
        """Solve ``a @ x = b`` for square ``a`` (batched)."""
        return self.xp.linalg.solve(a, b)

    def cholesky_lower(self, a: Any) -> Any | None:
        """Lower Cholesky factor, or ``None`` where the backend cannot do it cheaply.

        On eager backends a matrix that is not positive definite gives
        ``None``; under jax it gives NaNs, which callers must tolerate.
        """
        if self.name == "numpy":
            try:
                return np.linalg.cholesky(a)
            except np.linalg.LinAlgError:
                return None
        if self.name == "jax":
            import jax.numpy as jnp

            return jnp.linalg.cholesky(a)
        return None

    def cho_solve(self, lower: Any, b: Any) -> Any:
        """Solve ``(L L^H) x = b`` with the factor from :meth:`cholesky_lower`."""
        if self.name == "numpy":
            import scipy.linalg as sl

            y = sl.solve_triangular(lower, b, lower=True, check_finite=False)
            return sl.solve_triangular(lower, y, lower=True, trans="C", check_finite=False)
        import jax.scipy.linalg as jsl

        y = jsl.solve_triangular(lower, b, lower=True)
        return jsl.solve_triangular(lower, y, lower=True, trans="C")


def _is_tracer(a: Any) -> bool:
    """Whether ``a`` is traced, or would be turned into a tracer by the next op.

    A concrete array captured by a function that jax is tracing (a
    ``lax.cond`` branch, a ``jit`` closure) is not a tracer itself, but every
    operation on it is staged into the trace, so its values cannot be read.
    A fresh scalar tells which case holds.
    """
    import jax
    import jax.numpy as jnp

    return isinstance(a, jax.core.Tracer) or isinstance(jnp.zeros(()), jax.core.Tracer)


def get_backend(a: Any) -> Backend:
    """Classify an input array.

    Parameters
    ----------
    a : array
        A numpy, jax, cupy or other array-API array. Python sequences and
        scalars are treated as numpy input.

    Returns
    -------
    Backend
    """
    if array_api_compat.is_jax_array(a):
        import jax.numpy as jnp

        eager = not _is_tracer(a)
        on_gpu = False
        if eager:
            on_gpu = any(d.platform != "cpu" for d in a.devices())
        else:
            import jax

            on_gpu = jax.default_backend() != "cpu"
        return Backend("jax", jnp, eager, on_gpu)
    if array_api_compat.is_cupy_array(a):
        return Backend("cupy", array_api_compat.array_namespace(a), True, True)
    if isinstance(a, np.ndarray) or np.isscalar(a) or isinstance(a, (list, tuple)):
        return Backend("numpy", array_api_compat.array_namespace(np.empty(0)), True, False)
    xp = array_api_compat.array_namespace(a)
    return Backend("array_api", xp, True, False)
