"""The host root scheduler (rootsolve_optim.host_scheduler): delivery rules, checkpoints, close.

No JAX here: the compute function is a stand-in that tags each batch with the
step whose statistics it was computed from (statistics of step ``s`` are
filled with ``s``, and the stand-in "root" is the statistics themselves).
"""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from rootsolve_optim.host_scheduler import HostScheduler, RootBatch, SchedulerClosed

SHAPE = (2, 3, 3)


def tag(batch):
    """The step a delivered batch was computed from, or None for "nothing due"."""
    if batch is None:
        return None
    steps = np.unique(batch.roots)
    assert steps.size == 1
    return int(steps[0])


class Compute:
    """A stand-in root computation that can be held back with ``gate``."""

    def __init__(self, gated=False):
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.calls = 0

    def __call__(self, stats64, p, dtype):
        assert self.gate.wait(timeout=30), "gate never opened"
        self.calls += 1
        k = stats64.shape[0]
        return RootBatch(stats64.astype(dtype), np.zeros(k, np.float32), np.ones(k, bool), 0.25)


def stats_of(step, shape=SHAPE):
    return np.full(shape, float(step))


def ask(sched, step, label="g", shape=SHAPE):
    return sched.ask(label, 4, np.float32, stats_of(step, shape), step)


@pytest.fixture
def sched_factory():
    made = []

    def make(gated=False, **kwargs):
        compute = Compute(gated)
        sched = HostScheduler(compute, **kwargs)
        made.append((sched, compute))
        return sched, compute

    yield make
    for sched, compute in made:
        compute.gate.set()
        sched.close()


# -- synchronous ------------------------------------------------------------------------------


def workers():
    return {t for t in threading.enumerate() if t.name.startswith("rootsolve-host-root")}


def test_run_computes_in_the_calling_thread_and_counts(sched_factory):
    sched, compute = sched_factory()
    before = workers()
    batch = sched.run("g", 4, np.float32, stats_of(7))
    assert workers() == before  # no thread pool for synchronous roots
    assert tag(batch) == 7 and batch.roots.dtype == np.float32 and compute.calls == 1
    (m,) = sched.metrics().values()
    assert (m.calls, m.submitted, m.delivered, m.staleness_max) == (1, 1, 1, 0)
    assert m.host_seconds_total == 0.25


# -- deterministic delay ----------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_fixed_delay_delivers_step_s_at_s_plus_d(sched_factory, delay):
    sched, _ = sched_factory(deterministic_delay=delay)
    got = [tag(ask(sched, t)) for t in range(6)]
    assert got == [None] * delay + list(range(6 - delay))
    (m,) = sched.metrics().values()
    assert (m.calls, m.submitted, m.delivered) == (6, 6, 6 - delay)
    assert m.staleness_last == m.staleness_max == delay


def test_fixed_delay_with_gaps_delivers_the_newest_due_job(sched_factory):
    """Calls at refresh steps 0, 10, 20 with d = 15: step 20 gets the roots of step 0 ...

    ... not those of step 10 (10 + 15 > 20); at step 40 both 10 and 20 are due and the newest wins.
    """
    sched, _ = sched_factory(deterministic_delay=15)
    assert [tag(ask(sched, t)) for t in (0, 10, 20, 40)] == [None, None, 0, 20]
    (m,) = sched.metrics().values()
    assert m.staleness_max == 20 and sched.state_dict()["pending"]["g"]["steps"] == [40]


def test_fixed_delay_waits_for_a_late_job(sched_factory):
    sched, compute = sched_factory(gated=True, deterministic_delay=1)
    assert ask(sched, 0) is None
    threading.Timer(0.2, compute.gate.set).start()
    assert tag(ask(sched, 1)) == 0
    (m,) = sched.metrics().values()
    assert m.blocked == 1 and m.wait_seconds_total > 0


# -- bounded staleness ------------------------------------------------------------------------


def test_one_job_in_flight_while_the_host_is_busy(sched_factory):
    sched, compute = sched_factory(gated=True)
    assert [ask(sched, t) for t in range(3)] == [None] * 3  # stuck on the job of step 0
    compute.gate.set()
    sched.wait()
    assert tag(ask(sched, 3)) == 0  # stale: the statistics of step 0
    (m,) = sched.metrics().values()
    assert (m.submitted, m.skipped, m.blocked, m.staleness_last) == (2, 2, 0, 3)
    sched.wait()
    assert tag(ask(sched, 4)) == 3  # the job submitted at step 3


def test_staleness_bound_blocks_on_the_pending_job(sched_factory):
    sched, compute = sched_factory(gated=True, max_staleness_steps=2)
    assert ask(sched, 0) is None and ask(sched, 1) is None
    threading.Timer(0.2, compute.gate.set).start()
    assert tag(ask(sched, 2)) == 0
    (m,) = sched.metrics().values()
    assert m.blocked == 1 and m.staleness_last == 2


def test_staleness_zero_delivers_the_roots_of_the_same_step(sched_factory):
    sched, _ = sched_factory(max_staleness_steps=0)
    assert [tag(ask(sched, t)) for t in range(4)] == [0, 1, 2, 3]
    (m,) = sched.metrics().values()
    assert m.staleness_max == 0 and m.delivered == 4


