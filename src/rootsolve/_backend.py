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

    def matmul_h(self, a: Any, b: Any) -> Any:
        """``a @ b^H`` at full precision; under jax one contraction, with no transposed copy
        of ``b`` (a kernel of its own on the CPU)."""
        if self.name == "jax":
            import jax

            if self.xp.iscomplexobj(b):
                b = self.xp.conj(b)
            nb = a.ndim - 2
            batch = tuple(range(nb))
            return jax.lax.dot_general(
                a, b, (((nb + 1,), (nb + 1,)), (batch, batch)),
                precision=jax.lax.Precision.HIGHEST,
            )
        xp = self.xp
        bt = xp.matrix_transpose(b)
        return self.matmul(a, xp.conj(bt) if xp.isdtype(b.dtype, "complex floating") else bt)

    def eigh(self, a: Any) -> tuple[Any, Any]:
        """Eigenvalues (ascending) and eigenvectors of Hermitian ``a``."""
        # numpy's eigh is LAPACK syevd/heevd, the fastest driver on a CPU; on the CPU
        # both numpy and jax batches are split over cores (see batched_eigh).
        if self.name == "numpy":
            from .batched_eigh import eigh_numpy

            return eigh_numpy(a)
        if self.name == "jax":
            from .batched_eigh import eigh_jax

            return eigh_jax(a)
        res = self.xp.linalg.eigh(a)
        return res.eigenvalues, res.eigenvectors

    def solve(self, a: Any, b: Any) -> Any:
        """Solve ``a @ x = b`` for square ``a`` (batched)."""
        return self.xp.linalg.solve(a, b)

    def cholesky_solver(self, a: Any) -> Callable[[Any], Any] | None:
        """``v -> a^(-1) v`` through a Cholesky factor ``a = L L^H``, or ``None``.

        numpy and jax solve with the triangular factor (scipy's and jax's
        ``solve_triangular``). The array API has no triangular solve, so other
        namespaces (cupy included) invert the factor once with the general
        inverse (about the flops of one matrix product) and apply
        ``L^(-H) L^(-1)`` by two matrix-vector products. On eager backends a
        matrix that is not numerically positive definite gives ``None``; under
        jax it gives NaNs, which callers must tolerate.
        """
        xp = self.xp
        if self.name == "numpy":
            import scipy.linalg as sl

            try:
                lower = np.linalg.cholesky(a)
            except np.linalg.LinAlgError:
                return None

            def solve(v: Any) -> Any:
                y = sl.solve_triangular(lower, v, lower=True, check_finite=False)
                return sl.solve_triangular(lower, y, lower=True, trans="C", check_finite=False)

            return solve
        if self.name == "jax":
            import jax.numpy as jnp
            import jax.scipy.linalg as jsl

            lower = jnp.linalg.cholesky(a)

            def solve(v: Any) -> Any:
                y = jsl.solve_triangular(lower, v, lower=True)
                return jsl.solve_triangular(lower, y, lower=True, trans="C")

            return solve
        linalg = getattr(xp, "linalg", None)
        if linalg is None or not hasattr(linalg, "cholesky") or not hasattr(linalg, "inv"):
            return None
        try:
            if self.name == "cupy":
                import cupyx

                # cuSOLVER reports a failed factorization in a status word that
                # cupy ignores unless asked; the factor is then garbage, not NaN.
                with cupyx.errstate(linalg="raise"):
                    inv_lower = linalg.inv(linalg.cholesky(a))
            else:
                inv_lower = linalg.inv(linalg.cholesky(a))
        except Exception:  # each library raises its own LinAlgError
            return None
        if not bool(xp.all(xp.isfinite(inv_lower))):
            return None
        inv_upper = xp.conj(xp.matrix_transpose(inv_lower))
        return lambda v: self.matmul(inv_upper, self.matmul(inv_lower, v))


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
        A numpy, jax, cupy or other array-API array. Anything else that
        ``numpy.asarray`` accepts (sequences, scalars, memoryviews, pandas
        DataFrames) is treated as numpy input.

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
    if isinstance(a, np.ndarray) or not array_api_compat.is_array_api_obj(a):
        # numpy arrays and subclasses (np.matrix), and whatever numpy.asarray takes:
        # sequences, scalars, memoryviews, pandas DataFrames, ...
        return Backend("numpy", array_api_compat.array_namespace(np.empty(0)), True, False)
    xp = array_api_compat.array_namespace(a)
    return Backend("array_api", xp, True, False)
