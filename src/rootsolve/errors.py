"""Exceptions raised by rootsolve.

Errors about the *input* (shape, dtype, the exponent) are ``ValueError`` or
``TypeError`` subclasses; errors about the *numbers* (a negative or zero
eigenvalue where the root needs none, an iteration that did not converge)
subclass :class:`numpy.linalg.LinAlgError`, as scipy's matrix functions do.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "RootError",
    "NotPositiveDefiniteError",
    "SingularMatrixError",
    "NegativeEigenvalueError",
    "ConvergenceError",
]


class RootError(np.linalg.LinAlgError):
    """Base class for numerical failures of a matrix root."""


class NotPositiveDefiniteError(RootError):
    """A matrix declared ``assume_a="pos"`` has an eigenvalue below zero beyond rounding."""


class SingularMatrixError(RootError):
    """An inverse root was asked of a (numerically) singular matrix."""


class NegativeEigenvalueError(RootError):
    """A general matrix has an eigenvalue on the closed negative real axis,
    where the principal root is not defined."""


class ConvergenceError(RootError):
    """An iterative method stopped without reaching its tolerance."""
