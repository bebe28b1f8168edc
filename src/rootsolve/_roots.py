"""The public functions: ``inv_root``, ``root`` and ``power``.

Each validates once at the door, conditions the matrix, picks a method in
:func:`~rootsolve._methods.select_method` from the table
:data:`~rootsolve._methods.METHODS`, runs it and wraps the answer with its
:class:`~rootsolve.diagnostics.RootInfo`. The methods live in their own
modules (``eigen``, ``newton``, ``integer_power``; ``schur_newton``,
``schur_free``, ``schur_pade`` for ``assume_a="gen"``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Literal

import numpy as np
from array_api_compat import is_jax_array

from ._backend import get_backend
from ._linalg import eye_like
from ._methods import METHODS, check_branch, run_method, select_method
from ._paths import (
    PathResult,
    Request,
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
    METHOD_NAMES,
    RootInfo,
    rational_exponent,
)
from .diagnostics import (
    residual as residual_of,
)
from .frechet import differentiable
from .newton import SCALINGS

__all__ = ["inv_root", "root", "power"]

Method = Literal[
    "auto", "eigh", "newton", "schur_newton", "schur_free", "schur_pade", "integer_power"
]
ASSUME = ("pos", "gen")
RESIDUALS = ("exact", "probe")


def _out_dtype(xp, x: Any, a: Any) -> Any:
    """The input's dtype, or its complex counterpart when numpy's branch made ``x`` complex."""
    if xp.isdtype(x.dtype, "complex floating") and not xp.isdtype(a.dtype, "complex floating"):
        return xp.complex128 if a.dtype == xp.float64 else xp.complex64
    return a.dtype


def _empty(xp, a, b, return_info: bool):
    """Empty input (a zero in the shape): an empty result of the same shape, as numpy."""
    out = xp.astype(b, a.dtype)
    if not return_info:
        return out
    batch = b.shape[:-2]
    rdt = xp.real(xp.zeros((), dtype=b.dtype)).dtype
    zeros = xp.zeros(batch, dtype=xp.int32)
    info = RootInfo(
        residual=xp.zeros(batch, dtype=rdt), iterations=zeros,
        converged=xp.ones(batch, dtype=xp.bool), ridge=xp.zeros(batch, dtype=rdt),
        method=zeros, gemms=zeros,
    )
    return out, info


def _matrix_function(a, t, frac, *, method, assume_a, cond, scaling, tol, max_iter,
                     return_info, residual, branch, check_finite):
    check_choice(method, "method", ("auto", *METHODS))
    check_choice(residual, "residual", RESIDUALS)
    check_choice(assume_a, "assume_a", ASSUME)
    check_choice(scaling, "scaling", SCALINGS)
    check_optional_int("max_iter", max_iter, 1)
    check_optional_positive("tol", tol)
    if not isinstance(check_finite, bool):
        raise TypeError(f"check_finite must be a bool, got check_finite={check_finite!r}")
    if method != "auto" and METHODS[method].structure not in (assume_a, "any"):
        names = tuple(k for k, v in METHODS.items() if v.structure in (assume_a, "any"))
        raise ValueError(
            f"method={method!r} is not for assume_a={assume_a!r}; use one of "
            f"{('auto', *names)}"
        )
    be, a, dname, b, finite, eps = prepare(
        a, cond, hermitian=assume_a == "pos", check=check_finite
    )
    xp = be.xp
    check_branch(branch, assume_a, be, dname)
    if 0 in b.shape:
        return _empty(xp, a, b, return_info)
    name = select_method(method, assume_a, be, b.shape[-1], cond, t, frac, branch)
    if t == 0:
        zeros = xp.zeros(b.shape[:-2], dtype=xp.int32)
        rzeros = xp.zeros(b.shape[:-2], dtype=xp.real(b[..., :1, :1]).dtype)
        r = PathResult(eye_like(xp, b), zeros, finite, rzeros, zeros, b)
    else:
        req = Request(name, t, frac, cond, eps, scaling, tol, max_iter or 100, return_info,
                      branch)
        name, r = run_method(name, method, be, b, req)
    ok = r.converged & finite
    out = xp.astype(r.x, _out_dtype(xp, r.x, a))
    if not return_info:
        if not be.eager:
            out = xp.where(ok[..., None, None], out, xp.full_like(out, float("nan")))
        return out
    if t == 0:
        res = xp.zeros_like(r.ridge)
    else:
        res = residual_of(be, r.x, r.b_eff, r.target, t, residual)
    if r.residual_tol is not None:
        ok = ok & (res <= r.residual_tol)
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
    run = lambda m: _matrix_function(m, t, frac, cond=cond, **options)  # noqa: E731
    if not _by_frechet(a, t, frac, options, cond):
        return run(a)
    return differentiable(
        run, a, t=t, assume_a=options["assume_a"], method=options["method"], cond=cond,
        options={k: options[k] for k in ("scaling", "tol", "max_iter")}, power=power,
    )


def _by_frechet(a: Any, t: float, frac: Fraction | None, options: dict,
                cond: Conditioning) -> bool:
    """Whether ``a`` may be differentiated and the method iterates: its gradient is then
    the adjoint Fréchet derivative (:mod:`rootsolve.frechet`). ``eigh`` is differentiated
    by jax itself, through the eigendecomposition and the floor or cut-off, and so are
    integer powers (products and one inverse)."""
    if t == 0 or not is_jax_array(a) or getattr(a, "ndim", 0) < 2:
        return False
    import jax

    if not isinstance(a, jax.core.Tracer):
        return False
    method = options["method"]
    if method == "auto":
        try:
            method = select_method(method, options["assume_a"], get_backend(a), a.shape[-1],
                                   cond, t, frac, options["branch"])
        except (ValueError, TypeError):
            return False  # the call itself raises the same error, undifferentiated
    return method in METHODS and method not in ("eigh", "integer_power")


_COMMON_DOC = """
    method : {"auto", "eigh", "newton", "schur_newton", "schur_free", "schur_pade", \
"integer_power"}, default "auto"
        ``"eigh"``: eigendecomposition (exact up to rounding, any exponent).
        ``"newton"``: coupled Newton iteration (matrix products only; the fast
        path on GPUs). ``"auto"`` picks eigh on CPU and Newton on
        accelerators for n >= 64 (measurements: docs/choosing.md).
        For ``assume_a="gen"``: ``"schur_newton"`` (Guo-Higham Schur-Newton,
        numpy input or concrete CPU jax arrays, computed on the host; real
        arithmetic for real input) or ``"schur_free"`` (Denman-Beavers square
        roots and Newton, any backend, ``jit``-able; less accurate for
        strongly nonnormal matrices) or ``"schur_pade"`` (Higham-Lin
        Schur-Pade, host only, any real exponent, also numpy's branch and
        singular matrices with a semisimple zero eigenvalue); ``"auto"`` picks
        Schur-Newton where it applies (handing over to Schur-Pade when the
        spectrum needs it), Schur-Pade for other exponents on the host, and
        Schur-free otherwise (``jit``, GPUs, cupy, array API).
        ``"integer_power"``: binary powering (and one inverse for negative
        exponents), for integer exponents and any square matrix; what
        ``"auto"`` picks for them unless ``rel_ridge`` or an eigenvalue option
        asks for ``eigh``.
    assume_a : {"pos", "gen"}, default "pos"
        Structure of ``a``: ``"pos"`` Hermitian positive (semi)definite, which
        must be Hermitian up to rounding: ``||a - a^H||_F <= 10 n eps ||a||_F``
        (``eps`` of the input's dtype); beyond it a ``ValueError`` points to
        ``"gen"`` (under ``jit``: ``info.converged`` False). ``"gen"`` any
        square matrix, giving the principal power (no eigenvalue may lie on
        the closed negative real axis, except with ``branch="numpy"``, and
        zero eigenvalues only for positive powers, semisimple for non-integer
        ones); on accelerators ``t`` must be ``+-q/p`` with ``p <= 64`` (under
        ``jit`` on the CPU other exponents reach Schur-Pade through a host
        callback). Of the conditioning controls only ``ridge`` and
        ``compute_dtype`` apply to ``"gen"`` (no symmetrization). Under
        ``jit`` structure cannot be inferred from data, so it is a parameter.
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
        Also return a :class:`rootsolve.RootInfo`. For ``method="newton"``,
        ``info.converged`` also requires ``info.residual <= min(1/2,
        4 n p q eps kappa^q)`` for ``t = +-q/p`` (``eps`` of the compute
        precision, ``kappa`` the bound ratio that scaled the iteration, at
        least the condition number): ``p eps kappa^q`` bounds the residual of
        the correctly rounded root to first order, and a residual above 1/2
        (half that of ``X = 0``) is never reported as converged (docs/math.md).
    residual : {"exact", "probe"}, default "exact"
        How ``info.residual`` is evaluated (see :mod:`rootsolve.diagnostics`).
        ``"exact"``: the norm of the residual matrix, formed with
        ``O(log p + log q)`` products of ``n x n`` matrices. ``"probe"``: a
        randomized estimate of the same number from ``p + q`` products with
        a fixed ``n x 8`` block of random signs (Hutchinson's estimator;
        relative standard deviation at most about 1/4, largest for a
        rank-one residual), for when the residual only has to be compared
        with a threshold or logged. Ignored without ``return_info``.

    branch : {"principal", "numpy"}, default "principal"
        ``assume_a="gen"`` only. ``"principal"``: an eigenvalue on the closed
        negative real axis raises ``NegativeEigenvalueError`` (a non-integer
        power has no principal value there). ``"numpy"``: such eigenvalues
        get ``arg = +pi``, the convention of numpy's scalar powers and of
        ``scipy.linalg.fractional_matrix_power``; the result's ``p``-th power
        reproduces ``a``, and it is complex for real ``a`` only when an
        eigenvalue lies on the axis. Computed on the host: under ``jit`` on the
        CPU for complex input only (through a host callback), since for real
        input the output dtype would depend on the data.
    check_finite : bool, default True
        Check that ``a`` is finite and, with ``assume_a="pos"``, Hermitian up
        to rounding (see ``assume_a``). False skips both checks (scipy's
        ``check_finite``): for input known to pass them, such as an
        optimizer's statistics, it saves their passes over ``a`` and, under
        ``jit``, their code. Input that would fail them then gives a
        non-finite or meaningless result instead of an error or
        ``info.converged == False``.

    Returns
    -------
    x : array, shape (..., n, n)
        Same array type and dtype as ``a`` (integers give float64), complex
        of the same precision where ``branch="numpy"`` needs it. Empty input
        (a zero in the shape) gives an empty result of the same shape.
    info : RootInfo
        Only with ``return_info=True``.

    Raises
    ------
    ValueError, TypeError
        Bad shape, dtype (``float128``: LAPACK has none; cast to float64),
        exponent or option; non-finite entries; ``assume_a="pos"`` with a
        matrix that is not Hermitian beyond rounding.
    NotPositiveDefiniteError
        An eigenvalue below zero beyond rounding (``-n eps max|w|``).
    NegativeEigenvalueError
        ``assume_a="gen"``: an eigenvalue on the closed negative real axis.
    SingularMatrixError
        Inverse power of a singular matrix with nothing to regularize it.
    RootError
        ``assume_a="gen"``: a singular matrix whose zero eigenvalue is not
        semisimple, where the requested power does not exist.
    ConvergenceError
        Newton did not converge (only when ``return_info=False``).

    Notes
    -----
    ``jax.grad`` differentiates every method: ``eigh`` through jax's
    eigendecomposition, the iterative methods through the adjoint Fréchet
    derivative (:mod:`rootsolve.frechet`), never by unrolling the iteration.

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
    branch: Literal["principal", "numpy"] = "principal",
    check_finite: bool = True,
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
    branch: Literal["principal", "numpy"] = "principal",
    check_finite: bool = True,
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
    branch: Literal["principal", "numpy"] = "principal",
    check_finite: bool = True,
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
        Root order, an integer >= 1 (any integer, not only powers of two;
        integral floats such as ``2.0`` count).
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
        Any real exponent with ``method="eigh"`` and, for general matrices on
        the host, ``"schur_pade"``; ``method="newton"``, ``"schur_newton"``
        and ``"schur_free"`` need ``t = q/p`` with ``p <= 64`` (they compute
        ``(a^(+-1/p))^q``). Integer ``t`` (also ``2.0``) is defined for every
        square matrix. ``info.residual`` is NaN for exponents not of the form
        ``q/p``.
"""
    + _COMMON_DOC
)
