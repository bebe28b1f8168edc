"""Shampoo against AdamW: an MLP on scikit-learn's bundled digits.

``python -m rootsolve_optim.demo --task digits`` trains the same multilayer
perceptron twice, once with :func:`rootsolve_optim.shampoo` and once with
:func:`optax.adamw`, each at the learning rate that wins a short sweep on a
validation split carved out of the training set (the test set is never used for
tuning). Progress is shown while it runs; at the end it prints a table (final
test accuracy, steps to a target test accuracy, wall time per step, Shampoo's
rejected roots) and writes a plot of training loss and test accuracy against
step to ``demo_out/``.

The data (1,797 8x8 handwritten digits, E. Alpaydin and C. Kaynak, UCI
Machine Learning Repository) ship inside scikit-learn: nothing is downloaded.
Shampoo's roots are computed in float64 (``jax_enable_x64`` is switched on;
parameters stay float32), as Anil et al. (arXiv 2002.09018, sec. 5) recommend.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rootsolve_optim

Params = dict[str, jax.Array]
MakeOpt = Callable[[Any, int], optax.GradientTransformation]

#: Learning-rate grids of the sweep (log-spaced, a factor ~3 apart).
GRIDS = {"Shampoo": (3e-4, 1e-3, 3e-3, 1e-2), "AdamW": (3e-4, 1e-3, 3e-3, 1e-2)}
#: Learning rates used with ``--sweep-steps 0`` (the sweep's usual winners).
DEFAULT_LRS = {"Shampoo": 1e-3, "AdamW": 3e-3}


@dataclass(frozen=True)
class Data:
    """Standardized train/validation/test splits of the digits data."""

    x_train: jax.Array
    y_train: jax.Array
    x_val: jax.Array
    y_val: jax.Array
    x_test: jax.Array
    y_test: jax.Array


@dataclass
class History:
    """What one training run records at every evaluation."""

    name: str
    lr: float
    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    seconds_per_step: float = float("nan")
    root_failures: int | None = None


def load_data(seed: int) -> Data:
    """Digits split 60/20/20 into train/validation/test, standardized with train statistics."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    x_tr, x_va, y_tr, y_va = train_test_split(
        x_tr, y_tr, test_size=0.25, random_state=seed, stratify=y_tr
    )
    mean, std = x_tr.mean(0), x_tr.std(0) + 1.0

    def f32(a):
        return jnp.asarray((a - mean) / std, jnp.float32)

    def i32(a):
        return jnp.asarray(a, jnp.int32)

    return Data(f32(x_tr), i32(y_tr), f32(x_va), i32(y_va), f32(x_te), i32(y_te))


