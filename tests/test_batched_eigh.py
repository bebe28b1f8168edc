"""Batched eigendecompositions split over threads (:mod:`rootsolve.batched_eigh`).

Bounds: LAPACK's ``syevd``/``heevd`` is backward stable, so the computed
pairs satisfy ``||A V - V diag(w)||_F <= c n eps ||A||_F`` and
``||V^H V - I||_F <= c n eps``, and by Weyl's theorem every eigenvalue lies
within that backward error of the exact one; ``c = 8`` leaves room for the
constants of the reduction to tridiagonal form. The reference eigenvalues
come from ``numpy.linalg.eigh`` of the same matrices, one call per matrix.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rootsolve
from rootsolve import batched_eigh as be
from rootsolve.testing import spd_matrices

jax = pytest.importorskip("jax")
jnp = jax.numpy

C = 8


@pytest.fixture
def two_threads():
    """Split over two workers whatever the machine has (1 core is enough to test it)."""
    old = rootsolve.set_num_threads(2)
    yield
    rootsolve.set_num_threads(old)


def _hermitian(shape, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    n = shape[-1]
    g = rng.standard_normal((*shape[:-1], 2 * n))
    if np.issubdtype(dtype, np.complexfloating):
        g = g + 1j * rng.standard_normal(g.shape)
    a = g @ np.conj(np.swapaxes(g, -1, -2)) / n - 0.5 * np.eye(n)  # indefinite too
    return a.astype(dtype)


def _check(a, w, v):
    a64 = a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)
    eps = np.finfo(a.dtype).eps
    n = a.shape[-1]
    norm = np.linalg.norm(a64, axis=(-2, -1))
    resid = np.linalg.norm(a64 @ v - v * w[..., None, :], axis=(-2, -1))
    assert np.all(resid <= C * n * eps * norm)
    orth = np.linalg.norm(np.conj(np.swapaxes(v, -1, -2)) @ v - np.eye(n), axis=(-2, -1))
    assert np.all(orth <= C * n * eps)
    ref = np.stack([np.linalg.eigvalsh(m) for m in a64.reshape(-1, n, n)]).reshape(w.shape)
    assert np.all(np.abs(w - ref) <= 2 * C * n * eps * norm[..., None])
    assert np.all(np.diff(w, axis=-1) >= 0)


@pytest.mark.parametrize(
    "dtype", [np.float64, np.float32, np.complex128], ids=["float64", "float32", "complex128"]
)
@pytest.mark.parametrize("shape", [(6, 40, 40), (2, 3, 64, 64), (48, 48)], ids=str)
def test_numpy_threaded_pairs(two_threads, dtype, shape):
    a = _hermitian(shape, 1, dtype)
    w, v = be.eigh_numpy(a)
    assert w.shape == shape[:-1] and v.shape == shape
    assert w.dtype == np.finfo(dtype).dtype and v.dtype == dtype
    _check(a, w, v)


def test_numpy_threaded_equals_one_thread(two_threads):
    """Each matrix is decomposed by the same LAPACK call either way."""
    a = _hermitian((5, 64, 64), 2)
    w2, v2 = be.eigh_numpy(a)
    rootsolve.set_num_threads(1)
    w1, v1 = be.eigh_numpy(a)
    eps, n = np.finfo(np.float64).eps, a.shape[-1]
    norm = np.linalg.norm(a, axis=(-2, -1))[..., None]
    assert np.all(np.abs(w2 - w1) <= 2 * C * n * eps * norm)
    # Eigenvectors agree up to sign: compare the projectors of the (simple) eigenvalues.
    assert np.allclose(np.abs(np.sum(v1 * v2, axis=-2)), 1, atol=1e3 * n * eps)


def test_numpy_failure_raises_or_gives_nan(two_threads, monkeypatch):
    a = _hermitian((4, 40, 40), 3)
    real = np.linalg.eigh

    def flaky(x):  # LAPACK failing on the matrix whose (0, 0) entry is 123
        if np.any(x[..., 0, 0] == 123.0):
            raise np.linalg.LinAlgError("Eigenvalues did not converge")
        return real(x)

    monkeypatch.setattr(np.linalg, "eigh", flaky)
    a[2, 0, 0] = 123.0
    with pytest.raises(np.linalg.LinAlgError):
        be.eigh_numpy(a)
    w, v = be.eigh_numpy(a, nan_on_failure=True)
    assert np.all(np.isnan(w[2])) and np.all(np.isnan(v[2]))
    keep = [0, 1, 3]
    _check(a[keep], w[keep], v[keep])


def test_blas_limit_restored(two_threads):
    from threadpoolctl import threadpool_info

    before = [i["num_threads"] for i in threadpool_info()]
    be.eigh_numpy(_hermitian((8, 64, 64), 4))
    assert [i["num_threads"] for i in threadpool_info()] == before


@pytest.mark.parametrize("user_choice", [None, "2"])
def test_blas_under_jax_lapack_gets_one_thread(monkeypatch, user_choice):
    """scipy's BLAS (the one jaxlib's CPU LAPACK calls) gets one thread, unless the user
    chose a count."""
    import os

    import scipy
    from threadpoolctl import ThreadpoolController, threadpool_limits

    for name in be._BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if user_choice:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", user_choice)
    monkeypatch.setattr(be, "_xla_blas_done", False)
    site = os.path.dirname(os.path.dirname(scipy.__file__))
    with threadpool_limits(limits=2, user_api="blas"):  # restored on leaving
        be._limit_blas_under_xla()
        libs = ThreadpoolController().select(user_api="blas").lib_controllers
        own = [lib for lib in libs if lib.filepath.startswith(os.path.join(site, "scipy"))]
        assert own, [lib.filepath for lib in libs]
        assert [lib.num_threads for lib in own] == [1 if user_choice is None else 2] * len(own)


def test_concurrent_callers(two_threads):
    a = [_hermitian((6, 48, 48), 10 + i) for i in range(4)]
    out: dict[int, tuple] = {}

    def run(i):
        out[i] = be.eigh_numpy(a[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        _check(a[i], *out[i])


@pytest.mark.parametrize("shape", [(3, 0, 0), (0, 0), (0, 5, 5)], ids=str)
def test_numpy_empty(two_threads, shape):
    w, v = be.eigh_numpy(np.zeros(shape))
    assert w.shape == shape[:-1] and v.shape == shape


@pytest.mark.parametrize("shape", [(3,), (2, 3)], ids=str)
def test_not_square(shape):
    with pytest.raises(ValueError, match="square matrices"):
        be.eigh_numpy(np.zeros(shape))
    with pytest.raises(ValueError, match="square matrices"):
        be.eigh_jax(jnp.zeros(shape))


def test_pool_has_every_thread_after_a_small_batch(monkeypatch):
    """A first batch smaller than the thread count does not shrink the pool."""
    names = set()
    real = be._eigh_chunk

    def recorded(a, nan_on_failure):
        names.add(threading.current_thread().name)
        return real(a, nan_on_failure)

    monkeypatch.setattr(be, "_eigh_chunk", recorded)
    old = rootsolve.set_num_threads(3)
    try:
        be.eigh_numpy(_hermitian((2, 64, 64), 20))
        barrier = threading.Barrier(3, timeout=10)

        def waiting(a, nan_on_failure):  # each chunk waits for the other two: 3 at once
            barrier.wait()
            return recorded(a, nan_on_failure)

        monkeypatch.setattr(be, "_eigh_chunk", waiting)
        names.clear()
        be.eigh_numpy(_hermitian((6, 64, 64), 21))
        assert len(names) == 3
    finally:
        rootsolve.set_num_threads(old)


def test_set_num_threads_validates():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            rootsolve.set_num_threads(bad)
    old = rootsolve.set_num_threads(3)
    assert rootsolve.get_num_threads() == 3
    assert rootsolve.set_num_threads(old) == 3


def test_environment_variable(monkeypatch):
    monkeypatch.setenv("ROOTSOLVE_NUM_THREADS", "5")
    assert be._default_threads() == 5
    for bad in ("0", "two"):
        monkeypatch.setenv("ROOTSOLVE_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="ROOTSOLVE_NUM_THREADS"):
            be._default_threads()


# -- jax ---------------------------------------------------------------------------------


def _jit_eigh():
    """A fresh jitted function: the platform choice is made when it is traced."""
    return jax.jit(lambda x: be.eigh_jax(x))


@pytest.fixture
def count_callbacks(monkeypatch):
    calls = []
    real = be._host_eigh_callback

    def counted(a):
        calls.append(a.shape)
        return real(a)

    monkeypatch.setattr(be, "_host_eigh_callback", counted)
    return calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128], ids=str)
def test_jax_jit_goes_through_threads_on_cpu(two_threads, count_callbacks, dtype):
    a = _hermitian((6, 40, 40), 5, dtype)
    w, v = _jit_eigh()(jnp.asarray(a))
    assert count_callbacks == [a.shape] if jax.default_backend() == "cpu" else not count_callbacks
    assert w.dtype == np.finfo(dtype).dtype and v.dtype == dtype
    _check(a, np.asarray(w), np.asarray(v))


def test_jax_small_stacks_go_through_threads_too(two_threads, count_callbacks):
    """Any stack, however small its matrices, stays out of jaxlib's batched CPU kernel."""
    small = _hermitian((6, 16, 16), 6)
    _check(small, *map(np.asarray, _jit_eigh()(jnp.asarray(small))))
    assert count_callbacks == ([small.shape] if jax.default_backend() == "cpu" else [])


