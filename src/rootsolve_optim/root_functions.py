"""Root functions: what computes the inverse roots of Shampoo's statistics.

A *root function* (:class:`RootFn`) takes a stack of statistics and an exponent and
returns their inverse roots with residuals and convergence flags;
:mod:`rootsolve_optim.preconditioner` refreshes and accepts the roots it returns. The
default on accelerators, :func:`device_root_fn`, calls :func:`rootsolve.inv_root`
inside ``jit`` on the device that trains (Anil et al., "Scalable Second Order
Optimization for Deep Learning", arXiv 2002.09018, sec. 3 and 5: float64 roots with a
ridge where available); :func:`~rootsolve_optim.host_root_fn` (host, synchronous or
asynchronous) and :func:`~rootsolve_optim.sharded_root_fn` (several devices) follow the
same protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

import rootsolve
from rootsolve._validation import check_choice, check_nonneg

__all__ = [
    "RootFn",
    "RootResult",
    "DeviceRootFn",
    "check_root_call",
    "compute_dtype_name",
    "device_root_fn",
    "default_rel_ridge",
    "solve_roots",
]


@runtime_checkable
class RootFn(Protocol):
    """A batched inverse-root computation Shampoo can call inside ``jit``.

    ``root_fn(stats, p, step) -> (roots, residual, converged)``

    Parameters
    ----------
    stats : array, shape (k, n, n)
        Stacked symmetric positive semidefinite statistics (float32, or
        float64 for float64 parameters).
    p : int
        The order of the inverse root, a Python int: ``roots ~ stats^(-1/p)``.
    step : int32 array, shape ()
        The optimizer step (0-based count of applied updates).

    Returns
    -------
    roots : array, shape (k, n, n), dtype of ``stats``
    residual : float32 array, shape (k,)
        A relative residual; compared with ``max_residual``.
    converged : bool array, shape (k,)
        False rejects the root (the previous preconditioner is kept). A
        rejection counts as a failure, except where ``residual`` is NaN: that
        is how a root function says "no new root yet" (an asynchronous one
        whose results have not arrived).

    Notes
    -----
    A root function may also offer ``with_info(stats, p, step) ->``
    :class:`RootResult`, which adds iteration counts to the metrics; Shampoo
    uses it when present.
    """

    def __call__(self, stats: jax.Array, p: int, step: jax.Array) -> tuple[Any, Any, Any]: ...


def check_root_call(stats: Any, p: Any) -> None:
    """A root function called with ``stats`` alone is being used as a schedule.

    ``optax.inject_hyperparams`` takes every callable option that is not in
    its ``static_args`` for a schedule and calls it with the step count; say
    so, instead of a missing-argument error.
    """
    if p is None:
        raise TypeError(
            f"a root function was called with one argument ({stats!r}), as "
            "optax.inject_hyperparams calls a schedule with the step count: it takes every "
            "callable option for a schedule; list root_fn in static_args=(..., 'root_fn')"
        )


class RootResult(NamedTuple):
    """A root function's answer with iteration counts (see :class:`RootFn`)."""

    roots: jax.Array  # (k, n, n), stats dtype
    residual: jax.Array  # (k,) float32
    converged: jax.Array  # (k,) bool
    iterations: jax.Array  # (k,) int32; -1 where not reported


_F32_EPS = float(jnp.finfo(jnp.float32).eps)


def default_rel_ridge(n: int, dtype: str) -> float:
    """Relative ridge used when none is given: ``S + rel_ridge * lambda_max(S) I``.

    ``dtype`` is the coarser of the statistics' and the computation's
    precision. 1e-6 when both are float64, as in the reference implementation
    of Anil et al. With float32 in either place, eigenvalues below about
    ``n eps_32 lambda_max`` are rounding noise (of the float32 sums that
    accumulate the statistics, or of a float32 eigendecomposition), and a
    root that amplifies them by ``lambda^(-1/p)`` amplifies noise, so the
    default is ``max(1e-6, 4 n eps_32)``, about 1.2e-4 for n = 256.
    """
    if dtype == "float64":
        return 1e-6
    return max(1e-6, 4 * n * _F32_EPS)


