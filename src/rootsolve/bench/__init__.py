"""Measuring rootsolve against its peers: the machinery of ``python -m rootsolve compare``.

Not imported by ``import rootsolve``: the command line (``python -m rootsolve
compare``) and the asv benchmarks in ``asv_benchmarks/`` load it.

* :mod:`~rootsolve.bench.methods`: every method measured (rootsolve's and
  its peers': numpy, scipy, optax) as :class:`Method` entries of
  :data:`METHODS`;
* :mod:`~rootsolve.bench.runner`: timing and checking them on the problems
  of :mod:`rootsolve.testing.problems`, and the machine they ran on;
* :mod:`~rootsolve.bench.compare`: the command's options and tables.
"""

from ..testing import problems
from ..testing.problems import (
    FAMILIES,
    Problem,
    eigh_power,
    general_problem,
    inverse_root_residual,
    problems_from,
    relative_error,
    spd_problem,
)
from . import compare, methods, runner
from .compare import (
    DEFAULT_COND,
    DEFAULT_N,
    DEFAULT_P,
    DEFAULT_RUN,
    add_arguments,
    main,
    render_plain,
    render_rich,
)
from .methods import BASELINE, BASELINES, METHODS, Method, Runner, find_method, select
from .runner import (
    LOAD_LIMIT,
    SETTLE_S,
    TIME_BUDGET_S,
    Row,
    environment,
    load_warning,
    measure,
    run,
    time_runner,
)

__all__ = [
    *problems.__all__,  # from rootsolve.testing
    *methods.__all__,
    *runner.__all__,
    *compare.__all__,
]