def _lapack_batch_dims(f, a):
    """``num_batch_dims`` of every LAPACK eigh call in the CPU program of ``f(a)``."""
    text = jax.jit(f).trace(a).lower(lowering_platforms=("cpu",)).as_text()
    calls = [line for line in text.splitlines() if "custom_call @lapack_" in line]
    return [line.split('num_batch_dims = "')[1].split('"')[0] for line in calls]


def test_jax_single_or_one_thread_keeps_jax_eigh_one_matrix_at_a_time(
    two_threads, count_callbacks
):
    single = jnp.asarray(_hermitian((1, 40, 40), 6))
    _check(np.asarray(single), *map(np.asarray, _jit_eigh()(single)))
    _check(np.asarray(single[0]), *map(np.asarray, _jit_eigh()(single[0])))
    rootsolve.set_num_threads(1)
    a = jnp.asarray(_hermitian((2, 3, 40, 40), 6))
    _check(np.asarray(a), *map(np.asarray, _jit_eigh()(a)))
    assert count_callbacks == []
    # jaxlib's batched kernel waits on XLA's worker pool from inside it (a deadlock when
    # several run at once): with one thread the stack is decomposed matrix by matrix.
    assert _lapack_batch_dims(be.eigh_jax, a) == ["0"]
    assert _lapack_batch_dims(be.eigh_jax, single[0]) == ["0"]


