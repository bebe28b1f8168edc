"""The methods ``python -m rootsolve compare`` and the benchmarks measure: rootsolve and peers.

A *method* is one :class:`Method` entry in :data:`METHODS`, saying which
problem families it accepts, how to prepare a zero-argument runner for a
:class:`~rootsolve.testing.Problem`, and (optionally) how to read its
iteration and matrix-product counts. Peers: the eigh-and-rebuild snippet
(:data:`BASELINE`), ``scipy.linalg.fractional_matrix_power``,
``scipy.linalg.sqrtm`` and ``optax.matrix_inverse_pth_root``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..testing.problems import Problem, eigh_power

__all__ = ["Runner", "Method", "METHODS", "BASELINE", "BASELINES", "find_method", "select"]

#: The method every time ratio is taken against.
BASELINE = "numpy eigh+rebuild"

#: The method time ratios are taken against, per problem family.
BASELINES = {"spd": BASELINE, "general": "scipy fractional_matrix_power"}


Runner = Callable[[], Any]


@dataclass(frozen=True)
class Method:
    """One way of computing ``a^(-1/p)``, as one entry of :data:`METHODS`.

    Attributes
    ----------
    name : str
        Row label, unique.
    prepare : callable
        ``prepare(problem) -> runner``: does everything that is not part of
        the measured call (array conversion, ``jit``) and returns a
        zero-argument function that computes the root and returns it fully
        materialized (jax results are blocked on).
    counts : callable, optional
        ``counts(problem) -> (iterations, matrix_products)`` for methods
        that report them; either may be None.
    requires : tuple of str
        Modules that must be importable; the method is skipped otherwise.
    families : tuple of str
        Problem families the method accepts.
    jit : bool
        The runner calls a ``jax.jit``-compiled function: it must be called
        once before it is timed.
    skip : callable, optional
        ``skip(problem) -> reason or None``, for methods that accept only
        some problems of a family (``sqrtm``: ``p = 2^k``).
    """

    name: str
    prepare: Callable[[Problem], Runner]
    counts: Callable[[Problem], tuple[int | None, int | None]] | None = None
    requires: tuple[str, ...] = ()
    families: tuple[str, ...] = ("spd",)
    jit: bool = False
    skip: Callable[[Problem], str | None] | None = None

    def unavailable(self) -> str | None:
        """Why the method cannot run here, or None."""
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        return f"needs {', '.join(missing)}" if missing else None


def _rootsolve(**options: Any) -> Callable[[Problem], Runner]:
    def prepare(prob: Problem) -> Runner:
        import rootsolve

        return lambda: rootsolve.inv_root(prob.a, prob.p, **options)

    return prepare


def _rootsolve_counts(**options: Any) -> Callable[[Problem], tuple[int | None, int | None]]:
    def counts(prob: Problem) -> tuple[int | None, int | None]:
        import rootsolve

        _, info = rootsolve.inv_root(prob.a, prob.p, return_info=True, **options)
        return int(np.max(info.iterations)), int(np.max(info.gemms))

    return counts


def _jax() -> Any:
    """``jax`` with 64-bit floats enabled (float64 problems need them)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _jit_rootsolve(**options: Any) -> Callable[[Problem], Runner]:
    def prepare(prob: Problem) -> Runner:
        import rootsolve

        jax = _jax()
        a = jax.device_put(prob.a)
        f = jax.jit(lambda m: rootsolve.inv_root(m, prob.p, **options))
        return lambda: f(a).block_until_ready()

    return prepare


def _jit_rootsolve_counts(**options: Any) -> Callable[[Problem], tuple[int | None, int | None]]:
    def counts(prob: Problem) -> tuple[int | None, int | None]:
        import rootsolve

        jax = _jax()
        f = jax.jit(lambda m: rootsolve.inv_root(m, prob.p, return_info=True, **options)[1])
        info = f(jax.device_put(prob.a))
        return int(np.max(info.iterations)), int(np.max(info.gemms))

    return counts


def _numpy_eigh(prob: Problem) -> Runner:
    a, t = prob.a, -1.0 / prob.p
    return lambda: eigh_power(a, t)


