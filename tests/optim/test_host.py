"""Host roots (rootsolve_optim.host): float64 LAPACK roots called from jit, in step and late."""

import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rootsolve_optim.host import HostRootFn, host_root_fn

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
REL_RIDGE = 1e-6


def spd_stack(k, n, cond, seed):
    """k SPD matrices with eigenvalues log-spaced in [1, cond] and random eigenvectors."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((k, n, n)))
    w = np.logspace(0, np.log10(cond), n)
    return (q * w[None, None, :]) @ np.swapaxes(q, -1, -2)


def reference(stats, p, rel_ridge=REL_RIDGE):
    """a^(-1/p) of a + rel_ridge * lambda_max I by numpy eigh, independently of rootsolve."""
    a = np.asarray(stats, dtype=np.float64)
    a = (a + np.swapaxes(a, -1, -2)) / 2
    w, v = np.linalg.eigh(a)
    w = w + rel_ridge * w[..., -1:]
    return (v * w[..., None, :] ** (-1.0 / p)) @ np.swapaxes(v, -1, -2)


def tol(cond, n, p, eps=EPS64):
    """Forward error bound of two eigh-based roots: (1/p) kappa n eps, doubled, times 10."""
    return 20 * cond * n * eps / p


@pytest.fixture
def stats():
    return spd_stack(3, 8, 1e4, seed=0)


# -- synchronous ------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [2, 3, 4])
def test_sync_matches_reference_under_jit(stats, p):
    root_fn = host_root_fn()
    step = jax.jit(lambda s, t: root_fn(s, p, t))
    roots, residual, converged = step(jnp.asarray(stats), jnp.int32(0))
    ref = reference(stats, p)
    assert roots.dtype == jnp.float64 and residual.dtype == jnp.float32
    assert converged.shape == (3,) and bool(converged.all())
    err = np.max(np.abs(np.asarray(roots) - ref)) / np.max(np.abs(ref))
    assert err < tol(1e4, 8, p)
    assert np.all(np.asarray(residual) < tol(1e4, 8, 1))


def test_residual_probe_by_default_and_exact_on_request():
    """The residual is rootsolve's probe estimate unless ``residual="exact"`` asks for the norm."""
    import rootsolve

    a = spd_stack(3, 40, 1e4, seed=3)
    got = {
        kind: np.asarray(fn(jnp.asarray(a), 4, jnp.int32(0))[1])
        for kind, fn in (("probe", host_root_fn()), ("exact", host_root_fn(residual="exact")))
    }
    for kind, res in got.items():
        info = rootsolve.inv_root(
            a, 4, rel_ridge=REL_RIDGE, return_info=True, residual=kind, symmetrize=False,
            check_finite=False,
        )[1]
        assert np.array_equal(res, np.asarray(info.residual, np.float32))
        # ||X^4 A - I||_F / sqrt(n) of a root within the forward bound (1/p) kappa n eps.
        assert np.all(res < 4 * tol(1e4, 40, 4))
    assert not np.array_equal(got["probe"], got["exact"])
    with pytest.raises(ValueError, match="residual"):
        host_root_fn(residual="cheap")


def test_sync_float32_rounds_the_float64_root_once(stats):
    s32 = jnp.asarray(stats, jnp.float32)
    roots, _, converged = host_root_fn()(s32, 4, jnp.int32(0))
    # The float32 input, rooted in float64 with the float32 statistics' default ridge
    # max(1e-6, 4 n eps_32).
    ref = reference(np.asarray(s32), 4, rel_ridge=max(1e-6, 4 * 8 * EPS32))
    assert roots.dtype == jnp.float32 and bool(converged.all())
    # Only the final cast rounds: |x32 - x64| <= eps32 / 2 * |x64| elementwise.
    assert np.all(np.abs(np.asarray(roots, np.float64) - ref) <= EPS32 / 2 * np.abs(ref) + 1e-30)