def test_jax_vmap(two_threads, count_callbacks):
    a = _hermitian((3, 4, 40, 40), 7)
    w, v = jax.jit(jax.vmap(lambda x: be.eigh_jax(x)))(jnp.asarray(a))
    _check(a, np.asarray(w), np.asarray(v))
    if jax.default_backend() == "cpu":  # one call with the whole batch
        assert count_callbacks == [a.shape]


def test_jax_derivatives_match_jax_eigh(two_threads):
    """Forward and reverse mode against jax's own eigh (simple eigenvalues)."""
    a = jnp.asarray(_hermitian((2, 36, 36), 8))
    da = jnp.asarray(_hermitian((2, 36, 36), 9))

    def ours(x):
        return be.eigh_jax(x)

    def theirs(x):
        return tuple(jnp.linalg.eigh(x, symmetrize_input=False))

    # Tangents must be symmetric: both rules read the full tangent.
    (w1, v1), (dw1, dv1) = jax.jvp(ours, (a,), (da,))
    (w0, v0), (dw0, dv0) = jax.jvp(theirs, (a,), (da,))
    gap = float(jnp.min(jnp.diff(w0, axis=-1)))
    tol = 1e3 * 36 * np.finfo(np.float64).eps * float(jnp.max(jnp.abs(a))) / gap
    assert np.allclose(dw1, dw0, atol=tol * float(jnp.max(jnp.abs(da))))
    # Eigenvector signs may differ: compare the derivatives of v diag(w) v^T's pieces.
    sign = jnp.sign(jnp.sum(v1 * v0, axis=-2))[..., None, :]
    assert np.allclose(dv1 * sign, dv0, atol=tol * float(jnp.max(jnp.abs(da))))

    def loss(f):
        return lambda x: jnp.sum(f(x)[0] ** 2) + jnp.sum(f(x)[1][..., 0] ** 4)

    g1, g0 = jax.grad(loss(ours))(a), jax.grad(loss(theirs))(a)
    assert np.allclose(g1, g0, rtol=1e-8, atol=tol * float(jnp.max(jnp.abs(g0))))