def _scipy_fmp(prob: Problem) -> Runner:
    from scipy.linalg import fractional_matrix_power

    mats = prob.a.reshape(-1, prob.n, prob.n)
    t, shape = -1.0 / prob.p, prob.a.shape
    return lambda: np.stack([fractional_matrix_power(m, t) for m in mats]).reshape(shape)


def _scipy_sqrtm(prob: Problem) -> Runner:
    """``inv(sqrtm(...sqrtm(a)))``: ``k`` square roots for ``p = 2^k`` (other p are skipped)."""
    from scipy.linalg import sqrtm

    k = prob.p.bit_length() - 1
    mats = prob.a.reshape(-1, prob.n, prob.n)

    def one(m: np.ndarray) -> np.ndarray:
        for _ in range(k):
            m = sqrtm(m)
        return np.linalg.inv(m)

    return lambda: np.stack([one(m) for m in mats]).reshape(prob.a.shape)


def _optax(prob: Problem) -> Runner:
    """``optax.matrix_inverse_pth_root`` under ``jit`` (``vmap`` over a batch).

    ``ridge_epsilon=0`` so that it roots the same matrix as every other
    method (its default adds ``1e-6 * lambda_max``, which for cond = 1e6
    doubles the smallest eigenvalue). Other arguments keep their defaults
    (100 iterations, tolerance 1e-6, HIGHEST matmul precision).
    """
    import optax

    jax = _jax()
    p = prob.p
    f = lambda m: optax.matrix_inverse_pth_root(m, p, ridge_epsilon=0.0)[0]
    for _ in range(prob.a.ndim - 2):
        f = jax.vmap(f)
    f = jax.jit(f)
    a = jax.device_put(prob.a)
    return lambda: f(a).block_until_ready()


#: Every method measured, in table order. Extend with one entry per method.
METHODS: list[Method] = [
    Method(
        "rootsolve eigh",
        _rootsolve(method="eigh"),
    ),
    *[
        Method(
            f"rootsolve newton {s}",
            _rootsolve(method="newton", scaling=s),
            _rootsolve_counts(method="newton", scaling=s),
        )
        for s in ("dynamic", "optimal", "frobenius")
    ],
    Method(
        "rootsolve eigh, jax jit", _jit_rootsolve(method="eigh"), requires=("jax",), jit=True
    ),
    Method(
        "rootsolve newton dynamic, jax jit",
        _jit_rootsolve(method="newton"),
        _jit_rootsolve_counts(method="newton"),
        requires=("jax",),
        jit=True,
    ),
    Method(BASELINE, _numpy_eigh),
    Method("scipy fractional_matrix_power", _scipy_fmp, families=("spd", "general")),
    *[
        Method(
            f"rootsolve {m}",
            _rootsolve(assume_a="gen", method=m),
            _rootsolve_counts(assume_a="gen", method=m),
            families=("general",),
        )
        for m in ("schur_newton", "schur_free")
    ],
    Method(
        "rootsolve schur_free, jax jit",
        _jit_rootsolve(assume_a="gen"),
        _jit_rootsolve_counts(assume_a="gen"),
        requires=("jax",),
        families=("general",),
        jit=True,
    ),
    Method(
        "scipy sqrtm (p = 2^k), inverted",
        _scipy_sqrtm,
        families=("general",),
        skip=lambda prob: None if prob.p & (prob.p - 1) == 0 else "p is not a power of 2",
    ),
    Method("optax matrix_inverse_pth_root, jit", _optax, requires=("jax", "optax"), jit=True),
]


def find_method(name: str) -> Method:
    """The entry of :data:`METHODS` called ``name``."""
    for m in METHODS:
        if m.name == name:
            return m
    raise ValueError(f"unknown method {name!r}; choose from {[m.name for m in METHODS]}")


def select(pattern: str | None) -> list[Method]:
    """The methods whose name contains one of the comma-separated substrings of ``pattern``.

    All of :data:`METHODS` when ``pattern`` is empty; ``SystemExit`` when none matches.
    """
    if not pattern:
        return list(METHODS)
    keys = [k.strip() for k in pattern.split(",") if k.strip()]
    chosen = [m for m in METHODS if any(k in m.name for k in keys)]
    if not chosen:
        raise SystemExit(f"--methods {pattern!r} matches none of {[m.name for m in METHODS]}")
    return chosen
