"""Reverse-mode derivatives of the iterative methods through the Fréchet derivative.

``jax.grad`` cannot differentiate a ``while_loop``, and unrolling Newton's
iteration would be wasteful anyway: the derivative of a primary matrix
function ``f(A) = A^t`` is its Fréchet derivative ``L(A, E)``, which depends
only on ``A``. :func:`differentiable` wraps a public call in a
``jax.custom_vjp`` whose backward pass applies the adjoint ``L*(A, G)`` to
the output cotangent ``G``:

* Hermitian input (``assume_a="pos"``): the Daleckii-Krein formula
  ``L(A, E) = V (F o (V^H E V)) V^H`` for ``A = V diag(w) V^H``, with the
  first divided differences ``F_ij = (f(w_i) - f(w_j)) / (w_i - w_j)`` and
  ``F_ii = f'(w_i)`` (Higham, *Functions of Matrices*, SIAM 2008, Thm. 3.11).
  ``L`` is self-adjoint for Hermitian ``A`` and real ``f``.
* General input (``assume_a="gen"``): ``f([[A, E], [0, A]]) = [[f(A), L(A, E)],
  [0, f(A)]]`` (Higham 2008, Thm. 3.6 / eq. (3.16); Mathias 1996), computed
  with the same family of methods on the ``2n x 2n`` matrix, and
  ``L*(A, G) = L(A^H, G)`` for a primary function whose power series has
  real coefficients (Higham 2008, sec. 3.6). ``G`` is scaled to the norm of
  ``A`` first (``L`` is linear in it), so the block matrix is no further from
  normal than it need be.

The forward pass runs the method once, as without ``grad``; the backward
pass costs one ``eigh`` (Hermitian) or one call of the method at twice the
size (general). ``RootInfo`` carries no gradient, and a relative ridge is held
fixed (its dependence on ``lambda_max`` is not differentiated).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._backend import get_backend
from .conditioning import Conditioning, _compute_dtype

__all__ = ["differentiable", "divided_differences", "hermitian_frechet"]


def divided_differences(jnp: Any, w: Any, t: float) -> Any:
    """``F_ij = (w_i^t - w_j^t) / (w_i - w_j)``, ``F_ii = t w_i^(t-1)``, for ``w > 0``.

    Written as ``w_j^(t-1) expm1(t log r) / expm1(log r)`` with ``r = w_i / w_j``,
    which has no cancellation for close eigenvalues (the quotient tends to
    ``t`` as ``r -> 1``; Higham 2008, sec. 11.2 uses the same device for the
    logarithm).
    """
    wi, wj = w[..., :, None], w[..., None, :]
    d = jnp.log(wi) - jnp.log(wj)
    tiny = jnp.abs(d) < jnp.finfo(w.dtype).eps
    safe = jnp.where(tiny, jnp.ones_like(d), d)
    q = jnp.where(tiny, t * jnp.ones_like(d), jnp.expm1(t * safe) / jnp.expm1(safe))
    return wj ** (t - 1) * q


def hermitian_frechet(jnp: Any, w: Any, v: Any, e: Any, t: float) -> Any:
    """``L(A, E)`` of ``x -> x^t`` for ``A = V diag(w) V^H``, ``w > 0`` (Daleckii-Krein).

    Eigenvalues at or below zero give ``inf``/NaN entries: the power has no
    derivative there.
    """
    f = divided_differences(jnp, w, t).astype(v.dtype)
    vh = jnp.conj(jnp.swapaxes(v, -1, -2))
    return v @ (f * (vh @ e @ v)) @ vh


def differentiable(
    fn: Callable[[Any], Any],
    a: Any,
    *,
    t: float,
    assume_a: str,
    method: str,
    cond: Conditioning,
    options: dict,
    power: Callable[..., Any],
) -> Any:
    """``fn(a)`` with a ``custom_vjp`` whose backward pass is the adjoint Fréchet derivative.

    Parameters
    ----------
    fn : callable
        ``fn(a) -> x`` or ``(x, info)``: the public computation of ``a^t``.
    a : jax array, shape (..., n, n)
    t : float
        The exponent.
    assume_a : {"pos", "gen"}
    method : str
        The method ``fn`` runs (``"auto"`` allowed); the general backward pass
        calls the same one, or Schur-free where Schur-Newton cannot run
        (under ``jit``).
    cond : Conditioning
        The conditioning of the forward call.
    options : dict
        Newton's controls (``scaling``, ``tol``, ``max_iter``) for the
        backward call of a general method.
    power : callable
        :func:`rootsolve.power`, which the general backward pass calls on the
        block-triangular ``2n x 2n`` matrix.
    """
    import jax
    import jax.numpy as jnp

    def adjoint(a_val, g):
        if assume_a == "pos":
            return _hermitian_adjoint(jnp, a_val, g, t, cond)
        return _general_adjoint(jnp, power, a_val, g, t, method, cond, options)

    @jax.custom_vjp
    def call(a_val):
        return fn(a_val)

    def fwd(a_val):
        return fn(a_val), a_val

    def bwd(a_val, ct):
        g = ct[0] if isinstance(ct, tuple) else ct
        return (adjoint(a_val, g).astype(a_val.dtype),)

    call.defvjp(fwd, bwd)
    return call(a)


def _compute(a: Any, cond: Conditioning) -> Any:
    """``a`` in the precision the forward pass computed in."""
    return a.astype(_compute_dtype(get_backend(a), str(a.dtype), cond))


def _hermitian_adjoint(jnp, a, g, t, cond):
    b = _compute(a, cond)
    g = g.astype(b.dtype)
    if cond.symmetrize:
        b = (b + jnp.conj(jnp.swapaxes(b, -1, -2))) / 2
    w, v = jnp.linalg.eigh(b)
    # The forward pass's ridge (a relative one held fixed, from lambda_max).
    shift = cond.ridge + cond.rel_ridge * jnp.maximum(w[..., -1:], 0)
    # L is self-adjoint for Hermitian B: L*(B, G) = L(B, G). The symmetrized
    # input passes the Hermitian part of the gradient on.
    grad = hermitian_frechet(jnp, w + shift, v, g, t)
    return (grad + jnp.conj(jnp.swapaxes(grad, -1, -2))) / 2 if cond.symmetrize else grad


def _general_adjoint(jnp, power, a, g, t, method, cond, options):
    b = _compute(a, cond)
    g = g.astype(b.dtype)
    ah = jnp.conj(jnp.swapaxes(b, -1, -2))
    fro = lambda m: jnp.sqrt(jnp.sum(jnp.abs(m) ** 2, axis=(-2, -1)))[..., None, None]
    gn = fro(g)
    s = jnp.where(gn > 0, fro(b) / jnp.where(gn > 0, gn, 1), 1).astype(jnp.real(b).dtype)
    zero = jnp.zeros_like(ah)
    block = jnp.concatenate(
        [jnp.concatenate([ah, g * s], axis=-1), jnp.concatenate([zero, ah], axis=-1)], axis=-2
    )
    traced = not get_backend(block).eager
    inner = "auto" if traced and method == "schur_newton" else method
    n = a.shape[-1]
    out = power(
        block, t, assume_a="gen", method=inner, ridge=cond.ridge,
        compute_dtype=cond.compute_dtype, **options,
    )
    return out[..., :n, n:] / s
