"""Side-by-side comparison of rootsolve with the tools users would otherwise use.

``python -m rootsolve compare`` builds test problems with a chosen condition
number and measures, in one run, every method in :data:`METHODS` on each:
time (median of up to ``--repeats`` calls, ``jit`` compilation excluded),
relative error against an independent float64 reference, the residual ``||X^p A - I||_F / sqrt(n)``,
iterations and matrix products where the method reports them.

The pieces are kept small so that they can be extended one at a time:

* a *problem family* is one function ``(n, p, cond, batch, dtype, seed) ->
  Problem`` registered in :data:`FAMILIES` (``"spd"``, and ``"general"`` for
  nonsymmetric matrices, added by ``--general``);
* a *method* is one :class:`Method` entry in :data:`METHODS`, saying which
  families it accepts, how to prepare a zero-argument runner for a problem,
  and (optionally) how to read its iteration and matrix-product counts.

The same problems and methods drive the asv benchmarks in ``asv_benchmarks/``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .testing import logspaced_spectrum, spd_with_spectrum

__all__ = [
    "Problem",
    "Method",
    "Row",
    "FAMILIES",
    "METHODS",
    "BASELINE",
    "spd_problem",
    "general_problem",
    "relative_error",
    "inverse_root_residual",
    "find_method",
    "measure",
    "run",
    "environment",
    "SETTLE_S",
    "add_arguments",
    "main",
]

#: The method every time ratio is taken against.
BASELINE = "numpy eigh+rebuild"

#: Problem set run when no size, order or condition number is given.
DEFAULT_N = (64, 256, 512)
DEFAULT_P = (2, 3, 4)
#: Default condition number per dtype. rootsolve treats an eigenvalue within
#: ``n eps ||A||`` of zero as zero, so float32 input with cond near ``1/(n eps32)``
#: (about 1.3e5 at n = 64) counts as singular.
DEFAULT_COND = {"float64": (1e6,), "float32": (1e3,)}


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One test matrix (or batch) and the exact answer it should give.

    Attributes
    ----------
    family : str
        Key of :data:`FAMILIES` that built it.
    a : numpy.ndarray, shape (..., n, n)
        The input every method receives, in the problem's dtype.
    p : int
        Root order: every method computes ``a^(-1/p)``.
    cond : float
        2-norm condition number of ``a``.
    reference_kind : str
        How :attr:`reference` is obtained (shown in the JSON output).
    make_reference : callable
        Computes :attr:`reference` on first use (benchmarks that only time
        a method never pay for it).
    """

    family: str
    a: np.ndarray
    p: int
    cond: float
    reference_kind: str
    make_reference: Callable[[], np.ndarray] = field(repr=False, compare=False)

    @cached_property
    def reference(self) -> np.ndarray:
        """``a^(-1/p)`` in float64, computed independently of every method under test."""
        return self.make_reference()

    @property
    def n(self) -> int:
        """Matrix size."""
        return int(self.a.shape[-1])

    @property
    def batch(self) -> int:
        """Number of matrices (0 for a single unbatched matrix)."""
        return int(self.a.shape[0]) if self.a.ndim == 3 else 0

    @property
    def dtype(self) -> str:
        """Name of the input dtype."""
        return self.a.dtype.name

    def describe(self) -> dict[str, Any]:
        """The problem's parameters as plain JSON values."""
        return {
            "family": self.family,
            "n": self.n,
            "p": self.p,
            "cond": self.cond,
            "batch": self.batch,
            "dtype": self.dtype,
            "reference": self.reference_kind,
        }


def spd_problem(
    n: int, p: int, cond: float, *, batch: int = 0, dtype: str = "float64", seed: int = 0
) -> Problem:
    """Symmetric positive definite ``A = V diag(w) V^T`` with a known root.

    ``V`` is Haar-random and ``w`` log-spaced in ``[1/cond, 1]`` (Higham's
    ``randsvd`` mode 3, built by :func:`rootsolve.testing.spd_with_spectrum`),
    so the 2-norm condition number is ``cond``; a batch has one ``V`` per
    matrix and the same spectrum. The float64 reference
    ``V diag(w^(-1/p)) V^T`` comes from the known eigendecomposition and
    never from a solver under test. A float32 problem is that matrix rounded
    to float32; rounding moves its root by up to about ``cond * eps32 / p``,
    far beyond any method's error, so its reference is the float64
    eigendecomposition of the rounded matrix instead.
    """
    w = logspaced_spectrum(n, cond)
    if batch:
        w = np.broadcast_to(w, (batch, n))
    case = spd_with_spectrum(w, seed, dtype=dtype)
    a = np.ascontiguousarray(case.matrix)
    if dtype == "float64":
        kind = "known eigendecomposition (float64)"
        ref = lambda: case.power(-1.0 / p, stored=False)
    else:
        kind = "float64 eigh of the rounded input"
        ref = lambda: _eigh_power(a.astype(np.float64), -1.0 / p)
    return Problem("spd", a, p, float(cond), kind, ref)


