"""Tables, plot and JSON of a race (:mod:`.race`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .race import GoalRow, History, Result
from .tasks import Task


def _num(x: float | None, fmt: str = ".0f") -> str:
    return "never" if x is None or not math.isfinite(x) else format(x, fmt)


def race_rows(result: Result) -> list[dict[str, Any]]:
    """One dict per contender: the table's fields for one seed."""
    adam = result.reach("AdamW")
    rows = []
    for name, h in result.histories.items():
        reach = result.reach(name)
        steps, secs = (None, None) if reach is None else reach
        steps_ratio, secs_ratio = (None, None) if adam is None else result.ratios(name)
        rows.append(
            {
                "optimizer": name,
                "lr": h.lr,
                "seed": h.seed,
                "best_val_loss": h.best,
                "steps_to_target": steps,
                "seconds_to_target": secs,
                "steps_ratio": steps_ratio,
                "seconds_ratio": secs_ratio,
                "ms_per_step": result.step_ms.get(name, h.ms_per_step),
                "ms_per_step_in_run": h.ms_per_step,
                "compile_seconds": h.compile_seconds,
                "root_failures": h.root_failures,
            }
        )
    return rows


def race_table(results: Sequence[Result], task: Task):
    """The result table (a :class:`rich.table.Table`), one row per contender and seed."""
    from rich.table import Table

    target = ", ".join(f"{r.target:.4f}" for r in results)
    t = Table(
        title=f"{task.name}: steps and seconds to AdamW's best validation loss ({target})",
        caption="x AdamW: steps ratio; seconds ratio = steps x ms/step (timed in alternation)",
    )
    for col in (
        "optimizer",
        "seed",
        "lr",
        "best val",
        "steps (x AdamW)",
        "s (x AdamW)",
        "ms/step",
        "compile s",
        "root fails",
    ):
        t.add_column(col, justify="right")
    for result in results:
        for row in race_rows(result):
            t.add_row(
                row["optimizer"],
                str(row["seed"]),
                f"{row['lr']:g}",
                f"{row['best_val_loss']:.4f}",
                f"{_num(row['steps_to_target'])} ({_num(row['steps_ratio'], '.2f')})",
                f"{_num(row['seconds_to_target'], '.1f')} ({_num(row['seconds_ratio'], '.2f')})",
                f"{row['ms_per_step']:.1f}",
                f"{row['compile_seconds']:.1f}",
                "-" if row["root_failures"] is None else str(row["root_failures"]),
            )
    return t


def sweep_table(runs: Mapping[str, Mapping[float, Sequence[History]]]):
    """Best validation loss (mean over seeds) per contender and learning rate."""
    from rich.table import Table

    t = Table(title="learning-rate sweep: best validation loss (mean over seeds)")
    t.add_column("optimizer")
    t.add_column("lr: loss", justify="left")
    for name, by_lr in runs.items():
        means = {lr: float(np.mean([h.best for h in hs])) for lr, hs in by_lr.items()}
        win = min(means, key=means.get)
        cells = [f"{lr:g}: {v:.4f}{' *' if lr == win else ''}" for lr, v in means.items()]
        t.add_row(name, ", ".join(cells))
    return t


def goals_table(rows: Sequence[GoalRow]):
    """The goals with PASS/FAIL."""
    from rich.table import Table

    t = Table(title="goals (mean over seeds)")
    for col in ("goal", "measured", "per seed", "target", "result"):
        t.add_column(col, justify="right")
    for g in rows:
        t.add_row(
            g.name,
            _num(g.value, ".2f"),
            ", ".join(_num(v, ".2f") for v in g.per_seed),
            g.target,
            "[green]PASS[/]" if g.passed else "[red]FAIL[/]",
        )
    return t


def plot(result: Result, task: Task, path: Path) -> None:
    """Validation loss against steps and against training seconds, one line per contender.

    With paired step times (:func:`.race.paired_step_ms`) the seconds are steps times
    the paired ms per step, as in the table; otherwise each run's own training time.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True, sharey=True)
    paired = all(n in result.step_ms for n in result.histories)
    for name, h in result.histories.items():
        label = f"{name} (lr {h.lr:g})"
        axes[0].plot(h.steps, h.val_loss, label=label, lw=1.8)
        secs = [s * result.step_ms[name] / 1e3 for s in h.steps] if paired else h.seconds
        axes[1].plot(secs, h.val_loss, label=label, lw=1.8)
    finite = [v for h in result.histories.values() for v in h.val_loss[1:] if math.isfinite(v)]
    xlabels = ("step", "training seconds" + (" (steps x paired ms/step)" if paired else ""))
    for ax, xlabel in zip(axes, xlabels, strict=True):
        if math.isfinite(result.target):
            ax.axhline(result.target, color="grey", ls="--", lw=1, label="AdamW's best")
        ax.set(xlabel=xlabel, ylabel="validation loss (nats)")
        if finite:
            ax.set_ylim(min(finite) - 0.05, np.percentile(finite, 90))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(task.description, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def to_json(results: Sequence[Result], goals: Sequence[GoalRow]) -> dict[str, Any]:
    """Rows, curves and goals as plain data."""
    return {
        "results": [
            {
                "seed": r.seed,
                "target": r.target,
                "rows": race_rows(r),
                "curves": {
                    n: {"steps": h.steps, "val_loss": h.val_loss, "seconds": h.seconds}
                    for n, h in r.histories.items()
                },
            }
            for r in results
        ],
        "goals": [g.__dict__ for g in goals],
    }
