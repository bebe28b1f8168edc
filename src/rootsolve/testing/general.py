"""General (non-symmetric, real or complex) test matrices with a known spectrum.

Generators return a :class:`GeneralMatrix`: the matrix together with the
eigen-data it was built from, so that a reference power
``A^t = V diag(lambda^t) V^-1`` can be computed independently of any solver
(:meth:`GeneralMatrix.power`). Families:

* :func:`with_spectrum`: ``A = V D V^-1`` for chosen eigenvalues and a chosen
  condition number of ``V``; real matrices carry complex-conjugate pairs as
  real 2x2 rotation-scaling blocks;
* :func:`random_spectrum`: eigenvalues with moduli and arguments drawn in
  given ranges, off the closed negative real axis;
* :func:`nonnormal`: an orthogonally rotated upper triangular ``T`` whose
  strictly upper part is large (departure from normality ``||N||_F / ||D||_F``);
* :func:`jordan_like`: Jordan-like blocks ``lambda I + delta J`` (``J`` the shift);
* :func:`near_negative_axis`: pairs ``r exp(+-i (pi - delta))``;
* the classic named matrices :func:`frank`, :func:`lehmer`, :func:`kahan`,
  :func:`pascal` and :func:`grcar` (Higham, *The Test Matrix Toolbox for
  Matlab*, 1995; MATLAB's ``gallery``), each with its known behaviour.

Hypothesis strategies drawing from these families are in
:mod:`rootsolve.testing.strategies`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "GeneralMatrix",
    "with_spectrum",
    "random_spectrum",
    "nonnormal",
    "jordan_like",
    "near_negative_axis",
    "general_power_condition",
    "general_stability_factor",
    "general_tolerance",
    "frank",
    "lehmer",
    "kahan",
    "pascal",
    "grcar",
    "NAMED_MATRICES",
]


class GeneralMatrix(NamedTuple):
    """A test matrix and the eigen-decomposition it was built from.

    Attributes
    ----------
    a : ndarray, shape (n, n)
        The matrix (float64 or complex128).
    eigenvalues : ndarray, shape (n,), complex
        Its eigenvalues, in the order of the columns of ``v``.
    v : ndarray, shape (n, n), complex, or None
        Eigenvectors with ``a = v diag(eigenvalues) v^-1`` (None when ``a`` is
        defective, as for Jordan-like blocks).
    """

    a: np.ndarray
    eigenvalues: np.ndarray
    v: np.ndarray | None

    def power(self, t: float) -> np.ndarray:
        """``A^t = V diag(lambda^t) V^-1`` with principal scalar powers (real for real ``A``).

        A reference computed without any matrix-function solver; it carries an
        error of about ``cond(V) eps`` and needs ``v``.
        """
        if self.v is None:
            raise ValueError("power needs eigenvectors; this matrix was built without them")
        x = (self.v * np.exp(t * np.log(self.eigenvalues))) @ np.linalg.inv(self.v)
        return x.real if np.isrealobj(self.a) else x


def _orthogonal(n: int, rng: np.random.Generator, complex_: bool) -> np.ndarray:
    """Haar-distributed orthogonal/unitary matrix (QR of a Gaussian, signs fixed)."""
    g = rng.standard_normal((n, n))
    if complex_:
        g = g + 1j * rng.standard_normal((n, n))
    q, r = np.linalg.qr(g)
    d = np.diag(r)
    return q * (d / np.abs(d))


def _conditioned(n: int, rng: np.random.Generator, cond: float, complex_: bool) -> np.ndarray:
    """``U diag(s) W^H`` with singular values log-spaced from 1 to ``1/cond``."""
    s = np.logspace(0.0, -math.log10(cond), n) if n > 1 else np.ones(1)
    return (_orthogonal(n, rng, complex_) * s) @ _orthogonal(n, rng, complex_).conj().T


def _real_pairs(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split eigenvalues of a real matrix into real ones and upper-half-plane pair members."""
    lam = np.asarray(lam, dtype=complex)
    upper = lam[lam.imag > 0]
    lower = np.sort_complex(np.conj(lam[lam.imag < 0]))
    if upper.shape != lower.shape or not np.allclose(np.sort_complex(upper), lower):
        raise ValueError("eigenvalues of a real matrix must come in complex-conjugate pairs")
    return lam[lam.imag == 0].real, upper


