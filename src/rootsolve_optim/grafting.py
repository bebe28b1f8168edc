"""Grafting: a first-order method that lends Shampoo its step size.

Agarwal, Anil, Hazan, Koren, Zhang, "Disentangling Adaptive Gradient Methods
from Learning Rates" (arXiv 2002.11803), sec. 3: the update keeps the
*direction* of one method (here Shampoo) and takes the *norm* of another,
``D * ||graft|| / ||D||``, computed per block (Anil et al., arXiv 2002.09018,
sec. 5). Grafting alone is also the update of parameters Shampoo does not
precondition (scalars, vectors, skipped dimensions) and of every parameter
before ``start_preconditioning_step``.

Each kind is a small function ``(g, state, t, hp) -> (direction, state)`` of
its own NamedTuple state; ``t`` is the 1-based step for bias corrections.

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

import jax.numpy as jnp

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
    "graft_init",
    "graft_step",
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


def _normalized(g: jnp.ndarray) -> jnp.ndarray:
    nrm = jnp.linalg.norm(g.ravel())
    return jnp.where(nrm > 0, g / jnp.where(nrm > 0, nrm, 1.0), 0.0).astype(g.dtype)


def _identity(g, state, t, hp):
    return g, state


def _sign(g, state, t, hp):
    return jnp.sign(g), state


def _adagrad(g, state, t, hp):
    s = state.sum_sq + g * g
    return g / (jnp.sqrt(s) + hp.eps), AdagradGraftState(s)


def _rmsprop(g, state, t, hp):
    nu = ema(state.nu, g * g, hp.beta2)
    return g / (jnp.sqrt(_debias(nu, hp.beta2, t)) + hp.eps), RMSPropGraftState(nu)


def _adam(g, state, t, hp):
    mu = ema(state.mu, g, hp.beta1)
    nu = ema(state.nu, g * g, hp.beta2)
    d = _debias(mu, hp.beta1, t) / (jnp.sqrt(_debias(nu, hp.beta2, t)) + hp.eps)
    return d, AdamGraftState(mu, nu)


def _on_normalized(step: Callable) -> Callable:
    return lambda g, state, t, hp: step(_normalized(g), state, t, hp)


_STEPS: dict[str, Callable] = {
    "none": _identity,
    "sgd": _identity,
    "sign": _sign,
    "adagrad": _adagrad,
    "adagrad_normalized": _on_normalized(_adagrad),
    "rmsprop": _rmsprop,
    "rmsprop_normalized": _on_normalized(_rmsprop),
    "adam": _adam,
}


def graft_init(kind: str, like: jnp.ndarray) -> NamedTuple:
    """Initial grafting state for a parameter; ``like`` gives shape and dtype."""
    z = lambda: jnp.zeros_like(like)
    inits = {
        "none": NoGraftState,
        "sgd": SGDGraftState,
        "sign": SignGraftState,
        "adagrad": lambda: AdagradGraftState(z()),
        "adagrad_normalized": lambda: AdagradGraftState(z()),
        "rmsprop": lambda: RMSPropGraftState(z()),
        "rmsprop_normalized": lambda: RMSPropGraftState(z()),
        "adam": lambda: AdamGraftState(z(), z()),
    }
    return inits[kind]()


def graft_step(
    kind: str, g: jnp.ndarray, state: NamedTuple, count: jnp.ndarray, hp: GraftHyperparams
) -> tuple[jnp.ndarray, NamedTuple]:
    """Grafting direction for gradient ``g`` at step ``count`` (0-based) and the new state."""
    return _STEPS[kind](g, state, count + 1, hp)
