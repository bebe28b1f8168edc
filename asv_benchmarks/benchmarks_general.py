"""Roots of general (non-symmetric) matrices: rootsolve against scipy.

Methods, on the same matrix for n in {64, 256, 512}, p in {2, 3, 5, 8} and
real/complex input: rootsolve's Schur-Newton (the default for numpy input),
its Schur-free variant on numpy, ``scipy.linalg.fractional_matrix_power(a, 1/p)``
and, for p = 2 only, ``scipy.linalg.sqrtm`` (other p show as n/a). Tracked:
time, peak memory, the residual ``||X^p - A||_F / ||A||_F`` and whether the
result is real (1) or complex (0) for real input.

The matrix is ``1.5 I + G / sqrt(n)`` with ``G`` standard Gaussian (complex
Gaussian for complex input): by the circular law its eigenvalues fill the disc
of radius 1 about 1.5, so it is nonsymmetric, has complex-conjugate pairs when
real, and stays off the negative real axis.

The speed goal is measured by running this module::

    python -m asv_benchmarks.benchmarks_general --goals

which times rootsolve and ``fractional_matrix_power`` alternately at n = 256,
p = 3 on real input and prints the ratios (see :func:`goals`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg as sl

import rootsolve

from .smoke import sized

SIZES = sized(full=(64, 256, 512), smoke=(64,))
ORDERS = sized(full=(2, 3, 5, 8), smoke=(2,))
DTYPES = sized(full=("float64", "complex128"), smoke=("float64",))
METHODS = (
    "rootsolve schur_newton",
    "rootsolve schur_free",
    "scipy fractional_matrix_power",
    "scipy sqrtm",
)


def general_problem(n: int, dtype: str = "float64", seed: int = 0) -> np.ndarray:
    """``1.5 I + G / sqrt(n)``, real or complex (module docstring)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, n))
    if dtype.startswith("complex"):
        g = (g + 1j * rng.standard_normal((n, n))) / np.sqrt(2)
    return (1.5 * np.eye(n) + g / np.sqrt(n)).astype(dtype)


def root_residual(x: np.ndarray, a: np.ndarray, p: int) -> float:
    """``||X^p - A||_F / ||A||_F`` in the input's precision."""
    return float(np.linalg.norm(np.linalg.matrix_power(x, p) - a) / np.linalg.norm(a))


def runner(method: str, a: np.ndarray, p: int) -> Callable[[], np.ndarray]:
    """A no-argument callable computing ``a^(1/p)`` by ``method``."""
    if method == "rootsolve schur_newton":
        return lambda: rootsolve.root(a, p, assume_a="gen", method="schur_newton")
    if method == "rootsolve schur_free":
        return lambda: rootsolve.root(a, p, assume_a="gen", method="schur_free")
    if method == "scipy fractional_matrix_power":
        return lambda: _quiet(sl.fractional_matrix_power, a, 1.0 / p)
    if method == "scipy sqrtm":
        if p != 2:
            raise NotImplementedError("sqrtm is a square root only")
        return lambda: _quiet(sl.sqrtm, a)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def _quiet(fn: Callable, *args: Any) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's accuracy warnings are not timed noise
        return fn(*args)


class _Base:
    params = (list(METHODS), list(SIZES), list(ORDERS), list(DTYPES))
    param_names = ("method", "n", "p", "dtype")
    timeout = 600

    def setup_cache(self):
        return {(n, dt): general_problem(n, dt) for n in SIZES for dt in DTYPES}

    def setup(self, problems, method, n, p, dtype):
        self.a = problems[(n, dtype)]
        self.p = p
        self.run = runner(method, self.a, p)


class RootGeneral(_Base):
    """Wall time and peak memory of one ``a^(1/p)`` of a general matrix."""

    def time_root(self, problems, method, n, p, dtype):
        self.run()

    def peakmem_root(self, problems, method, n, p, dtype):
        self.run()


class AccuracyGeneral(_Base):
    """Residual of one ``a^(1/p)``, and whether real input gave a real result."""

    def track_residual(self, problems, method, n, p, dtype):
        return root_residual(self.run(), self.a, self.p)

    track_residual.unit = "||X^p - A||_F / ||A||_F"

    def track_real_output(self, problems, method, n, p, dtype):
        return float(not np.iscomplexobj(self.run()))

    track_real_output.unit = "1 if real"


class InverseRootGeneral:
    """Time and residual ``||X^p A - I||_F / sqrt(n)`` of ``a^(-1/p)``, real input."""

    params = (["rootsolve schur_newton", "scipy fractional_matrix_power"], list(SIZES),
              list(ORDERS))
    param_names = ("method", "n", "p")
    timeout = 600

    def setup(self, method, n, p):
        self.a, self.p = general_problem(n), p
        if method == "rootsolve schur_newton":
            self.run = lambda: rootsolve.inv_root(self.a, p, assume_a="gen")
        else:
            self.run = lambda: _quiet(sl.fractional_matrix_power, self.a, -1.0 / p)

    def time_inv_root(self, method, n, p):
        self.run()

    def track_residual(self, method, n, p):
        x = self.run()
        r = np.linalg.matrix_power(x, self.p) @ self.a - np.eye(self.a.shape[0])
        return float(np.linalg.norm(r) / np.sqrt(self.a.shape[0]))

    track_residual.unit = "||X^p A - I||_F / sqrt(n)"


#: Exponents not of the form +-1/p: any real t (Schur-Pade in rootsolve).
REAL_EXPONENTS = sized(full=(0.37, -0.37, 2.7), smoke=(0.37,))


