"""Comparison problems: one matrix (or batch) with the inverse root it should give.

A :class:`Problem` is what ``python -m rootsolve compare`` and the asv
benchmarks hand to every method under test, together with a float64
reference computed from the known eigendecomposition, never by a method
under test. Two families, registered in :data:`FAMILIES`:
:func:`spd_problem` (symmetric positive definite) and :func:`general_problem`
(nonsymmetric, real or complex). :func:`relative_error` and
:func:`inverse_root_residual` measure a computed root against a problem.

References
----------
N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
SIAM 2002, sec. 28.3 (``randsvd`` matrices).

N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM 2008,
sec. 7.6 (residuals of matrix p-th roots).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .general import with_spectrum
from .spd import logspaced_spectrum, spd_with_spectrum

__all__ = [
    "Problem",
    "spd_problem",
    "general_problem",
    "FAMILIES",
    "problems_from",
    "eigh_power",
    "relative_error",
    "inverse_root_residual",
]


@dataclass(frozen=True)
class Problem:
    """One test matrix (or batch) and the exact answer it should give.

    Attributes
    ----------
    family : str
        Key of :data:`FAMILIES` that built it.
    a : numpy.ndarray, shape (..., n, n)
        The input every method receives, in the problem's dtype.
    p : int
        Root order: every method computes ``a^(-1/p)``.
    cond : float
        2-norm condition number of ``a``.
    reference_kind : str
        How :attr:`reference` is obtained (shown in the JSON output).
    make_reference : callable
        Computes :attr:`reference` on first use (benchmarks that only time
        a method never pay for it).
    """

    family: str
    a: np.ndarray
    p: int
    cond: float
    reference_kind: str
    make_reference: Callable[[], np.ndarray] = field(repr=False, compare=False)

    @cached_property
    def reference(self) -> np.ndarray:
        """``a^(-1/p)`` in float64, computed independently of every method under test."""
        return self.make_reference()

    @property
    def n(self) -> int:
        """Matrix size."""
        return int(self.a.shape[-1])

    @property
    def batch(self) -> int:
        """Number of matrices (0 for a single unbatched matrix)."""
        return int(self.a.shape[0]) if self.a.ndim == 3 else 0

    @property
    def dtype(self) -> str:
        """Name of the input dtype."""
        return self.a.dtype.name

    def describe(self) -> dict[str, Any]:
        """The problem's parameters as plain JSON values."""
        return {
            "family": self.family,
            "n": self.n,
            "p": self.p,
            "cond": self.cond,
            "batch": self.batch,
            "dtype": self.dtype,
            "reference": self.reference_kind,
        }


def spd_problem(
    n: int, p: int, cond: float, *, batch: int = 0, dtype: str = "float64", seed: int = 0
) -> Problem:
    """Symmetric positive definite ``A = V diag(w) V^T`` with a known root.

    ``V`` is Haar-random and ``w`` log-spaced in ``[1/cond, 1]`` (Higham's
    ``randsvd`` mode 3, built by :func:`rootsolve.testing.spd_with_spectrum`),
    so the 2-norm condition number is ``cond``; a batch has one ``V`` per
    matrix and the same spectrum. The float64 reference
    ``V diag(w^(-1/p)) V^T`` comes from the known eigendecomposition and
    never from a solver under test. A float32 problem is that matrix rounded
    to float32; rounding moves its root by up to about ``cond * eps32 / p``,
    far beyond any method's error, so its reference is the float64
    eigendecomposition of the rounded matrix instead.
    """
    w = logspaced_spectrum(n, cond)
    if batch:
        w = np.broadcast_to(w, (batch, n))
    case = spd_with_spectrum(w, seed, dtype=dtype)
    a = np.ascontiguousarray(case.matrix)
    if dtype == "float64":
        kind = "known eigendecomposition (float64)"
        ref = lambda: case.power(-1.0 / p, stored=False)
    else:
        kind = "float64 eigh of the rounded input"
        ref = lambda: eigh_power(a.astype(np.float64), -1.0 / p)
    return Problem("spd", a, p, float(cond), kind, ref)


