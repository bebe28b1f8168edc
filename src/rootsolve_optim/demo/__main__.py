"""``python -m rootsolve_optim.demo`` (``make demo``): Shampoo, AdamW and Muon race.

By default a small character-level transformer (:func:`.tasks.char_lm`) learns
Python's standard-library source with each optimizer of :data:`.race.CONTENDERS`
at its stored learning rate, from the same initial parameters on the same
batches. Progress bars show the validation loss; at the end a table gives each
optimizer's best validation loss, its steps and seconds to AdamW's best
validation loss (and the ratio to AdamW's), ms per step, compile time and
Shampoo's rejected roots; ``demo_out/race_lm.png`` plots validation loss against
steps and against seconds, and each model writes a few lines of Python.

``--sweep`` reruns the learning-rate sweep (every rate of each grid, full length,
lowest best validation loss wins) instead of the stored rates; ``--goals`` prints
the race's goals with PASS/FAIL; ``--task lm_wide`` races on a second, larger
transformer (:func:`.tasks.char_lm_wide`; the model options below are ``lm``'s
only), ``--task cnn`` on the digits CNN; ``--task digits`` runs the earlier MLP
demo (its own options follow).
Shampoo's roots are computed in float64 (``jax_enable_x64``; parameters stay
float32), as Anil et al. (arXiv 2002.09018, sec. 5) recommend.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def blas_limit(say: Callable[[str], None]) -> contextlib.AbstractContextManager:
    """OpenBLAS limited to one thread (see docs/optimizer.md, CPU threads), and say so.

    Inside a jitted step LAPACK runs on one of XLA's worker threads; a
    multithreaded OpenBLAS then competes with XLA's own threads for the cores.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        say("threads: threadpoolctl is not installed; OpenBLAS keeps its default threads")
        return contextlib.nullcontext()
    say("threads: OpenBLAS limited to 1 thread (threadpool_limits) so XLA's threads get the cores")
    return threadpool_limits(limits=1, user_api="blas")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from .race import CONTENDERS
    from .tasks import TASKS

    p = argparse.ArgumentParser(
        prog="python -m rootsolve_optim.demo",
        description="Shampoo, AdamW and Muon training the same model; --task digits: MLP demo.",
    )
    p.add_argument("--task", choices=(*TASKS, "digits"), default="lm")
    p.add_argument("--steps", type=int, default=400, help="training steps per run")
    p.add_argument("--eval-every", type=int, default=20, help="steps between validation losses")
    p.add_argument(
        "--batch-size", type=int, default=None, help="default: the task's (lm 16, cnn 64)"
    )
    p.add_argument("--d-model", type=int, default=64, help="transformer width (lm)")
    p.add_argument("--layers", type=int, default=2, help="transformer blocks (lm)")
    p.add_argument("--heads", type=int, default=4, help="attention heads (lm)")
    p.add_argument("--context", type=int, default=64, help="characters per sequence (lm)")
    p.add_argument("--chars", type=int, default=600_000, help="characters of text (lm)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1, each a full race")
    p.add_argument("--optimizers", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    p.add_argument(
        "--lr", action="append", default=[], metavar="NAME=LR", help="override a stored lr"
    )
    p.add_argument("--sweep", action="store_true", help="sweep each optimizer's lr grid")
    p.add_argument("--goals", action="store_true", help="print the goals with PASS/FAIL")
    p.add_argument("--sample-chars", type=int, default=160, help="characters sampled (lm)")
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="folder of the plot")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    for name in ("steps", "eval_every", "batch_size", "seeds", "d_model", "layers", "heads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.steps % args.eval_every:
        p.error(f"--steps must be a multiple of --eval-every, got {args.steps}, {args.eval_every}")
    if args.goals and not {"Shampoo", "AdamW"} <= set(args.optimizers):
        p.error("--goals needs Shampoo and AdamW among --optimizers")
    lrs = {}
    for item in args.lr:
        name, _, value = item.partition("=")
        if name not in CONTENDERS:
            p.error(f"--lr: unknown optimizer {name!r} in {item!r}; known: {list(CONTENDERS)}")
        try:
            lrs[name] = float(value)
        except ValueError:
            p.error(f"--lr: {item!r} is not NAME=LR")
    args.lrs = lrs
    return args


def main(argv: Sequence[str] | None = None):
    """Run the race (or the digits demo); returns the per-seed results."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--task" in argv and argv[argv.index("--task") + 1 :][:1] == ["digits"]:
        from . import digits

        i = argv.index("--task")
        return digits.main(argv[:i] + argv[i + 2 :])
    if "--task=digits" in argv:
        from . import digits

        return digits.main([a for a in argv if a != "--task=digits"])
    args = parse_args(argv)
    from rich.console import Console

    console = Console()
    with blas_limit(console.print):
        return run(args, console)


def run(args: argparse.Namespace, console):
    """Train, print the table (and goals), plot, sample."""
    import jax
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import race, report
    from .tasks import TASKS

    jax.config.update("jax_enable_x64", True)  # float64 roots; the models stay float32
    t_start = time.perf_counter()
    options = {} if args.batch_size is None else {"batch_size": args.batch_size}
    if args.task == "lm":
        options.update(
            d_model=args.d_model,
            n_layers=args.layers,
            n_heads=args.heads,
            context=args.context,
            n_chars=args.chars,
        )
    task = TASKS[args.task](**options)
    config = race.RaceConfig(args.steps, args.eval_every, args.weight_decay)
    contenders = [race.CONTENDERS[n] for n in args.optimizers]
    console.print(f"{task.description}; {args.steps} steps; {jax.default_backend()} backend")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    seeds = list(range(args.seeds))
    with Progress(*columns, console=console) as progress:

        def on_run(contender, lr, seed):
            label = f"{contender.name:8s} lr {lr:<6g} seed {seed}"
            bar = progress.add_task(f"{label} compiling", total=args.steps)

            def advance(step, loss):
                progress.update(bar, completed=step, description=f"{label} val {loss:.4f}")

            return advance

        if args.sweep or args.goals:
            grids = {c.name: [args.lrs[c.name]] for c in contenders if c.name in args.lrs}
            results, runs = race.sweep(task, contenders, config, seeds, grids, on_run)
        else:
            results, runs = race.race(task, contenders, config, seeds, args.lrs, on_run), None
    if runs is not None:
        console.print(report.sweep_table(runs))
    console.print(report.race_table(results, task))
    rows = race.goals(results) if args.goals else []
    if rows:
        console.print(report.goals_table(rows))
    if not args.no_plot:
        path = args.out / f"race_{task.name}.png"
        report.plot(results[0], task, path)
        console.print(f"plot: {path.resolve()}")
    if task.sample is not None and args.sample_chars > 0:
        for name, h in results[0].histories.items():
            text = task.sample(h.params, "def ", args.sample_chars, jax.random.PRNGKey(0))
            console.rule(f"{name} writes")
            console.print(text, markup=False, highlight=False)
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_json(results, rows), indent=1))
    console.print(f"total {time.perf_counter() - t_start:.0f} s")
    return results


if __name__ == "__main__":
    main()
