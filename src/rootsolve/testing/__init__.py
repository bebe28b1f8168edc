"""Test matrices with a known spectrum, reference powers and error bounds.

Users test their own code with these, as rootsolve's test-suite does. Every
name below is importable from :mod:`rootsolve.testing`; the submodules group
them by concern:

* :mod:`~rootsolve.testing.spd`: Hermitian positive (semi)definite
  generators that need only numpy (:func:`random_orthogonal`,
  :func:`spd_with_spectrum`, :func:`logspaced_spectrum`,
  :func:`clustered_spectrum`, :func:`rank_deficient_spd`) and
  :class:`SPDMatrix`, the record they return: the matrix together with the
  eigenpairs it was built from, so that a test has a reference computed
  another way (:meth:`SPDMatrix.power`);
* :mod:`~rootsolve.testing.general`: general (nonsymmetric, real or complex)
  matrices with a known eigendecomposition (:class:`GeneralMatrix`,
  :func:`with_spectrum`, :func:`random_spectrum`, :func:`nonnormal`,
  :func:`jordan_like`, :func:`near_negative_axis`), the classic named
  matrices (:data:`NAMED_MATRICES`) and their error bounds;
* :mod:`~rootsolve.testing.bounds`: :func:`power_condition`,
  :func:`forward_tolerance` and :func:`residual_tolerance`, error bounds
  from the unit roundoff, the size and the condition number;
* :mod:`~rootsolve.testing.strategies`: hypothesis strategies
  (:func:`spd_matrices`, :func:`root_orders`, :func:`general_matrices`,
  :func:`general_exponents`); ``hypothesis`` is imported only when a
  strategy is built, so this package imports without it;
* :mod:`~rootsolve.testing.problems`: the problems that
  ``python -m rootsolve compare`` and the benchmarks give every method
  (:func:`spd_problem`, :func:`general_problem`) and the accuracy measures
  (:func:`relative_error`, :func:`inverse_root_residual`).
"""

from . import bounds, general, problems, spd, strategies
from .bounds import forward_tolerance, power_condition, residual_tolerance
from .general import (
    NAMED_MATRICES,
    GeneralMatrix,
    frank,
    general_power_condition,
    general_stability_factor,
    general_tolerance,
    grcar,
    jordan_like,
    kahan,
    lehmer,
    near_negative_axis,
    nonnormal,
    pascal,
    random_spectrum,
    with_spectrum,
)
from .problems import (
    FAMILIES,
    Problem,
    eigh_power,
    general_problem,
    inverse_root_residual,
    problems_from,
    relative_error,
    spd_problem,
)
from .spd import (
    SPDMatrix,
    clustered_spectrum,
    logspaced_spectrum,
    random_orthogonal,
    rank_deficient_spd,
    spd_with_spectrum,
)
from .strategies import KINDS, general_exponents, general_matrices, root_orders, spd_matrices

__all__ = [
    *spd.__all__,  # Hermitian positive (semi)definite matrices
    *bounds.__all__,  # error bounds
    *general.__all__,  # general matrices
    *strategies.__all__,  # hypothesis strategies
    *problems.__all__,  # comparison problems
]
