"""preconditioner.py: the default root function (device_root_fn) against float64 eigh."""

import jax
import jax.numpy as jnp
import numpy as np

from rootsolve_optim import DeviceRootFn, RootFn, device_root_fn

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)


def test_device_root_fn_matches_eigh_and_reports_iterations():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6, 9))
    stats = x @ np.swapaxes(x, -1, -2)
    fn = device_root_fn(method="eigh", rel_ridge=1e-6)
    assert isinstance(fn, DeviceRootFn) and isinstance(fn, RootFn)
    assert hash(fn) == hash(device_root_fn(method="eigh", rel_ridge=1e-6))
    roots, residual, converged = jax.jit(fn, static_argnums=1)(jnp.asarray(stats), 4, 0)
    w, v = np.linalg.eigh(stats)
    w = w + 1e-6 * w[:, -1:]
    want = (v * w[:, None, :] ** -0.25) @ np.swapaxes(v, -1, -2)
    # float64 eigh, kappa <= 1e6 for the p-th root: error ~ n eps kappa^(1/p)... take n eps/ridge
    np.testing.assert_allclose(np.asarray(roots), want, rtol=6 * EPS64 / 1e-6)
    assert residual.dtype == jnp.float32 and residual.shape == (3,)
    assert bool(jnp.all(converged))
    info = fn.with_info(jnp.asarray(stats), 4, jnp.int32(0))
    assert info.iterations.dtype == jnp.int32 and info.iterations.shape == (3,)


def test_device_root_fn_compute_dtype_float32():
    """float32 roots of float64 statistics: within float32 accuracy of the float64 roots
    (n eps_32 / rel_ridge with the float32 default ridge 4 n eps_32)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 8))
    stats = jnp.asarray(x @ np.swapaxes(x, -1, -2))
    f32 = jax.jit(device_root_fn(compute_dtype="float32"), static_argnums=1)
    f64 = jax.jit(device_root_fn(compute_dtype="float64", rel_ridge=4 * 5 * EPS32),
                  static_argnums=1)
    r32, _, c32 = f32(stats, 2, jnp.int32(0))
    r64, _, _ = f64(stats, 2, jnp.int32(0))
    assert r32.dtype == stats.dtype and bool(jnp.all(c32))
    np.testing.assert_allclose(np.asarray(r32), np.asarray(r64), rtol=50 * 5 * EPS32)


def test_device_root_fn_residual_is_finite_only_for_finite_roots():
    """DeviceRootFn declares finite_where_residual_is, so refresh_roots skips its own pass
    over the roots: wherever a root is not finite its residual must not be, and the
    refresh must still reject the roots of singular statistics without a ridge (counted
    as failures, the previous root kept)."""
    from rootsolve_optim.preconditioner import init_factor_metrics, refresh_roots

    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3))  # rank 3 < 6: singular up to rounding
    stats = jnp.asarray(np.stack([x @ x.T, np.diag([1.0, 1, 1, 0, 0, 0]), np.eye(6)]))
    for method in ("eigh", "newton"):
        fn = device_root_fn(method=method, rel_ridge=0.0)
        assert fn.finite_where_residual_is
        roots, residual, converged = jax.jit(fn, static_argnums=1)(stats, 4, jnp.int32(0))
        roots_finite = np.all(np.isfinite(np.asarray(roots)), axis=(-2, -1))
        res_finite = np.isfinite(np.asarray(residual))
        assert np.all(roots_finite | ~res_finite)
        old = jnp.broadcast_to(2 * jnp.eye(6), (3, 6, 6))
        metrics = init_factor_metrics(3)._replace(last_refresh=jnp.zeros(3, jnp.int32))
        (new_roots,), (met,) = jax.jit(
            lambda s, r, m, fn=fn: refresh_roots(
                (s,), (r,), (m,), (4,), root_fn=fn, step=jnp.int32(5), max_residual=0.1
            )
        )(stats, old, metrics)
        assert np.all(np.isfinite(np.asarray(new_roots)))
        np.testing.assert_array_equal(np.asarray(new_roots[:2]), np.asarray(old[:2]))
        np.testing.assert_array_equal(np.asarray(met.failures), [1, 1, 0])
        np.testing.assert_array_equal(np.asarray(met.last_refresh), [0, 0, 5])


class _CountingRootFn:
    """A root function that records the (p, stack shape) of every call it gets."""

    finite_where_residual_is = True

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, stats, p=None, step=None):
        self.calls.append((p, tuple(stats.shape)))
        return self.fn(stats, p, step)


def _refresh(fn, stats, exponents, last_refresh=0):
    from rootsolve_optim.preconditioner import init_factor_metrics, refresh_roots

    k = [s.shape[0] for s in stats]
    roots = tuple(jnp.zeros_like(s) for s in stats)
    metrics = tuple(
        init_factor_metrics(n)._replace(last_refresh=jnp.full(n, last_refresh, jnp.int32))
        for n in k
    )
    return refresh_roots(
        tuple(stats), roots, metrics, tuple(exponents), root_fn=fn, step=jnp.int32(3),
        max_residual=0.1,
    )


def test_refresh_shares_a_call_between_exponents_that_divide_the_largest():
    """Statistics of one size with p = 2 and p = 4 share one p = 4 call, and the p = 2 roots
    are its squares; p = 4 and p = 6 (4 does not divide 6) get a call each. The roots equal
    separate calls' to float64 rounding: the ridge bounds kappa(S) by 1/rel_ridge, and
    squaring X = S^(-1/4) adds about n eps ||X||^2 to S^(-1/2), so rtol n eps / rel_ridge."""
    rng = np.random.default_rng(3)
    rel = 1e-6

    def stat(k, n):
        x = rng.standard_normal((k, n, 2 * n))
        return jnp.asarray(x @ np.swapaxes(x, -1, -2))

    stats = [stat(2, 7), stat(1, 7), stat(1, 5), stat(3, 7), stat(2, 5)]
    exponents = [2, 4, 6, 2, 4]
    fn = _CountingRootFn(device_root_fn(method="eigh", rel_ridge=rel))
    roots, metrics = _refresh(fn, stats, exponents)
    assert sorted(fn.calls) == [(4, (2, 5, 5)), (4, (6, 7, 7)), (6, (1, 5, 5))]
    tol = 7 * EPS64 / rel
    for s, p, r, m in zip(stats, exponents, roots, metrics, strict=True):
        want, _, _ = device_root_fn(method="eigh", rel_ridge=rel)(s, p, jnp.int32(0))
        np.testing.assert_allclose(
            np.asarray(r), np.asarray(want), rtol=tol, atol=tol * float(jnp.abs(want).max())
        )
        np.testing.assert_array_equal(np.asarray(m.last_refresh), 3)


def test_refresh_sharing_a_call_keeps_each_exponent_for_the_scaled_identity():
    """A block whose roots were never accepted gets (tr(S)/n)^(-1/p) I with its own p, also
    when its statistic was rooted in a call with a larger exponent."""
    s = jnp.asarray(np.diag([1.0, 2.0, 3.0, 10.0]))[None]

    def fails(stats, p=None, step=None):
        k = stats.shape[0]
        return stats, jnp.full((k,), 1.0, jnp.float32), jnp.zeros((k,), bool)

    roots, metrics = _refresh(fails, [s, s], [4, 2], last_refresh=-1)
    for r, p in zip(roots, (4, 2), strict=True):
        np.testing.assert_allclose(np.asarray(r[0]), 4.0 ** (-1 / p) * np.eye(4), rtol=4 * EPS64)
    np.testing.assert_array_equal(np.asarray(metrics[1].failures), [1])
