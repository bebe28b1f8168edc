"""Real training: Shampoo, AdamW and Muon on the race's tasks (:mod:`rootsolve_optim.demo`).

The tasks ship with Python and scikit-learn (nothing is downloaded): a
character-level transformer language model on the standard library's source
(``lm``) and a CNN on the 8 x 8 digits (``cnn``); see
:mod:`rootsolve_optim.demo.tasks`. Each optimizer runs at its stored learning
rate for the task (:data:`rootsolve_optim.demo.race.CONTENDERS`).

* ``TrainingStep.time_10_steps``: 10 compiled training steps (forward, backward,
  update; one Shampoo root refresh among them, at its default of every 10 steps),
  state carried and donated from call to call.
* ``TrainingRun.track_val_loss``: the best validation loss of a short run.
* ``TrainingRun.track_steps_to_adamw``: steps to AdamW's best validation loss of
  the same run (linearly interpolated between evaluations; NaN if never reached).

Sizes: ``smoke`` (a 1-layer, width-32 transformer, 100 steps; what ``asv run
--quick`` runs) and ``race`` (the demo's model and run length, minutes per
optimizer), selected with ``ROOTSOLVE_BENCH_TRAINING_SIZES=smoke,race``. The
goals on the full race are printed by ``python -m asv_benchmarks.training_goals``.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax

from rootsolve_optim.demo import race
from rootsolve_optim.demo.tasks import TASKS

from .smoke import sized

jax.config.update("jax_enable_x64", True)  # float64 roots; the models stay float32

try:  # LAPACK calls inside jitted steps: one BLAS thread (see benchmarks_shampoo)
    from threadpoolctl import threadpool_limits

    _BLAS_LIMIT: Any = threadpool_limits(limits=1, user_api="blas")
except ImportError:  # the limit is an optimization only
    _BLAS_LIMIT = None

#: Task options and run length per size.
SIZE_SPECS = {
    "smoke": {
        "lm": {"d_model": 32, "n_layers": 1, "n_heads": 2, "context": 32, "batch_size": 8},
        "cnn": {"batch_size": 32},
        "steps": 100,
        "eval_every": 10,
    },
    "race": {"lm": {}, "cnn": {}, "steps": 400, "eval_every": 20},
}
SIZES = tuple(os.environ.get("ROOTSOLVE_BENCH_TRAINING_SIZES", "smoke").split(","))
OPTIMIZERS = tuple(race.CONTENDERS)
#: The tasks benchmarked: the smoke suite (``make bench``) keeps the transformer only.
TASK_NAMES = sized(full=["lm", "cnn"], smoke=["lm"])


@functools.cache
def task(name: str, size: str):
    """The task at ``size``, built once per process."""
    return TASKS[name](**SIZE_SPECS[size][name])


def config(size: str) -> race.RaceConfig:
    spec = SIZE_SPECS[size]
    return race.RaceConfig(spec["steps"], spec["eval_every"])


@functools.cache
def result(name: str, size: str) -> race.Result:
    """One race of every optimizer on the task (seed 0), cached per process."""
    return race.race(task(name, size), list(race.CONTENDERS.values()), config(size), [0])[0]


class TrainingStep:
    """Ten compiled training steps of one optimizer (compiled in setup)."""

    params = (list(OPTIMIZERS), TASK_NAMES, list(SIZES))
    param_names = ["optimizer", "task", "size"]
    number = 1
    repeat = (3, 10, 30.0)
    warmup_time = 0
    timeout = 600

    def setup(self, optimizer, task_name, size):
        t = task(task_name, size)
        contender = race.CONTENDERS[optimizer]
        trainer = race.Trainer(t, contender, race.RaceConfig(1000, 10))
        self.params_ = t.init(jax.random.PRNGKey(0))
        self.state = trainer.init_state(self.params_)
        self.chunk = trainer.compile(self.params_, self.state)
        self.lr = jax.numpy.asarray(contender.lrs[task_name], jax.numpy.float32)
        self.key = jax.random.PRNGKey(1)
        self.time_10_steps()  # warm-up

    def time_10_steps(self, *_):
        self.params_, self.state = jax.block_until_ready(
            self.chunk(self.params_, self.state, self.lr, self.key)
        )


class TrainingRun:
    """Validation loss and steps to AdamW's best of a short race.

    The races run once, in ``setup_cache`` (asv shares its result with every
    parameter combination), one per task and size with every optimizer.
    """

    params = (list(OPTIMIZERS), TASK_NAMES, list(SIZES))
    param_names = ["optimizer", "task", "size"]
    number = 1
    repeat = 1
    timeout = 1800

    def setup_cache(self):
        out = {}
        for size in SIZES:
            for task_name in TASK_NAMES:
                r = result(task_name, size)
                for opt in OPTIMIZERS:
                    reach = r.reach(opt)
                    out[opt, task_name, size] = (
                        float(r.histories[opt].best),
                        float("nan") if reach is None else float(reach[0]),
                    )
        return out

    def track_val_loss(self, cache, optimizer, task_name, size):
        return cache[optimizer, task_name, size][0]

    track_val_loss.unit = "nats"

    def track_steps_to_adamw(self, cache, optimizer, task_name, size):
        return cache[optimizer, task_name, size][1]

    track_steps_to_adamw.unit = "steps"
