"""A warm-started eigenbasis of a slowly changing symmetric matrix.

Optimizers in the Shampoo family (SOAP, eigenvalue-corrected Shampoo) keep the
eigenvectors of statistics that move a little between refreshes. A cold
``eigh`` starts from nothing each time; :func:`refine_eigenbasis` starts from
the previous basis ``Q`` and applies steps of subspace (orthogonal)
iteration, each

1. the Rayleigh quotients ``diag(Q^H A Q)``, columns sorted by them,
   largest first (SOAP's order, Vyas et al. 2024, and the order in which
   subspace iteration's nested subspaces converge);
2. ``Q <- qr(A Q)``, with the column signs (phases) chosen so that ``R`` has a
   nonnegative real diagonal, which keeps ``Q`` close to its predecessor.

After the last step the Rayleigh quotients at the new basis are the
eigenvalue estimates, and the columns are sorted by them once more. One step
costs two matrix products and one QR; a cold ``eigh`` (LAPACK ``syevd``)
costs about 7-9 products at n = 1024 and 15-50 at n = 64-256 on a CPU.

Subspace iteration converges linearly: the angle between the span of the
leading ``k`` columns and the dominant ``k``-dimensional invariant subspace
shrinks by ``|lambda_(k+1) / lambda_k|`` per step (Golub & Van Loan, *Matrix
Computations*, 4th ed., sec. 8.2.4, Theorem 8.2.2; Stewart, *Matrix
Algorithms II*, sec. 6.1). Statistics that move slowly leave the previous
basis nearly invariant, so the error one step must remove is small to begin
with; see ``docs/math.md``.

References
----------
N. Vyas, D. Morwani, R. Zhao, I. Shapira, D. Brandfonbrener, L. Janson,
S. Kakade, "SOAP: Improving and Stabilizing Shampoo using Adam",
arXiv:2409.11321, 2024 (one power step with a QR per refresh).

G. H. Golub and C. F. Van Loan, *Matrix Computations*, 4th ed., Johns Hopkins
2013, sec. 8.2.4 (orthogonal iteration).

G. W. Stewart, *Matrix Algorithms, Volume II: Eigensystems*, SIAM 2001,
sec. 6.1 (subspace iteration).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._backend import Backend
from ._validation import check_choice, check_matrix, check_order, dtype_name, eps_of
from .conditioning import symmetrize

__all__ = ["Eigenbasis", "EigenbasisInfo", "refine_eigenbasis"]

_HALF = ("float16", "bfloat16")
ORTHONORMALIZE_METHODS = ("auto", "householder", "cholesky")


class Eigenbasis(NamedTuple):
    """Eigenvalue estimates and the (refined) eigenbasis.

    Attributes
    ----------
    eigenvalues : array, shape (..., n)
        Rayleigh quotients ``diag(Q^H A Q)``, largest first (real).
    eigenvectors : array, shape (..., n, n)
        Orthonormal columns ``Q``, in the order of ``eigenvalues``.
    """

    eigenvalues: Any
    eigenvectors: Any


class EigenbasisInfo(NamedTuple):
    """What :func:`refine_eigenbasis` reports with ``return_info=True``.

    Attributes
    ----------
    off_diagonal : array, shape (...)
        ``||offdiag(B)||_F / ||diag(B)||_2`` for ``B = Q^H A Q`` at the
        returned basis (with ``resort=False``: at the basis the last power
        step started from): 0 for an exact eigenbasis. It bounds the eigenvector
        error through the gap (Davis-Kahan: the angle of a column whose
        eigenvalue is separated from the others by ``gap`` is at most about
        ``off_diagonal * ||diag(B)||_2 / gap``). 0 for the zero matrix.
    permutation : array of int, shape (..., n)
        Column ``j`` of the result refines column ``permutation[..., j]`` of
        ``q``: the composition of the sorts of every step. Quantities kept
        per column (an optimizer's second moments) follow the basis with
        ``x[..., permutation, :]``. The identity for a cold start.
    steps : int
        Power steps taken (0 for the cold ``eigh`` start).
    finite : array of bool, shape (...)
        Whether the input (and ``q``) was finite. Under ``jax.jit`` a
        non-finite input gives NaN results and ``finite == False``; eager
        input raises instead.
    """

    off_diagonal: Any
    permutation: Any
    steps: int
    finite: Any


def _ct(xp: Any, x: Any) -> Any:
    """Conjugate transpose of the last two axes."""
    xt = xp.matrix_transpose(x)
    return xp.conj(xt) if xp.isdtype(x.dtype, "complex floating") else xt


def _rayleigh(be: Backend, q: Any, aq: Any) -> Any:
    """``diag(Q^H A Q)`` from ``Q`` and ``A Q`` without a matrix product (real)."""
    xp = be.xp
    d = xp.sum(xp.conj(q) * aq if xp.isdtype(q.dtype, "complex floating") else q * aq, axis=-2)
    return xp.real(d) if xp.isdtype(d.dtype, "complex floating") else d


def _sort_columns(be: Backend, w: Any, *arrays: Any) -> tuple[Any, ...]:
    """Order of ``w`` descending (stable), and ``arrays``' columns / entries in it."""
    xp = be.xp
    order = xp.argsort(-w, axis=-1, stable=True)
    out = [_take(be, w, order), order]
    for x in arrays:
        idx = xp.broadcast_to(order[..., None, :], x.shape[:-2] + (x.shape[-2], order.shape[-1]))
        out.append(_take(be, x, idx))
    return tuple(out)


def _take(be: Backend, x: Any, idx: Any) -> Any:
    """``take_along_axis`` on the last axis; for jax without the pass that fills
    out-of-range indices (a permutation has none)."""
    if be.name == "jax":
        return be.xp.take_along_axis(x, idx, axis=-1, mode="promise_in_bounds")
    return be.xp.take_along_axis(x, idx, axis=-1)


def _qr_step(be: Backend, aq: Any) -> Any:
    """Orthonormal factor of ``A Q`` with a nonnegative real diagonal in ``R``."""
    xp = be.xp
    qn, r = xp.linalg.qr(aq)
    d = xp.linalg.diagonal(r)
    if xp.isdtype(d.dtype, "complex floating"):
        mag = xp.abs(d)
        phase = xp.where(mag > 0, d / xp.astype(xp.where(mag > 0, mag, 1), d.dtype), 1)
        return qn * xp.astype(phase, qn.dtype)[..., None, :]
    sign = xp.where(d < 0, -xp.ones_like(d), xp.ones_like(d))
    return qn * sign[..., None, :]


def _shifted_rounds(cname: str) -> int:
    """Shifted Cholesky QR rounds before the two plain ones, by precision.

    With unit-norm columns and the shift ``s = n eps trace(X^H X)``, a shifted
    round maps the singular values ``sigma`` to ``sigma / sqrt(sigma^2 + s)``,
    which multiplies the condition number by about ``sqrt(n eps)`` (Fukaya et
    al. 2020). The matrix it starts from has condition at most about
    ``1 / (n eps)`` (the shift of ``A`` in :func:`_cholesky_qr`), and the plain
    rounds need about ``1 / sqrt(n eps)``: one shifted round reaches that bound
    and sufficed in double precision in every case measured (n = 64 and 512,
    eigenvalues down to 1e-15 and exact zeros); single precision, with less
    room, takes three (two failed for n = 1024 at condition 1e9).
    """
    return 1 if cname in ("float64", "complex128") else 3


def _cholesky_qr(be: Backend, aq: Any, q: Any, b: Any, cname: str) -> Any:
    """Orthonormal factor of ``A Q + delta Q`` by shifted Cholesky QR (only products).

    ``X = A Q + delta Q`` with ``delta = n eps ||A||_F`` has the eigenvectors of
    ``A`` and condition at most about ``1 / (n eps)`` (a rank-deficient ``A``
    would make the Gram matrix singular; the shift changes the convergence rate
    only for eigenvalues below ``n eps ||A||``, which rounding hides anyway).
    Its columns are scaled to unit norm (a positive diagonal factor, so the
    same ``Q``), then ``R = chol(X^H X + s I)``, ``X <- X R^(-1)`` with the
    shift ``s = n eps trace(X^H X)`` for :func:`_shifted_rounds` rounds and
    ``s = 0`` for two more (CholeskyQR2). Every factor is upper triangular with
    a positive diagonal, so the result is the ``Q`` of a QR of ``X`` whose
    ``R`` has a positive diagonal, as :func:`_qr_step` returns it.

    References
    ----------
    T. Fukaya, Y. Nakatsukasa, Y. Yanagisawa, Y. Yamamoto, "CholeskyQR2: a
    simple and communication-avoiding algorithm for computing a tall-skinny QR
    factorization", ScalA 2014. T. Fukaya, R. Kannan, Y. Nakatsukasa, Y.
    Yamamoto, Y. Yanagisawa, "Shifted Cholesky QR for computing the QR
    factorization of ill-conditioned matrices", SIAM J. Sci. Comput. 42(1),
    A477-A503, 2020.
    """
    xp = be.xp
    n = aq.shape[-1]
    eps = eps_of(cname)
    scale = xp.sqrt(xp.sum(xp.abs(b) ** 2, axis=(-2, -1)))
    x = aq + xp.astype((n * eps) * scale, aq.dtype)[..., None, None] * q
    norms = xp.sqrt(xp.sum(xp.abs(x) ** 2, axis=-2))
    x = x / xp.astype(xp.where(norms > 0, norms, 1), x.dtype)[..., None, :]
    eye = xp.eye(n, dtype=x.dtype)
    shifted = _shifted_rounds(cname)
    for k in range(shifted + 2):
        g = be.matmul(_ct(xp, x), x)
        g = (g + _ct(xp, g)) / 2
        if k < shifted:
            tr = xp.real(xp.sum(xp.linalg.diagonal(g), axis=-1))
            g = g + xp.astype((n * eps) * tr, g.dtype)[..., None, None] * eye
        lower = xp.linalg.cholesky(g)
        # X R^(-1) with R = L^H is (L^(-1) X^H)^H.
        if be.name == "jax":
            import jax.scipy.linalg as jsl

            y = jsl.solve_triangular(lower, _ct(xp, x), lower=True)
        else:
            y = be.solve(lower, _ct(xp, x))
        x = _ct(xp, y)
    return x


def _auto_orthonormalization(be: Backend, n: int) -> str:
    """What ``orthonormalize="auto"`` picks, from measurements on one H200 (float32).

    jax's batched QR on a GPU takes 45 ms for 32 matrices of 256 and 244 ms for 8
    of 512, against 3.0 and 5.4 ms by Cholesky QR (1.1x slower only for 2 of 1024).
    cupy has no batched triangular solve, and its general solve makes Cholesky QR
    slower than its QR above n = 256 (54 vs 18 ms for 8 of 512). CPUs: LAPACK's
    QR is the faster (docs/choosing.md).
    """
    if be.on_gpu and (be.name == "jax" or n <= 256):
        return "cholesky"
    return "householder"


def _orthonormalize(be: Backend, method: str, aq: Any, q: Any, b: Any, cname: str) -> Any:
    """The ``Q`` of ``qr(A Q)`` (positive diagonal ``R``) by ``method``."""
    if method == "householder":
        return _qr_step(be, aq)
    xp = be.xp
    if be.eager:
        try:
            qn = _cholesky_qr(be, aq, q, b, cname)
        except Exception:  # each library raises its own LinAlgError
            return _qr_step(be, aq)
        return qn if bool(xp.all(xp.isfinite(qn))) else _qr_step(be, aq)
    import jax

    qn = _cholesky_qr(be, aq, q, b, cname)
    ok = _all_finite(be, qn)
    # A failed factorization gives NaN: those matrices take the Householder QR, which
    # runs only when one failed (under vmap both branches run).
    return jax.lax.cond(
        xp.all(ok),
        lambda: qn,
        lambda: xp.where(ok[..., None, None], qn, _qr_step(be, aq)),
    )


def _compute_dtype(be: Backend, dname: str, compute_dtype: Any) -> str:
    if compute_dtype is not None:
        name = dtype_name(compute_dtype)
        if name not in ("float32", "float64", "complex64", "complex128"):
            raise ValueError(
                "compute_dtype must be one of float32, float64, complex64, complex128, "
                f"got compute_dtype={compute_dtype!r}"
            )
        if name.startswith("complex") != dname.startswith("complex"):
            kind = "complex" if dname.startswith("complex") else "real"
            raise ValueError(
                f"compute_dtype must be {kind} for input of dtype {dname}, "
                f"got compute_dtype={compute_dtype!r}"
            )
        if name in ("float64", "complex128") and not be.has_float64:
            raise ValueError(
                f"compute_dtype={name} needs jax_enable_x64 (jax.config.update"
                "('jax_enable_x64', True))"
            )
        return name
    return "float32" if dname in _HALF else dname


def _all_finite(be: Backend, x: Any) -> Any:
    """Whether each matrix of ``x`` is finite.

    Traced: one sum of ``x * 0`` (0 for finite entries, NaN otherwise, and a sum
    propagates NaN), which XLA computes in one pass where ``all(isfinite(x))``
    materializes a boolean array first.
    """
    xp = be.xp
    if be.eager:
        return xp.all(xp.isfinite(x), axis=(-2, -1))
    return xp.isfinite(xp.sum(x * 0, axis=(-2, -1)))


def refine_eigenbasis(
    a: Any,
    q: Any = None,
    *,
    steps: int = 1,
    compute_dtype: Any = None,
    symmetrize_input: bool = True,
    resort: bool = True,
    orthonormalize: str = "auto",
    return_info: bool = False,
) -> Any:
    """Refine an eigenbasis of symmetric ``a`` from a previous one by subspace iteration.

    Each step sorts the columns of ``Q`` by their Rayleigh quotients
    ``diag(Q^H A Q)`` (largest first) and replaces ``Q`` by the orthonormal
    factor of ``A Q`` (QR, column signs chosen so that ``R``'s diagonal is
    nonnegative). The result's eigenvalues are the Rayleigh quotients at the
    new basis, and its columns are sorted by them. Without ``q`` the basis
    comes from a cold ``eigh`` (reordered largest first) and ``steps`` is
    not used.

    Parameters
    ----------
    a : array, shape (..., n, n)
        Real symmetric or complex Hermitian matrices (numpy, jax, or any
        array-API array), typically positive semidefinite statistics.
    q : array, shape (..., n, n), optional
        The previous orthonormal basis (its batch shape must broadcast with
        ``a``'s). ``None`` starts cold from ``eigh``.
    steps : int, default 1
        Power steps (each: two matrix products and one QR). Ignored for a
        cold start.
    compute_dtype : dtype or str, optional
        Dtype to compute in (e.g. ``"float64"`` for float32 statistics on a
        CPU). Default: the promoted dtype of ``a`` and ``q``, with float16 and
        bfloat16 computed in float32. The results have the input's dtype.
    symmetrize_input : bool, default True
        Use the Hermitian part ``(A + A^H)/2``.
    resort : bool, default True
        After the last step, take the Rayleigh quotients at the new basis (one
        more product) and sort its columns by them. False returns the columns
        in the order of the last QR, with the Rayleigh quotients of the
        columns they refine (measured before that QR, largest first) as
        ``eigenvalues``, and the accuracy report measured there too: one
        product and one QR per step, the refresh of SOAP's authors. Ignored
        for a cold start.
    orthonormalize : {"auto", "householder", "cholesky"}, default "auto"
        How the ``Q`` of ``A Q`` is computed: ``"householder"``, LAPACK's QR;
        ``"cholesky"``, shifted Cholesky QR (Fukaya et al. 2014, 2020): matrix
        products, Cholesky factorizations and triangular solves, no QR, the
        same ``Q`` to rounding (see ``docs/math.md``), about four times the
        flops but a better fit for GPUs, whose batched QR is slow. A Cholesky
        factorization that fails falls back to the Householder QR. ``"auto"``:
        ``"cholesky"`` for jax arrays on a GPU and cupy arrays of n <= 256
        (faster there, measured in ``docs/choosing.md``), else
        ``"householder"``.
    return_info : bool, default False
        Also return an :class:`EigenbasisInfo` (the off-diagonal mass is the
        Frobenius norm of the residual ``A Q - Q diag(w)``, which equals that
        of ``offdiag(Q^H A Q)`` for a unitary ``Q``: no extra product after
        power steps, one after a cold start).

    Returns
    -------
    Eigenbasis or (Eigenbasis, EigenbasisInfo)
        ``eigenvalues`` (..., n), largest first, and ``eigenvectors``
        (..., n, n).

    Raises
    ------
    TypeError, ValueError
        Unsupported dtype, non-square or mismatched shapes, ``steps < 1``,
        or (eager input only) non-finite entries.

    Notes
    -----
    The leading ``k`` columns converge to the dominant ``k``-dimensional
    invariant subspace at the rate ``|lambda_(k+1) / lambda_k|`` per step
    (eigenvalues ordered by modulus; for positive semidefinite statistics,
    by value), see :mod:`rootsolve.eigenbasis`. Eigenvalues that are equal or
    nearly so do not have individually converging columns, but their common
    subspace converges and the off-diagonal mass still falls. Zero
    eigenvalues make ``A Q`` rank-deficient; the QR still returns an
    orthonormal completion. Under ``jax.jit``/``vmap`` nothing is raised:
    non-finite input gives NaN results and ``info.finite == False``.

    References
    ----------
    Vyas et al., "SOAP: Improving and Stabilizing Shampoo using Adam",
    arXiv:2409.11321, 2024. Golub & Van Loan, *Matrix Computations*, 4th ed.,
    sec. 8.2.4.

    Examples
    --------
    >>> import numpy as np
    >>> from rootsolve import refine_eigenbasis
    >>> a = np.diag([3.0, 2.0, 1.0])
    >>> cold = refine_eigenbasis(a)
    >>> warm = refine_eigenbasis(a + 1e-3, cold.eigenvectors)
    >>> np.round(warm.eigenvalues, 3)
    array([3.001, 2.001, 1.001])
    """
    be, a, dname = check_matrix(a)
    steps = check_order(steps, "steps")
    if check_choice(orthonormalize, "orthonormalize", ORTHONORMALIZE_METHODS) == "auto":
        orthonormalize = _auto_orthonormalization(be, a.shape[-1])
    xp = be.xp
    n = a.shape[-1]
    if q is not None:
        be_q, q, qname = check_matrix(q, "q")
        if be_q.name != be.name:
            raise TypeError(
                f"q must come from the same array library as a, got {be_q.name} and {be.name}"
            )
        if q.shape[-1] != n:
            raise ValueError(
                f"q must have shape (..., {n}, {n}) to match a of shape {tuple(a.shape)}, "
                f"got {tuple(q.shape)}"
            )
        try:
            batch = tuple(np.broadcast_shapes(tuple(a.shape[:-2]), tuple(q.shape[:-2])))
        except ValueError:
            raise ValueError(
                f"q's batch shape {tuple(q.shape[:-2])} does not broadcast with a's "
                f"{tuple(a.shape[:-2])}"
            ) from None
        dname = dtype_name(xp.result_type(a.dtype, q.dtype)) if qname != dname else dname
    else:
        batch = tuple(a.shape[:-2])
    cname = _compute_dtype(be, dname, compute_dtype)
    cdt = getattr(xp, cname)
    b = xp.astype(a, cdt)
    if symmetrize_input:
        b = symmetrize(be, b)
    finite = _all_finite(be, b)
    if q is not None:
        qc = xp.astype(q, cdt)
        finite = finite & _all_finite(be, qc)
    if be.eager and not bool(xp.all(finite)):
        raise ValueError("a (or q) contains non-finite values (nan or inf)")
    if not be.eager and q is None:
        # LAPACK's eigh must not see a non-finite matrix; products and QR propagate NaN.
        b = xp.where(finite[..., None, None], b, xp.eye(n, dtype=cdt))

    if q is None:
        w, v = be.eigh(b)
        w = xp.flip(w, axis=-1)
        v = xp.flip(v, axis=-1)
        order = xp.broadcast_to(xp.arange(n), w.shape)
        aq = be.matmul(b, v) if return_info else None
        measured = (v, aq, w)
        taken = 0
    else:
        b = xp.broadcast_to(b, batch + (n, n))
        v = xp.broadcast_to(qc, batch + (n, n))
        aq = be.matmul(b, v)
        order = None
        # Shifted Cholesky QR reads the sorted basis; the Householder QR needs only A Q.
        sort_v = orthonormalize == "cholesky"
        for k in range(steps):
            # The accuracy report describes the basis before the sort: the Frobenius norm
            # of the residual does not depend on the order of the columns.
            w = _rayleigh(be, v, aq)
            measured = (v, aq, w)
            w, perm, aq, *vs = _sort_columns(be, w, aq, *((v,) if sort_v else ()))
            order = perm if order is None else _take(be, order, perm)
            v = _orthonormalize(be, orthonormalize, aq, vs[0] if sort_v else None, b, cname)
            if resort or k < steps - 1:
                aq = be.matmul(b, v)
        if resort:
            w = _rayleigh(be, v, aq)
            measured = (v, aq, w)
            w, perm, v = _sort_columns(be, w, v)
            order = _take(be, order, perm)
        taken = steps

    if not be.eager:
        bad = ~finite
        w = xp.where(bad[..., None], xp.full_like(w, float("nan")), w)
        v = xp.where(bad[..., None, None], xp.full_like(v, float("nan")), v)
    out_dt = a.dtype if dtype_name(a.dtype) == dname else getattr(xp, dname)
    real_dt = xp.real(xp.zeros((), dtype=out_dt)).dtype
    result = Eigenbasis(xp.astype(w, real_dt), xp.astype(v, out_dt))
    if not return_info:
        return result
    # offdiag(Q^H A Q) = Q^H (A Q - Q diag(w)) off the diagonal, whose diagonal is zero
    # (w holds the Rayleigh quotients); Q is square and unitary, so its Frobenius norm is
    # that of the residual A Q - Q diag(w): no third matrix product.
    mv, maq, mw = measured
    off = maq - mv * xp.astype(mw, mv.dtype)[..., None, :]
    # Sums of squares, not vector_norm over two axes: jax computes that as the matrix
    # 2-norm (a singular value decomposition), a hundred times the cost of the rest.
    off_norm = xp.sqrt(xp.sum(xp.abs(off) ** 2, axis=(-2, -1)))
    diag_norm = xp.sqrt(xp.sum(w**2, axis=-1))
    rel = xp.where(diag_norm > 0, off_norm / xp.where(diag_norm > 0, diag_norm, 1), off_norm)
    if not be.eager:
        rel = xp.where(finite, rel, xp.full_like(rel, float("nan")))
    info = EigenbasisInfo(rel, order, taken, finite)
    return result, info