def power_residual(x: np.ndarray, a: np.ndarray, t: float) -> float:
    """``||X^p - A^q||_F / ||A^q||_F`` for ``t = q/p`` (``|p| <= 100``), ``q`` possibly negative."""
    from fractions import Fraction

    f = Fraction(t).limit_denominator(100)
    aq = np.linalg.matrix_power(a, f.numerator)
    return float(np.linalg.norm(np.linalg.matrix_power(x, f.denominator) - aq)
                 / np.linalg.norm(aq))


def power_runner(method: str, a: np.ndarray, t: float) -> Callable[[], np.ndarray]:
    """A no-argument callable computing ``a^t`` for any real ``t``."""
    if method == "rootsolve power":
        return lambda: rootsolve.power(a, t, assume_a="gen")
    if method == "scipy fractional_matrix_power":
        return lambda: _quiet(sl.fractional_matrix_power, a, t)
    raise ValueError(f"unknown method {method!r}")


class PowerGeneral:
    """Time, residual and output type of ``a^t`` for real exponents not of the form 1/p.

    rootsolve's Schur-Pade (real arithmetic for real input) against scipy's
    ``fractional_matrix_power`` (the same algorithm in complex arithmetic), on
    the real problem of this module.
    """

    params = (["rootsolve power", "scipy fractional_matrix_power"], list(SIZES),
              list(REAL_EXPONENTS))
    param_names = ("method", "n", "t")
    timeout = 600

    def setup(self, method, n, t):
        self.a, self.t = general_problem(n), t
        self.run = power_runner(method, self.a, t)

    def time_power(self, method, n, t):
        self.run()

    def track_residual(self, method, n, t):
        return power_residual(self.run(), self.a, self.t)

    track_residual.unit = "||X^p - A^q||_F / ||A^q||_F, t = q/p"

    def track_real_output(self, method, n, t):
        return float(not np.iscomplexobj(self.run()))

    track_real_output.unit = "1 if real"


def power_goals(n: int = 256, t: float = 0.37, repeats: int = 9) -> dict[str, Any]:
    """The any-real-exponent goal: ``power(a, t, assume_a="gen")`` on real nonsymmetric input.

    Pass when it is at least 2x faster than ``fractional_matrix_power(a, t)``,
    its residual (:func:`power_residual`) is at most 10x scipy's and its result
    is real.
    """
    a = general_problem(n)
    ours = power_runner("rootsolve power", a, t)
    theirs = power_runner("scipy fractional_matrix_power", a, t)
    out = {"n": n, "t": t, **paired(ours, theirs, repeats)}
    x, y = ours(), theirs()
    out["residual_rootsolve"] = power_residual(x, a, t)
    out["residual_scipy"] = power_residual(y, a, t)
    out["residual_ratio"] = out["residual_rootsolve"] / out["residual_scipy"]
    out["rootsolve_dtype"], out["scipy_dtype"] = str(x.dtype), str(y.dtype)
    out["passed"] = bool(
        out["speedup"] >= 2 and out["residual_ratio"] <= 10 and not np.iscomplexobj(x)
    )
    return out


# ---------------------------------------------------------------------------- goals


def paired(f: Callable[[], Any], g: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Median times of ``f`` and ``g`` called alternately, and the median of ``t_g / t_f``.

    Alternating the two calls makes load from other processes hit both alike.
    """
    f(), g()
    tf, tg = [], []
    for _ in range(repeats):
        for fn, acc in ((f, tf), (g, tg)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return {
        "rootsolve_s": float(np.median(tf)),
        "scipy_s": float(np.median(tg)),
        "speedup": float(np.median(np.asarray(tg) / np.asarray(tf))),
    }


def goals(n: int = 256, p: int = 3, repeats: int = 9) -> dict[str, Any]:
    """The general-matrix goal at ``n``, ``p`` on real nonsymmetric input.

    Pass when ``root(a, p, assume_a="gen")`` is at least 2x faster than
    ``fractional_matrix_power(a, 1/p)``, its residual is at most 10x scipy's,
    and its result is real.
    """
    a = general_problem(n)
    ours = runner("rootsolve schur_newton", a, p)
    theirs = runner("scipy fractional_matrix_power", a, p)
    t = paired(ours, theirs, repeats)
    x, y = ours(), theirs()
    res_ours, res_scipy = root_residual(x, a, p), root_residual(y, a, p)
    out = {
        "n": n,
        "p": p,
        **t,
        "residual_rootsolve": res_ours,
        "residual_scipy": res_scipy,
        "residual_ratio": res_ours / res_scipy,
        "rootsolve_dtype": str(x.dtype),
        "scipy_dtype": str(y.dtype),
    }
    out["passed"] = bool(
        out["speedup"] >= 2 and out["residual_ratio"] <= 10 and not np.iscomplexobj(x)
    )
    return out


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goals", action="store_true", help="measure the speed goal")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--p", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.goals:
        parser.print_help()
        return 0
    r = goals(args.n, args.p, args.repeats)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(
            f"general matrices, n={r['n']}, p={r['p']}, real nonsymmetric input\n"
            f"  time: rootsolve {r['rootsolve_s'] * 1e3:.1f} ms, fractional_matrix_power "
            f"{r['scipy_s'] * 1e3:.1f} ms, speedup {r['speedup']:.2f}x (goal >= 2)\n"
            f"  residual: rootsolve {r['residual_rootsolve']:.2e}, scipy "
            f"{r['residual_scipy']:.2e}, ratio {r['residual_ratio']:.2f} (goal <= 10)\n"
            f"  dtype: rootsolve {r['rootsolve_dtype']}, scipy {r['scipy_dtype']} (goal: real)\n"
            f"  {'PASS' if r['passed'] else 'FAIL'}"
        )
    return 0 if r["passed"] else 1


if __name__ == "__main__":
    sys.exit(_main())
