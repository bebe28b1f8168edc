"""The training race's goals, measured in one run.

``python -m asv_benchmarks.training_goals [demo options]`` (from the repository root)
sweeps every optimizer's learning-rate grid on the character-level transformer of
:mod:`rootsolve_optim.demo` (full-length runs, the lowest mean best validation loss
wins), on two seeds unless ``--seeds`` says otherwise, and prints, with PASS or FAIL:

1. Shampoo's steps to AdamW's best validation loss / AdamW's: at most 0.6.
2. Shampoo's training seconds to AdamW's best validation loss / AdamW's: at most 0.8.
3. Shampoo's steps to AdamW's best validation loss / Muon's: at most 1.

Values are means of the per-seed ratios. It is ``python -m rootsolve_optim.demo --goals
--seeds 2``; every option of the demo applies (``--task cnn`` for the CNN).
Exit status 1 when a goal fails.
"""

from __future__ import annotations

import sys

from rootsolve_optim.demo.__main__ import main as demo_main
from rootsolve_optim.demo.race import goals


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--seeds" or a.startswith("--seeds=") for a in argv):
        argv += ["--seeds", "2"]
    results = demo_main(["--goals", "--sample-chars", "0", *argv])
    return 0 if all(g.passed for g in goals(results)) else 1


if __name__ == "__main__":
    sys.exit(main())