def _default_tol(n: int, compute_dtype: str) -> float | None:
    """Newton tolerance: rootsolve's default in float64; in float32 the rounding floor.

    rootsolve's default ``sqrt(n) eps / 2`` lies below what ``||M - I||_1``
    can reach in float32 for the conditioning a ridge of
    :func:`default_rel_ridge` allows, so float32 uses ``4 n eps_32``.
    """
    return None if compute_dtype == "float64" else 4 * n * _F32_EPS


def _resolve_compute_dtype(requested: str | None, stats_dtype: Any) -> str:
    if requested is not None:
        return requested
    if not jax.config.jax_enable_x64:
        return "float32"
    if jnp.dtype(stats_dtype) == jnp.float64 or jax.default_backend() == "cpu":
        return "float64"
    return "float32"


@dataclass(frozen=True)
class DeviceRootFn:
    """Inverse roots by :func:`rootsolve.inv_root` on the current device, inside ``jit``.

    Build it with :func:`device_root_fn`. Hashable, so it can be a static
    argument. ``__call__`` follows :class:`RootFn`; ``with_info`` also
    returns iteration counts. Its roots are finite wherever its residual is
    (see :attr:`finite_where_residual_is`), so the acceptance test needs no
    pass over the roots.
    """

    #: The residual is computed from the roots (``X^p S z - z`` for sign probes
    #: ``z``, or ``X^p S - I``), and a non-finite entry of ``X`` makes it non-finite
    #: (``inf * 0`` is NaN), so a finite residual proves finite roots. The cast of
    #: float64 roots of float32 statistics to float32 cannot overflow: the ridge
    #: bounds every root entry by ``(rel_ridge lambda_max)^(-1/p)``, far below
    #: float32's largest number for any statistic float32 can hold.
    finite_where_residual_is: ClassVar[bool] = True

    method: str = "auto"
    rel_ridge: float | None = None
    ridge: float = 0.0
    compute_dtype: str | None = None
    tol: float | None = None
    residual: str = "probe"

    def with_info(self, stats: jax.Array, p: int, step: jax.Array) -> RootResult:
        """Roots of ``stats`` (k, n, n) with residuals, convergence and iterations."""
        n = stats.shape[-1]
        cdt = _resolve_compute_dtype(self.compute_dtype, stats.dtype)
        coarse = "float64" if cdt == "float64" and stats.dtype == jnp.float64 else "float32"
        rel = self.rel_ridge if self.rel_ridge is not None else default_rel_ridge(n, coarse)
        tol = self.tol if self.tol is not None else _default_tol(n, cdt)
        # Root the statistics as compute-dtype matrices: a float32 matrix is exact in
        # float64, and rootsolve judges singularity at the rounding level of its input's
        # dtype, which for float32 input lies above the default relative ridge. They are
        # symmetric up to the rounding of G G^T, which eigh (it reads one triangle) and
        # Newton tolerate, so no symmetrizing pass. Shampoo refreshes its roots only
        # from finite statistics (a step with a non-finite one is skipped before it is
        # committed), so rootsolve's input checks (finite, Hermitian up to rounding),
        # passes over every stack and under jit some 0.25 MB of the CNN step's code,
        # are skipped; a non-finite statistic given directly gets a non-finite
        # residual, which rejects its root, and no NaN one, which would read as
        # "no new root yet" (RootFn).
        x, info = rootsolve.inv_root(
            stats.astype(cdt), p, method=self.method, ridge=self.ridge, rel_ridge=rel,
            compute_dtype=cdt, tol=tol, return_info=True, residual=self.residual,
            symmetrize=False, check_finite=False,
        )
        residual = info.residual.astype(jnp.float32)
        return RootResult(
            x.astype(stats.dtype),
            jnp.where(jnp.isnan(residual), jnp.inf, residual),
            info.converged,
            info.iterations.astype(jnp.int32),
        )

    def __call__(self, stats: jax.Array, p: int | None = None, step: jax.Array | None = None):
        check_root_call(stats, p)
        r = self.with_info(stats, p, step)
        return r.roots, r.residual, r.converged


