"""The public functions: ``inv_root``, ``root`` and ``power``.

Each validates once at the door, conditions the matrix, picks a method in
:func:`select_method` from the table :data:`METHODS`, runs it and wraps the
answer with its :class:`~rootsolve.diagnostics.RootInfo`. The methods live in
their own modules (``eigen``, ``newton``; ``schur_newton``, ``schur_free`` for
``assume_a="gen"``); each entry of :data:`METHODS` says which structure it
serves, what it needs, and the path function that adapts it.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any, Literal, NamedTuple

import numpy as np

from ._backend import Backend
from ._linalg import eye_like
from ._paths import (
    PathResult,
    Request,
    eigh_path,
    newton_path,
    schur_free_path,
    schur_newton_path,
)
from ._validation import (
    check_choice,
    check_optional_int,
    check_optional_positive,
    check_order,
)
from .conditioning import (
    Conditioning,
    prepare,
    resolve_conditioning,
)
from .diagnostics import (
    MAX_DENOMINATOR,
    METHOD_NAMES,
    RootInfo,
    rational_exponent,
)
from .diagnostics import (
    residual as residual_of,
)
from .newton import SCALINGS

__all__ = ["inv_root", "root", "power"]

Method = Literal["auto", "eigh", "newton", "schur_newton", "schur_free"]
ASSUME = ("pos", "gen")
RESIDUALS = ("exact", "probe")


class MethodSpec(NamedTuple):
    """One entry of :data:`METHODS`.

    Attributes
    ----------
    structure : {"pos", "gen"}
        The ``assume_a`` it serves.
    run : callable
        ``run(be, b, request) -> PathResult`` for the conditioned matrix ``b``.
    any_exponent : bool
        Any real ``t``; otherwise ``t = +-q/p`` with ``p <= MAX_DENOMINATOR``.
    eigenvalue_options : bool
        Honours ``floor``, ``pinv_atol`` and ``pinv_rtol``.
    host_only : bool
        Needs scipy on the host: numpy input or a concrete jax array on the CPU.
    """

    structure: str
    run: Callable[[Backend, Any, Request], PathResult]
    any_exponent: bool = False
    eigenvalue_options: bool = False
    host_only: bool = False


#: Every method, by the name ``method=`` takes and :attr:`RootInfo.method_name` reports.
#: A new method is one entry here (and its name appended to ``METHOD_NAMES``, whose
#: order fixes the integer codes); :func:`select_method` reads the rest from the entry.
METHODS: dict[str, MethodSpec] = {
    "eigh": MethodSpec("pos", eigh_path, any_exponent=True, eigenvalue_options=True),
    "newton": MethodSpec("pos", newton_path),
    "schur_newton": MethodSpec("gen", schur_newton_path, host_only=True),
    "schur_free": MethodSpec("gen", schur_free_path),
}
if set(METHODS) != set(METHOD_NAMES):
    raise ImportError(f"METHODS {tuple(METHODS)} and METHOD_NAMES {METHOD_NAMES} disagree")


def _on_host(be: Backend) -> bool:
    """numpy input, or a concrete jax array on the CPU (its data is on the host)."""
    return be.name == "numpy" or (be.name == "jax" and be.eager and not be.on_gpu)


def _auto(assume_a: str, be: Backend, n: int, cond: Conditioning) -> str:
    """``method="auto"``; the measurements behind it are in docs/choosing.md.

    Hermitian: ``eigh`` on CPUs (it needs fewer product-equivalents at every
    size), coupled Newton on accelerators for ``n >= 64`` (products are cheap
    there and ``eigh`` is not); options only an eigendecomposition honours
    (floor, pseudo-inverse) force ``eigh``. General: Schur-Newton where
    scipy's Schur decomposition applies (:func:`_on_host`; jax's own
    ``jax.scipy.linalg.schur`` exists on CPU only and the quasi-triangular
    square root calls LAPACK from the host), Schur-free otherwise (``jit``,
    ``vmap``, GPUs, cupy, array API: it traces and stays on the device).
    """
    if assume_a == "gen":
        return "schur_newton" if _on_host(be) else "schur_free"
    if cond.needs_eigh:
        return "eigh"
    return "newton" if be.on_gpu and n >= 64 else "eigh"


def select_method(
    method: str, assume_a: str, be: Backend, n: int, cond: Conditioning, t: float, frac
) -> str:
    """The method to run: ``method`` itself, or the choice of ``"auto"``, checked
    against what its :data:`METHODS` entry supports (the exponent, the conditioning
    options and where the data lives)."""
    if assume_a == "gen" and (cond.needs_eigh or cond.rel_ridge):
        raise ValueError(
            "assume_a='gen' honours only the absolute ridge=; rel_ridge, floor, pinv_atol "
            "and pinv_rtol act on the eigenvalues of a Hermitian matrix (assume_a='pos')"
        )
    name = _auto(assume_a, be, n, cond) if method == "auto" else method
    spec = METHODS[name]
    if cond.needs_eigh and not spec.eigenvalue_options:
        raise ValueError(
            "floor and pinv_atol/pinv_rtol act on eigenvalues and need method='eigh' "
            f"(or 'auto'); method={name!r} can only honour ridge and rel_ridge"
        )
    if frac is None and not spec.any_exponent:
        hint = "; use method='eigh'" if assume_a == "pos" else ""
        raise ValueError(
            f"method={name!r} (assume_a={assume_a!r}) needs an exponent t = +-q/p with "
            f"p <= {MAX_DENOMINATOR}, got t={t!r}{hint}"
        )
    if spec.host_only and not _on_host(be):
        where = "a traced jax array" if be.name == "jax" and not be.eager else (
            f"a {be.name} array" + (" on an accelerator" if be.on_gpu else "")
        )
        raise ValueError(
            f"method={name!r} needs numpy input or a concrete jax array on the CPU "
            f"(scipy's Schur decomposition), got {where}; use method='schur_free' or 'auto'"
        )
    return name


def _matrix_function(a, t, frac, *, method, assume_a, cond, scaling, tol, max_iter,
                     return_info, residual):
    check_choice(method, "method", ("auto", *METHODS))
    check_choice(residual, "residual", RESIDUALS)
    check_choice(assume_a, "assume_a", ASSUME)
    check_choice(scaling, "scaling", SCALINGS)
    check_optional_int("max_iter", max_iter, 1)
    check_optional_positive("tol", tol)
    if method != "auto" and METHODS[method].structure != assume_a:
        names = tuple(k for k, v in METHODS.items() if v.structure == assume_a)
        raise ValueError(
            f"method={method!r} is not for assume_a={assume_a!r}; use one of "
            f"{('auto', *names)}"
        )
    be, a, dname, b, finite, eps = prepare(a, cond, hermitian=assume_a == "pos")
    xp = be.xp
    name = select_method(method, assume_a, be, b.shape[-1], cond, t, frac)
    if t == 0:
        zeros = xp.zeros(b.shape[:-2], dtype=xp.int32)
        rzeros = xp.zeros(b.shape[:-2], dtype=xp.real(b[..., :1, :1]).dtype)
        r = PathResult(eye_like(xp, b), zeros, finite, rzeros, zeros, b)
    else:
        req = Request(name, t, frac, cond, eps, scaling, tol, max_iter or 100, return_info)
        r = METHODS[name].run(be, b, req)
    ok = r.converged & finite
    out = xp.astype(r.x, a.dtype)
    if not return_info:
        if not be.eager:
            out = xp.where(ok[..., None, None], out, xp.full_like(out, float("nan")))
        return out
    if t == 0:
        res = xp.zeros_like(r.ridge)
    else:
        res = residual_of(be, r.x, r.b_eff, r.target, t, residual)
    batch = b.shape[:-2]
    info = RootInfo(
        residual=xp.where(finite, res, xp.full_like(res, float("inf"))),
        iterations=r.iterations,
        converged=ok,
        ridge=r.ridge,
        method=xp.full(batch, METHOD_NAMES.index(name), dtype=xp.int32),
        gemms=xp.astype(xp.asarray(r.gemms), xp.int32),
    )
    return out, info


_CONDITIONING_KEYS = (
    "ridge", "rel_ridge", "floor", "pinv_atol", "pinv_rtol", "symmetrize", "compute_dtype"
)


def _call(a: Any, t: float, frac: Fraction | None, options: dict) -> Any:
    """Run a public function's call: ``options`` are its keyword arguments."""
    keywords = {k: options.pop(k) for k in _CONDITIONING_KEYS}
    cond = resolve_conditioning(options.pop("conditioning"), **keywords)
    return _matrix_function(a, t, frac, cond=cond, **options)