def general_problem(
    n: int, p: int, cond: float, *, batch: int = 0, dtype: str = "float64", seed: int = 0
) -> Problem:
    """Nonsymmetric ``A = V D V^-1`` with a known principal root (real or complex).

    Eigenvalue moduli are log-spaced in ``[1/cond, 1]`` (so ``cond`` is their
    spread, not the 2-norm condition number) with arguments drawn in
    ``(-0.9 pi, 0.9 pi)``: complex-conjugate pairs for a real dtype, any
    complex values for a complex one; ``cond(V) = 10``
    (:func:`rootsolve._general_matrices.with_spectrum`). The reference
    ``V diag(lambda^(-1/p)) V^-1`` is formed in complex128 from that
    decomposition, never by a method under test.
    """
    from ._general_matrices import with_spectrum

    real = not dtype.startswith("complex")
    cases = []
    for k in range(max(batch, 1)):
        rng = np.random.default_rng([seed, k])
        pairs = n // 2 if real else 0  # a pair shares one modulus
        r = np.logspace(-math.log10(cond), 0.0, n - pairs)
        if real:
            w = r[n - 2 * pairs :] * np.exp(1j * rng.uniform(0.05, 0.9 * np.pi, pairs))
            lam = np.concatenate([r[: n - 2 * pairs], w, np.conj(w)])
        else:
            lam = r * np.exp(1j * rng.uniform(-0.9 * np.pi, 0.9 * np.pi, n))
        cases.append(with_spectrum(lam, rng=rng, cond_v=10.0, real=real))
    a = np.stack([c.a for c in cases]) if batch else cases[0].a
    a = np.ascontiguousarray(a.astype(dtype))
    ref = lambda: (
        np.stack([c.power(-1.0 / p) for c in cases]) if batch else cases[0].power(-1.0 / p)
    )
    return Problem("general", a, p, float(cond), "known eigendecomposition (complex128)", ref)


#: Problem families by name: each is a function (n, p, cond, batch=, dtype=, seed=) -> Problem.
FAMILIES: dict[str, Callable[..., Problem]] = {"spd": spd_problem, "general": general_problem}


# --------------------------------------------------------------------------- accuracy


def _eigh_power(a: np.ndarray, t: float) -> np.ndarray:
    """``a^t`` for symmetric positive definite ``a`` by eigh and rebuild."""
    w, v = np.linalg.eigh(a)
    return (v * w[..., None, :] ** t) @ np.swapaxes(v, -1, -2)


def _fro(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(np.abs(x) ** 2, axis=(-2, -1)))


def relative_error(x: Any, reference: np.ndarray) -> float:
    """``max ||X - X_ref||_F / ||X_ref||_F`` over the batch, in float64."""
    x = np.asarray(x).astype(np.complex128 if np.iscomplexobj(x) else np.float64)
    return float(np.max(_fro(x - reference) / _fro(reference)))


def inverse_root_residual(x: Any, a: np.ndarray, p: int) -> float:
    """``max ||X^p A - I||_F / sqrt(n)`` over the batch, in float64.

    The residual of Higham, *Functions of Matrices* (SIAM 2008), sec. 7.6,
    computed with explicit products independently of how ``X`` was found.
    """
    x = np.asarray(x).astype(np.complex128 if np.iscomplexobj(x) else np.float64)
    n = x.shape[-1]
    r = np.linalg.matrix_power(x, p) @ a.astype(np.result_type(a.dtype, np.float64)) - np.eye(n)
    return float(np.max(_fro(r)) / math.sqrt(n))


# --------------------------------------------------------------------------- methods

Runner = Callable[[], Any]