def test_sync_under_vmap_is_one_batched_host_call(stats):
    root_fn = host_root_fn()
    batch = jnp.stack([jnp.asarray(stats), 4.0 * jnp.asarray(stats)])
    roots, _, converged = jax.jit(jax.vmap(lambda s: root_fn(s, 2, 0)))(batch)
    assert roots.shape == (2, 3, 8, 8) and bool(converged.all())
    for b in range(2):
        ref = reference(np.asarray(batch[b]), 2)
        assert np.max(np.abs(np.asarray(roots[b]) - ref)) < tol(1e4, 8, 2) * np.max(np.abs(ref))
    (metrics,) = root_fn.metrics().values()
    assert metrics.submitted == 1 and metrics.delivered == 1


def test_failed_block_is_flagged_not_raised(stats):
    bad = stats.copy()
    bad[1, 0, 0] = np.nan
    bad[2] = 0.0  # singular: a relative ridge of a zero matrix is zero
    roots, residual, converged = jax.jit(lambda s: host_root_fn()(s, 4, 0))(jnp.asarray(bad))
    assert np.asarray(converged).tolist() == [True, False, False]
    ref = reference(stats[:1], 4)
    assert np.max(np.abs(np.asarray(roots[:1]) - ref)) < tol(1e4, 8, 4) * np.max(np.abs(ref))
    # The failed blocks get X = 0 and its residual ||0 A - I||_F / sqrt(n) = 1.
    assert np.isfinite(residual[0]) and np.asarray(residual[1:]).tolist() == [1.0, 1.0]
    assert not np.asarray(roots[1:]).any()


def test_root_beyond_the_statistics_dtype_fails_with_inf_residual():
    """A float64 root that overflows the float32 cast is a failure, never a finite residual:
    Shampoo accepts host roots by their residual alone (``finite_where_residual_is``)."""
    from rootsolve import Conditioning
    from rootsolve_optim.host_roots import root_batch

    # 1e-40 is subnormal in float32, so exact; its inverse 1e40 exceeds float32's 3.4e38.
    stats = np.stack([np.eye(3), 1e-40 * np.eye(3)]).astype(np.float32)
    cond = Conditioning(rel_ridge=1e-6, symmetrize=False)
    out = root_batch(stats.astype(np.float64), 1, np.float32, method="eigh", cond=cond,
                     residual="probe")
    assert out.roots.dtype == np.float32 and HostRootFn.finite_where_residual_is
    assert out.converged.tolist() == [True, False]
    assert np.isfinite(out.residual[0]) and np.isinf(out.residual[1])


def test_a_stack_split_over_threads_roots_each_matrix_as_alone():
    """Large stacks are rooted in one chunk per core; every matrix's root, residual and
    convergence are those of its own call, bit for bit."""
    import rootsolve
    from rootsolve import Conditioning
    from rootsolve_optim.host_roots import batched_inv_root

    a = spd_stack(5, 64, 1e4, seed=4)  # 5 * 64^3 is above rootsolve's splitting threshold
    cond = Conditioning(rel_ridge=REL_RIDGE, symmetrize=False)
    roots, res, converged = batched_inv_root(a, 4, "eigh", cond)
    for i in range(5):
        x, info = rootsolve.inv_root(
            a[i], 4, conditioning=cond, return_info=True, residual="probe", check_finite=False
        )
        np.testing.assert_array_equal(roots[i], x)
        assert res[i] == info.residual and converged[i] == info.converged


def test_no_recompilation_across_steps(stats):
    for root_fn in (host_root_fn(), host_root_fn(asynchronous=True, deterministic_delay=1)):
        step = jax.jit(lambda s, t, root_fn=root_fn: root_fn(s, 4, t))
        for t in range(4):
            jax.block_until_ready(step(jnp.asarray(stats) * (t + 1), jnp.int32(t)))
        assert step._cache_size() == 1
        root_fn.close()


# -- asynchronous (delivery rules: test_host_scheduler.py) ------------------------------------


def run_delayed(stats, delay, steps, root_fn):
    """Statistics scaled by (t + 1) at step t; returns each step's outputs as numpy."""
    step = jax.jit(lambda s, t: root_fn(s, 4, t))
    return [
        tuple(np.asarray(x) for x in step(jnp.asarray(stats) * (t + 1), jnp.int32(t)))
        for t in range(steps)
    ]