_COMMON_DOC = """
    method : {"auto", "eigh", "newton", "schur_newton", "schur_free"}, default "auto"
        ``"eigh"``: eigendecomposition (exact up to rounding, any exponent).
        ``"newton"``: coupled Newton iteration (matrix products only; the fast
        path on GPUs). ``"auto"`` picks eigh on CPU and Newton on
        accelerators for n >= 64 (measurements: docs/choosing.md).
        For ``assume_a="gen"``: ``"schur_newton"`` (Guo-Higham Schur-Newton,
        numpy input or concrete CPU jax arrays, computed on the host; real
        arithmetic for real input) or ``"schur_free"`` (Denman-Beavers square
        roots and Newton, any backend, ``jit``-able; less accurate for
        strongly nonnormal matrices); ``"auto"`` picks Schur-Newton where it
        applies and Schur-free otherwise (``jit``, GPUs, cupy, array API).
    assume_a : {"pos", "gen"}, default "pos"
        Structure of ``a``: ``"pos"`` Hermitian positive (semi)definite;
        ``"gen"`` any square matrix with no eigenvalue on the closed negative
        real axis (and none at zero for inverse powers), giving the principal
        power; ``t`` must then be ``+-q/p`` with ``p <= 64``, and of the
        conditioning controls only ``ridge`` and ``compute_dtype`` apply (no
        symmetrization). Under ``jit`` structure cannot be inferred from
        data, so it is a parameter.
    ridge, rel_ridge, floor, pinv_atol, pinv_rtol, symmetrize, compute_dtype
        Conditioning controls; see :class:`rootsolve.Conditioning`.
    conditioning : Conditioning, optional
        The same controls as one reusable object (exclusive with the keywords).
    scaling : {"dynamic", "optimal", "frobenius"}, default "dynamic"
        Newton's scaling; see :mod:`rootsolve.newton`.
    tol : float, optional
        Newton's stopping tolerance on ``||M - I||_1``; default
        ``sqrt(n) eps / 2`` in the compute precision.
    max_iter : int, optional
        Newton's iteration cap (default 100).
    return_info : bool, default False
        Also return a :class:`rootsolve.RootInfo`.
    residual : {"exact", "probe"}, default "exact"
        How ``info.residual`` is evaluated (see :mod:`rootsolve.diagnostics`).
        ``"exact"``: the norm of the residual matrix, formed with
        ``O(log p + log q)`` products of ``n x n`` matrices. ``"probe"``: a
        randomized estimate of the same number from ``p + q`` products with
        a fixed ``n x 8`` block of random signs (Hutchinson's estimator;
        relative standard deviation at most about 1/4, largest for a
        rank-one residual), for when the residual only has to be compared
        with a threshold or logged. Ignored without ``return_info``.

    Returns
    -------
    x : array, shape (..., n, n)
        Same array type and dtype as ``a`` (integers give float64).
    info : RootInfo
        Only with ``return_info=True``.

    Raises
    ------
    ValueError, TypeError
        Bad shape, dtype, exponent or option; non-finite entries.
    NotPositiveDefiniteError
        An eigenvalue below zero beyond rounding (``-n eps max|w|``).
    NegativeEigenvalueError
        ``assume_a="gen"``: an eigenvalue on the closed negative real axis.
    SingularMatrixError
        Inverse power of a singular matrix with nothing to regularize it.
    ConvergenceError
        Newton did not converge (only when ``return_info=False``).

    Notes
    -----
    Under ``jax.jit`` nothing can be raised: invalid input or failure gives
    ``info.converged == False``, and without ``return_info`` the result is
    NaN, never a silently wrong matrix.
"""