def general_problem(
    n: int, p: int, cond: float, *, batch: int = 0, dtype: str = "float64", seed: int = 0
) -> Problem:
    """Nonsymmetric ``A = V D V^-1`` with a known principal root (real or complex).

    Eigenvalue moduli are log-spaced in ``[1/cond, 1]`` (so ``cond`` is their
    spread, not the 2-norm condition number) with arguments drawn in
    ``(-0.9 pi, 0.9 pi)``: complex-conjugate pairs for a real dtype, any
    complex values for a complex one; ``cond(V) = 10``
    (:func:`rootsolve.testing.with_spectrum`). The reference
    ``V diag(lambda^(-1/p)) V^-1`` is formed in complex128 from that
    decomposition, never by a method under test.
    """
    real = not dtype.startswith("complex")
    cases = []
    for k in range(max(batch, 1)):
        rng = np.random.default_rng([seed, k])
        pairs = n // 2 if real else 0  # a pair shares one modulus
        r = np.logspace(-math.log10(cond), 0.0, n - pairs)
        if real:
            w = r[n - 2 * pairs :] * np.exp(1j * rng.uniform(0.05, 0.9 * np.pi, pairs))
            lam = np.concatenate([r[: n - 2 * pairs], w, np.conj(w)])
        else:
            lam = r * np.exp(1j * rng.uniform(-0.9 * np.pi, 0.9 * np.pi, n))
        cases.append(with_spectrum(lam, rng=rng, cond_v=10.0, real=real))
    a = np.stack([c.a for c in cases]) if batch else cases[0].a
    a = np.ascontiguousarray(a.astype(dtype))
    ref = lambda: (
        np.stack([c.power(-1.0 / p) for c in cases]) if batch else cases[0].power(-1.0 / p)
    )
    return Problem("general", a, p, float(cond), "known eigendecomposition (complex128)", ref)


#: Problem families by name: each is a function (n, p, cond, batch=, dtype=, seed=) -> Problem.
FAMILIES: dict[str, Callable[..., Problem]] = {"spd": spd_problem, "general": general_problem}


def problems_from(
    family: str,
    ns: Iterable[int],
    ps: Iterable[int],
    conds: Iterable[float],
    *,
    batch: int,
    dtype: str,
    seed: int,
) -> list[Problem]:
    """Every combination of size, order and condition number, in that nesting order."""
    build = FAMILIES[family]
    return [
        build(n, p, c, batch=batch, dtype=dtype, seed=seed) for n in ns for p in ps for c in conds
    ]


def eigh_power(a: np.ndarray, t: float) -> np.ndarray:
    """``a^t`` for symmetric positive definite ``a`` by eigh and rebuild (numpy, batched)."""
    w, v = np.linalg.eigh(a)
    return (v * w[..., None, :] ** t) @ np.swapaxes(v, -1, -2)


def _fro(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(np.abs(x) ** 2, axis=(-2, -1)))


def relative_error(x: Any, reference: np.ndarray) -> float:
    """``max ||X - X_ref||_F / ||X_ref||_F`` over the batch, in float64."""
    x = np.asarray(x).astype(np.complex128 if np.iscomplexobj(x) else np.float64)
    return float(np.max(_fro(x - reference) / _fro(reference)))


def inverse_root_residual(x: Any, a: np.ndarray, p: int) -> float:
    """``max ||X^p A - I||_F / sqrt(n)`` over the batch, in float64.

    The residual of Higham, *Functions of Matrices* (SIAM 2008), sec. 7.6,
    computed with explicit products independently of how ``X`` was found.
    """
    x = np.asarray(x).astype(np.complex128 if np.iscomplexobj(x) else np.float64)
    n = x.shape[-1]
    r = np.linalg.matrix_power(x, p) @ a.astype(np.result_type(a.dtype, np.float64)) - np.eye(n)
    return float(np.max(_fro(r)) / math.sqrt(n))
