"""Blocks turned into and out of the eigenbases of their factors, per block (SOAP).

SOAP runs Adam in the coordinates ``Q_L^T G Q_R`` of each block, and at a
refresh reorders the second moment with the new basis's columns (Vyas et al.,
"SOAP: Improving and Stabilizing Shampoo using Adam", arXiv:2409.11321, Alg. 1
and 2). Both keep the blocks' memory layout, which XLA's CPU backend would
otherwise pay for with a transposing copy of the optimizer's state every step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["permute", "rotate"]


def rotate(x: jax.Array, bases: tuple, dims: tuple, back: bool, precision) -> jax.Array:
    """``x x_i Q_i^T`` over the rotated dimensions (``x x_i Q_i`` with ``back``), per block.

    ``x`` has shape (num_blocks, *block_shape) and ``bases[k]`` (num_blocks,
    n, n) belongs to block dimension ``dims[k]``. The first and the last block
    dimension are rotated by a batched ``matmul`` with the basis on the side
    that leaves the result in ``x``'s layout (``Q^T X`` and ``X Q`` for a
    matrix); an ``einsum`` there puts the rotated dimension last, and XLA's CPU
    backend then transposes the result, or the state that carries it, every step.
    """
    letters = "abcdefghijklmnopqrstuvwx"[: x.ndim - 1]
    src = "z" + letters
    for q, i in zip(bases, dims, strict=True):
        q = q.astype(x.dtype)
        shape = x.shape
        if i == 0:
            lhs = q if back else jnp.swapaxes(q, -1, -2)
            x = jnp.matmul(lhs, x.reshape(shape[0], shape[1], -1), precision=precision)
        elif i == x.ndim - 2:
            rhs = jnp.swapaxes(q, -1, -2) if back else q
            x = jnp.matmul(x.reshape(shape[0], -1, shape[-1]), rhs, precision=precision)
        else:
            k = letters[i]
            spec = f"z{k}y" if not back else f"zy{k}"
            x = jnp.einsum(f"{src},{spec}->{src.replace(k, 'y')}", x, q, precision=precision)
        x = x.reshape(shape)
    return x


def permute(x: jax.Array, perm: jax.Array, axis: int) -> jax.Array:
    """``x`` with block dimension ``axis`` reordered by ``perm`` (num_blocks, n) per block.

    A ``take`` per block (``vmap``), whose result keeps ``x``'s layout; the
    equivalent ``take_along_axis`` makes XLA's CPU backend pick a transposed
    layout for the result, which the state then pays for with a copy every step.
    """
    return jax.vmap(lambda b, p: jnp.take(b, p, axis=axis))(x, perm)