def test_jax_non_finite_gives_nan_not_error(two_threads):
    a = _hermitian((3, 40, 40), 11)
    a[1, 5, 5] = np.nan
    w, v = map(np.asarray, _jit_eigh()(jnp.asarray(a)))
    assert not np.all(np.isfinite(w[1]))
    _check(a[[0, 2]], w[[0, 2]], v[[0, 2]])


def test_inv_root_under_jit_reports_failure(two_threads):
    """rootsolve's info, not an exception, says which matrix of a traced batch failed."""
    a = _hermitian((3, 40, 40), 12) + np.eye(40)
    a[0, 3, 3] = np.inf
    x, info = jax.jit(lambda b: rootsolve.inv_root(b, 4, method="eigh", return_info=True))(
        jnp.asarray(a)
    )
    assert list(np.asarray(info.converged)) == [False, True, True]
    ref = rootsolve.inv_root(a[1:], 4, method="eigh")
    n, eps = 40, np.finfo(np.float64).eps
    assert np.max(np.abs(np.asarray(x[1:]) - ref)) <= 1e3 * n * eps * np.max(np.abs(ref))


# -- properties --------------------------------------------------------------------------


@given(
    case=spd_matrices(
        n=st.integers(32, 48),
        kind="any",
        dtype=st.sampled_from(["float64", "float32", "complex128"]),
        batch_shape=st.sampled_from([(2,), (5,), (3, 2)]),
    ),
    use_jax=st.booleans(),
)
@settings(deadline=None)
def test_split_matches_the_spectrum_it_was_built_from(case, use_jax):
    """Any spectrum (geometric, clustered, singular), scale and batch: the split
    decomposition is backward stable and its eigenvalues lie within the Weyl bound of the
    ones the matrices were built from (plus the rounding of storing the matrix)."""
    old = rootsolve.set_num_threads(2)
    try:
        a = case.matrix
        if use_jax:
            w, v = map(np.asarray, _jit_eigh()(jnp.asarray(a)))
        else:
            w, v = be.eigh_numpy(a)
    finally:
        rootsolve.set_num_threads(old)
    _check(a, w, v)
    eps, n = np.finfo(a.dtype).eps, a.shape[-1]
    top = np.max(np.abs(case.eigenvalues), axis=-1, keepdims=True)
    assert np.all(np.abs(w - case.eigenvalues) <= (2 * C * n + 1) * eps * np.sqrt(n) * top)
