"""Shampoo's compile time against AdamW's on the demo's tasks, measured in one run.

``python -m asv_benchmarks.compile_goals [--tasks lm cnn] [--repeats R] [--steps S] [--ir]``
(from the repository root) compiles the jitted training step of each task of
:mod:`rootsolve_optim.demo.tasks` (loss, gradient, optimizer update, apply) with
``optax.adamw`` and with :func:`rootsolve_optim.shampoo` at its default options, as the
demo's race builds them (``jax_enable_x64`` on, so Shampoo's roots are float64). Each
compilation runs in a fresh process with the persistent compilation cache off and is
timed around ``jax.jit(step).lower(...).compile()``; the two optimizers alternate,
``--repeats`` times each, and the goal is the median of the per-pair ratios:

1. Shampoo's compile seconds / AdamW's, per task: at most 3.

It also prints the number of StableHLO operations of each lowered step (and of its
``case`` operations, the ``lax.cond``/``lax.switch`` it holds), the number of fusions
(kernels) of the compiled step, with ``--ir`` the megabytes of optimized LLVM IR XLA
generated for them (dumped with ``--xla_dump_to``, which slows the timed compilation; a
measure of the code generation that compile time follows and that, unlike seconds, does
not depend on the load) and, with ``--steps``,
the milliseconds of one compiled step of each, timed in alternation in one process
(Shampoo's roots refreshed every 10 steps, as by default, so the refresh is amortized
over the 10 steps of a timed call). Exit status 1 when a goal fails.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter

import numpy as np

COMPILE_GOAL = 3.0
KINDS = ("adamw", "shampoo")


def _setup(task_name: str, kind: str):
    """The task, its parameters, the optimizer's state and the jitted step."""
    import jax
    import optax

    import rootsolve_optim
    from rootsolve_optim.demo import tasks

    jax.config.update("jax_enable_x64", True)  # as the demo: float64 roots, float32 models
    jax.config.update("jax_enable_compilation_cache", False)
    task = tasks.TASKS[task_name]()
    params = task.init(jax.random.PRNGKey(0))
    if kind == "adamw":
        opt = optax.adamw(1e-3, weight_decay=0.01)
    else:
        opt = rootsolve_optim.shampoo(1e-3, weight_decay=0.01)

    def step(params, state, key):
        grads = jax.grad(task.loss)(params, task.batch(key))
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return params, opt.init(params), jax.jit(step)


def measure_compile(task_name: str, kind: str) -> dict:
    """Seconds to compile the step (this process must not have compiled it before), and the
    lowered step's StableHLO operation counts."""
    import jax

    params, state, step = _setup(task_name, kind)
    lowered = step.lower(params, state, jax.random.PRNGKey(1))
    t0 = time.perf_counter()
    compiled = lowered.compile()
    seconds = time.perf_counter() - t0
    ops = Counter(re.findall(r"\bstablehlo\.([a-z_]+)", lowered.as_text()))
    fusions = len(re.findall(r"= \S+ fusion\(", compiled.as_text()))
    return {
        "seconds": seconds, "ops": sum(ops.values()), "case": ops.get("case", 0),
        "fusions": fusions,
    }


def compile_in_fresh_process(task_name: str, kind: str, ir: bool = False) -> dict:
    """:func:`measure_compile` in a new interpreter, so that nothing is cached; with ``ir``
    also the megabytes of optimized LLVM IR of the step's kernels (``ir_mb``)."""
    code = (
        "import json; from asv_benchmarks.compile_goals import measure_compile; "
        f"print(json.dumps(measure_compile({task_name!r}, {kind!r})))"
    )
    with tempfile.TemporaryDirectory() as dump:
        env = dict(os.environ)
        if ir:
            env["XLA_FLAGS"] = (
                f"{env.get('XLA_FLAGS', '')} --xla_dump_to={dump} "
                "--xla_dump_hlo_module_re=jit_step"
            ).strip()
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        ).stdout
        res = json.loads(out.strip().splitlines()[-1])
        files = glob.glob(os.path.join(dump, "*jit_step*ir-with-opt.ll"))
        res["ir_mb"] = sum(os.path.getsize(f) for f in files) / 1e6 if ir else None
    return res


def step_ms(task_name: str, repeats: int, steps: int = 10) -> dict[str, float]:
    """Median milliseconds per step of each optimizer, ``steps`` steps per timed call, the
    two optimizers alternating call by call in this process."""
    import jax

    from asv_benchmarks.goals import paired_times

    runs = {}
    for kind in KINDS:
        params, state, step = _setup(task_name, kind)
        keys = jax.random.split(jax.random.PRNGKey(1), steps)
        carry = {"p": params, "s": state}

        def run(step=step, keys=keys, carry=carry):
            p, s = carry["p"], carry["s"]
            for k in keys:
                p, s = step(p, s, k)
            carry["p"], carry["s"] = jax.block_until_ready((p, s))

        runs[kind] = run
    t = paired_times(runs["shampoo"], runs["adamw"], repeats)
    return {"shampoo": 1e3 * t["f"] / steps, "adamw": 1e3 * t["g"] / steps, "ratio": t["ratio"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from rootsolve_optim.demo.tasks import TASKS

    ap.add_argument("--tasks", nargs="+", default=["cnn", "lm"], choices=sorted(TASKS))
    ap.add_argument("--repeats", type=int, default=3, help="compilations of each optimizer")
    ap.add_argument("--steps", type=int, default=0, help="also time steps: timed calls each")
    ap.add_argument("--ir", action="store_true", help="also measure the optimized LLVM IR")
    args = ap.parse_args(argv)
    ok = True
    for task_name in args.tasks:
        res: dict[str, list[dict]] = {k: [] for k in KINDS}
        for _ in range(args.repeats):
            for kind in KINDS:
                res[kind].append(compile_in_fresh_process(task_name, kind, args.ir))
        secs = {k: [r["seconds"] for r in res[k]] for k in KINDS}
        ratio = float(np.median(np.asarray(secs["shampoo"]) / np.asarray(secs["adamw"])))
        passed = ratio <= COMPILE_GOAL
        ok &= passed
        for kind in KINDS:
            r = res[kind][0]
            print(
                f"{task_name:>4} {kind:>8}: compile {np.median(secs[kind]):6.2f} s "
                f"(runs {', '.join(f'{s:.2f}' for s in secs[kind])}), "
                f"{r['ops']} StableHLO ops, {r['case']} case, {r['fusions']} fusions"
                + (f", {r['ir_mb']:.2f} MB IR" if args.ir else "")
            )
        print(
            f"{task_name:>4} Shampoo / AdamW compile seconds: {ratio:.2f} "
            f"(goal <= {COMPILE_GOAL:g}) {'PASS' if passed else 'FAIL'}"
        )
        if args.steps:
            t = step_ms(task_name, args.steps)
            print(
                f"{task_name:>4} step: Shampoo {t['shampoo']:.2f} ms, AdamW {t['adamw']:.2f} ms, "
                f"ratio {t['ratio']:.2f}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
