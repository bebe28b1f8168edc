"""The training race: optimizers on one task, each at its own tuned learning rate.

Every contender trains the same initial parameters on the same minibatches (per
seed) for the same number of steps, under the same schedule (linear warm-up over
the first 5 % of the steps, then cosine decay to zero; Loshchilov & Hutter,
arXiv 1608.03983) and the same decoupled weight decay. The validation loss is
evaluated every ``eval_every`` steps. The target is AdamW's best validation loss;
each contender's *steps to target* is where its validation loss first reaches
it, linearly interpolated between evaluations, and its *seconds to target* the
training time up to there (compiled training steps only: compilation and
evaluation are not counted; Shampoo's root refreshes are).

A contender is one entry of :data:`CONTENDERS`: a name, a function of the
learning-rate schedule and the weight decay that returns the optax
transformation, the learning-rate grid of the sweep and the tuned rates per
task. The 2022 reference Shampoo (``google-research/scalable_shampoo``) is not a
contender: it does not run on current jax.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rootsolve_optim

from .tasks import Task

MakeOpt = Callable[[optax.Schedule, float], optax.GradientTransformation]


@dataclass(frozen=True)
class Contender:
    """One optimizer of the race.

    Attributes
    ----------
    name : str
        Name in tables and plots.
    make : callable
        ``make(schedule, weight_decay) -> optax.GradientTransformation``.
    grid : tuple of float
        Peak learning rates of the sweep.
    lrs : mapping
        Tuned peak learning rate per task name (the sweep's winners, stored).
    """

    name: str
    make: MakeOpt
    grid: tuple[float, ...]
    lrs: Mapping[str, float] = field(default_factory=dict)


def shampoo_contender(name: str = "Shampoo", **options: Any) -> Contender:
    """:func:`rootsolve_optim.shampoo` with ``options`` (its defaults when none are given)."""

    def make(lr, wd):
        return rootsolve_optim.shampoo(lr, weight_decay=wd, **options)

    return Contender(name, make, (3e-3, 1e-2, 3e-2), {"lm": 1e-2, "cnn": 3e-3})


def soap_contender(name: str = "SOAP", **options: Any) -> Contender:
    """:func:`rootsolve_optim.soap` with ``options`` (its defaults when none are given)."""

    def make(lr, wd):
        return rootsolve_optim.soap(lr, weight_decay=wd, **options)

    return Contender(name, make, (3e-3, 1e-2, 3e-2), {"lm": 1e-2, "cnn": 3e-3})


def _muon(lr, wd):
    # Muon on the 2-D weights (Newton-Schulz orthogonalized momentum), Adam on the rest;
    # decoupled weight decay on both.
    return optax.contrib.muon(lr, weight_decay=wd, adam_weight_decay=wd)


#: The race's optimizers. Adding one is one entry here. The "lm" rates won the 400-step
#: sweep of docs/optimizer.md (two seeds); the "cnn" rates are not swept (``--task cnn
#: --sweep`` does it).
CONTENDERS: dict[str, Contender] = {
    c.name: c
    for c in (
        shampoo_contender(),
        Contender(
            "AdamW",
            lambda lr, wd: optax.adamw(lr, weight_decay=wd),
            (3e-3, 1e-2, 3e-2),
            {"lm": 1e-2, "cnn": 3e-3},
        ),
        Contender("Muon", _muon, (1e-2, 3e-2, 1e-1), {"lm": 3e-2, "cnn": 1e-2}),
        soap_contender(),
    )
}


def schedule(peak: Any, steps: int) -> optax.Schedule:
    """Linear warm-up over the first 5 % of ``steps``, then cosine decay to zero.

    ``peak`` may be traced, so that one compiled program serves a whole sweep.
    """
    shape = optax.warmup_cosine_decay_schedule(0.0, 1.0, max(1, steps // 20), steps)
    return lambda count: peak * shape(count)


@dataclass
class History:
    """One training run: validation loss and cumulative training time at each evaluation."""

    name: str
    lr: float
    seed: int
    steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    compile_seconds: float = float("nan")
    root_failures: int | None = None
    params: Any = None

    @property
    def best(self) -> float:
        """Lowest validation loss (inf when none was finite)."""
        finite = [v for v in self.val_loss if math.isfinite(v)]
        return min(finite) if finite else math.inf

    @property
    def ms_per_step(self) -> float:
        """Training milliseconds per step (compilation and evaluation excluded)."""
        return 1e3 * self.seconds[-1] / self.steps[-1] if self.steps[-1] else float("nan")

    def reach(self, target: float) -> tuple[float, float] | None:
        """``(steps, seconds)`` at which the validation loss first reaches ``target``.

        Linearly interpolated between the two evaluations around the crossing;
        None if it never does.
        """
        pts = list(zip(self.steps, self.val_loss, self.seconds, strict=True))
        for (s0, v0, t0), (s1, v1, t1) in zip(pts, pts[1:], strict=False):
            if v1 <= target:
                w = 1.0 if not v0 > v1 else min(1.0, max(0.0, (v0 - target) / (v0 - v1)))
                return s0 + w * (s1 - s0), t0 + w * (t1 - t0)
        return None


@dataclass(frozen=True)
class RaceConfig:
    """Length, evaluation cadence and regularization of every run."""

    steps: int = 600
    eval_every: int = 20
    weight_decay: float = 0.01

    def __post_init__(self):
        if self.steps < 1 or self.eval_every < 1:
            raise ValueError(
                f"steps and eval_every must be >= 1, got {self.steps} and {self.eval_every}"
            )
        if self.steps % self.eval_every:
            raise ValueError(
                f"steps must be a multiple of eval_every, got {self.steps} and {self.eval_every}"
            )


class Trainer:
    """One contender on one task, compiled once for all learning rates and seeds.

    The peak learning rate is an argument of the compiled training chunk
    (``eval_every`` steps in a ``lax.scan``), so a sweep compiles once.
    Parameters and optimizer state are donated, so XLA updates them in place.
    """

    def __init__(self, task: Task, contender: Contender, config: RaceConfig):
        self.task, self.contender, self.config = task, contender, config
        steps = config.steps

        def chunk(params, state, lr, key):
            opt = contender.make(schedule(lr, steps), config.weight_decay)

            def step(carry, key):
                params, state = carry
                grads = jax.grad(task.loss)(params, task.batch(key))
                updates, state = opt.update(grads, state, params)
                return (optax.apply_updates(params, updates), state), None

            keys = jax.random.split(key, config.eval_every)
            return jax.lax.scan(step, (params, state), keys)[0]

        self._chunk = jax.jit(chunk, donate_argnums=(0, 1))
        self._compiled = None
        self.compile_seconds = math.nan
        self._val = jax.jit(task.val_loss)

    def init_state(self, params):
        """The optimizer state for ``params`` (independent of the learning rate)."""
        cfg = self.config
        return self.contender.make(schedule(1.0, cfg.steps), cfg.weight_decay).init(params)

    def compile(self, params, state):
        """``chunk(params, state, lr, key) -> (params, state)``: ``eval_every`` steps, compiled.

        Compiled once (``compile_seconds`` says how long it took); the first two
        arguments are donated.
        """
        if self._compiled is None:
            lr, key = jnp.asarray(1.0, jnp.float32), jax.random.PRNGKey(0)
            t0 = time.perf_counter()
            self._compiled = self._chunk.lower(params, state, lr, key).compile()
            self.compile_seconds = time.perf_counter() - t0
        return self._compiled

    def run(
        self, lr: float, seed: int, advance: Callable[[int, float], None] | None = None
    ) -> History:
        """Train from the task's initial parameters of ``seed``; ``advance(step, val_loss)``."""
        cfg, task = self.config, self.task
        hist = History(self.contender.name, float(lr), seed)
        params = task.init(jax.random.PRNGKey(seed))
        state = self.init_state(params)
        lr_arr = jnp.asarray(lr, jnp.float32)
        keys = jax.random.split(jax.random.PRNGKey(seed + 1), cfg.steps // cfg.eval_every)
        chunk = self.compile(params, state)
        hist.compile_seconds = self.compile_seconds

        def record(step, elapsed, params):
            loss = float(self._val(params))
            hist.steps.append(step)
            hist.val_loss.append(loss if math.isfinite(loss) else math.inf)
            hist.seconds.append(elapsed)
            if advance is not None:
                advance(step, loss)

        record(0, 0.0, params)
        elapsed = 0.0
        for i, key in enumerate(keys):
            t0 = time.perf_counter()
            params, state = jax.block_until_ready(chunk(params, state, lr_arr, key))
            elapsed += time.perf_counter() - t0
            record((i + 1) * cfg.eval_every, elapsed, params)
            if not math.isfinite(hist.val_loss[-1]):
                break  # diverged: the rest of the run cannot recover
        hist.root_failures = root_failures(state)
        hist.params = params
        return hist


def root_failures(state: Any) -> int | None:
    """Rejected root computations in an optimizer state; None for a state without Shampoo."""
    try:
        return int(rootsolve_optim.shampoo_metrics(state).total_failures)
    except ValueError:
        return None


@dataclass
class Result:
    """The race on one seed: each contender's history at its chosen learning rate."""

    seed: int
    histories: dict[str, History]
    #: Paired per-step times in ms (:func:`paired_step_ms`); empty when not measured.
    step_ms: dict[str, float] = field(default_factory=dict)
    target: float = field(init=False)

    def __post_init__(self):
        self.target = self.histories["AdamW"].best if "AdamW" in self.histories else math.nan

    def reach(self, name: str) -> tuple[float, float] | None:
        """``name``'s steps and seconds to AdamW's best validation loss."""
        return self.histories[name].reach(self.target)

    def ratios(self, name: str, against: str = "AdamW") -> tuple[float, float]:
        """Steps and seconds to the target of ``name`` over those of ``against`` (inf: never).

        With paired step times the seconds are steps times the paired ms per step
        (robust to load that comes and goes during one run but not the other);
        otherwise the runs' own training seconds.
        """
        a, b = self.reach(name), self.reach(against)
        if b is None:
            return math.nan, math.nan
        if a is None:
            return math.inf, math.inf
        if name in self.step_ms and against in self.step_ms:
            return a[0] / b[0], a[0] * self.step_ms[name] / (b[0] * self.step_ms[against])
        return a[0] / b[0], a[1] / b[1]


def paired_step_ms(trainers: Mapping[str, Trainer], lrs: Mapping[str, float], rounds: int = 5):
    """Median ms per training step of each trainer, timed in alternation.

    Each round times one compiled chunk (``eval_every`` steps, root refreshes
    included) of every trainer, in an order rotated from round to round, so that
    load from other processes hits all of them alike.
    """
    names = list(trainers)
    carry = {}
    for n in names:
        tr = trainers[n]
        params = tr.task.init(jax.random.PRNGKey(0))
        state = tr.init_state(params)
        chunk = tr.compile(params, state)
        lr, key = jnp.asarray(lrs[n], jnp.float32), jax.random.PRNGKey(1)
        params, state = jax.block_until_ready(chunk(params, state, lr, key))  # warm-up
        carry[n] = [chunk, params, state, lr, key]
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            chunk, params, state, lr, key = carry[n]
            t0 = time.perf_counter()
            carry[n][1:3] = jax.block_until_ready(chunk(params, state, lr, key))
            times[n].append((time.perf_counter() - t0) / trainers[n].config.eval_every)
    return {n: 1e3 * float(np.median(t)) for n, t in times.items()}


def sweep(
    task: Task,
    contenders: Sequence[Contender],
    config: RaceConfig,
    seeds: Sequence[int],
    grids: Mapping[str, Sequence[float]] | None = None,
    on_run: Callable[[Contender, float, int], Callable[[int, float], None] | None] | None = None,
    time_rounds: int = 5,
) -> tuple[list[Result], dict[str, dict[float, list[History]]]]:
    """Full-length runs at every rate of each contender's grid and every seed.

    The rate with the lowest mean (over seeds) best validation loss wins; the
    race's results are those winning runs, one :class:`Result` per seed, with the
    winners' step times measured in alternation (``time_rounds`` rounds of
    :func:`paired_step_ms`; 0 skips it). Returns the results and every run by
    contender and rate.
    """
    runs: dict[str, dict[float, list[History]]] = {}
    trainers = {}
    for c in contenders:
        trainer = trainers[c.name] = Trainer(task, c, config)
        runs[c.name] = {}
        for lr in (grids or {}).get(c.name, c.grid):
            runs[c.name][lr] = [
                trainer.run(lr, s, on_run(c, lr, s) if on_run else None) for s in seeds
            ]
    best = {
        name: min(by_lr.values(), key=lambda hs: float(np.mean([h.best for h in hs])))
        for name, by_lr in runs.items()
    }
    step_ms = {}
    if time_rounds > 0:
        step_ms = paired_step_ms(trainers, {n: hs[0].lr for n, hs in best.items()}, time_rounds)
    results = [
        Result(s, {n: hs[i] for n, hs in best.items()}, step_ms) for i, s in enumerate(seeds)
    ]
    return results, runs


def race(
    task: Task,
    contenders: Sequence[Contender],
    config: RaceConfig,
    seeds: Sequence[int],
    lrs: Mapping[str, float] | None = None,
    on_run: Callable[[Contender, float, int], Callable[[int, float], None] | None] | None = None,
    time_rounds: int = 5,
) -> list[Result]:
    """Each contender once per seed at its stored (or given) learning rate for ``task``."""
    grids = {c.name: [(lrs or {}).get(c.name, c.lrs.get(task.name, c.grid[0]))] for c in contenders}
    return sweep(task, contenders, config, seeds, grids, on_run, time_rounds)[0]


# --------------------------------------------------------------------------- goals

#: Shampoo's steps to AdamW's best validation loss, at most this fraction of AdamW's.
STEPS_GOAL = 0.6
#: Shampoo's seconds to AdamW's best validation loss, at most this fraction of AdamW's.
SECONDS_GOAL = 0.8


@dataclass(frozen=True)
class GoalRow:
    """One goal: the measured value (mean over seeds), per-seed values, target, verdict."""

    name: str
    value: float
    per_seed: tuple[float, ...]
    target: str
    passed: bool


def goals(results: Sequence[Result], shampoo: str = "Shampoo") -> list[GoalRow]:
    """The three goals: Shampoo against AdamW (steps, seconds) and against Muon (steps)."""
    rows = []
    specs = (
        ("steps to AdamW's best, Shampoo / AdamW", "AdamW", 0, STEPS_GOAL),
        ("seconds to AdamW's best, Shampoo / AdamW", "AdamW", 1, SECONDS_GOAL),
        ("steps to AdamW's best, Shampoo / Muon", "Muon", 0, 1.0),
    )
    for name, against, i, bound in specs:
        if against not in results[0].histories:
            continue
        per = tuple(r.ratios(shampoo, against)[i] for r in results)
        value = float(np.mean(per))
        rows.append(GoalRow(name, value, per, f"<= {bound:g}", bool(value <= bound)))
    return rows

