"""The Schur-free variant: agreement with Schur-Newton on numpy, jax (``jit``, ``vmap``)
and the strict array-API namespace, and failures reported instead of returned.

Without a Schur form the Denman-Beavers square roots invert the matrix itself,
so their attainable accuracy carries a further ``cond_2(A)`` (passed to
``general_tolerance`` as ``nonnormality``).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from _spd_support import cupy_or_skip
from hypothesis import given, settings
from hypothesis import strategies as st

import rootsolve as rs
from rootsolve import testing as gm

jax = pytest.importorskip("jax")
jnp = jax.numpy
xps = pytest.importorskip("array_api_strict")

EPS = float(np.finfo(np.float64).eps)


def rel_err(x, ref) -> float:
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


def host(x) -> np.ndarray:
    if type(x).__module__.startswith("array_api_strict"):
        return np.from_dlpack(x)
    return np.asarray(x)


def agreement_bound(a: np.ndarray, m: int, p: int) -> float:
    """Both methods' forward bounds: Schur-Newton's plus the Schur-free one with cond_2(A)."""
    root = rs.root(a, p, assume_a="gen", method="schur_newton")
    cond = gm.general_power_condition(a, m, p, root) + 1
    n = a.shape[-1]
    return gm.general_tolerance(n, cond, EPS) + gm.general_tolerance(
        n, cond, EPS, nonnormality=np.linalg.cond(a)
    )


#: Fixed cases for the traced backends: real with complex pairs, complex, a Jordan-like block.
CASES = {
    "real_pairs": gm.with_spectrum([3.0, 0.5, 1 + 2j, 1 - 2j, -2 + 0.5j, -2 - 0.5j], rng=1).a,
    "complex": gm.random_spectrum(6, rng=2, real=False).a,
    "jordan": gm.jordan_like((4, 2), (1.5, 0.3), rng=3).a,
}


@settings(max_examples=25, deadline=None)
@given(gm.general_matrices(), gm.general_exponents())
def test_schur_free_agrees_with_schur_newton(case, exponent):
    m, p = exponent
    a = case.a
    x, info = rs.power(a, m / p, assume_a="gen", method="schur_free", return_info=True)
    y = rs.power(a, m / p, assume_a="gen", method="schur_newton")
    assert bool(info.converged) and info.method_name == "schur_free"
    assert x.dtype == a.dtype
    assert rel_err(x, y) <= agreement_bound(a, m, p)


@functools.cache
def jitted(inverse: bool, p: int, batched: bool = False):
    fn = rs.inv_root if inverse else rs.root
    f = functools.partial(fn, p=p, assume_a="gen", return_info=True)
    return jax.jit(jax.vmap(f) if batched else f)


@pytest.mark.parametrize(
    ("name", "inverse"),
    [("real_pairs", False), ("real_pairs", True), ("complex", True), ("jordan", False)],
)
def test_jit_agrees_with_schur_newton(name, inverse):
    a = CASES[name]
    x, info = jitted(inverse, 3)(jnp.asarray(a))
    assert bool(info.converged) and int(info.method) == rs.METHOD_NAMES.index("schur_free")
    y = (rs.inv_root if inverse else rs.root)(a, 3, assume_a="gen")
    assert x.dtype == a.dtype
    assert rel_err(host(x), y) <= agreement_bound(a, -1 if inverse else 1, 3)


def test_vmap_gives_each_matrix_its_own_number_of_square_roots():
    a = np.stack([CASES["real_pairs"], 100 * CASES["real_pairs"].T, CASES["jordan"]])
    x, info = jitted(False, 4, batched=True)(jnp.asarray(a))
    assert np.all(host(info.converged))
    for i in range(3):
        y = rs.root(a[i], 4, assume_a="gen")
        assert rel_err(host(x[i]), y) <= agreement_bound(a[i], 1, 4)


@pytest.mark.parametrize(
    ("backend", "p", "method", "expected"),
    [
        ("jax", 5, "schur_free", "schur_free"),
        ("jax", 5, "auto", "auto"),
        ("array_api", 2, "auto", "schur_free"),
        ("array_api", 5, "auto", "schur_free"),
    ],
)
def test_eager_backends(backend, p, method, expected):
    a = CASES["real_pairs"]
    arr = jnp.asarray(a) if backend == "jax" else xps.asarray(a)
    x, info = rs.inv_root(arr, p, assume_a="gen", method=method, return_info=True)
    assert type(x) is type(arr) and x.dtype == arr.dtype and bool(host(info.converged))
    if expected == "auto":
        # A concrete jax array on the CPU goes to the host (Schur-Newton); on an
        # accelerator it stays there (Schur-free Newton).
        on_cpu = jax.default_backend() == "cpu"
        expected = "schur_newton" if on_cpu else "schur_free"
    assert int(host(info.method)) == rs.METHOD_NAMES.index(expected)
    y = rs.inv_root(a, p, assume_a="gen")
    assert rel_err(host(x), y) <= agreement_bound(a, -1, p)


def test_schur_newton_cannot_trace():
    with pytest.raises(ValueError, match="traced jax array"):
        jax.jit(lambda a: rs.root(a, 3, assume_a="gen", method="schur_newton"))(
            jnp.asarray(CASES["real_pairs"])
        )


@pytest.mark.parametrize(
    "bad",
    [np.diag([2.0, -1.0, 3.0, 1.0, 0.5, 4.0]), np.diag([2.0, 0.0, 3.0, 1.0, 0.5, 4.0])],
    ids=["negative", "singular"],
)
def test_invalid_spectrum_under_jit_is_reported_not_returned(bad):
    x, info = jitted(True, 3)(jnp.asarray(bad))
    assert not bool(info.converged)
    plain = _plain_inv_cube_root(jnp.asarray(bad))
    assert np.all(np.isnan(host(plain)))


@jax.jit
def _plain_inv_cube_root(a):
    return rs.inv_root(a, 3, assume_a="gen")


def test_non_finite_input_under_jit():
    a = CASES["real_pairs"].copy()
    a[0, 1] = np.nan
    _, info = jitted(False, 3)(jnp.asarray(a))
    assert not bool(info.converged) and np.isinf(float(info.residual))


@pytest.mark.parametrize("backend", ["numpy", "jax", "array_api"])
def test_eager_failures_name_the_eigenvalue(backend):
    bad = np.array([[1.0, 2.0, 0.0], [0.0, -4.0, 1.0], [0.0, 0.0, 2.0]])
    arr = {"numpy": np.asarray, "jax": jnp.asarray, "array_api": xps.asarray}[backend](bad)
    with pytest.raises(rs.NegativeEigenvalueError, match="-4"):
        rs.root(arr, 2, assume_a="gen", method="schur_free")
    with pytest.raises(rs.SingularMatrixError, match="singular"):
        rs.inv_root(np.diag([1.0, 0.0]), 2, assume_a="gen", method="schur_free")


def test_iteration_cap_is_reported():
    a = gm.nonnormal(6, rng=4, departure=5.0).a
    with pytest.raises(rs.ConvergenceError, match="did not converge"):
        rs.root(a, 3, assume_a="gen", method="schur_free", max_iter=2)
    x, info = rs.root(a, 3, assume_a="gen", method="schur_free", max_iter=2, return_info=True)
    assert not bool(info.converged)


@settings(max_examples=10, deadline=None)
@given(st.floats(0.02, 0.3), st.booleans())
def test_near_the_negative_axis(delta, real):
    a = gm.near_negative_axis(6, delta=delta, rng=0, real=real).a
    x, info = rs.root(a, 3, assume_a="gen", method="schur_free", return_info=True)
    assert bool(info.converged)
    y = rs.root(a, 3, assume_a="gen")
    assert rel_err(x, y) <= agreement_bound(a, 1, 3)


@pytest.mark.gpu
@pytest.mark.parametrize("inverse", [False, True], ids=["root", "inv_root"])
def test_cupy_schur_free(inverse):
    cp = cupy_or_skip()
    a = CASES["real_pairs"]
    fn = rs.inv_root if inverse else rs.root
    x, info = fn(cp.asarray(a), 3, assume_a="gen", return_info=True)
    assert isinstance(x, cp.ndarray) and bool(info.converged)
    assert rel_err(cp.asnumpy(x), fn(a, 3, assume_a="gen")) <= agreement_bound(
        a, -1 if inverse else 1, 3
    )
