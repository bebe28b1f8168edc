"""Grafting: a first-order method that lends Shampoo its step size.

Agarwal, Anil, Hazan, Koren, Zhang, "Disentangling Adaptive Gradient Methods
from Learning Rates" (arXiv 2002.11803), sec. 3: the update keeps the
*direction* of one method (here Shampoo) and takes the *norm* of another,
``D * ||graft|| / ||D||``, computed per block (Anil et al., arXiv 2002.09018,
sec. 5). Grafting alone is also the update of parameters Shampoo does not
precondition (scalars, vectors, skipped dimensions) and of every parameter
before ``start_preconditioning_step``.

Each kind has its own NamedTuple state and two small functions: the new
moments from the gradient, and the direction from the gradient and those
moments, with the normalized kinds seeing ``g / ||g||`` (:func:`graft_input`).
The functions work on one parameter's state; in the optimizer state the same
NamedTuple holds one pytree shaped like the parameters per field, like optax's
own states (``ScaleByAdamState(count, mu, nu)``): :func:`join_grafts` and
:func:`split_grafts` convert between the two layouts.

============================ ================================================
kind                          direction
============================ ================================================
``"none"``                    ``g`` (and Shampoo's direction is not rescaled)
``"sgd"``                     ``g``
``"sign"``                    ``sign(g)``
``"adagrad"``                 ``g / (sqrt(v) + eps)``, ``v <- v + g^2``
``"adagrad_normalized"``      the same on ``g / ||g||``
``"rmsprop"``                 ``g / (sqrt(v / (1 - b2^t)) + eps)``,
                              ``v <- b2 v + (1 - b2) g^2``
``"rmsprop_normalized"``      the same on ``g / ||g||``
``"adam"``                    ``m_hat / (sqrt(v_hat) + eps)``, Adam's moments
                              (Kingma & Ba, arXiv 1412.6980, Algorithm 1)
============================ ================================================

Norms ``||g||`` are per tensor. RMSProp is bias-corrected like Adam's second
moment, so its first steps are not ``1 / sqrt(1 - b2)`` times too large (the
2022 reference implementation omits the correction); with ``b2 = 1`` the
average becomes a sum (AdaGrad) and no correction applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .control import finite
from .statistics import ema

__all__ = [
    "GRAFT_TYPES",
    "GraftHyperparams",
    "NoGraftState",
    "SGDGraftState",
    "SignGraftState",
    "AdagradGraftState",
    "RMSPropGraftState",
    "AdamGraftState",
    "graft_blocks",
    "graft_direction",
    "graft_init",
    "graft_input",
    "graft_moments",
    "join_grafts",
    "split_grafts",
]

GRAFT_TYPES = (
    "none",
    "sgd",
    "adagrad",
    "rmsprop",
    "rmsprop_normalized",
    "adagrad_normalized",
    "adam",
    "sign",
)


class GraftHyperparams(NamedTuple):
    """Hyperparameters shared by the grafting kinds (numbers or traced scalars)."""

    beta1: Any  # Adam's first-moment decay
    beta2: Any  # second-moment decay of RMSProp and Adam
    eps: Any  # added to the square root in the denominators


class NoGraftState(NamedTuple):
    """``"none"``: no state."""


class SGDGraftState(NamedTuple):
    """``"sgd"``: no state."""


class SignGraftState(NamedTuple):
    """``"sign"``: no state."""


class AdagradGraftState(NamedTuple):
    """``"adagrad"`` and ``"adagrad_normalized"``."""

    sum_sq: jnp.ndarray  # param shape, statistics dtype: running sum of g^2


class RMSPropGraftState(NamedTuple):
    """``"rmsprop"`` and ``"rmsprop_normalized"``."""

    nu: jnp.ndarray  # param shape, statistics dtype: moving average of g^2


class AdamGraftState(NamedTuple):
    """``"adam"``."""

    mu: jnp.ndarray  # param shape, statistics dtype: moving average of g
    nu: jnp.ndarray  # param shape, statistics dtype: moving average of g^2


def _debias(v: jnp.ndarray, beta: Any, t: jnp.ndarray) -> jnp.ndarray:
    """Adam's bias correction ``v / (1 - beta^t)``; none for ``beta == 1`` (sums)."""
    beta = jnp.asarray(beta, v.dtype)
    corr = jnp.where(beta == 1, 1.0, 1.0 - beta ** t.astype(v.dtype))
    return v / corr


def _normalized(g: jnp.ndarray, sum_sq: jnp.ndarray | None) -> jnp.ndarray:
    nrm = jnp.linalg.norm(g.ravel()) if sum_sq is None else jnp.sqrt(sum_sq).astype(g.dtype)
    return jnp.where(nrm > 0, g / jnp.where(nrm > 0, nrm, 1.0), 0.0).astype(g.dtype)


# Each kind is two steps: the new moments from ``g``, then the direction from ``g`` and
# those moments. Shampoo commits the moments (or keeps the old ones after a non-finite
# step) before it reads the direction from them, so the old moments have one reader.


