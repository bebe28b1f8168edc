"""One validator for every public entry point, so every error reads alike."""

from __future__ import annotations

import math
import numbers
from typing import Any

import array_api_compat
import numpy as np

from ._backend import Backend, get_backend

__all__ = [
    "check_matrix",
    "check_order",
    "check_choice",
    "check_int",
    "check_real",
    "check_nonneg",
    "check_optional_int",
    "check_optional_positive",
    "finite_matrices",
    "dtype_name",
    "eps_of",
]

_FLOATS = ("float16", "bfloat16", "float32", "float64")
_COMPLEX = ("complex64", "complex128")


def dtype_name(dtype: Any) -> str:
    """Plain name of a dtype across numpy, jax, cupy and array-api-strict."""
    name = getattr(dtype, "name", None)
    if name is None:
        name = str(dtype)
    return str(name).split(".")[-1].strip("'>")


def eps_of(name: str) -> float:
    """Unit roundoff of a float or complex dtype name."""
    table = {
        "float16": 2.0**-10,
        "bfloat16": 2.0**-7,
        "float32": float(np.finfo(np.float32).eps),
        "float64": float(np.finfo(np.float64).eps),
        "complex64": float(np.finfo(np.float32).eps),
        "complex128": float(np.finfo(np.float64).eps),
    }
    return table[name]


def check_matrix(a: Any, name: str = "a", allow_empty: bool = False) -> tuple[Backend, Any, str]:
    """Convert and check a (batch of) square matrices.

    Returns the backend, the array in its namespace (integers and booleans
    promoted to float64 on numpy, or to the default float on jax) and the
    name of the dtype the result should have.

    Raises
    ------
    TypeError
        Unsupported dtype (object, string, datetime, extended precision, ...).
    ValueError
        Fewer than two dimensions, not square, or (unless ``allow_empty``) empty.
    """
    be = get_backend(a)
    if be.name == "numpy":
        a = np.asarray(a)
        if a.dtype.kind in "biu":
            a = a.astype(np.float64)
        elif a.dtype.kind in "fc" and a.dtype.itemsize > (16 if a.dtype.kind == "c" else 8):
            target = "complex128" if a.dtype.kind == "c" else "float64"
            raise TypeError(
                f"{name} has dtype {a.dtype} (extended precision), which LAPACK does not "
                f"support; cast it to {target} first (a.astype(np.{target}))"
            )
        elif a.dtype.kind not in "fc":
            raise TypeError(
                f"{name} must have a real or complex floating dtype, got dtype {a.dtype}"
            )
        a = be.xp.asarray(a)
    dname = dtype_name(a.dtype)
    xp = be.xp
    if dname not in _FLOATS + _COMPLEX:
        if xp.isdtype(a.dtype, ("bool", "integral")):
            a = xp.astype(a, xp.float64 if be.has_float64 else xp.float32)
            dname = dtype_name(a.dtype)
        else:
            raise TypeError(f"{name} must have a real or complex floating dtype, got dtype {dname}")
    shape = tuple(a.shape)
    if len(shape) < 2:
        raise ValueError(
            f"{name} must have shape (..., n, n) with at least 2 dimensions, got {shape}"
        )
    if shape[-1] != shape[-2]:
        raise ValueError(f"{name} must be square in its last two dimensions, got shape {shape}")
    if not allow_empty and 0 in shape:
        raise ValueError(f"{name} must not be empty, got shape {shape}")
    return be, a, dname


def check_order(p: Any, name: str = "p") -> int:
    """An integer root order ``p >= 1``; integral floats (``2.0``) count, booleans do not."""
    if isinstance(p, numbers.Real) and not isinstance(p, (bool, numbers.Integral)):
        if not float(p).is_integer():
            raise TypeError(f"{name} must be an integer >= 1, got {name}={p!r}")
        p = int(p)
    if isinstance(p, bool) or not isinstance(p, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer >= 1, got {name}={p!r} of type {type(p).__name__}"
        )
    if p < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {name}={p}")
    return int(p)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {name}={value!r}")
    return value


def _is_number(value: Any) -> bool:
    """A concrete number (a Python or numpy scalar, not a bool and not an array)."""
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int) -> int | Any:
    """An integer ``>= low``; booleans and floats are refused.

    jax arrays (a hyperparameter under ``optax.inject_hyperparams``, maybe
    traced) pass through unchecked: their value is not known here.
    """
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Integral) or array_api_compat.is_jax_array(value)
    ):
        raise TypeError(f"{name} must be an int, got {name}={value!r}")
    if isinstance(value, numbers.Integral) and value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {name}={value!r}")
    return value


def check_real(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A finite real number in ``[low, high]`` (``(`` / ``)`` with ``low_open`` / ``high_open``).

    Values that are not Python or numpy numbers (a traced hyperparameter)
    pass through unchecked: they are checked where they were numbers.
    """
    if not _is_number(value):
        return value
    v = float(value)
    bad = (
        not math.isfinite(v)
        or v < low
        or v > high
        or (low_open and v == low)
        or (high_open and v == high)
    )
    if bad:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {lo}{low}, {high}{hi}, got {name}={value!r}")
    return value


def check_nonneg(name: str, value: Any, *, allow_none: bool = False) -> None:
    """A finite real number ``>= 0`` (anything ``float()`` accepts, but not a bool)."""
    if value is None:
        if not allow_none:
            raise ValueError(f"{name} must be a finite number >= 0, got None")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {name}={value!r}")


def check_optional_int(name: str, value: Any, low: int) -> None:
    """``None`` or an integer ``>= low`` (a bool or float is a ValueError that echoes it)."""
    bad = isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low
    if value is not None and bad:
        raise ValueError(f"{name} must be an integer >= {low}, got {name}={value!r}")


def check_optional_positive(name: str, value: Any) -> None:
    """``None`` or a finite real number ``> 0``."""
    good = isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0
    if value is not None and not (good and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {name}={value!r}")


def finite_matrices(be: Backend, b: Any) -> Any:
    """Per matrix of a stack ``(..., n, n)``: whether every entry is finite.

    numpy and jax take one max-reduction of ``|b|`` (NaN propagates through
    it) instead of a boolean array and a second reduction, which XLA's CPU
    backend materializes; the array API leaves ``max`` with NaN unspecified,
    so other namespaces reduce ``isfinite``.
    """
    xp = be.xp
    if be.name in ("numpy", "jax"):
        with np.errstate(invalid="ignore"):
            return xp.isfinite(xp.max(xp.abs(b), axis=(-2, -1)))
    return xp.all(xp.isfinite(b), axis=(-2, -1))
