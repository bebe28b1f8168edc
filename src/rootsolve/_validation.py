"""One validator for every public entry point, so every error reads alike."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ._backend import Backend, get_backend

__all__ = ["check_matrix", "check_order", "check_choice", "dtype_name", "eps_of"]

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


def check_matrix(a: Any, name: str = "a") -> tuple[Backend, Any, str]:
    """Convert and check a (batch of) square matrices.

    Returns the backend, the array in its namespace (integers and booleans
    promoted to float64 on numpy, or to the default float on jax) and the
    name of the dtype the result should have.

    Raises
    ------
    TypeError
        Unsupported dtype (object, string, datetime, ...).
    ValueError
        Fewer than two dimensions, not square, or empty.
    """
    be = get_backend(a)
    if be.name == "numpy":
        a = np.asarray(a)
        if a.dtype.kind in "biu":
            a = a.astype(np.float64)
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
    if shape[-1] == 0 or 0 in shape:
        raise ValueError(f"{name} must not be empty, got shape {shape}")
    return be, a, dname


def check_order(p: Any, name: str = "p") -> int:
    """An integer root order ``p >= 1`` (booleans and floats refused)."""
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
