"""rootsolve: matrix p-th roots and inverse p-th roots.

``inv_root(a, p)`` = a^(-1/p), ``root(a, p)`` = a^(1/p), ``power(a, t)`` = a^t
for Hermitian positive (semi)definite matrices and, with ``assume_a="gen"``,
general square matrices (principal powers; real input gives real output) on
numpy, jax (inside ``jit``/``vmap``), cupy and other array-API arrays,
batched over leading axes.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from ._roots import inv_root, power, root
from .batched_eigh import get_num_threads, set_num_threads
from .conditioning import Conditioning
from .diagnostics import METHOD_NAMES, RootInfo
from .eigenbasis import Eigenbasis, EigenbasisInfo, refine_eigenbasis
from .errors import (
    ConvergenceError,
    NegativeEigenvalueError,
    NotPositiveDefiniteError,
    RootError,
    SingularMatrixError,
)

try:
    __version__ = _version("rootsolve")
except PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

__all__ = [
    "inv_root",
    "root",
    "power",
    "Conditioning",
    "RootInfo",
    "METHOD_NAMES",
    "set_num_threads",
    "get_num_threads",
    "RootError",
    "NotPositiveDefiniteError",
    "SingularMatrixError",
    "NegativeEigenvalueError",
    "ConvergenceError",
    "refine_eigenbasis", "Eigenbasis", "EigenbasisInfo",
]