@dataclass(frozen=True)
class Method:
    """One way of computing ``a^(-1/p)``, as one entry of :data:`METHODS`.

    Attributes
    ----------
    name : str
        Row label, unique.
    prepare : callable
        ``prepare(problem) -> runner``: does everything that is not part of
        the measured call (array conversion, ``jit``) and returns a
        zero-argument function that computes the root and returns it fully
        materialized (jax results are blocked on).
    counts : callable, optional
        ``counts(problem) -> (iterations, matrix_products)`` for methods
        that report them; either may be None.
    requires : tuple of str
        Modules that must be importable; the method is skipped otherwise.
    families : tuple of str
        Problem families the method accepts.
    jit : bool
        The runner calls a ``jax.jit``-compiled function: it must be called
        once before it is timed.
    skip : callable, optional
        ``skip(problem) -> reason or None``, for methods that accept only
        some problems of a family (``sqrtm``: ``p = 2^k``).
    """

    name: str
    prepare: Callable[[Problem], Runner]
    counts: Callable[[Problem], tuple[int | None, int | None]] | None = None
    requires: tuple[str, ...] = ()
    families: tuple[str, ...] = ("spd",)
    jit: bool = False
    skip: Callable[[Problem], str | None] | None = None

    def unavailable(self) -> str | None:
        """Why the method cannot run here, or None."""
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        return f"needs {', '.join(missing)}" if missing else None


def _rootsolve(**options: Any) -> Callable[[Problem], Runner]:
    def prepare(prob: Problem) -> Runner:
        import rootsolve

        return lambda: rootsolve.inv_root(prob.a, prob.p, **options)

    return prepare


def _rootsolve_counts(**options: Any) -> Callable[[Problem], tuple[int | None, int | None]]:
    def counts(prob: Problem) -> tuple[int | None, int | None]:
        import rootsolve

        _, info = rootsolve.inv_root(prob.a, prob.p, return_info=True, **options)
        return int(np.max(info.iterations)), int(np.max(info.gemms))

    return counts


def _jax() -> Any:
    """``jax`` with 64-bit floats enabled (float64 problems need them)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _jit_rootsolve(**options: Any) -> Callable[[Problem], Runner]:
    def prepare(prob: Problem) -> Runner:
        import rootsolve

        jax = _jax()
        a = jax.device_put(prob.a)
        f = jax.jit(lambda m: rootsolve.inv_root(m, prob.p, **options))
        return lambda: f(a).block_until_ready()

    return prepare


def _jit_rootsolve_counts(**options: Any) -> Callable[[Problem], tuple[int | None, int | None]]:
    def counts(prob: Problem) -> tuple[int | None, int | None]:
        import rootsolve

        jax = _jax()
        f = jax.jit(lambda m: rootsolve.inv_root(m, prob.p, return_info=True, **options)[1])
        info = f(jax.device_put(prob.a))
        return int(np.max(info.iterations)), int(np.max(info.gemms))

    return counts


def _numpy_eigh(prob: Problem) -> Runner:
    a, t = prob.a, -1.0 / prob.p
    return lambda: _eigh_power(a, t)


def _scipy_fmp(prob: Problem) -> Runner:
    from scipy.linalg import fractional_matrix_power

    mats = prob.a.reshape(-1, prob.n, prob.n)
    t, shape = -1.0 / prob.p, prob.a.shape
    return lambda: np.stack([fractional_matrix_power(m, t) for m in mats]).reshape(shape)


def _scipy_sqrtm(prob: Problem) -> Runner:
    """``inv(sqrtm(...sqrtm(a)))``: ``k`` square roots for ``p = 2^k`` (other p are skipped)."""
    from scipy.linalg import sqrtm

    k = prob.p.bit_length() - 1
    mats = prob.a.reshape(-1, prob.n, prob.n)

    def one(m: np.ndarray) -> np.ndarray:
        for _ in range(k):
            m = sqrtm(m)
        return np.linalg.inv(m)

    return lambda: np.stack([one(m) for m in mats]).reshape(prob.a.shape)


def _optax(prob: Problem) -> Runner:
    """``optax.matrix_inverse_pth_root`` under ``jit`` (``vmap`` over a batch).

    ``ridge_epsilon=0`` so that it roots the same matrix as every other
    method (its default adds ``1e-6 * lambda_max``, which for cond = 1e6
    doubles the smallest eigenvalue). Other arguments keep their defaults
    (100 iterations, tolerance 1e-6, HIGHEST matmul precision).
    """
    import optax

    jax = _jax()
    p = prob.p
    f = lambda m: optax.matrix_inverse_pth_root(m, p, ridge_epsilon=0.0)[0]
    for _ in range(prob.a.ndim - 2):
        f = jax.vmap(f)
    f = jax.jit(f)
    a = jax.device_put(prob.a)
    return lambda: f(a).block_until_ready()


#: Every method measured, in table order. Extend with one entry per method.
METHODS: list[Method] = [
    Method(
        "rootsolve eigh",
        _rootsolve(method="eigh"),
    ),
    *[
        Method(
            f"rootsolve newton {s}",
            _rootsolve(method="newton", scaling=s),
            _rootsolve_counts(method="newton", scaling=s),
        )
        for s in ("dynamic", "optimal", "frobenius")
    ],
    Method(
        "rootsolve eigh, jax jit", _jit_rootsolve(method="eigh"), requires=("jax",), jit=True
    ),
    Method(
        "rootsolve newton dynamic, jax jit",
        _jit_rootsolve(method="newton"),
        _jit_rootsolve_counts(method="newton"),
        requires=("jax",),
        jit=True,
    ),
    Method(BASELINE, _numpy_eigh),
    Method("scipy fractional_matrix_power", _scipy_fmp, families=("spd", "general")),
    *[
        Method(
            f"rootsolve {m}",
            _rootsolve(assume_a="gen", method=m),
            _rootsolve_counts(assume_a="gen", method=m),
            families=("general",),
        )
        for m in ("schur_newton", "schur_free")
    ],
    Method(
        "rootsolve schur_free, jax jit",
        _jit_rootsolve(assume_a="gen"),
        _jit_rootsolve_counts(assume_a="gen"),
        requires=("jax",),
        families=("general",),
        jit=True,
    ),
    Method(
        "scipy sqrtm (p = 2^k), inverted",
        _scipy_sqrtm,
        families=("general",),
        skip=lambda prob: None if prob.p & (prob.p - 1) == 0 else "p is not a power of 2",
    ),
    Method("optax matrix_inverse_pth_root, jit", _optax, requires=("jax", "optax"), jit=True),
]


def find_method(name: str) -> Method:
    """The entry of :data:`METHODS` called ``name``."""
    for m in METHODS:
        if m.name == name:
            return m
    raise ValueError(f"unknown method {name!r}; choose from {[m.name for m in METHODS]}")


# --------------------------------------------------------------------------- measuring


@dataclass
class Row:
    """One method's result on one problem (all plain JSON values)."""

    method: str
    time_s: float | None = None
    times_s: list[float] = field(default_factory=list)
    time_ratio: float | None = None
    rel_error: float | None = None
    residual: float | None = None
    iterations: int | None = None
    gemms: int | None = None
    status: str = "ok"