@pytest.mark.parametrize("delay", [0, 2])
def test_deterministic_delay_delivers_roots_of_step_s_at_s_plus_d(stats, delay):
    with host_root_fn(asynchronous=True, deterministic_delay=delay) as root_fn:
        outs = run_delayed(stats, delay, 6, root_fn)
        (metrics,) = root_fn.metrics().values()
    for t, (roots, residual, converged) in enumerate(outs):
        if t < delay:
            assert not converged.any() and np.isnan(residual).all()
            continue
        assert converged.all()
        ref = reference(stats * (t - delay + 1), 4)
        assert np.max(np.abs(roots - ref)) < tol(1e4, 8, 4) * np.max(np.abs(ref))
    assert metrics.staleness_max == delay and metrics.delivered == 6 - delay


def test_checkpoint_of_pending_jobs_resumes_identically(stats):
    with host_root_fn(asynchronous=True, deterministic_delay=2) as root_fn:
        whole = run_delayed(stats, 2, 6, root_fn)

    def resume(root_fn, step):
        for t in range(3, 6):
            resumed = [np.asarray(x) for x in step(jnp.asarray(stats) * (t + 1), jnp.int32(t))]
            for x, y in zip(resumed, whole[t], strict=True):
                np.testing.assert_array_equal(x, y)

    with host_root_fn(asynchronous=True, deterministic_delay=2) as first:
        step = jax.jit(lambda s, t: first(s, 4, t))
        for t in range(3):
            step(jnp.asarray(stats) * (t + 1), jnp.int32(t))
        saved = first.state_dict()
        assert [len(g["steps"]) for g in saved["pending"].values()] == [2]
        for t in range(3, 5):  # wander off, then restore into the same compiled program
            step(jnp.asarray(stats) * 7, jnp.int32(t))
        first.load_state_dict(saved)
        resume(first, step)
    with host_root_fn(asynchronous=True, deterministic_delay=2) as second:
        second.load_state_dict(saved)  # a new process: restore before the first trace
        resume(second, jax.jit(lambda s, t: second(s, 4, t)))


def test_same_shape_groups_keep_separate_state(stats):
    with host_root_fn(asynchronous=True, deterministic_delay=1) as root_fn:

        def two_groups(s, t):
            return root_fn(s, 4, t), root_fn(2.0 * s, 4, t)

        step = jax.jit(two_groups)
        step(jnp.asarray(stats), jnp.int32(0))
        (a, _, ca), (b, _, cb) = step(jnp.asarray(stats), jnp.int32(1))
        assert sorted(root_fn.metrics()) == [
            "host:3x8x8/float64/p4#0", "host:3x8x8/float64/p4#1"
        ]
    assert bool(ca.all()) and bool(cb.all())
    # (2 s)^(-1/4) = 2^(-1/4) s^(-1/4): each group got its own roots.
    np.testing.assert_allclose(np.asarray(b), 2.0**-0.25 * np.asarray(a), rtol=0, atol=tol(
        1e4, 8, 4) * float(np.max(np.abs(a))))


def test_async_under_vmap_is_one_host_job(stats):
    with host_root_fn(asynchronous=True, deterministic_delay=1) as root_fn:
        step = jax.jit(jax.vmap(lambda s, t: root_fn(s, 4, t), in_axes=(0, None)))
        batch = jnp.stack([jnp.asarray(stats), 16.0 * jnp.asarray(stats)])
        step(batch, jnp.int32(0))
        roots, _, converged = step(batch, jnp.int32(1))
        (metrics,) = root_fn.metrics().values()
    assert roots.shape == (2, 3, 8, 8) and bool(converged.all())
    np.testing.assert_allclose(np.asarray(roots[1]), 0.5 * np.asarray(roots[0]), rtol=0,
                               atol=tol(1e4, 8, 4) * float(np.max(np.abs(roots[0]))))
    assert metrics.submitted == 2


