"""Conditioning controls: ridge, eigenvalue floor, pseudo-inverse, compute dtype,
and the spectrum bounds the iterative methods need.

A user's matrix is rarely the matrix to root. Optimizer statistics are
singular or nearly so, float32 inputs carry float32 rounding, and a
"symmetric" matrix assembled in floating point is symmetric only up to
rounding. The :class:`Conditioning` object says, in one validated place, what
to do about it:

* ``symmetrize``: root ``(A + A^H) / 2`` instead of ``A`` (``assume_a="pos"``);
* ``ridge`` and ``rel_ridge``: root ``A + (ridge + rel_ridge * lambda_max) I``;
* ``floor``: raise eigenvalues below ``floor`` to ``floor`` (eigh only);
* ``pinv_atol``/``pinv_rtol``: in an inverse root, treat eigenvalues at or below
  ``max(pinv_atol, pinv_rtol * lambda_max)`` as zero (a pseudo-inverse root;
  eigh only);
* ``compute_dtype``: compute in this precision and cast back (default:
  float64 on CPU where the backend has it, else the input's precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import Backend
from ._linalg import eye_like, fro
from ._validation import check_matrix, check_nonneg, eps_of, finite_matrices

__all__ = [
    "Conditioning",
    "symmetrize",
    "upper_bound_lambda_max",
    "lambda_max_estimate",
    "lambda_min_estimate",
    "resolve_conditioning",
    "SYMMETRY_FACTOR",
    "check_hermitian",
    "prepare",
]


@dataclass(frozen=True)
class Conditioning:
    """How to regularize a matrix before taking its root.

    Parameters
    ----------
    ridge : float, default 0
        Absolute shift added to the diagonal.
    rel_ridge : float, default 0
        Shift relative to the largest eigenvalue: ``rel_ridge * lambda_max``
        (exact from eigh; a power-iteration estimate for Newton).
    floor : float or None
        Eigenvalue floor ``max(w, floor)``, applied after the ridge (eigh only).
    pinv_atol, pinv_rtol : float or None
        Pseudo-inverse cut-off for inverse roots: eigenvalues at or below
        ``max(pinv_atol, pinv_rtol * lambda_max)`` are treated as zero and map
        to zero (eigh only).
    symmetrize : bool, default True
        Replace ``A`` by ``(A + A^H) / 2`` before anything else.
    compute_dtype : str or dtype or None
        Precision of the computation, e.g. ``"float64"``. ``None`` picks
        float64 on CPU when the backend supports it (jax needs
        ``jax_enable_x64``), otherwise the input precision (at least float32).
    """

    ridge: float = 0.0
    rel_ridge: float = 0.0
    floor: float | None = None
    pinv_atol: float | None = None
    pinv_rtol: float | None = None
    symmetrize: bool = True
    compute_dtype: Any = None

    def __post_init__(self) -> None:
        check_nonneg("ridge", self.ridge)
        check_nonneg("rel_ridge", self.rel_ridge)
        check_nonneg("floor", self.floor, allow_none=True)
        check_nonneg("pinv_atol", self.pinv_atol, allow_none=True)
        check_nonneg("pinv_rtol", self.pinv_rtol, allow_none=True)
        if not isinstance(self.symmetrize, bool):
            raise TypeError(f"symmetrize must be a bool, got {self.symmetrize!r}")
        if self.compute_dtype is not None:
            name = getattr(self.compute_dtype, "name", None) or getattr(
                self.compute_dtype, "__name__", str(self.compute_dtype)
            )
            if str(name) not in ("float32", "float64", "complex64", "complex128"):
                raise ValueError(
                    "compute_dtype must be float32, float64, complex64 or complex128, "
                    f"got {self.compute_dtype!r}"
                )

    @property
    def needs_eigh(self) -> bool:
        """Whether an option is set that only the eigendecomposition can honour."""
        return self.floor is not None or self.pinv_atol is not None or self.pinv_rtol is not None

    @property
    def compute_dtype_name(self) -> str | None:
        """``compute_dtype`` as a plain name, or None."""
        if self.compute_dtype is None:
            return None
        return str(
            getattr(self.compute_dtype, "name", None)
            or getattr(self.compute_dtype, "__name__", self.compute_dtype)
        )


def symmetrize(be: Backend, a: Any) -> Any:
    """Hermitian part ``(A + A^H) / 2``."""
    xp = be.xp
    ah = xp.conj(xp.matrix_transpose(a)) if xp.isdtype(a.dtype, "complex floating") else (
        xp.matrix_transpose(a)
    )
    return (a + ah) / 2


def _abs_sum(be: Backend, a: Any, axis: int) -> Any:
    return be.xp.sum(be.xp.abs(a), axis=axis)


def upper_bound_lambda_max(be: Backend, a: Any) -> Any:
    """A guaranteed upper bound on the spectral radius of Hermitian ``a``.

    ``min(||A||_F, ||A||_inf)``: both norms bound every eigenvalue's modulus
    (Golub & Van Loan, *Matrix Computations*, 4th ed., sec. 2.3.2), so the
    bound is safe for the scaling of Newton's method, unlike an estimate.

    Returns an array of shape ``(..., 1, 1)``.
    """
    xp = be.xp
    fro = xp.sqrt(xp.sum(xp.abs(a) ** 2, axis=(-2, -1)))
    inf = xp.max(_abs_sum(be, a, axis=-1), axis=-1)
    return xp.minimum(fro, inf)[..., None, None]


def _start_vector(be: Backend, a: Any) -> Any:
    """A fixed, dense start vector with no special structure, shape ``(..., n, 1)``."""
    n = a.shape[-1]
    v = 1.0 + 0.5 * np.cos(1.7 * np.arange(n) + 0.3)
    v = be.xp.asarray(v[:, None], dtype=a.dtype)
    return be.xp.broadcast_to(v, (*a.shape[:-2], n, 1))


def _normalize(be: Backend, v: Any) -> Any:
    xp = be.xp
    nrm = xp.sqrt(xp.sum(xp.abs(v) ** 2, axis=(-2, -1), keepdims=True))
    return v / xp.where(nrm > 0, nrm, xp.ones_like(nrm))


def _rayleigh(be: Backend, a: Any, v: Any) -> Any:
    xp = be.xp
    av = be.matmul(a, v)
    return xp.real(xp.sum(xp.conj(v) * av, axis=(-2, -1), keepdims=True))


def lambda_max_estimate(be: Backend, a: Any, steps: int = 20) -> Any:
    """Largest eigenvalue of Hermitian PSD ``a`` by power iteration.

    The Rayleigh quotient after ``steps`` products with ``a`` (Golub & Van
    Loan, sec. 8.2.1). It never exceeds the true value. Shape ``(..., 1, 1)``.
    """
    v = _normalize(be, _start_vector(be, a))
    for _ in range(steps):
        v = _normalize(be, be.matmul(a, v))
    return _rayleigh(be, a, v)


def lambda_min_estimate(be: Backend, a: Any, steps: int = 4) -> Any | None:
    """Smallest eigenvalue of Hermitian PD ``a`` by inverse iteration.

    Solves with a Cholesky factor (:meth:`Backend.cholesky_solver`: a sixth
    of a matrix product's flops with a triangular solve, about one product on
    array-API namespaces, which must invert the factor); returns ``None``
    where the namespace has no ``linalg.cholesky`` or when ``a`` is not
    numerically positive definite. The
    Rayleigh quotient is never below the true value; callers take a fraction
    of it. Shape ``(..., 1, 1)``; NaN under jax where the factor failed.
    """
    solve = be.cholesky_solver(a)
    if solve is None:
        return None
    v = _normalize(be, _start_vector(be, a))
    for _ in range(steps):
        v = _normalize(be, solve(v))
    return _rayleigh(be, a, v)


def resolve_conditioning(conditioning: Conditioning | None, **kw: Any) -> Conditioning:
    """``conditioning=`` or the same controls passed as keywords (not both)."""
    if conditioning is None:
        return Conditioning(**kw)
    if not isinstance(conditioning, Conditioning):
        raise TypeError(f"conditioning must be a Conditioning, got {type(conditioning).__name__}")
    defaults = Conditioning()
    clash = [k for k, v in kw.items() if v != getattr(defaults, k)]
    if clash:
        raise ValueError(f"pass either conditioning= or the keywords {clash}, not both")
    return conditioning


def _compute_dtype(be: Backend, dname: str, cond: Conditioning) -> str:
    complex_in = dname.startswith("complex")
    want = cond.compute_dtype_name
    if want is None:
        if be.has_float64 and not be.on_gpu:
            want = "float64"
        else:
            want = "float64" if dname in ("float64", "complex128") else "float32"
    if want in ("float64", "complex128") and not be.has_float64:
        raise ValueError(
            "compute_dtype float64 needs jax_enable_x64 (jax.config.update('jax_enable_x64', True))"
        )
    precision = "64" if want in ("float64", "complex128") else "32"
    return ("complex" + str(2 * int(precision))) if complex_in else ("float" + precision)


#: ``c`` in the symmetry tolerance ``||A - A^H||_F <= c n eps ||A||_F`` of ``assume_a="pos"``.
SYMMETRY_FACTOR = 10.0


def check_hermitian(be: Backend, b: Any, eps: float) -> Any:
    """Per-matrix flag: ``b`` is Hermitian up to rounding, ``||b - b^H||_F <= c n eps ||b||_F``.

    ``c = SYMMETRY_FACTOR``. Forming a Hermitian matrix in floating point
    (``G G^H``, a sum of such, a cast to a lower precision) leaves each entry
    pair unequal by at most a few ``n eps`` times the entries' size (Higham,
    *Accuracy and Stability of Numerical Algorithms*, 2002, sec. 3.5), which
    this bound admits; anything larger is a non-Hermitian matrix, whose
    Hermitian part has a different root (``[[2, 1], [0, 1]]``'s is
    ``[[2, .5], [.5, 1]]``'s). Eager input beyond it raises ``ValueError``;
    traced input gets ``False`` (reported as ``converged=False``).
    """
    xp = be.xp
    n = b.shape[-1]
    diff = fro(xp, b - xp.conj(xp.matrix_transpose(b)))
    size = fro(xp, b)
    ok = diff <= SYMMETRY_FACTOR * n * eps * size
    if be.eager and not bool(xp.all(ok | ~xp.isfinite(size))):
        rel = diff / xp.where(size > 0, size, xp.ones_like(size))
        worst = float(xp.max(xp.where(ok, xp.zeros_like(rel), rel)))
        raise ValueError(
            f"assume_a='pos' needs a Hermitian matrix, but ||a - a^H||_F / ||a||_F = "
            f"{worst:.3e} exceeds the rounding level {SYMMETRY_FACTOR:g} n eps = "
            f"{SYMMETRY_FACTOR * n * eps:.3e} (n = {n}); symmetrization only removes "
            "rounding-level asymmetry. For a non-symmetric matrix use assume_a='gen'"
        )
    return ok


def prepare(a: Any, cond: Conditioning, hermitian: bool = True, check: bool = True):
    """Validate ``a`` and condition it for a root: the compute dtype, the Hermitian part.

    Returns the backend, ``a`` in its namespace, the name of its dtype, the
    conditioned matrix ``b``, whether each matrix is finite (under ``jit`` a
    non-finite one is replaced by the identity and reported through the
    info) and the unit roundoff of the coarser of the two precisions.

    With ``hermitian`` (``assume_a="pos"``) the matrix must be Hermitian up to
    rounding (:func:`check_hermitian`, with the input's unit roundoff); under
    ``jit`` one that is not is reported like a non-finite one. Without
    ``check`` neither is checked and every matrix counts as finite. Empty
    input (a zero in the shape) passes through.
    """
    be, a, dname = check_matrix(a, allow_empty=True)
    xp = be.xp
    cdt = _compute_dtype(be, dname, cond)
    b = xp.astype(a, getattr(xp, cdt))
    eps = max(eps_of(dname), eps_of(cdt))
    every = xp.ones(b.shape[:-2], dtype=xp.bool)
    if 0 in b.shape:
        return be, a, dname, b, every, eps
    hermitian_ok = check_hermitian(be, b, eps_of(dname)) if hermitian and check else None
    if cond.symmetrize and hermitian:
        b = symmetrize(be, b)
    if not check:
        return be, a, dname, b, every, eps
    finite = finite_matrices(be, b)
    if hermitian_ok is not None:
        finite = finite & hermitian_ok
    if be.eager and not bool(xp.all(finite)):
        raise ValueError("a contains non-finite values (nan or inf)")
    if not be.eager:
        # Keep NaN/inf out of the solvers; info.converged reports it instead.
        b = xp.where(finite[..., None, None], b, eye_like(xp, b))
    return be, a, dname, b, finite, eps