#: Stop repeating a method once its timed calls add up to this many seconds.
TIME_BUDGET_S = 2.0
#: Pause after a jax method. XLA's CPU worker threads keep spinning for a few
#: tens of milliseconds after a computation; a BLAS call made meanwhile
#: shares the cores with them and runs up to twice as slow on 2 cores.
SETTLE_S = 0.1


def time_runner(
    runner: Runner, repeats: int, budget_s: float = TIME_BUDGET_S
) -> tuple[list[float], Any]:
    """Wall times of up to ``repeats`` calls of ``runner``, and the last result.

    Calls stop early once they add up to ``budget_s`` seconds (at least one
    call is made): a call that long is timed well enough by few samples.
    """
    times, out = [], None
    while len(times) < repeats and sum(times) < budget_s:
        t0 = time.perf_counter()
        out = runner()
        times.append(time.perf_counter() - t0)
    return times, out


def measure(prob: Problem, method: Method, repeats: int) -> Row:
    """Time ``method`` on ``prob`` and check its answer; failures become the row's status.

    The time is the median of up to ``repeats`` calls (see :func:`time_runner`).
    ``jit`` functions are called once first, untimed, to compile them.
    """
    row = Row(method.name)
    try:
        runner = method.prepare(prob)
        if method.counts is not None:
            row.iterations, row.gemms = method.counts(prob)
        if method.jit:
            runner()
        times, x = time_runner(runner, repeats)
        x = np.asarray(x)
        row.times_s = times
        row.time_s = float(np.median(times))
        row.rel_error = relative_error(x, prob.reference)
        row.residual = inverse_root_residual(x, prob.a, prob.p)
    except Exception as exc:  # a failing peer is a result, not a crash
        row.status = f"error: {type(exc).__name__}: {exc}"
    return row


#: The method time ratios are taken against, per problem family.
BASELINES = {"spd": BASELINE, "general": "scipy fractional_matrix_power"}