# -- replays, rewinds, other programs ---------------------------------------------------------


def test_replayed_step_gets_the_same_batch(sched_factory):
    sched, _ = sched_factory(deterministic_delay=1)
    ask(sched, 0)
    first = ask(sched, 1)
    again = sched.ask("g", 4, np.float32, stats_of(99), 1)  # the update at step 1 was skipped
    assert again is first and tag(first) == 0
    assert tag(ask(sched, 2)) == 99  # the statistics of the replayed step 1


def test_rewound_step_discards_pending_jobs(sched_factory):
    sched, _ = sched_factory(deterministic_delay=1)
    ask(sched, 5)  # an abandoned timeline
    assert ask(sched, 0) is None
    assert tag(ask(sched, 1)) == 0


def test_job_of_another_shape_is_not_delivered(sched_factory):
    sched, _ = sched_factory(deterministic_delay=1)
    ask(sched, 0, shape=(4, 3, 3))  # the same key from a program with another batch
    assert ask(sched, 1) is None
    assert tag(ask(sched, 2)) == 1


def test_groups_keep_separate_state(sched_factory):
    sched, _ = sched_factory(deterministic_delay=1)
    ask(sched, 0, label="a")
    ask(sched, 0, label="b", shape=(1, 5, 5))
    assert tag(ask(sched, 1, label="a")) == 0
    batch = ask(sched, 1, label="b", shape=(1, 5, 5))
    assert batch.roots.shape == (1, 5, 5)
    assert sorted(sched.metrics()) == ["a", "b"]


# -- checkpoints ------------------------------------------------------------------------------


def test_state_dict_resumes_identically(sched_factory):
    whole, _ = sched_factory(deterministic_delay=2)
    expected = [tag(ask(whole, t)) for t in range(6)]
    first, _ = sched_factory(deterministic_delay=2)
    for t in range(3):
        ask(first, t)
    saved = first.state_dict()
    assert saved["pending"]["g"]["steps"] == [1, 2] and saved["pending"]["g"]["p"] == 4
    for t in range(3, 5):  # wander off, then restore
        ask(first, t)
    first.load_state_dict(saved)
    assert [tag(ask(first, t)) for t in range(3, 6)] == expected[3:]
    second, _ = sched_factory(deterministic_delay=2)
    second.load_state_dict(saved)
    assert [tag(ask(second, t)) for t in range(3, 6)] == expected[3:]
    (m,) = second.metrics().values()
    assert m.submitted == 2 + 3  # the resubmitted jobs, then one per call


@pytest.mark.parametrize("state", [{"pending": {}}, {"version": 0, "pending": {}}, [1]])
def test_bad_state_dict_raises(sched_factory, state):
    sched, _ = sched_factory()
    with pytest.raises(ValueError, match="state must come from .*version"):
        sched.load_state_dict(state)


def test_reset_forgets_everything(sched_factory):
    sched, compute = sched_factory(gated=True, deterministic_delay=1)
    ask(sched, 0)
    sched.reset()
    assert sched.metrics() == {} and sched.state_dict()["pending"] == {}
    compute.gate.set()
    assert ask(sched, 1) is None  # the job of step 0 is gone


# -- close ------------------------------------------------------------------------------------


def test_close_refuses_asks_keeps_run_and_is_idempotent(sched_factory):
    before = workers()
    sched, compute = sched_factory(gated=True)
    ask(sched, 0)
    started = workers() - before
    threading.Timer(0.2, compute.gate.set).start()
    sched.close()  # the started job runs to its end; nothing hangs
    sched.close()
    assert sched.closed and len(started) == 1 and not any(t.is_alive() for t in started)
    with pytest.raises(SchedulerClosed, match="closed"):
        ask(sched, 1)
    with pytest.raises(SchedulerClosed, match="closed"):
        sched.load_state_dict({"version": 1, "pending": {}})
    assert tag(sched.run("g", 4, np.float32, stats_of(2))) == 2


def test_close_cancels_queued_jobs(sched_factory):
    sched, compute = sched_factory(gated=True, deterministic_delay=5)
    for t in range(3):
        ask(sched, t)
    threading.Timer(0.2, compute.gate.set).start()
    sched.close()
    assert compute.calls == 1  # the first job had started; the two queued ones never ran


def test_module_needs_no_jax():
    """The module loads and schedules with ``import jax`` made impossible."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "src", "rootsolve_optim",
                        "host_scheduler.py")
    script = textwrap.dedent(f"""
        import importlib.util, sys
        import numpy as np
        sys.modules["jax"] = None  # any import of jax now raises ImportError
        spec = importlib.util.spec_from_file_location("host_scheduler", {path!r})
        mod = sys.modules["host_scheduler"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        compute = lambda s, p, d: mod.RootBatch(s.astype(d), s[:, 0, 0], s[:, 0, 0] > 0, 0.0)
        sched = mod.HostScheduler(compute, deterministic_delay=1)
        out = [sched.ask("g", 2, np.float64, np.full((1, 2, 2), t + 1.0), t) for t in range(2)]
        sched.close()
        assert out[0] is None and out[1].roots[0, 0, 0] == 1.0
        assert sys.modules["jax"] is None and "jaxlib" not in sys.modules
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
