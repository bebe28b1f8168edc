"""Shampoo's or SOAP's options, one at a time, on the race's tasks.

``python -m rootsolve_optim.demo.ablations [--optimizer shampoo|soap] [--task lm]
[--steps 400] [--groups beta2 ...]`` first sweeps AdamW, Muon and the ablated optimizer
at its defaults (every rate of each grid, two seeds), then, for each variant of its
table (:data:`VARIANTS` for Shampoo, :data:`SOAP_VARIANTS` for SOAP; one option
changed), re-sweeps its learning rate on three rates around the default's winner with
the first seed and reruns the winner with the second. Each line of the printed table is the
variant's best validation loss and its steps and seconds to AdamW's best validation
loss over AdamW's, per seed. ``--out FILE`` appends every run as a JSON line,
``--baseline FILE`` takes the baseline sweep from such a file instead of rerunning it,
``--lean`` runs each variant at the default's winning rate only (both seeds) and
``--variants LABEL ...`` only the variants of the groups with those labels. Step
times here come from runs that share the machine, so compare steps, not seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import race
from .tasks import TASKS

#: Variants by group: (label, Shampoo options). The defaults are the group's reference;
#: "beta2=0.999, start_preconditioning_step=10" are the defaults before the ablations.
VARIANTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "beta2": [(f"beta2={b}", {"beta2": b}) for b in (0.99, 0.999)],
    "refresh": [
        ("preconditioning_compute_steps=3", {"preconditioning_compute_steps": 3}),
        ("preconditioning_compute_steps=30", {"preconditioning_compute_steps": 30}),
    ],
    "graft": [
        ("graft_type=adam", {"graft_type": "adam"}),
        ("graft_type=rmsprop", {"graft_type": "rmsprop"}),
        ("graft_type=sgd", {"graft_type": "sgd"}),
    ],
    "block": [("block_size=64", {"block_size": 64}), ("block_size=128", {"block_size": 128})],
    "ridge": [("rel_ridge=1e-4", {"rel_ridge": 1e-4}), ("rel_ridge=1e-8", {"rel_ridge": 1e-8})],
    "momentum": [
        ("nesterov=False", {"nesterov": False}),
        ("beta1=0.95", {"beta1": 0.95}),
        ("beta1=0.8", {"beta1": 0.8}),
    ],
    "start": [
        (f"start_preconditioning_step={k}", {"start_preconditioning_step": k})
        for k in (2, 5, 10, 50)
    ],
    "combined": [
        (
            f"beta2={b}, start_preconditioning_step={k}",
            {"beta2": b, "start_preconditioning_step": k},
        )
        for b, k in ((0.999, 10), (0.99, 10), (0.99, 2))
    ],
}
#: SOAP's variants by group: (label, SOAP options), as :data:`VARIANTS`.
SOAP_VARIANTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "frequency": [
        (f"precondition_frequency={k}", {"precondition_frequency": k}) for k in (1, 3, 5, 30)
    ],
    "shampoo_beta": [(f"shampoo_beta={b}", {"shampoo_beta": b}) for b in (0.99, 0.9)],
    "beta2": [("beta2=0.99", {"beta2": 0.99})],
    "beta1": [("beta1=0.95", {"beta1": 0.95})],
    "eps": [(f"eps={e:g}", {"eps": e}) for e in (1e-6, 1e-12)],
    "bias": [("bias_correction=False", {"bias_correction": False})],
    "block": [
        ("block_size=32", {"block_size": 32}),
        ("merge_small_dims=True", {"merge_small_dims": True}),
    ],
    "combined": [
        (
            f"precondition_frequency={k}, shampoo_beta={b}",
            {"precondition_frequency": k, "shampoo_beta": b},
        )
        for k, b in ((3, 0.99), (5, 0.99))
    ],
}
#: Per ``--optimizer``: its name in the race, its variants and its contender factory.
OPTIMIZERS = {
    "shampoo": ("Shampoo", VARIANTS, race.shampoo_contender),
    "soap": ("SOAP", SOAP_VARIANTS, race.soap_contender),
}
#: The contenders of the baseline sweep besides the ablated one (the race's others do not
#: enter the table).
BASELINE = ("AdamW", "Muon")
#: Learning-rate grids that differ from "around the default's winner" (different scale).
GRIDS = {"graft_type=sgd": (0.01, 0.1, 1.0)}


def _row(label: str, hists: Sequence[race.History], targets: dict[int, tuple[float, float]]):
    """Best loss and per-seed ratios against AdamW's (steps, seconds) to its best."""
    out = {"variant": label, "lr": hists[0].lr, "best": [], "steps": [], "seconds": []}
    for h in hists:
        out["best"].append(h.best)
        target, (a_steps, a_secs) = targets[h.seed][0], targets[h.seed][1]
        reach = h.reach(target)
        out["steps"].append(math.inf if reach is None else reach[0] / a_steps)
        out["seconds"].append(math.inf if reach is None else reach[1] / a_secs)
    out["ms_per_step"] = float(np.mean([h.ms_per_step for h in hists]))
    return out


