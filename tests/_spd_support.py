"""Helpers shared by the Hermitian positive definite test modules.

Backends, method configurations, independent residuals and error measures,
all evaluated in float64/complex128 numpy so that they check rootsolve
rather than restate it.
"""

from __future__ import annotations

import numpy as np
import pytest

import rootsolve as rs

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)

#: (method, scaling) pairs: eigh, and coupled Newton with each scaling.
CONFIGS = [
    pytest.param("eigh", "dynamic", id="eigh"),
    pytest.param("newton", "dynamic", id="newton-dynamic"),
    pytest.param("newton", "optimal", id="newton-optimal"),
    pytest.param("newton", "frobenius", id="newton-frobenius"),
]
METHODS = [pytest.param("eigh", id="eigh"), pytest.param("newton", id="newton")]
BACKENDS = ["numpy", "jax", "array_api"]


def cupy_or_skip():
    """The cupy module, or skip the test where cupy or a CUDA device is missing."""
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception as exc:  # cupy without a driver raises CUDARuntimeError
        pytest.skip(f"no usable CUDA device: {exc}")
    return cp


def to_backend(name: str, a: np.ndarray):
    """``a`` as an array of backend ``name``."""
    if name == "numpy":
        return np.asarray(a)
    if name == "jax":
        import jax.numpy as jnp

        return jnp.asarray(a)
    if name == "array_api":
        import array_api_strict as xps

        return xps.asarray(a)
    raise ValueError(f"unknown backend {name!r}")


def to_numpy(x) -> np.ndarray:
    """Any backend's array as numpy (array-api-strict via DLPack)."""
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("array_api_strict"):
        return np.from_dlpack(x)
    return np.asarray(x)


def wide(x) -> np.ndarray:
    """``x`` in float64 or complex128."""
    x = to_numpy(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def rel_err(x, ref) -> float:
    """``||x - ref||_F / ||ref||_F`` over the whole batch."""
    x, ref = wide(x), wide(ref)
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


def residual(x, a, p: int, *, inverse: bool) -> float:
    """Largest residual over the batch (definitions of :mod:`rootsolve.diagnostics`)."""
    x, a = wide(x), wide(a)
    n = a.shape[-1]
    xp = np.linalg.matrix_power(x, p)
    if inverse:
        r = np.linalg.norm(xp @ a - np.eye(n), axis=(-2, -1)) / np.sqrt(n)
    else:
        r = np.linalg.norm(xp - a, axis=(-2, -1)) / np.linalg.norm(a, axis=(-2, -1))
    return float(np.max(r))


def solve(a, p: int, *, inverse: bool, method: str, scaling: str = "dynamic", **kw):
    """``inv_root`` or ``root`` with one call site for every test."""
    f = rs.inv_root if inverse else rs.root
    return f(a, p, method=method, scaling=scaling, **kw)