def _add_ratios(rows: list[Row], baseline: str = BASELINE) -> None:
    base = next((r.time_s for r in rows if r.method == baseline and r.time_s), None)
    for r in rows:
        if base and r.time_s is not None:
            r.time_ratio = r.time_s / base


def problems_from(
    family: str,
    ns: Iterable[int],
    ps: Iterable[int],
    conds: Iterable[float],
    *,
    batch: int,
    dtype: str,
    seed: int,
) -> list[Problem]:
    """Every combination of size, order and condition number, in that nesting order."""
    build = FAMILIES[family]
    return [
        build(n, p, c, batch=batch, dtype=dtype, seed=seed) for n in ns for p in ps for c in conds
    ]


def run(
    problems: Sequence[Problem],
    methods: Sequence[Method],
    repeats: int,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure every applicable method on every problem.

    Returns one dict per problem: ``{"problem": ..., "rows": [...],
    "skipped": {method: reason}}``.
    """
    results = []
    for prob in problems:
        rows, skipped = [], {}
        for m in methods:
            reason = m.unavailable() or (
                None if prob.family in m.families else f"no {prob.family} support"
            ) or (m.skip(prob) if m.skip else None)
            if reason is None:
                if progress:
                    progress(f"n={prob.n} p={prob.p}: {m.name}")
                rows.append(measure(prob, m, repeats))
                if m.jit:
                    time.sleep(SETTLE_S)
            else:
                skipped[m.name] = reason
            if progress:
                progress("")
        _add_ratios(rows, BASELINES.get(prob.family, BASELINE))
        results.append(
            {"problem": prob.describe(), "rows": [asdict(r) for r in rows], "skipped": skipped}
        )
    return results


# --------------------------------------------------------------------------- output

_COLUMNS = ("method", "time", "x base", "rel. error", "residual", "iters", "GEMMs")


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "time":
        return f"{value * 1e3:.2f} ms" if value < 10 else f"{value:.1f} s"
    if kind == "ratio":
        return f"{value:.2f}"
    if kind == "sci":
        return f"{value:.1e}"
    return str(value)


def _cells(row: dict[str, Any]) -> list[str]:
    if row["status"] != "ok":
        return [row["method"], row["status"][:60], "", "", "", "", ""]
    return [
        row["method"],
        _fmt(row["time_s"], "time"),
        _fmt(row["time_ratio"], "ratio"),
        _fmt(row["rel_error"], "sci"),
        _fmt(row["residual"], "sci"),
        _fmt(row["iterations"], "int"),
        _fmt(row["gemms"], "int"),
    ]


def _title(problem: dict[str, Any]) -> str:
    batch = f", batch {problem['batch']}" if problem["batch"] else ""
    return (
        f"{problem['family'].upper()} n={problem['n']}, p={problem['p']}, "
        f"cond={problem['cond']:.0e}, {problem['dtype']}{batch}: a^(-1/{problem['p']})"
    )


def _shown_skips(res: dict[str, Any]) -> dict[str, str]:
    """Skips worth printing: not the methods made for another problem family."""
    family = res["problem"]["family"]
    return {k: v for k, v in res["skipped"].items() if v != f"no {family} support"}


def render_plain(results: list[dict[str, Any]], out: Any = None) -> None:
    """Print the tables as aligned plain text."""
    out = out or sys.stdout
    for res in results:
        table = [list(_COLUMNS)] + [_cells(r) for r in res["rows"]]
        widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
        print(_title(res["problem"]), file=out)
        for line in table:
            cells = (c.ljust(w) for c, w in zip(line, widths, strict=True))
            print("  ".join(cells).rstrip(), file=out)
        for name, why in _shown_skips(res).items():
            print(f"  (skipped {name}: {why})", file=out)
        print(file=out)


def render_rich(results: list[dict[str, Any]], console: Any) -> None:
    """Print the tables with ``rich``."""
    from rich.table import Table

    for res in results:
        table = Table(title=_title(res["problem"]), title_justify="left")
        for i, col in enumerate(_COLUMNS):
            table.add_column(col, justify="left" if i == 0 else "right", no_wrap=True)
        for r in res["rows"]:
            style = "bold" if r["method"].startswith("rootsolve") else None
            table.add_row(*_cells(r), style=style)
        skipped = "; ".join(f"{k}: {v}" for k, v in _shown_skips(res).items())
        if skipped:
            table.caption = f"skipped: {skipped}"
        console.print(table)
    console.print(
        "time: median wall time of up to --repeats calls, fewer past 2 s (jit compilation "
        f"excluded); x base: time / {BASELINE} (general matrices: / {BASELINES['general']}); "
        "rel. error: ||X - X_ref||_F / ||X_ref||_F against a float64 reference from the "
        "known eigendecomposition; residual: ||X^p A - I||_F / sqrt(n)."
    )


def environment() -> dict[str, Any]:
    """Versions and machine, recorded with every JSON report."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    for mod in ("numpy", "scipy", "rootsolve", "jax", "optax"):
        if importlib.util.find_spec(mod) is not None:
            info[mod] = getattr(__import__(mod), "__version__", "?")
    return info


# --------------------------------------------------------------------------- command line


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def _condition(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 1):
        raise argparse.ArgumentTypeError(f"condition number must be >= 1, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m rootsolve compare``."""
    parser.add_argument(
        "--n", type=_positive_int, nargs="+", help="matrix size(s) (default 64 256 512)"
    )
    parser.add_argument("--p", type=_positive_int, nargs="+", help="root order(s) (default 2 3 4)")
    parser.add_argument(
        "--cond",
        type=_condition,
        nargs="+",
        help="condition number(s) (default 1e6; 1e3 with --dtype float32)",
    )
    parser.add_argument(
        "--batch", type=int, default=0, help="number of matrices per problem (0: one, unbatched)"
    )
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument(
        "--repeats",
        type=_positive_int,
        default=3,
        help="timed calls per method (fewer once they take 2 s in all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the test matrices")
    parser.add_argument(
        "--methods",
        help="comma-separated substrings; only methods whose name contains one of them run",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report instead")
    parser.add_argument(
        "--general",
        action="store_true",
        help="also compare on general (nonsymmetric) matrices, real and complex, with scipy's "
        "fractional_matrix_power and sqrtm as peers; --cond is then the spread of the "
        "eigenvalue moduli",
    )


def _select(pattern: str | None) -> list[Method]:
    if not pattern:
        return list(METHODS)
    keys = [k.strip() for k in pattern.split(",") if k.strip()]
    chosen = [m for m in METHODS if any(k in m.name for k in keys)]
    if not chosen:
        raise SystemExit(f"--methods {pattern!r} matches none of {[m.name for m in METHODS]}")
    return chosen


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[str], None] | None]:
    """Yield a ``progress(description)`` callback drawing a rich bar on stderr, or None.

    ``progress("text")`` names the step under way, ``progress("")`` ends it.
    """
    bar = None
    if enabled:
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )
        except ImportError:
            pass
        else:
            bar = Progress(
                TextColumn("{task.description:<48}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
    if bar is None:
        yield None
        return
    with bar:
        task = bar.add_task("compare", total=total)

        def step(desc: str) -> None:
            if desc:
                bar.update(task, description=desc)
            else:
                bar.advance(task)

        yield step


def main(args: argparse.Namespace) -> int:
    """Run ``python -m rootsolve compare`` with parsed ``args``."""
    if args.batch < 0:
        raise SystemExit(f"--batch must be >= 0, got {args.batch}")
    custom = args.n or args.p or args.cond
    problems = problems_from(
        "spd",
        args.n or DEFAULT_N,
        args.p or DEFAULT_P,
        args.cond or DEFAULT_COND[args.dtype],
        batch=args.batch,
        dtype=args.dtype,
        seed=args.seed,
    )
    if getattr(args, "general", False):
        complex_dtype = "complex128" if args.dtype == "float64" else "complex64"
        for dt in (args.dtype, complex_dtype):
            problems += problems_from(
                "general",
                args.n or DEFAULT_N,
                args.p or DEFAULT_P,
                args.cond or DEFAULT_COND[args.dtype],
                batch=args.batch,
                dtype=dt,
                seed=args.seed,
            )
    methods = _select(args.methods)
    show = not args.json and sys.stderr.isatty()
    with _progress(len(problems) * len(methods), show) as progress:
        results = run(problems, methods, args.repeats, progress)
    if args.json:
        report = {"environment": environment(), "repeats": args.repeats, "results": results}
        json.dump(report, sys.stdout, indent=1)
        print()
        return 0
    try:
        from rich.console import Console
    except ImportError:
        render_plain(results)
    else:
        console = Console()
        render_rich(results, console if console.is_terminal else Console(width=120))
    if not custom:
        print("(default problem set; see --help for --n, --p, --cond, --batch, --dtype)")
    return 0