def with_spectrum(
    eigenvalues: Any,
    *,
    rng: np.random.Generator | int | None = None,
    cond_v: float = 10.0,
    real: bool = True,
) -> GeneralMatrix:
    """``A = V D V^-1`` with the given eigenvalues and ``cond(V) = cond_v``.

    Parameters
    ----------
    eigenvalues : array_like, shape (n,)
        For ``real=True`` complex values must come in conjugate pairs; each
        pair becomes the real block ``[[x, y], [-y, x]]`` (eigenvalues ``x +- iy``).
    rng : Generator, int or None
    cond_v : float
        2-norm condition number of the (real or complex) similarity ``V``.
    real : bool
        Build a real matrix (``V`` real, block-diagonal ``D``) or a complex one.

    Returns
    -------
    GeneralMatrix
    """
    rng = np.random.default_rng(rng)
    lam = np.asarray(eigenvalues, dtype=complex)
    n = lam.shape[0]
    if not real:
        v = _conditioned(n, rng, cond_v, True)
        return GeneralMatrix((v * lam) @ np.linalg.inv(v), lam, v)
    reals, upper = _real_pairs(lam)
    d = np.zeros((n, n))
    basis = np.zeros((n, n), dtype=complex)  # eigenvectors of d
    d[range(len(reals)), range(len(reals))] = reals
    basis[range(len(reals)), range(len(reals))] = 1
    order = list(reals.astype(complex))
    for j, z in enumerate(upper):
        i = len(reals) + 2 * j
        d[i : i + 2, i : i + 2] = [[z.real, z.imag], [-z.imag, z.real]]
        basis[i : i + 2, i] = [1, 1j]
        basis[i : i + 2, i + 1] = [1, -1j]
        order += [z, np.conj(z)]
    v = _conditioned(n, rng, cond_v, False)
    a = v @ d @ np.linalg.inv(v)
    return GeneralMatrix(a, np.asarray(order), v @ basis)