def _no_moments(g, state, hp):
    return state


def _identity(g, state, t, hp):
    return g


def _sign(g, state, t, hp):
    return jnp.sign(g)


def _adagrad_moments(g, state, hp):
    return AdagradGraftState(state.sum_sq + g * g)


def _adagrad(g, state, t, hp):
    return g / (jnp.sqrt(state.sum_sq) + hp.eps)


def _rmsprop_moments(g, state, hp):
    return RMSPropGraftState(ema(state.nu, g * g, hp.beta2))


def _rmsprop(g, state, t, hp):
    return g / (jnp.sqrt(_debias(state.nu, hp.beta2, t)) + hp.eps)


def _adam_moments(g, state, hp):
    return AdamGraftState(ema(state.mu, g, hp.beta1), ema(state.nu, g * g, hp.beta2))


def _adam(g, state, t, hp):
    return _debias(state.mu, hp.beta1, t) / (jnp.sqrt(_debias(state.nu, hp.beta2, t)) + hp.eps)


_STEPS: dict[str, tuple[Callable, Callable]] = {
    "none": (_no_moments, _identity),
    "sgd": (_no_moments, _identity),
    "sign": (_no_moments, _sign),
    "adagrad": (_adagrad_moments, _adagrad),
    "adagrad_normalized": (_adagrad_moments, _adagrad),
    "rmsprop": (_rmsprop_moments, _rmsprop),
    "rmsprop_normalized": (_rmsprop_moments, _rmsprop),
    "adam": (_adam_moments, _adam),
}


def graft_input(kind: str, g: jnp.ndarray, sum_sq: jnp.ndarray | None = None) -> jnp.ndarray:
    """The gradient as the grafting kind sees it: ``g / ||g||`` for the normalized kinds.

    ``sum_sq`` is ``||g||^2`` where already known (Shampoo reads it off its statistics).
    """
    return _normalized(g, sum_sq) if kind.endswith("_normalized") else g


_STATE_TYPES: dict[str, type] = {
    "none": NoGraftState,
    "sgd": SGDGraftState,
    "sign": SignGraftState,
    "adagrad": AdagradGraftState,
    "adagrad_normalized": AdagradGraftState,
    "rmsprop": RMSPropGraftState,
    "rmsprop_normalized": RMSPropGraftState,
    "adam": AdamGraftState,
}


def graft_init(kind: str, like: jnp.ndarray) -> NamedTuple:
    """Initial grafting state for a parameter; ``like`` gives shape and dtype."""
    cls = _STATE_TYPES[kind]
    return cls(*(jnp.zeros_like(like) for _ in cls._fields))


def join_grafts(kind: str, per_leaf: list, treedef: Any) -> NamedTuple:
    """One grafting state whose fields are pytrees (of structure ``treedef``) from the
    states of the parameters' leaves, in tree-flatten order."""
    cls = _STATE_TYPES[kind]
    return cls(*(treedef.unflatten([getattr(s, f) for s in per_leaf]) for f in cls._fields))


def split_grafts(state: NamedTuple, treedef: Any) -> list:
    """The inverse of :func:`join_grafts`: one state per leaf of ``treedef``."""
    if not state._fields:
        return [type(state)()] * treedef.num_leaves
    fields = [treedef.flatten_up_to(x) for x in state]
    return [type(state)(*xs) for xs in zip(*fields, strict=True)]


def graft_moments(kind: str, g: jnp.ndarray, state: NamedTuple, hp: GraftHyperparams) -> NamedTuple:
    """The grafting state after gradient ``g`` (already passed through :func:`graft_input`)."""
    return _STEPS[kind][0](g, state, hp)


def graft_direction(
    kind: str, g: jnp.ndarray, state: NamedTuple, count: jnp.ndarray, hp: GraftHyperparams
) -> jnp.ndarray:
    """Grafting direction at step ``count`` (0-based) from ``g`` (after :func:`graft_input`)
    and the state :func:`graft_moments` returned for it."""
    return _STEPS[kind][1](g, state, count + 1, hp)



def graft_blocks(
    direction: jax.Array, graft: jax.Array, gn: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """Per block (leading axis) ``D ||graft|| / ||D||``; the graft itself where ``D`` vanishes.

    Agarwal et al. (arXiv 2002.11803), sec. 3, per block as in Anil et al.
    (arXiv 2002.09018), sec. 5. ``gn`` are the graft's block norms when already
    known. Also returns whether every norm and scale is finite, which (the
    graft being finite) makes the grafted direction finite.
    """
    nb = direction.shape[0]
    dn = jnp.linalg.norm(direction.reshape(nb, -1), axis=1)
    if gn is None:
        gn = jnp.linalg.norm(graft.reshape(nb, -1), axis=1)
    shape = (nb,) + (1,) * (direction.ndim - 1)
    scale = gn / jnp.where(dn > 0, dn, 1.0)
    out = jnp.where((dn > 0).reshape(shape), direction * scale.reshape(shape), graft)
    return out, finite(jnp.stack([dn, gn, scale]))
