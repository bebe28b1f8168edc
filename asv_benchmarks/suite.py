"""``make bench`` and ``make dashboard``: run the asv suite, save the results, publish them.

``python -m asv_benchmarks.suite bench`` is the smoke test: every benchmark of
every ``benchmarks_*.py`` module on its small grid (``ROOTSOLVE_BENCH=smoke``,
see :mod:`asv_benchmarks.smoke`), one timed call each (``asv run --quick``),
results saved under the current commit (``--set-commit-hash``), then a list
of what ran and what failed.

``python -m asv_benchmarks.suite dashboard --commits N`` runs the suite for
the last ``N`` commits of the current branch (first parents) and builds the
asv dashboard (``asv publish``) in ``.asv/html``. Every commit runs in the
interpreter at hand (``asv run --python=same``), which needs no network: the
commit's sources are checked out in a git worktree under ``.asv/worktrees``
and put first on the benchmark processes' path (``ASV_PYTHONPATH``; asv drops
``PYTHONPATH``), and the results are filed under that commit
(``--set-commit-hash``). As asv does for every commit it measures, the
benchmarks are those of the current checkout; a commit whose library lacks
something they need shows those benchmarks as failed. The page loads its data
with JavaScript, so it is served, not opened as a file: ``asv preview``; asv's
page takes jQuery, flot and Bootstrap from public CDNs, and ``--offline`` serves
them from the dashboard's own folder instead (:mod:`asv_benchmarks.offline`).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .offline import localize
from .smoke import ENV, MODES

ROOT = Path(__file__).resolve().parents[1]
MACHINE = "local"


def _asv() -> list[str]:
    """The ``asv`` of the interpreter at hand (its virtual environment's script), or ``-m asv``."""
    script = Path(sys.executable).with_name("asv")
    return [str(script)] if script.exists() else [sys.executable, "-m", "asv"]


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def _conf(config: Path) -> dict[str, Any]:
    """The asv configuration (plain JSON here; asv also allows comments, which we do not use)."""
    return json.loads(config.read_text())


def _results_dir(config: Path) -> Path:
    return (config.parent / _conf(config)["results_dir"]).resolve()


def run_commit(
    commit: str,
    *,
    config: Path,
    mode: str,
    quick: bool,
    bench: Sequence[str] = (),
    src: Path | None = None,
    skip_existing: bool = False,
) -> int:
    """``asv run --python=same`` for ``commit`` with the library from ``src``; asv's exit code.

    ``src`` is the ``src`` folder of a checkout of ``commit`` (this checkout's by default).
    ``skip_existing`` keeps the results already saved for ``commit`` and runs only the
    benchmarks that have none (or failed).
    """
    src = src or ROOT / "src"
    env = {**os.environ, ENV: mode, "ASV_PYTHONPATH": str(src)}
    cmd = [
        *_asv(), "run", "--python=same", "--machine", MACHINE, "--config", str(config),
        "--set-commit-hash", commit, "--show-stderr", "--durations", "5",
    ]
    cmd += ["--quick"] if quick else []
    cmd += ["--skip-existing-successful"] if skip_existing else []
    for regex in bench:
        cmd += ["--bench", regex]
    print("$ " + " ".join(cmd), f"  ({ENV}={mode}, ASV_PYTHONPATH={src})", flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def summary(results_dir: Path, commit: str) -> tuple[list[str], int]:
    """Lines saying what ran for ``commit`` (one per benchmark), and how many results failed.

    asv stores ``None`` for a failed parameter combination and ``NaN`` for one
    the benchmark skipped (``NotImplementedError``, shown as n/a).
    """
    lines, failed = [], 0
    for path in sorted(results_dir.glob(f"*/{commit[:8]}-*.json")):
        data = json.loads(path.read_text())
        columns = data.get("result_columns", ["result"])
        for name, row in sorted(data.get("results", {}).items()):
            values = dict(zip(columns, row, strict=False)).get("result")
            values = values if isinstance(values, list) else [values]
            bad = sum(v is None for v in values)
            na = sum(isinstance(v, float) and math.isnan(v) for v in values)
            failed += bad
            ok = len(values) - bad - na
            lines.append(f"  {name}: {ok} ok, {na} n/a, {bad} failed")
    return lines, failed


def _machine() -> None:
    subprocess.run(
        [*_asv(), "machine", "--yes", "--machine", MACHINE], cwd=ROOT, check=True,
        stdout=subprocess.DEVNULL,
    )


def bench(args: argparse.Namespace) -> int:
    """The smoke test: the whole suite on its small grid, once, saved for the current commit."""
    config = Path(args.config).resolve()
    _machine()
    commit = _git("rev-parse", "HEAD")
    start = time.perf_counter()
    code = run_commit(commit, config=config, mode=args.mode, quick=True, bench=args.bench)
    elapsed = time.perf_counter() - start
    lines, failed = summary(_results_dir(config), commit)
    print(f"\nbench: {len(lines)} benchmarks ({ENV}={args.mode}, asv run --quick) "
          f"for commit {commit[:8]} in {elapsed / 60:.1f} min:")
    print("\n".join(lines))
    print(f"results saved in {_results_dir(config)}; `make dashboard` publishes them")
    return code or (2 if failed or not lines else 0)


def commits(count: int) -> list[str]:
    """The last ``count`` commits of the current branch, oldest first (first parents)."""
    if count < 1:
        raise SystemExit(f"--commits must be >= 1, got {count}")
    out = _git("rev-list", "--first-parent", f"--max-count={count}", "HEAD")
    return out.split()[::-1]


def dashboard(args: argparse.Namespace) -> int:
    """Run the suite for the last ``--commits`` commits, then ``asv publish``."""
    config = Path(args.config).resolve()
    _machine()
    head = _git("rev-parse", "HEAD")
    trees = ROOT / ".asv" / "worktrees"
    codes = {}
    # with --quick, the results make bench saved are what this would measure: keep them
    run = functools.partial(
        run_commit, config=config, mode=args.mode, quick=args.quick, bench=args.bench,
        skip_existing=args.quick,
    )
    for commit in commits(args.commits):
        if commit == head:
            codes[commit] = run(commit)
            continue
        tree = trees / commit[:12]
        if tree.exists():
            _git("worktree", "remove", "--force", str(tree))
        _git("worktree", "add", "--detach", str(tree), commit)
        try:
            codes[commit] = run(commit, src=tree / "src")
        finally:
            _git("worktree", "remove", "--force", str(tree))
    if trees.exists() and not any(trees.iterdir()):
        shutil.rmtree(trees)
    subprocess.run([*_asv(), "publish", "--config", str(config)], cwd=ROOT, check=True)
    html = (config.parent / _conf(config)["html_dir"]).resolve()
    if args.offline:
        done = localize(html, ROOT / ".asv" / "npm-cache")
        print(f"dashboard: {len(done)} scripts and stylesheets served from {html / 'vendor'}")
    status = 0
    for commit, code in codes.items():
        lines, failed = summary(_results_dir(config), commit)
        state = "ok" if not code and not failed else f"{failed} results failed"
        print(f"commit {commit[:8]}: {len(lines)} benchmarks, {state}")
        status = status or (0 if lines else 2)  # failures are shown; nothing run is an error
    print(
        f"\ndashboard: {html}/index.html\n"
        "open it with\n"
        f"    {' '.join(_asv())} preview --config {config}\n"
        "and browse to the address it prints (http://127.0.0.1:8080/ when that port is free);\n"
        "the page loads its data with JavaScript, which browsers refuse for a file:// address"
    )
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asv_benchmarks.suite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=str(ROOT / "asv.conf.json"), help="asv config file")
    common.add_argument(
        "--mode", choices=MODES, default="smoke",
        help=f"parameter grids ({ENV}): smoke (small, default) or full",
    )
    common.add_argument(
        "--bench", action="append", default=[],
        help="regex of benchmark names to run (asv run --bench; repeatable); default all",
    )
    b = sub.add_parser("bench", parents=[common], help="the smoke test (make bench)")
    b.set_defaults(func=bench)
    d = sub.add_parser("dashboard", parents=[common], help="run and publish (make dashboard)")
    d.add_argument("--commits", type=int, default=1, help="last N commits to run (default 1)")
    d.add_argument(
        "--no-quick", dest="quick", action="store_false",
        help="asv's full sampling (repeats, two processes) instead of one timed call each",
    )
    d.add_argument(
        "--offline", action="store_true",
        help="serve the page's scripts from .asv/html/vendor (fetched with npm pack) "
        "instead of public CDNs",
    )
    d.set_defaults(func=dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