def random_spectrum(
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    moduli: tuple[float, float] = (0.1, 10.0),
    max_arg: float = 0.9 * math.pi,
    real: bool = True,
    cond_v: float = 10.0,
) -> GeneralMatrix:
    """A matrix whose eigenvalues have log-uniform moduli and uniform arguments.

    Arguments lie in ``[-max_arg, max_arg]`` (``max_arg < pi`` keeps them off
    the negative real axis). Real matrices get about half their eigenvalues
    in conjugate pairs.
    """
    rng = np.random.default_rng(rng)
    if not real:
        r = np.exp(rng.uniform(*np.log(moduli), n))
        return with_spectrum(r * np.exp(1j * rng.uniform(-max_arg, max_arg, n)), rng=rng,
                             cond_v=cond_v, real=False)
    pairs = int(rng.integers(0, n // 2 + 1))
    r = np.exp(rng.uniform(*np.log(moduli), n - pairs))
    z = r[: n - 2 * pairs].astype(complex)
    w = r[n - 2 * pairs :] * np.exp(1j * rng.uniform(0.05, max_arg, pairs))
    return with_spectrum(np.concatenate([z, w, np.conj(w)]), rng=rng, cond_v=cond_v)


def nonnormal(
    n: int,
    *,
    rng: np.random.Generator | int | None = None,
    departure: float = 1e2,
    moduli: tuple[float, float] = (0.5, 2.0),
    real: bool = True,
) -> GeneralMatrix:
    """``Q (D + N) Q^H`` with ``N`` strictly upper triangular, ``||N||_F = departure ||D||_F``.

    ``D`` has positive real eigenvalues (real case) or eigenvalues in the open
    right half-plane (complex case); the eigenvectors are unknown in closed
    form, so ``v`` is None, but ``Q`` unitary keeps the departure from
    normality exact.
    """
    rng = np.random.default_rng(rng)
    lam = np.exp(rng.uniform(*np.log(moduli), n)).astype(complex)
    if not real:
        lam = lam * np.exp(1j * rng.uniform(-1.2, 1.2, n))
    nmat = np.triu(rng.standard_normal((n, n)), 1)
    if not real:
        nmat = nmat + 1j * np.triu(rng.standard_normal((n, n)), 1)
    diag = lam.real if real else lam
    scale = departure * np.linalg.norm(diag) / max(np.linalg.norm(nmat), 1e-300)
    q = _orthogonal(n, rng, not real)
    a = q @ (np.diag(diag) + scale * nmat) @ q.conj().T
    return GeneralMatrix(a, lam, None)


def jordan_like(
    block_sizes: tuple[int, ...] = (3, 2),
    eigenvalues: tuple[complex, ...] = (2.0, 0.5),
    *,
    delta: float = 1.0,
    rng: np.random.Generator | int | None = None,
    real: bool = True,
) -> GeneralMatrix:
    """Jordan-like blocks ``lambda I + delta J`` (``J`` the upper shift), orthogonally rotated.

    With ``delta = 1`` each block is a Jordan block: the matrix is defective
    and its roots are known in closed form (Higham 2008, eq. (1.4)); ``v`` is None.
    """
    if len(block_sizes) != len(eigenvalues):
        raise ValueError(f"one eigenvalue per block: got {block_sizes=} and {eigenvalues=}")
    rng = np.random.default_rng(rng)
    n = sum(block_sizes)
    dtype = float if real else complex
    t = np.zeros((n, n), dtype=dtype)
    lam = []
    i = 0
    for size, z in zip(block_sizes, eigenvalues, strict=True):
        blk = z * np.eye(size) + delta * np.eye(size, k=1)
        t[i : i + size, i : i + size] = blk.real if real else blk
        lam += [z] * size
        i += size
    q = _orthogonal(n, rng, not real)
    return GeneralMatrix(q @ t @ q.conj().T, np.asarray(lam, dtype=complex), None)


def near_negative_axis(
    n: int,
    *,
    delta: float = 1e-2,
    rng: np.random.Generator | int | None = None,
    real: bool = True,
    cond_v: float = 10.0,
) -> GeneralMatrix:
    """Eigenvalues ``r exp(+-i (pi - delta))`` near but off the negative real axis.

    Half the spectrum (conjugate pairs for real matrices) sits at angular
    distance ``delta`` from the negative axis; the rest is positive. The
    principal root exists; its condition grows like ``1/delta``.
    """
    rng = np.random.default_rng(rng)
    pairs = max(n // 4, 1)
    w = np.exp(rng.uniform(-1.0, 1.0, pairs)) * np.exp(1j * (math.pi - delta))
    rest = np.exp(rng.uniform(-1.0, 1.0, n - 2 * pairs)).astype(complex)
    return with_spectrum(np.concatenate([rest, w, np.conj(w)]), rng=rng, cond_v=cond_v,
                         real=real)


def _power_sum_kron(y: np.ndarray, k: int) -> np.ndarray:
    """Kronecker form of ``E -> sum_i Y^i E Y^(k-1-i)``, the Frechet derivative of ``Y^k``."""
    powers = [np.eye(y.shape[0], dtype=y.dtype)]
    for _ in range(k - 1):
        powers.append(powers[-1] @ y)
    return sum(np.kron(powers[k - 1 - i].T, powers[i]) for i in range(k))


def general_power_condition(a: np.ndarray, m: int, p: int, root: np.ndarray) -> float:
    """Relative condition number of ``A -> A^(m/p)`` in the Frobenius norm (small ``n``).

    With ``Y = A^(1/p)`` (``root``, computed by any reliable method) the
    Frechet derivative is ``L = L_inv o L_pow(|m|) o L_pow(p)^-1`` in Kronecker
    form, where ``L_pow(k)`` is the derivative of ``Y -> Y^k`` and ``L_inv``
    that of ``Z -> Z^-1`` (for ``m < 0``); the condition number is
    ``||L||_2 ||A||_F / ||A^(m/p)||_F`` (Higham 2008, sec. 3.1 and eq. (7.7)).
    Costs ``O(n^6)``: meant for test matrices with ``n <= 12``.
    """
    y = np.asarray(root)
    lin = np.linalg.inv(_power_sum_kron(y, p))
    z = np.linalg.matrix_power(y, abs(m))
    if abs(m) > 1:
        lin = _power_sum_kron(y, abs(m)) @ lin
    if m < 0:
        z = np.linalg.inv(z)
        lin = -np.kron(z.T, z) @ lin
    return float(np.linalg.norm(lin, 2) * np.linalg.norm(a) / np.linalg.norm(z))


def general_stability_factor(a: np.ndarray, x: np.ndarray, m: int, p: int) -> float:
    """The factor a stable method's residual carries: ``||X||^p / ||A^m||`` (or its inverse form).

    For ``X ~ A^(m/p)`` with ``m > 0`` the relative residual
    ``||X^p - A^m|| / ||A^m||`` of a backward-stable method is of order
    ``n eps ||X||^p / ||A^m||`` (Higham 2008, sec. 6.4 for square roots; the
    same argument for p-th roots); for ``m < 0`` the residual
    ``||X^p A^|m| - I|| / sqrt(n)`` is of order ``n eps ||X||^p ||A^|m||| / sqrt(n)``.
    Frobenius norms throughout.
    """
    fro = np.linalg.norm
    am = np.linalg.matrix_power(a, abs(m))
    if m > 0:
        return float(fro(x) ** p / fro(am))
    return float(fro(x) ** p * fro(am) / math.sqrt(a.shape[-1]))


def general_tolerance(
    n: int, factor: float, eps: float, *, nonnormality: float = 1.0, safety: float = 50.0
) -> float:
    """Error bound ``safety * n * eps * factor * nonnormality`` for a general-matrix power.

    ``factor`` is ``cond + 1`` (from :func:`general_power_condition`) for a
    forward error and the stability factor (:func:`general_stability_factor`)
    for a residual: a backward-stable method's errors are a modest multiple of
    ``n eps`` times these (Higham 2008, secs. 3.1, 6.4, 7.6). Methods that
    invert the matrix itself without a Schur form (Denman-Beavers square
    roots) lose a further ``cond_2(A)``; pass it as ``nonnormality``. The
    default ``safety`` of 50 is about ten times the largest ratio observed on
    the families of this module with the Schur-Newton method.
    """
    return safety * n * eps * factor * nonnormality


def frank(n: int) -> np.ndarray:
    """Frank matrix: upper Hessenberg, ``F_ij = n + 1 - max(i, j)`` for ``j >= i - 1``.

    Known behaviour: determinant 1; real positive eigenvalues in reciprocal
    pairs ``(lambda, 1/lambda)``; the small ones are very ill-conditioned
    (cond(F) ~ 4e3 at n = 6, ~3e7 at n = 10).
    """
    i, j = np.indices((n, n))
    return np.where(j >= i - 1, n - np.maximum(i, j), 0).astype(float)


def lehmer(n: int) -> np.ndarray:
    """Lehmer matrix ``min(i, j) / max(i, j)``: symmetric positive definite, tridiagonal inverse."""
    i, j = np.indices((n, n)) + 1
    return np.minimum(i, j) / np.maximum(i, j)


def kahan(n: int, theta: float = 1.2) -> np.ndarray:
    """Kahan matrix: upper triangular, ``diag(s^k) (I - c * strict upper ones)``, ``s = sin theta``.

    Known behaviour: eigenvalues ``s^k > 0`` on the diagonal; strongly
    nonnormal; every primary function of it, hence its principal root, is
    upper triangular.
    """
    s, c = math.sin(theta), math.cos(theta)
    u = np.eye(n) - c * np.triu(np.ones((n, n)), 1)
    return (s ** np.arange(n))[:, None] * u


def pascal(n: int) -> np.ndarray:
    """Pascal matrix ``binom(i + j, i)``: symmetric positive definite, determinant 1.

    Known behaviour: eigenvalues in reciprocal pairs; cond ~ 1e5 at n = 6 and
    ~ 2e7 at n = 8.
    """
    from scipy.special import comb

    i, j = np.indices((n, n))
    return comb(i + j, i, exact=False)


def grcar(n: int, k: int = 3) -> np.ndarray:
    """Grcar matrix: -1 on the subdiagonal, 1 on the diagonal and ``k`` superdiagonals.

    Known behaviour: real Toeplitz, highly nonnormal, with complex-conjugate
    eigenvalue pairs in the open right half-plane (arguments up to about 1.5
    at n = 12, k = 3): its real root needs the 2x2 blocks of the real Schur form.
    """
    return np.eye(n, k=-1) * -1 + sum(np.eye(n, k=d) for d in range(k + 1))


#: The named matrices with sizes small enough for float64 roots to be checked.
NAMED_MATRICES = {
    "frank": frank,
    "lehmer": lehmer,
    "kahan": kahan,
    "pascal": pascal,
    "grcar": grcar,
}