def init_mlp(key: jax.Array, sizes: Sequence[int]) -> Params:
    """He-initialized weights (He et al., arXiv 1502.01852) and zero biases."""
    params: Params = {}
    keys = jax.random.split(key, len(sizes) - 1)
    for i, (k, fan_in, fan_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        scale = np.sqrt(2.0 / fan_in)
        params[f"w{i}"] = scale * jax.random.normal(k, (fan_in, fan_out), jnp.float32)
        params[f"b{i}"] = jnp.zeros((fan_out,), jnp.float32)
    return params


def logits(params: Params, x: jax.Array) -> jax.Array:
    """The ReLU perceptron's class scores."""
    n_layers = len(params) // 2
    for i in range(n_layers):
        x = x @ params[f"w{i}"] + params[f"b{i}"]
        if i < n_layers - 1:
            x = jax.nn.relu(x)
    return x


def loss_fn(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean cross-entropy."""
    return optax.softmax_cross_entropy_with_integer_labels(logits(params, x), y).mean()


def accuracy(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Fraction of correctly classified examples."""
    return jnp.mean(jnp.argmax(logits(params, x), -1) == y)


def schedule(peak: Any, steps: int) -> optax.Schedule:
    """Linear warm-up over the first 5 % of the steps, then cosine decay to zero.

    (Loshchilov & Hutter, "SGDR", arXiv 1608.03983; the usual schedule for
    both optimizers, and what keeps a fixed large step from kicking the
    model out of a memorized minimum late in training.)
    """
    shape = optax.warmup_cosine_decay_schedule(0.0, 1.0, max(1, steps // 20), steps)
    return lambda count: peak * shape(count)  # peak may be traced (the sweep)


def make_optimizers(weight_decay: float) -> dict[str, MakeOpt]:
    """Both optimizers by name, as functions of the peak learning rate and the run length.

    Shampoo runs with its defaults (block size 256, grafting from normalized
    RMSProp, roots refreshed every 10 steps); both share the schedule and
    the decoupled weight decay.
    """
    return {
        "Shampoo": lambda lr, steps: rootsolve_optim.shampoo(
            schedule(lr, steps), weight_decay=weight_decay
        ),
        "AdamW": lambda lr, steps: optax.adamw(schedule(lr, steps), weight_decay=weight_decay),
    }


def make_chunk(opt: optax.GradientTransformation, data: Data, batch: int, length: int):
    """``chunk(params, state, key) -> (params, state)``: ``length`` minibatch steps (scan)."""
    n = data.x_train.shape[0]

    def step(carry, key):
        params, state = carry
        idx = jax.random.randint(key, (batch,), 0, n)
        grads = jax.grad(loss_fn)(params, data.x_train[idx], data.y_train[idx])
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    def chunk(params, state, key):
        keys = jax.random.split(key, length)
        return jax.lax.scan(step, (params, state), keys)[0]

    return chunk


def sweep(
    make_opt: MakeOpt, lrs: Sequence[float], data: Data, params: Params, steps: int, args
) -> tuple[np.ndarray, np.ndarray]:
    """Validation accuracy and loss after ``steps`` steps, for each learning rate.

    The rates run one after another under ``lax.map`` inside one ``jit`` (one
    compilation); ``vmap`` would turn Shampoo's root-refresh ``cond`` into a
    ``select`` that computes roots at every step.
    """

    def run(lr):
        opt = make_opt(lr, steps)
        chunk = make_chunk(opt, data, args.batch_size, steps)
        p, _ = chunk(params, opt.init(params), jax.random.PRNGKey(args.seed + 1))
        return accuracy(p, data.x_val, data.y_val), loss_fn(p, data.x_val, data.y_val)

    acc, loss = jax.jit(lambda lr: jax.lax.map(run, lr))(jnp.asarray(lrs, jnp.float32))
    loss = np.asarray(loss)
    return np.asarray(acc), np.where(np.isfinite(loss), loss, np.inf)


def pick(lrs: Sequence[float], acc: np.ndarray, loss: np.ndarray) -> float:
    """Lowest validation loss.

    The loss, not the accuracy: with 360 validation images one image is 0.3 %
    of accuracy, so accuracies of good runs tie or differ by noise, while the
    loss still ranks them (and penalizes the over-confident fits of a too
    large step).
    """
    del acc
    return float(lrs[int(np.argmin(loss))])


def root_failures(state: Any) -> int | None:
    """Rejected root computations in an optimizer state; None for a state without Shampoo."""
    try:
        return int(rootsolve_optim.shampoo_metrics(state).total_failures)
    except ValueError:
        return None


def train(name: str, opt, lr: float, data: Data, params: Params, args, advance) -> History:
    """Train for ``args.steps`` steps, evaluating every ``args.eval_every`` (and at step 0).

    Wall time per step counts the compiled training chunks only (compilation
    and evaluation excluded); Shampoo's root refreshes are included.
    """
    hist = History(name, lr)
    params = jax.tree_util.tree_map(jnp.copy, params)  # the caller's stay: chunks donate theirs
    state = opt.init(params)
    keys = jax.random.split(jax.random.PRNGKey(args.seed + 2), args.steps // args.eval_every)
    # Donating parameters and optimizer state lets XLA update them in place.
    chunk = jax.jit(make_chunk(opt, data, args.batch_size, args.eval_every), donate_argnums=(0, 1))
    chunk = chunk.lower(params, state, keys[0]).compile()
    evaluate = jax.jit(
        lambda p: (loss_fn(p, data.x_train, data.y_train), accuracy(p, data.x_test, data.y_test))
    )

    def record(step, p):
        loss, acc = evaluate(p)
        hist.steps.append(step)
        hist.train_loss.append(float(loss))
        hist.test_acc.append(float(acc))
        advance(step, float(loss), float(acc))

    record(0, params)
    elapsed = 0.0
    for i, key in enumerate(keys):
        t0 = time.perf_counter()
        params, state = jax.block_until_ready(chunk(params, state, key))
        elapsed += time.perf_counter() - t0
        record((i + 1) * args.eval_every, params)
    hist.seconds_per_step = elapsed / args.steps
    hist.root_failures = root_failures(state)
    return hist


def steps_to(hist: History, target: float) -> int | None:
    """First evaluated step at which test accuracy reaches ``target``."""
    return next((s for s, a in zip(hist.steps, hist.test_acc, strict=True) if a >= target), None)


def plot(histories: Sequence[History], target: float, path: Path) -> None:
    """Training loss (log scale) and test accuracy against step, one line per optimizer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for h in histories:
        label = f"{h.name} (lr {h.lr:g})"
        ax_loss.plot(h.steps, h.train_loss, label=label, lw=1.8)
        ax_acc.plot(h.steps, h.test_acc, label=label, lw=1.8)
    ax_loss.set_yscale("log", nonpositive="clip")
    ax_loss.set(
        ylim=(1e-7, None),
        xlabel="step",
        ylabel="cross-entropy on the training set (floor 1e-7)",
        title="Training loss",
    )
    ax_acc.axhline(target, color="grey", ls="--", lw=1, label=f"target {target:.0%}")
    low = min(a for h in histories for a in h.test_acc[len(h.test_acc) // 10 :])
    ax_acc.set(
        xlabel="step",
        ylabel="test accuracy",
        title="Test accuracy",
        ylim=(max(0.0, min(low, target) - 0.02), 1.0),
    )
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("MLP on scikit-learn digits: Shampoo vs AdamW")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(histories: Sequence[History], target: float):
    """The result table (a :class:`rich.table.Table`)."""
    from rich.table import Table

    t = Table(title="Shampoo vs AdamW on digits (MLP, CPU)")
    for col in (
        "optimizer",
        "lr",
        "final test acc",
        f"steps to {target:.0%} test acc",
        "ms / step",
        "root failures",
    ):
        t.add_column(col, justify="right")
    for h in histories:
        reach = steps_to(h, target)
        t.add_row(
            h.name,
            f"{h.lr:g}",
            f"{h.test_acc[-1]:.4f}",
            "not reached" if reach is None else str(reach),
            f"{1e3 * h.seconds_per_step:.2f}",
            "-" if h.root_failures is None else str(h.root_failures),
        )
    return t


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; every default is the documented demo."""
    p = argparse.ArgumentParser(
        prog="python -m rootsolve_optim.demo --task digits",
        description="Shampoo against AdamW on scikit-learn's digits.",
    )
    p.add_argument("--steps", type=int, default=1000, help="training steps per optimizer")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="hidden widths")
    p.add_argument("--eval-every", type=int, default=25, help="steps between evaluations")
    p.add_argument(
        "--sweep-steps",
        type=int,
        default=150,
        help="steps per learning rate in the sweep; 0 uses DEFAULT_LRS",
    )
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--target-acc", type=float, default=0.97)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="folder of the plot")
    args = p.parse_args(argv)
    for name in ("steps", "batch_size", "eval_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.steps % args.eval_every:
        p.error(
            f"--steps must be a multiple of --eval-every, got {args.steps} and {args.eval_every}"
        )
    return args


def choose_lrs(optimizers, data, params, args, console) -> dict[str, float]:
    """The sweep's winner per optimizer (or DEFAULT_LRS without a sweep)."""
    if args.sweep_steps <= 0:
        return dict(DEFAULT_LRS)
    lrs = {}
    for name, make in optimizers.items():
        grid = GRIDS[name]
        with console.status(f"{name}: {args.sweep_steps}-step sweep over lr {grid}"):
            acc, loss = sweep(make, grid, data, params, args.sweep_steps, args)
        lrs[name] = pick(grid, acc, loss)
        cells = ", ".join(
            f"{lr:g}: {a:.3f}/{v:.3f}" for lr, a, v in zip(grid, acc, loss, strict=True)
        )
        console.print(f"{name} sweep (val acc/loss): {cells} -> lr {lrs[name]:g}")
    return lrs


def single_threaded_blas() -> contextlib.AbstractContextManager:
    """Limit OpenBLAS (whose LAPACK jax's CPU ``eigh`` calls) to one thread, if possible.

    Inside a jitted step the ``eigh`` of a root refresh runs on one of XLA's
    worker threads; a multithreaded OpenBLAS then competes with XLA's own
    threads for the cores, and on a 2-core machine a refresh was measured 10
    to 50 times slower (Shampoo at 70-126 ms per step instead of 11 ms in this
    demo). One BLAS thread per XLA worker avoids the contention.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def main(argv: Sequence[str] | None = None) -> list[History]:
    """Run the demo; returns the two training histories."""
    with single_threaded_blas():
        return _run(parse_args(argv))


def _run(args: argparse.Namespace) -> list[History]:
    """Load, sweep, train both optimizers, print the table and save the plot."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    jax.config.update("jax_enable_x64", True)  # float64 roots; arrays below are float32
    console = Console()
    data = load_data(args.seed)
    sizes = [data.x_train.shape[1], *args.hidden, 10]
    params = init_mlp(jax.random.PRNGKey(args.seed), sizes)
    console.print(
        f"digits: {data.x_train.shape[0]} train / {data.x_val.shape[0]} validation / "
        f"{data.x_test.shape[0]} test images; MLP {sizes}, batch {args.batch_size}, "
        f"{args.steps} steps; {jax.default_backend()} backend"
    )
    optimizers = make_optimizers(args.weight_decay)
    lrs = choose_lrs(optimizers, data, params, args, console)
    histories = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        for name, make in optimizers.items():
            task = progress.add_task(f"{name:8s} compiling", total=args.steps)

            def advance(step, loss, acc, name=name, task=task):
                desc = f"{name:8s} loss {loss:.4f}  test acc {acc:.3f}"
                progress.update(task, completed=step, description=desc)

            opt = make(lrs[name], args.steps)
            histories.append(train(name, opt, lrs[name], data, params, args, advance))
    console.print(table(histories, args.target_acc))
    path = args.out / "shampoo_vs_adamw.png"
    plot(histories, args.target_acc, path)
    console.print(f"plot: {path.resolve()}")
    return histories


if __name__ == "__main__":
    main()