def device_root_fn(
    *,
    method: str = "auto",
    rel_ridge: float | None = None,
    ridge: float = 0.0,
    compute_dtype: Any = None,
    tol: float | None = None,
    residual: str = "probe",
) -> DeviceRootFn:
    """The default :class:`RootFn`: batched :func:`rootsolve.inv_root` inside ``jit``.

    Parameters
    ----------
    method : {"auto", "eigh", "newton"}, default "auto"
        Passed to rootsolve ("auto": eigh on CPU, coupled Newton on GPUs for
        n >= 64).
    rel_ridge : float, optional
        Root ``S + (ridge + rel_ridge lambda_max(S)) I``. Default
        :func:`default_rel_ridge` (depends on n and on the statistics' and
        compute dtypes).
    ridge : float, default 0
        Absolute ridge.
    compute_dtype : {"float32", "float64"} or None
        Precision of the root computation. None: float64 when
        ``jax_enable_x64`` is on and either the backend is the CPU or the
        statistics are float64; float32 otherwise (in particular always
        float32 when x64 is off, since jax then has no float64).
    tol : float, optional
        Newton's stopping tolerance (default: rootsolve's in float64,
        ``4 n eps_32`` in float32).
    residual : {"probe", "exact"}, default "probe"
        How rootsolve computes the residual Shampoo tests against
        ``max_residual`` and logs: ``"probe"`` estimates
        ``||X^p S - I||_F / sqrt(n)`` from products with 8 random sign vectors
        (p + 1 thin products; Hutchinson's estimator, see
        :mod:`rootsolve.diagnostics`), ``"exact"`` forms ``X^p S`` (3 extra
        n x n products per root for p = 4, as costly as the
        eigendecomposition on a CPU).

    Returns
    -------
    DeviceRootFn
    """
    check_choice(value=method, name="method", choices=("auto", "eigh", "newton"))
    check_nonneg("rel_ridge", rel_ridge, allow_none=True)
    check_nonneg("ridge", ridge, allow_none=True)
    check_nonneg("tol", tol, allow_none=True)
    check_choice(value=residual, name="residual", choices=("probe", "exact"))
    compute_dtype = compute_dtype_name(compute_dtype)
    return DeviceRootFn(method, rel_ridge, float(ridge), compute_dtype, tol, residual)


def compute_dtype_name(compute_dtype: Any) -> str | None:
    """``compute_dtype`` (float32, float64 or None) as a dtype name; anything else raises."""
    if compute_dtype is None:
        return None
    try:
        name = jnp.dtype(compute_dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise ValueError(
            f"compute_dtype must be float32, float64 or None, got compute_dtype={compute_dtype!r}"
        )
    return name


def _check_shapes(stats: jax.Array, out: RootResult) -> None:
    k = stats.shape[0]
    want = {"roots": stats.shape, "residual": (k,), "converged": (k,), "iterations": (k,)}
    for name, shape in want.items():
        got = tuple(getattr(out, name).shape)
        if got != tuple(shape):
            raise ValueError(
                f"root_fn returned {name} of shape {got}, expected {tuple(shape)} for stats of "
                f"shape {tuple(stats.shape)}"
            )


def solve_roots(root_fn: Any, stats: jax.Array, p: int, step: jax.Array) -> RootResult:
    """Call a root function and normalize its answer to a :class:`RootResult`."""
    if hasattr(root_fn, "with_info"):
        out = RootResult(*root_fn.with_info(stats, p, step))
    else:
        roots, residual, converged = root_fn(stats, p, step)
        out = RootResult(roots, residual, converged, jnp.full(residual.shape, -1, jnp.int32))
    _check_shapes(stats, out)
    return RootResult(
        jnp.asarray(out.roots).astype(stats.dtype),
        jnp.asarray(out.residual).astype(jnp.float32),
        jnp.asarray(out.converged).astype(bool),
        jnp.asarray(out.iterations).astype(jnp.int32),
    )