def test_close_stops_async_calls_and_is_idempotent(stats):
    before = set(threading.enumerate())
    root_fn = host_root_fn(asynchronous=True)
    with root_fn:
        root_fn(jnp.asarray(stats), 4, jnp.int32(0))
        workers = [t for t in threading.enumerate() if t not in before
                   and t.name.startswith("rootsolve-host-root")]
    root_fn.close()
    assert len(workers) == 1 and not workers[0].is_alive()
    with pytest.raises(Exception, match="is closed"):
        jax.block_until_ready(root_fn(jnp.asarray(stats), 4, jnp.int32(1)))
    assert bool(host_root_fn()(jnp.asarray(stats), 4, 0)[2].all())  # sync needs no threads


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "qr"}, ValueError, "method must be one of .* got method='qr'"),
        ({"max_workers": 0}, ValueError, "max_workers=0"),
        ({"deterministic_delay": 2}, ValueError, "need asynchronous=True"),
        ({"asynchronous": True, "deterministic_delay": -1}, ValueError, "deterministic_delay=-1"),
        ({"asynchronous": True, "deterministic_delay": 1, "max_staleness_steps": 2},
         ValueError, "one of max_staleness_steps=2 and deterministic_delay=1"),
        ({"asynchronous": 1}, TypeError, "asynchronous=1"),
        ({"rel_ridge": -1.0}, ValueError, "rel_ridge=-1.0"),
    ],
)
def test_bad_options_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        host_root_fn(**kwargs)


def test_bad_call_raises_at_trace_time(stats):
    root_fn = host_root_fn()
    with pytest.raises(ValueError, match=r"shape \(k, n, n\), got \(8, 8\)"):
        root_fn(jnp.asarray(stats[0]), 4, 0)
    with pytest.raises(ValueError, match="p=0"):
        root_fn(jnp.asarray(stats), 0, 0)
    assert isinstance(root_fn, HostRootFn)


# -- inside Shampoo ---------------------------------------------------------------------------


def train(root_fn, steps, step_fn=None, start=None):
    """Shampoo on least squares ``|x W - y|^2`` with W (10, 6): statistics 10x10 and 6x6, p = 4.

    Starts from W = 0 or from ``start = (params, state)``; returns the parameters, the
    optimizer state, the losses and the jitted step.
    """
    import optax

    import rootsolve_optim as ro

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((32, 10)))
    y = x @ jnp.asarray(rng.standard_normal((10, 6)))
    opt = ro.shampoo(
        0.1, root_fn=root_fn, start_preconditioning_step=2, preconditioning_compute_steps=2,
        merge_small_dims=False,
    )

    def step(params, state):
        loss, grads = jax.value_and_grad(lambda w: jnp.mean((x @ w["w"] - y) ** 2))(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    step_fn = step_fn or jax.jit(step)
    params = {"w": jnp.zeros((10, 6))}
    params, state = start or (params, opt.init(params))
    losses = []
    for _ in range(steps):
        params, state, loss = step_fn(params, state)
        losses.append(float(loss))
    return params, state, losses, step_fn


def test_shampoo_with_host_roots_trains_like_device_roots():
    device, *_ = train(None, 12)
    host, state, losses, step = train(host_root_fn(), 12)
    # Both root float64 statistics by eigh; with the ridge kappa <= 1 / rel_ridge = 1e6, so
    # roots agree to kappa n eps / p ~ 6e-10 relatively; 1e-7 leaves room for 5 refreshes.
    scale = float(jnp.max(jnp.abs(device["w"])))
    assert float(jnp.max(jnp.abs(host["w"] - device["w"]))) < 1e-7 * scale
    assert losses[-1] < 0.5 * losses[0]
    assert step._cache_size() == 1


def test_shampoo_with_async_host_roots_trains_on_stale_roots():
    import rootsolve_optim as ro

    with host_root_fn(asynchronous=True) as root_fn:
        params, state, losses, step = train(root_fn, 16)
        root_fn.wait()  # make sure a job has finished, then reach one more refresh
        _, state, _, _ = train(root_fn, 2, step_fn=step, start=(params, state))
        metrics = root_fn.metrics()
    assert losses[-1] < 0.5 * losses[0]
    assert sorted(metrics) == ["host:1x10x10/float64/p4#0", "host:1x6x6/float64/p4#0"]
    assert all(m.delivered >= 1 and m.staleness_last >= 2 for m in metrics.values())
    summary = ro.shampoo_metrics(state)
    # "Nothing new yet" (NaN residual) is not a failure; every delivered root was accepted.
    assert int(summary.never_refreshed) == 0 and int(summary.total_failures) == 0
    assert step._cache_size() == 1


def test_shampoo_with_delayed_host_roots_is_reproducible():
    with host_root_fn(asynchronous=True, deterministic_delay=2) as root_fn:
        first, _, losses, step = train(root_fn, 12)
        root_fn.reset()
        second, *_ = train(root_fn, 12, step_fn=step)
        metrics = root_fn.metrics()
    np.testing.assert_array_equal(np.asarray(first["w"]), np.asarray(second["w"]))
    assert losses[-1] < 0.5 * losses[0]
    assert all(m.staleness_max == 2 and m.delivered == 4 for m in metrics.values())


def dispatch_ahead(root_fn, steps):
    """Shampoo on a 128 x 128 layer, the gradient and the update in two jitted functions.

    Nothing blocks: on a CPU jax runs a program with a host callback at dispatch only when its
    inputs are ready, so each update waits for its gradient in the background and the loop
    returns with the steps still in flight (as every step does on an accelerator).
    """
    import optax

    import rootsolve_optim as ro

    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((2048, 128)))
    y = jnp.asarray(rng.standard_normal((2048, 128)))
    opt = ro.shampoo(
        1e-2, root_fn=root_fn, start_preconditioning_step=2, preconditioning_compute_steps=2
    )
    grad = jax.jit(jax.grad(lambda w: jnp.mean((x @ w["w"] - y) ** 2)))

    @jax.jit
    def update(grads, state, params):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params = {"w": jnp.zeros((128, 128))}
    state = opt.init(params)
    for _ in range(steps):
        params, state = update(grad(params), state, params)
    return params


