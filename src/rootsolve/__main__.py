"""Command line: ``python -m rootsolve compare [options]``.

The comparison machinery (:mod:`rootsolve.bench`) is loaded here, not by ``import rootsolve``.
"""

from __future__ import annotations

import argparse
import sys

from .bench import compare


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m rootsolve`` parser with one sub-command per tool."""
    parser = argparse.ArgumentParser(prog="python -m rootsolve", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser(
        "compare",
        help="time and check rootsolve against numpy, scipy and optax on test matrices",
        description=compare.__doc__.split("\n\n")[0] if compare.__doc__ else None,
    )
    compare.add_arguments(cmp)
    cmp.set_defaults(func=compare.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
