"""Inverse p-th roots of symmetric positive definite matrices: rootsolve and its peers.

Every method named in :data:`METHODS` (entries of
:data:`rootsolve.bench.METHODS`) runs on the same Haar-random matrix with a
log-spaced spectrum, for n in {64, 256, 1024}, p in {2, 4} and float64 and
float32 input: wall time, peak memory, and accuracy (relative error against
the float64 reference of :func:`rootsolve.testing.spd_problem`, and the
residual ``||X^p A - I||_F / sqrt(n)``).

The condition number is 1e6 for float64 and 1e3 for float32: rootsolve
treats eigenvalues within ``n eps ||A||`` of zero as zero, which makes a
float32 matrix with cond 1e6 singular for every n here.

Skipped (asv shows n/a): ``scipy.linalg.fractional_matrix_power`` at
n = 1024 (several seconds per call on a 2-core CPU, about forty times the
eigh baseline, and n = 256 already shows the gap), and methods whose library
(jax, optax) is not installed.

Matrices are built, ``jit`` functions compiled and every method called once
in ``setup``, so none of that is timed; the reference is computed only by the
accuracy benchmarks. ``make bench`` runs ``asv run --python=same --quick``:
one timed call each, a smoke test taking several minutes; drop ``--quick``
for numbers to quote.
"""

from __future__ import annotations

try:
    from rootsolve.bench import BASELINE, find_method
    from rootsolve.testing import inverse_root_residual, relative_error, spd_problem
except ImportError:  # a library from before rootsolve.bench (make dashboard COMMITS=N)
    from rootsolve.compare import (
        BASELINE,
        find_method,
        inverse_root_residual,
        relative_error,
        spd_problem,
    )

from .smoke import sized

COND = {"float64": 1e6, "float32": 1e3}
SIZES = sized(full=(64, 256, 1024), smoke=(64,))
ORDERS = sized(full=(2, 4), smoke=(4,))
DTYPES = sized(full=("float64", "float32"), smoke=("float64",))
METHODS = (
    "rootsolve eigh",
    "rootsolve newton dynamic",
    "rootsolve newton optimal",
    "rootsolve eigh, jax jit",
    "rootsolve newton dynamic, jax jit",
    BASELINE,
    "scipy fractional_matrix_power",
    "optax matrix_inverse_pth_root, jit",
)
#: (method, n) pairs not run, for the reason in the module docstring.
SKIP = {("scipy fractional_matrix_power", 1024)}


class _Base:
    params = (list(METHODS), list(SIZES), list(ORDERS), list(DTYPES))
    param_names = ("method", "n", "p", "dtype")
    timeout = 600

    def setup(self, method, n, p, dtype):
        m = find_method(method)
        if (method, n) in SKIP or m.unavailable():
            raise NotImplementedError(f"{method} is not run at n={n}")
        self.problem = spd_problem(n, p, COND[dtype], dtype=dtype)
        self.run = m.prepare(self.problem)
        if m.jit:
            self.run()


class InvRootSPD(_Base):
    """Wall time and peak memory of one ``a^(-1/p)``."""

    def setup(self, method, n, p, dtype):
        super().setup(method, n, p, dtype)
        if not find_method(method).jit:
            # One untimed call, so that ``--quick`` (a single timed call) does
            # not time thread-pool start-up and first-touch page faults.
            self.run()

    def time_inv_root(self, method, n, p, dtype):
        self.run()

    def peakmem_inv_root(self, method, n, p, dtype):
        self.run()


class AccuracySPD(_Base):
    """Relative error and residual of one ``a^(-1/p)``."""

    def track_rel_error(self, method, n, p, dtype):
        return relative_error(self.run(), self.problem.reference)

    track_rel_error.unit = "relative error"

    def track_residual(self, method, n, p, dtype):
        return inverse_root_residual(self.run(), self.problem.a, self.problem.p)

    track_residual.unit = "||X^p A - I||_F / sqrt(n)"


class NewtonCostSPD:
    """Iterations and matrix products of coupled Newton per scaling (float64, cond 1e6)."""

    params = (["dynamic", "optimal", "frobenius"], list(SIZES), list(ORDERS))
    param_names = ("scaling", "n", "p")

    def setup(self, scaling, n, p):
        self.counts = find_method(f"rootsolve newton {scaling}").counts
        self.problem = spd_problem(n, p, COND["float64"])

    def track_gemms(self, scaling, n, p):
        return self.counts(self.problem)[1]

    track_gemms.unit = "matrix products"

    def track_iterations(self, scaling, n, p):
        return self.counts(self.problem)[0]

    track_iterations.unit = "iterations"
