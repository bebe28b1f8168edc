"""Choosing the method: the table :data:`METHODS` and :func:`select_method`.

Each entry of :data:`METHODS` says which structure (``assume_a``) a method
serves, what it needs (exponent, eigenvalue options, the host) and the path
function of :mod:`rootsolve._paths` or :mod:`rootsolve._power_paths` that runs
it; :func:`select_method` is the one place a method is chosen for
``method="auto"`` and checked against the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from . import errors
from ._backend import Backend
from ._paths import (
    PathResult,
    Request,
    eigh_path,
    newton_path,
    schur_free_path,
    schur_newton_path,
)
from ._power_paths import integer_power_path, schur_pade_path
from ._validation import check_choice
from .conditioning import Conditioning
from .diagnostics import MAX_DENOMINATOR, METHOD_NAMES
from .general_power import BRANCHES
from .integer_power import integer_exponent

__all__ = ["METHODS", "MethodSpec", "check_branch", "run_method", "select_method"]

class MethodSpec(NamedTuple):
    """One entry of :data:`METHODS`.

    Attributes
    ----------
    structure : {"pos", "gen", "any"}
        The ``assume_a`` it serves (``"any"``: both).
    run : callable
        ``run(be, b, request) -> PathResult`` for the conditioned matrix ``b``.
    any_exponent : bool
        Any real ``t``; otherwise ``t = +-q/p`` with ``p <= MAX_DENOMINATOR``.
    eigenvalue_options : bool
        Honours ``floor``, ``pinv_atol`` and ``pinv_rtol``.
    host_only : bool
        Needs scipy on the host: numpy input or a concrete jax array on the CPU
        (and, with ``callback``, a traced jax array on the CPU too).
    integer_only : bool
        Integer exponents only (``t = 2.0`` counts as one).
    callback : bool
        Runs under ``jit``/``vmap`` on the CPU through a host callback.
    """

    structure: str
    run: Callable[[Backend, Any, Request], PathResult]
    any_exponent: bool = False
    eigenvalue_options: bool = False
    host_only: bool = False
    integer_only: bool = False
    callback: bool = False


#: Every method, by the name ``method=`` takes and :attr:`RootInfo.method_name` reports.
#: A new method is one entry here (and its name appended to ``METHOD_NAMES``, whose
#: order fixes the integer codes); :func:`select_method` reads the rest from the entry.
METHODS: dict[str, MethodSpec] = {
    "eigh": MethodSpec("pos", eigh_path, any_exponent=True, eigenvalue_options=True),
    "newton": MethodSpec("pos", newton_path),
    "schur_newton": MethodSpec("gen", schur_newton_path, host_only=True),
    "schur_free": MethodSpec("gen", schur_free_path),
    "schur_pade": MethodSpec(
        "gen", schur_pade_path, any_exponent=True, host_only=True, callback=True
    ),
    "integer_power": MethodSpec("any", integer_power_path, any_exponent=True, integer_only=True),
}
if set(METHODS) != set(METHOD_NAMES):
    raise ImportError(f"METHODS {tuple(METHODS)} and METHOD_NAMES {METHOD_NAMES} disagree")


def _on_host(be: Backend) -> bool:
    """numpy input, or a concrete jax array on the CPU (its data is on the host)."""
    return be.name == "numpy" or (be.name == "jax" and be.eager and not be.on_gpu)


def _traced_on_cpu(be: Backend) -> bool:
    """A jax tracer (``jit``, ``vmap``) on the CPU: a host callback can reach the data."""
    return be.name == "jax" and not be.eager and not be.on_gpu


def _auto(
    assume_a: str, be: Backend, n: int, cond: Conditioning, t: float, frac, branch: str
) -> str:
    """``method="auto"``; the measurements behind it are in docs/choosing.md.

    Hermitian: ``eigh`` on CPUs (it needs fewer product-equivalents at every
    size), coupled Newton on accelerators for ``n >= 64`` (products are cheap
    there and ``eigh`` is not); options only an eigendecomposition honours
    (floor, pseudo-inverse) force ``eigh``. General: Schur-Newton where
    scipy's Schur decomposition applies (:func:`_on_host`; jax's own
    ``jax.scipy.linalg.schur`` exists on CPU only and the quasi-triangular
    square root calls LAPACK from the host), Schur-free otherwise (``jit``,
    ``vmap``, GPUs, cupy, array API: it traces and stays on the device).
    Schur-Pade on the host for exponents Schur-Newton cannot take (any real
    ``t`` not ``+-q/p``, ``p <= 64``); Schur-Newton is faster on the others
    (its Newton phase needs fewer products than the Pade phase's solves and
    squarings), and hands over to Schur-Pade when the spectrum needs it (see
    :func:`_matrix_function`). Integer exponents take binary powering on
    every backend, unless a relative ridge or an eigenvalue option asks for
    ``eigh``.
    """
    if integer_exponent(t) is not None and not (cond.needs_eigh or cond.rel_ridge):
        return "integer_power"
    if assume_a == "gen":
        if _on_host(be):
            return "schur_newton" if frac is not None else "schur_pade"
        # Under jit on the CPU, exponents the Schur-free method cannot take go to the
        # host through a callback (Schur-Pade); everything else stays traced.
        needs_host = frac is None or branch != "principal"
        return "schur_pade" if needs_host and _traced_on_cpu(be) else "schur_free"
    if cond.needs_eigh:
        return "eigh"
    return "newton" if be.on_gpu and n >= 64 else "eigh"


def select_method(
    method: str, assume_a: str, be: Backend, n: int, cond: Conditioning, t: float, frac,
    branch: str = "principal",
) -> str:
    """The method to run: ``method`` itself, or the choice of ``"auto"``, checked
    against what its :data:`METHODS` entry supports (the exponent, the conditioning
    options and where the data lives)."""
    if assume_a == "gen" and (cond.needs_eigh or cond.rel_ridge):
        raise ValueError(
            "assume_a='gen' honours only the absolute ridge=; rel_ridge, floor, pinv_atol "
            "and pinv_rtol act on the eigenvalues of a Hermitian matrix (assume_a='pos')"
        )
    name = _auto(assume_a, be, n, cond, t, frac, branch) if method == "auto" else method
    spec = METHODS[name]
    if spec.integer_only and integer_exponent(t) is None:
        raise ValueError(f"method={name!r} needs an integer exponent, got t={t!r}")
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
    if spec.host_only and not (_on_host(be) or (spec.callback and _traced_on_cpu(be))):
        where = "a traced jax array" if be.name == "jax" and not be.eager else (
            f"a {be.name} array" + (" on an accelerator" if be.on_gpu else "")
        )
        raise ValueError(
            f"method={name!r} needs numpy input or a concrete jax array on the CPU "
            f"(scipy's Schur decomposition), got {where}; use method='schur_free' or 'auto'"
        )
    return name


def check_branch(branch: str, assume_a: str, be: Backend, dname: str) -> None:
    """``branch="numpy"`` needs ``assume_a="gen"`` and a host computation."""
    check_choice(branch, "branch", BRANCHES)
    if branch == "principal":
        return
    if assume_a != "gen":
        raise ValueError(
            "branch='numpy' applies to assume_a='gen' (a Hermitian positive semidefinite "
            "matrix has no eigenvalue on the negative real axis)"
        )
    if _on_host(be) or (_traced_on_cpu(be) and dname.startswith("complex")):
        return
    why = (
        "the output dtype (real, or complex where an eigenvalue lies on the negative "
        "axis) would depend on the data; pass complex input to fix it" if not
        dname.startswith("complex") else "the branch needs the host's Schur form"
    )
    raise ValueError(
        f"branch='numpy' needs numpy input, a concrete jax array on the CPU or complex "
        f"input under jit on the CPU: under jit, vmap or on an accelerator {why}"
    )


def run_method(
    name: str, method: str, be: Backend, b: Any, req: Request
) -> tuple[str, PathResult]:
    """Run ``name``; under ``method="auto"`` Schur-Newton hands over to Schur-Pade when an
    eigenvalue on the closed negative real axis stops it (a zero one of a matrix whose
    positive powers exist, or numpy's branch)."""
    try:
        return name, METHODS[name].run(be, b, req)
    except errors.NegativeEigenvalueError:
        if method != "auto" or name != "schur_newton":
            raise
    return "schur_pade", METHODS["schur_pade"].run(be, b, req._replace(method="schur_pade"))
