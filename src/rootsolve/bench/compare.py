"""Side-by-side comparison of rootsolve with the tools users would otherwise use.

``python -m rootsolve compare`` builds test problems with a chosen condition
number and measures, in one run, every method in
:data:`~rootsolve.bench.methods.METHODS` on each: time (median, and the
spread from the fastest to the slowest of up to ``--repeats`` calls, ``jit``
compilation excluded), relative error against an independent float64
reference, the residual ``||X^p A - I||_F / sqrt(n)``, iterations and matrix
products where the method reports them.

The pieces are kept small so that they can be extended one at a time:

* a *problem family* is one function ``(n, p, cond, batch, dtype, seed) ->
  Problem`` registered in :data:`rootsolve.testing.FAMILIES` (``"spd"``, and
  ``"general"`` for nonsymmetric matrices, added by ``--general``);
* a *method* is one entry of :data:`~rootsolve.bench.methods.METHODS`.

The same problems and methods drive the asv benchmarks in ``asv_benchmarks/``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..testing.problems import problems_from
from .methods import BASELINE, BASELINES, select
from .runner import environment, load_warning, run

__all__ = [
    "DEFAULT_N",
    "DEFAULT_P",
    "DEFAULT_COND",
    "DEFAULT_RUN",
    "render_plain",
    "render_rich",
    "add_arguments",
    "main",
]

#: Problem set run when no size, order or condition number is given.
DEFAULT_N = (64, 256, 512)
DEFAULT_P = (2, 3, 4)
#: Default condition number per dtype. rootsolve treats an eigenvalue within
#: ``n eps ||A||`` of zero as zero, so float32 input with cond near ``1/(n eps32)``
#: (about 1.3e5 at n = 64) counts as singular.
DEFAULT_COND = {"float64": (1e6,), "float32": (1e3,)}
#: How long the default problem set takes, as measured (said before it starts).
DEFAULT_RUN = "about 4-5 minutes on a 2-core CPU"


# --------------------------------------------------------------------------- output

_COLUMNS = ("method", "time", "min / max", "x base", "rel. error", "residual", "iters", "GEMMs")


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
        return [row["method"], row["status"][:60], "", "", "", "", "", ""]
    return [
        row["method"],
        _fmt(row["time_s"], "time"),
        _spread(row["times_s"]),
        _fmt(row["time_ratio"], "ratio"),
        _fmt(row["rel_error"], "sci"),
        _fmt(row["residual"], "sci"),
        _fmt(row["iterations"], "int"),
        _fmt(row["gemms"], "int"),
    ]


def _spread(times: list[float]) -> str:
    """``min / max`` of the timed calls, in the unit of the slower one."""
    if not times:
        return "-"
    lo, hi = min(times), max(times)
    if hi < 10:
        return f"{lo * 1e3:.2f} / {hi * 1e3:.2f} ms"
    return f"{lo:.1f} / {hi:.1f} s"


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
        "excluded); min / max: the fastest and the slowest of those calls; "
        f"x base: time / {BASELINE} (general matrices: / {BASELINES['general']}); "
        "rel. error: ||X - X_ref||_F / ||X_ref||_F against a float64 reference from the "
        "known eigendecomposition; residual: ||X^p A - I||_F / sqrt(n)."
    )


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
    methods = select(args.methods)
    env = environment()  # before measuring: the load average is then other processes' load
    _announce(len(problems), len(methods), custom, env)
    show = not args.json and sys.stderr.isatty()
    start = time.perf_counter()
    with _progress(len(problems) * len(methods), show) as progress:
        results = run(problems, methods, args.repeats, progress)
    elapsed = time.perf_counter() - start
    if args.json:
        report = {
            "environment": env,
            "repeats": args.repeats,
            "elapsed_s": elapsed,
            "results": results,
        }
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
    print(f"({_count(len(problems), 'problem')} x {_count(len(methods), 'method')} "
          f"in {_duration(elapsed)})")
    warning = load_warning(env)
    if warning:
        print(warning)
    return 0


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("" if k == 1 else "s")


def _duration(seconds: float) -> str:
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes} min {sec} s" if minutes else f"{seconds:.1f} s"


def _announce(problems: int, methods: int, custom: Any, env: dict[str, Any]) -> None:
    """Say on stderr what is about to run, how long the default set takes, and the load."""
    what = f"{_count(problems, 'problem')} x {_count(methods, 'method')}"
    if custom:
        print(f"compare: {what}", file=sys.stderr)
    else:
        print(
            f"compare: the default problem set, {what}, takes {DEFAULT_RUN} "
            "(--n, --p, --cond choose a smaller one)",
            file=sys.stderr,
        )
    warning = load_warning(env)
    if warning:
        print(warning, file=sys.stderr)