def inv_root(
    a: Any,
    p: int,
    *,
    method: Method = "auto",
    assume_a: Literal["pos", "gen"] = "pos",
    ridge: float = 0.0,
    rel_ridge: float = 0.0,
    floor: float | None = None,
    pinv_atol: float | None = None,
    pinv_rtol: float | None = None,
    symmetrize: bool = True,
    compute_dtype: Any = None,
    conditioning: Conditioning | None = None,
    scaling: Literal["dynamic", "optimal", "frobenius"] = "dynamic",
    tol: float | None = None,
    max_iter: int | None = None,
    return_info: bool = False,
    residual: Literal["exact", "probe"] = "exact",
) -> Any:
    options = dict(locals())  # the keywords, as passed
    del options["a"], options["p"]
    p = check_order(p)
    return _call(a, -1.0 / p, Fraction(-1, p), options)


def root(
    a: Any,
    p: int,
    *,
    method: Method = "auto",
    assume_a: Literal["pos", "gen"] = "pos",
    ridge: float = 0.0,
    rel_ridge: float = 0.0,
    floor: float | None = None,
    pinv_atol: float | None = None,
    pinv_rtol: float | None = None,
    symmetrize: bool = True,
    compute_dtype: Any = None,
    conditioning: Conditioning | None = None,
    scaling: Literal["dynamic", "optimal", "frobenius"] = "dynamic",
    tol: float | None = None,
    max_iter: int | None = None,
    return_info: bool = False,
    residual: Literal["exact", "probe"] = "exact",
) -> Any:
    options = dict(locals())
    del options["a"], options["p"]
    p = check_order(p)
    return _call(a, 1.0 / p, Fraction(1, p), options)


