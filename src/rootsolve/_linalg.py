"""Small array-API helpers shared by the method modules: identity, norms."""

from __future__ import annotations

from typing import Any

__all__ = ["eye_like", "norm1", "fro"]


def eye_like(xp: Any, b: Any) -> Any:
    """Identity matrices with the shape and dtype of the stack ``b``."""
    return xp.broadcast_to(xp.eye(b.shape[-1], dtype=b.dtype), b.shape)


def norm1(xp: Any, e: Any) -> Any:
    """Matrix 1-norm (largest absolute column sum) of each matrix of a stack."""
    return xp.max(xp.sum(xp.abs(e), axis=-2), axis=-1)


def fro(xp: Any, a: Any) -> Any:
    """Frobenius norm of each matrix of a stack."""
    return xp.sqrt(xp.sum(xp.abs(a) ** 2, axis=(-2, -1)))