def _log(path: Path | None, kind: str, label: str, h: race.History) -> None:
    if path is None:
        return
    rec = {
        "kind": kind,
        "variant": label,
        "lr": h.lr,
        "seed": h.seed,
        "steps": h.steps,
        "val_loss": h.val_loss,
        "seconds": h.seconds,
        "compile_seconds": h.compile_seconds,
        "root_failures": h.root_failures,
    }
    with path.open("a") as fh:
        fh.write(json.dumps(rec) + "\n")


def _read_baseline(path: Path, seeds: Sequence[int], baseline: Sequence[str]):
    """The baseline sweep's results and runs, from the JSON lines of an earlier ``--out``."""
    runs: dict[str, dict[float, list[race.History]]] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec["kind"] != "baseline" or rec["seed"] not in seeds:
            continue
        h = race.History(rec["variant"], rec["lr"], rec["seed"], rec["steps"], rec["val_loss"])
        h.seconds = rec["seconds"]
        runs.setdefault(h.name, {}).setdefault(h.lr, []).append(h)
    if not set(baseline) <= set(runs):
        raise ValueError(f"{path} holds baseline runs of {sorted(runs)}, not of {list(baseline)}")
    runs = {name: runs[name] for name in baseline}
    best = {
        name: min(by_lr.values(), key=lambda hs: float(np.mean([h.best for h in hs])))
        for name, by_lr in runs.items()
    }
    results = [
        race.Result(s, {n: next(h for h in hs if h.seed == s) for n, hs in best.items()})
        for s in seeds
    ]
    return results, runs


def _fmt(xs: Sequence[float], digits: int = 2) -> str:
    return " / ".join("never" if not math.isfinite(x) else f"{x:.{digits}f}" for x in xs)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rootsolve_optim.demo.ablations")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="shampoo")
    p.add_argument("--task", choices=sorted(TASKS), default="lm")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=None, help="default: the task's")
    p.add_argument("--seeds", type=int, nargs=2, default=[0, 1])
    p.add_argument(
        "--groups", nargs="+", default=None, help="groups of its variants (default: all)"
    )
    p.add_argument(
        "--variants", nargs="+", default=None, help="only these labels of the groups' variants"
    )
    p.add_argument(
        "--lean", action="store_true", help="no re-sweep: each variant at the default's winner"
    )
    p.add_argument("--out", type=Path, default=None, help="append every run as a JSON line")
    p.add_argument(
        "--baseline", type=Path, default=None, help="take the baseline sweep from an --out file"
    )
    args = p.parse_args(argv)
    name, variants, contender = OPTIMIZERS[args.optimizer]
    groups = list(variants) if args.groups is None else args.groups
    if not set(groups) <= set(variants):
        p.error(f"--groups of {args.optimizer} are {sorted(variants)}, got {groups}")
    baseline = (*BASELINE, name)
    import jax

    from .__main__ import blas_limit

    jax.config.update("jax_enable_x64", True)
    with blas_limit(print):
        options = {} if args.batch_size is None else {"batch_size": args.batch_size}
        task = TASKS[args.task](**options)
        cfg = race.RaceConfig(args.steps, args.eval_every)
        print(task.description, f"; {args.steps} steps, seeds {args.seeds}", flush=True)
        base = [race.CONTENDERS[n] for n in baseline]
        t0 = time.perf_counter()
        if args.baseline is None:
            results, runs = race.sweep(task, base, cfg, args.seeds)
            for by_lr in runs.values():
                for hs in by_lr.values():
                    for h in hs:
                        _log(args.out, "baseline", h.name, h)
        else:
            results, runs = _read_baseline(args.baseline, args.seeds, baseline)
        for name, by_lr in runs.items():
            for lr, hs in by_lr.items():
                print(f"{name} lr {lr:g}: best {_fmt([h.best for h in hs], 4)}", flush=True)
        targets = {r.seed: (r.target, r.reach("AdamW")) for r in results}
        rows = [_row(n, [r.histories[n] for r in results], targets) for n in baseline]
        for row in rows:
            print(json.dumps(row), flush=True)
        default_lr = results[0].histories[name].lr
        for group in groups:
            for label, options in variants[group]:
                if args.variants is not None and label not in args.variants:
                    continue
                around = (default_lr / 3, default_lr, default_lr * 3)
                grid = GRIDS.get(label, (default_lr,) if args.lean else around)
                trainer = race.Trainer(task, contender(label, **options), cfg)
                first = [trainer.run(lr, args.seeds[0]) for lr in grid]
                for h in first:
                    _log(args.out, group, label, h)
                win = min(first, key=lambda h: h.best)
                second = trainer.run(win.lr, args.seeds[1])
                _log(args.out, group, label, second)
                row = _row(label, [win, second], targets)
                row["group"], row["grid_best"] = group, [h.best for h in first]
                rows.append(row)
                print(json.dumps(row), f"[{time.perf_counter() - t0:.0f} s]", flush=True)
    print("| variant | lr | best val loss | steps / AdamW's | seconds / AdamW's | ms/step |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['variant']} | {r['lr']:g} | {_fmt(r['best'], 4)} | {_fmt(r['steps'])} | "
            f"{_fmt(r['seconds'])} | {r['ms_per_step']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