def power(
    a: Any,
    t: float,
    *,
    method: Method = "auto",
    assume_a: Literal["pos", "gen"] = "pos",
    ridge: float = 0.0,
    rel_ridge: float = 0.0,
    floor: float | None = None,
    pinv_atol: float | None = None,
    pinv_rtol: float | None = None,
    symmetrize: bool = True,
    compute_dtype: Any = None,
    conditioning: Conditioning | None = None,
    scaling: Literal["dynamic", "optimal", "frobenius"] = "dynamic",
    tol: float | None = None,
    max_iter: int | None = None,
    return_info: bool = False,
    residual: Literal["exact", "probe"] = "exact",
) -> Any:
    options = dict(locals())
    del options["a"], options["t"]
    if isinstance(t, bool) or not isinstance(t, (int, float, Fraction)) or not np.isfinite(t):
        raise TypeError(f"t must be a finite real number, got t={t!r}")
    t = float(t)
    return _call(a, t, rational_exponent(t), options)


inv_root.__doc__ = (
    """Inverse p-th root ``a^(-1/p)`` of Hermitian positive definite or general matrices.

    Parameters
    ----------
    a : array, shape (..., n, n)
        numpy, jax (also under ``jit``/``vmap``), cupy or other array-API array.
    p : int
        Root order, an integer >= 1 (any integer, not only powers of two).
"""
    + _COMMON_DOC
    + """
    References
    ----------
    N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM 2008, ch. 7.
    C.-H. Guo and N. J. Higham, SIAM J. Matrix Anal. Appl. 28(3), 2006.

    Examples
    --------
    >>> import numpy as np, rootsolve
    >>> a = np.array([[4.0, 0.0], [0.0, 16.0]])
    >>> np.round(rootsolve.inv_root(a, 2), 12)
    array([[0.5 , 0.  ],
           [0.  , 0.25]])

    A general matrix (real, with complex eigenvalues 1 +- 2i): the principal
    root is real, unlike ``scipy.linalg.fractional_matrix_power``'s complex128.

    >>> b = np.array([[1.0, 2.0], [-2.0, 1.0]])
    >>> x = rootsolve.inv_root(b, 3, assume_a="gen")
    >>> x.dtype, bool(np.allclose(np.linalg.matrix_power(x, 3) @ b, np.eye(2)))
    (dtype('float64'), True)
    """
)
root.__doc__ = (
    """Principal p-th root ``a^(1/p)`` of Hermitian positive semidefinite or general matrices.

    Parameters
    ----------
    a : array, shape (..., n, n)
        numpy, jax (also under ``jit``/``vmap``), cupy or other array-API array.
    p : int
        Root order, an integer >= 1.
"""
    + _COMMON_DOC
    + """
    Examples
    --------
    >>> import numpy as np, rootsolve
    >>> np.round(rootsolve.root(np.diag([8.0, 27.0]), 3), 12)
    array([[2., 0.],
           [0., 3.]])
    """
)
power.__doc__ = (
    """Real power ``a^t`` of Hermitian positive (semi)definite or general matrices.

    Parameters
    ----------
    a : array, shape (..., n, n)
        numpy, jax (also under ``jit``/``vmap``), cupy or other array-API array.
    t : float
        Any real exponent with ``method="eigh"``; ``method="newton"`` and
        ``assume_a="gen"`` need ``t = q/p`` with ``p <= 64`` (they compute
        ``(a^(+-1/p))^q``).
        ``info.residual`` is NaN for exponents not of that form.
"""
    + _COMMON_DOC
)
