"""Old import path of :mod:`rootsolve.testing.general`, kept for code that still uses it.

New code imports from :mod:`rootsolve.testing`.
"""

from .testing.general import *  # noqa: F403
from .testing.general import __all__ as _general_all
from .testing.strategies import general_exponents, general_matrices

__all__ = [*_general_all, "general_matrices", "general_exponents"]
