"""Roots and powers of Hermitian matrices by eigendecomposition.

For Hermitian ``B = V diag(w) V^H`` every real power is
``B^t = V diag(w^t) V^H = (V diag(w^(t/2))) (V diag(w^(t/2)))^H``: one
matrix product after the decomposition, Hermitian positive semidefinite by
construction (Higham, *Functions of Matrices*, SIAM 2008, sec. 1.2 and
Problem 1.20). The shift ``B + s I`` is applied to the eigenvalues, which is
exact and costs nothing; the floor and the pseudo-inverse cut-off act on the
eigenvalues too.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ._backend import Backend
from .conditioning import Conditioning

__all__ = ["EighPowerResult", "eigh_power"]


class EighPowerResult(NamedTuple):
    """Output of :func:`eigh_power`; batch-shaped except ``x``."""

    x: Any
    ridge: Any
    negative: Any
    singular: Any
    w_min: Any
    w_max: Any
    w: Any
    v: Any
    kept: Any


def eigh_power(
    be: Backend, b: Any, t: float, cond: Conditioning, eps: float, eps_compute: float | None = None
) -> EighPowerResult:
    """``(B + ridge I)^t`` for Hermitian ``b`` by ``eigh``.

    Parameters
    ----------
    be : Backend
    b : array, shape (..., n, n)
        Hermitian input in the compute dtype.
    t : float
        Real exponent.
    cond : Conditioning
        Ridge, floor and pseudo-inverse settings.
    eps : float
        Unit roundoff that decides which eigenvalues are below zero beyond
        rounding (the coarser of the input's and the compute dtype's).
    eps_compute : float, optional
        Unit roundoff of ``b``'s dtype (default ``eps``), which decides which
        eigenvalues are zero: a float32 matrix is exact in float64, so
        computed there its eigenvalues are known to float64 accuracy.

    Returns
    -------
    EighPowerResult
        The power, the ridge added, and per-matrix flags: ``negative`` (an
        eigenvalue below ``-n eps max|w|``, so not PSD beyond rounding) and
        ``singular`` (for ``t < 0``: an eigenvalue within ``n eps_compute
        max|w|`` of zero that neither ridge, floor nor pseudo-inverse removes).
        Eigenvalues below zero only by rounding count as zero before a ridge
        is added, so any positive ridge leaves none singular.
    """
    xp = be.xp
    n = b.shape[-1]
    w, v = be.eigh(b)
    w_top = w[..., -1]
    scale = xp.maximum(xp.abs(w[..., 0]), xp.abs(w_top))
    ridge = cond.ridge + cond.rel_ridge * xp.maximum(w_top, xp.zeros_like(w_top))
    thresh = n * eps * scale
    ridged = (ridge > 0)[..., None]
    # Below zero only by rounding: zero, so that a ridge lifts it.
    rounding = ridged & (w < 0) & (w >= -thresh[..., None])
    w = xp.where(rounding, xp.zeros_like(w), w) + ridge[..., None]
    negative = w[..., 0] < -thresh
    w_max = w[..., -1]
    thresh_zero = n * (eps if eps_compute is None else eps_compute) * scale
    if cond.floor is not None:
        w = xp.maximum(w, xp.full_like(w, cond.floor))
    if cond.pinv_atol is not None or cond.pinv_rtol is not None:
        cut = xp.maximum(
            xp.full_like(w_max, cond.pinv_atol or 0.0),
            (cond.pinv_rtol or 0.0) * w_max,
        )
        keep = w > cut[..., None]
        singular = xp.zeros_like(negative)
    else:
        keep = w > 0
        zero = xp.where(ridged[..., 0], ~(w[..., 0] > 0), w[..., 0] <= thresh_zero)
        singular = zero if t < 0 else xp.zeros_like(negative)
        if t >= 0:
            keep = xp.ones_like(keep)
    w_safe = xp.where(keep & (w > 0), w, xp.ones_like(w))
    d = xp.where(keep & (w > 0), w_safe ** (t / 2), xp.zeros_like(w))
    if t < 0:
        # Where nothing removes a zero eigenvalue the honest answer is inf.
        d = xp.where(keep & ~(w > 0), xp.full_like(w, float("inf")), d)
    vd = v * xp.astype(d, v.dtype)[..., None, :]
    x = be.matmul_h(vd, vd)
    # kept: eigenvectors an inverse power acts on (all but a pseudo-inverse cut).
    kept = keep if cond.pinv_atol is not None or cond.pinv_rtol is not None else (
        xp.ones_like(keep)
    )
    return EighPowerResult(x, ridge, negative, singular, w[..., 0], w_max, w, v, kept)
