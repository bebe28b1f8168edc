"""Method paths for exponents beyond ``+-q/p``: Schur-Pade and integer powers.

* :func:`schur_pade_path`: any real ``t`` for general matrices on the host
  (:mod:`rootsolve.general_power`), also numpy's branch on the negative real axis
  and positive powers of singular matrices with a semisimple zero eigenvalue;
* :func:`integer_power_path`: ``t`` an integer, any square matrix, every
  backend (:mod:`rootsolve.integer_power`).

Both follow the contract of :mod:`rootsolve._paths`: the absolute ridge is
added first, eager failures raise the errors of :mod:`rootsolve.errors`, and a
:class:`~rootsolve._paths.PathResult` comes back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backend import Backend
from ._linalg import eye_like
from ._paths import PathResult, Request
from .general_power import schur_pade_power
from .integer_power import integer_power

__all__ = ["schur_pade_path", "integer_power_path", "with_ridge"]


def with_ridge(be: Backend, b: Any, req: Request) -> tuple[Any, Any]:
    """``b + ridge I`` and the batch of ridges actually added (``assume_a="gen"``: absolute)."""
    xp = be.xp
    ridge = xp.full(b.shape[:-2], float(req.cond.ridge), dtype=xp.real(b[..., :1, :1]).dtype)
    if req.cond.ridge:
        b = b + req.cond.ridge * eye_like(xp, b)
    return b, ridge


def schur_pade_path(be: Backend, b: Any, req: Request) -> PathResult:
    """``b^t`` by the Schur-Pade algorithm, computed on the host.

    The result is complex for real ``b`` only with ``branch="numpy"`` and an
    eigenvalue on the negative real axis. A traced jax array (``jit``,
    ``vmap``) on the CPU goes to the host through :func:`jax.pure_callback`
    (:func:`_traced`).
    """
    xp = be.xp
    b, ridge = with_ridge(be, b, req)
    if not be.eager:
        x, its, ok, gemms = _traced(b, req)
        return PathResult(x, its, ok, ridge, gemms, b)
    res = schur_pade_power(
        np.asarray(b), req.t, eps=req.eps, branch=req.branch, order=f"power a^({req.t:g})"
    )
    out = tuple(xp.asarray(v) for v in res)  # back from the host for jax
    return PathResult(out[0], out[1], out[2], ridge, out[3], b)


def _traced(b: Any, req: Request):
    """Schur-Pade under ``jit`` on the CPU: a host callback that never raises.

    The output dtype must be known before the data: ``b``'s own, so real input
    takes the principal branch (``_roots`` refuses ``branch="numpy"`` for it)
    and complex input either branch. A matrix whose power does not exist (an
    eigenvalue on the negative axis without the option, a singular one for
    ``t < 0``) comes back as NaN with ``converged`` False.
    """
    import jax

    batch = b.shape[:-2]

    def host(bh: np.ndarray):
        bh = np.asarray(bh)
        x = np.full(bh.shape, np.nan, dtype=bh.dtype)
        its = np.zeros(bh.shape[:-2], dtype=np.int32)
        ok = np.zeros(bh.shape[:-2], dtype=bool)
        gemms = np.zeros(bh.shape[:-2], dtype=np.int32)
        for idx in np.ndindex(bh.shape[:-2]):
            try:
                res = schur_pade_power(bh[idx], req.t, eps=req.eps, branch=req.branch)
            except np.linalg.LinAlgError:
                continue
            if np.iscomplexobj(res.x) and not np.iscomplexobj(bh):
                continue  # cannot happen with the principal branch; kept NaN if it did
            x[idx], its[idx], ok[idx], gemms[idx] = res.x, res.iterations, res.converged, (
                res.gemms
            )
        return x, its, ok, gemms

    shapes = (
        jax.ShapeDtypeStruct(b.shape, b.dtype),
        jax.ShapeDtypeStruct(batch, np.int32),
        jax.ShapeDtypeStruct(batch, np.bool_),
        jax.ShapeDtypeStruct(batch, np.int32),
    )
    return jax.pure_callback(host, shapes, b, vmap_method="expand_dims")


def integer_power_path(be: Backend, b: Any, req: Request) -> PathResult:
    """``b^k`` for an integer ``k``: binary powering, one inverse for ``k < 0``."""
    xp = be.xp
    b, ridge = with_ridge(be, b, req)
    x, ok, gemms = integer_power(be, b, int(req.t), eps=req.eps)
    zeros = xp.zeros(b.shape[:-2], dtype=xp.int32)
    return PathResult(x, zeros, ok, ridge, zeros + gemms, b)