def test_leaving_the_context_waits_for_dispatched_steps(monkeypatch):
    from rootsolve_optim import host_roots

    real = host_roots.batched_inv_root

    def slow(*args):  # a host slower than the dispatch loop, as with large statistics
        time.sleep(0.05)
        return real(*args)

    monkeypatch.setattr(host_roots, "batched_inv_root", slow)
    with host_root_fn(asynchronous=True, max_staleness_steps=0) as root_fn:
        params = dispatch_ahead(root_fn, 16)
        in_flight = not params["w"].is_ready()
    # Leaving the context drained the steps: their results are there, and staleness 0
    # delivers the roots of the step that asks, exactly as synchronous roots do.
    (metrics,) = root_fn.metrics().values()
    sync = dispatch_ahead(host_root_fn(), 16)
    assert in_flight and metrics.calls == metrics.delivered == 7  # steps 2, 4, ..., 14
    np.testing.assert_array_equal(np.asarray(params["w"]), np.asarray(sync["w"]))
    assert np.all(np.isfinite(np.asarray(params["w"])))


def test_state_dict_waits_for_dispatched_steps(stats):
    """A checkpoint taken right after an unblocked loop holds the jobs of all its steps."""
    big = jnp.asarray(spd_stack(1, 384, 10.0, seed=2)[0] / 384, jnp.float32)
    # Inputs still being computed put the callbacks behind the loop (see dispatch_ahead).
    slow_input = jax.jit(lambda s, t, b: s * (t + 1) + 0.0 * jnp.sum(b @ b @ b))
    with host_root_fn(asynchronous=True, deterministic_delay=3) as root_fn:
        step = jax.jit(lambda s, t: root_fn(s, 4, t))
        for t in range(5):
            out = step(slow_input(jnp.asarray(stats), t, big), jnp.int32(t))
        in_flight = not out[0].is_ready()
        saved = root_fn.state_dict()
    (pending,) = saved["pending"].values()
    assert in_flight and pending["steps"] == [2, 3, 4]
    np.testing.assert_array_equal(pending["stats"][-1], stats * 5)
