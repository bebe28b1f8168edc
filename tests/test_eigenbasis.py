"""``refine_eigenbasis``: properties on numpy, agreement across backends, errors.

Tolerances come from the unit roundoff ``eps``, the size ``n``, the
condition number and the relative eigenvalue gap: Householder QR gives
columns orthonormal to ``O(n eps)`` (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., Theorem 19.4), and a symmetric perturbation
``E`` moves an eigenvector by at most ``||E|| / gap`` (Davis-Kahan).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _spd_support import EPS32, EPS64, cupy_or_skip, to_backend, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st

import rootsolve as rs
from rootsolve.testing import random_orthogonal, spd_with_spectrum

SEEDS = st.integers(0, 2**32 - 1)


def _near_basis(v: np.ndarray, angle: float, rng: np.random.Generator) -> np.ndarray:
    """``v`` rotated by ``expm(angle S)`` for a random unit skew ``S``: a stale basis."""
    n = v.shape[-1]
    s = rng.standard_normal((n, n))
    s = (s - s.T) / 2
    s /= max(np.linalg.norm(s, 2), 1e-300)
    w, u = np.linalg.eigh(1j * s)  # i S is Hermitian, so expm(t S) = U exp(-i t w) U^H
    rot = ((u * np.exp(-1j * angle * w)) @ u.conj().T).real
    return v @ rot


def _projector_gap(q: np.ndarray, v: np.ndarray, k: int) -> float:
    """``||Q_k Q_k^T - V_k V_k^T||_2``: sine of the largest angle between leading subspaces."""
    return float(np.linalg.norm(q[:, :k] @ q[:, :k].T - v[:, :k] @ v[:, :k].T, 2))


@settings(max_examples=30)
@given(n=st.integers(1, 12), seed=SEEDS, steps=st.integers(1, 3),
       cond=st.floats(1.0, 1e8), rank=st.floats(0.0, 1.0),
       method=st.sampled_from(["householder", "cholesky"]))
def test_basis_stays_orthonormal(n, seed, steps, cond, rank, method):
    """Orthonormal to O(n eps) after any number of steps, even for singular input."""
    rng = np.random.default_rng(seed)
    w = np.geomspace(1.0, 1.0 / cond, n)
    w[int(round(rank * n)):] = 0.0  # zero eigenvalues make A Q rank-deficient
    a = spd_with_spectrum(w, rng).matrix
    q = random_orthogonal(n, rng)
    res, info = rs.refine_eigenbasis(a, q, steps=steps, orthonormalize=method,
                                     return_info=True)
    err = np.abs(res.eigenvectors.T @ res.eigenvectors - np.eye(n)).max()
    assert err <= 10 * n * EPS64
    assert np.all(np.diff(res.eigenvalues) <= 0)  # largest first
    assert info.steps == steps and bool(np.all(info.finite))
    assert sorted(info.permutation.tolist()) == list(range(n))
    # The reported eigenvalues are the Rayleigh quotients at the returned basis.
    rq = np.einsum("ij,ik,kj->j", res.eigenvectors, a, res.eigenvectors)
    assert np.abs(rq - res.eigenvalues).max() <= 10 * n * EPS64 * np.abs(w).max()


@settings(max_examples=15)
@given(n=st.integers(2, 8), seed=SEEDS, ratio=st.floats(0.05, 0.6),
       scale=st.floats(1e-3, 1e3))
def test_repeated_steps_converge_to_eigh_subspaces(n, seed, ratio, scale):
    """From a random start, steps converge to every leading eigh subspace.

    The spectrum ``scale * ratio^i`` has consecutive ratios ``ratio``, so each
    step shrinks the angles by that factor (Golub & Van Loan, Thm 8.2.2);
    enough steps take an initial tangent up to 1e8 below rounding.
    """
    rng = np.random.default_rng(seed)
    w = scale * ratio ** np.arange(n)
    case = spd_with_spectrum(w, rng)
    v = case.eigenvectors[:, ::-1]  # descending, as refine_eigenbasis orders
    steps = math.ceil(math.log(EPS64 * 1e-8) / math.log(ratio))
    res, info = rs.refine_eigenbasis(case.matrix, random_orthogonal(n, rng), steps=steps,
                                     return_info=True)
    # Rounding in A (n eps ||A||) moves the k-th subspace by that over the relative gap.
    tol = 20 * n * EPS64 / (1 - ratio) / ratio ** (n - 1)
    for k in range(1, n):
        assert _projector_gap(res.eigenvectors, v, k) <= tol
    assert np.abs(res.eigenvalues - w).max() <= 20 * n * EPS64 * scale
    assert info.off_diagonal <= tol


def test_one_step_rate_matches_theory():
    """The angle of the leading column falls by about ``lambda_2 / lambda_1`` per step."""
    rng = np.random.default_rng(0)
    w = np.array([1.0, 0.5, 0.2, 0.1, 0.05])
    case = spd_with_spectrum(w, rng)
    v = case.eigenvectors[:, ::-1]
    q = _near_basis(v, 1e-3, rng)
    before = _projector_gap(q, v, 1)
    after = _projector_gap(rs.refine_eigenbasis(case.matrix, q).eigenvectors, v, 1)
    # tan(theta') <= (lambda_2/lambda_1) tan(theta); the sine shrinks at the same rate to
    # first order in theta = 1e-3.
    assert after <= 0.5 * before * (1 + 1e-5)


@settings(max_examples=15)
@given(n=st.integers(1, 10), seed=SEEDS, cond=st.floats(2.0, 1e3), steps=st.integers(1, 2),
       complex_=st.booleans())
def test_haar_rotation_rotates_the_output(n, seed, cond, steps, complex_):
    """``Q(U A U^H, U Q0) = U Q(A, Q0)`` (column phases fixed by R's diagonal)."""
    rng = np.random.default_rng(seed)
    w = np.geomspace(1.0, 1.0 / cond, n)
    case = spd_with_spectrum(w, rng, complex=complex_)
    v = case.eigenvectors[:, ::-1]
    if complex_:
        # A small unitary rotation expm(i t H) of the exact basis.
        h = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
        hw, hv = np.linalg.eigh((h + h.conj().T) / 2)
        q0 = v @ ((hv * np.exp(0.05j * hw / max(np.abs(hw).max(), 1e-300))) @ hv.conj().T)
    else:
        q0 = _near_basis(v, 0.05, rng)
    u = random_orthogonal(n, rng, complex_)
    a_rot = u @ case.matrix @ u.conj().T
    a_rot = (a_rot + a_rot.conj().T) / 2
    ref = rs.refine_eigenbasis(case.matrix, q0, steps=steps)
    got = rs.refine_eigenbasis(a_rot, u @ q0, steps=steps)
    expect = u @ ref.eigenvectors
    # Compare up to column phases.
    ph = np.sum(expect.conj() * got.eigenvectors, axis=0)
    ph = ph / np.abs(ph)
    rel_gap = (cond ** (1 / max(n - 1, 1)) - 1) if n > 1 else 1.0
    tol = 50 * n * EPS64 * (cond + 1 / rel_gap)
    assert np.abs(got.eigenvectors - expect * ph).max() <= tol
    assert np.abs(got.eigenvalues - ref.eigenvalues).max() <= 50 * n * EPS64


def test_exact_basis_is_a_fixed_point_and_permutation_tracks_columns():
    """An exact basis in the wrong order comes back sorted; ``permutation`` says how."""
    rng = np.random.default_rng(1)
    w = np.array([4.0, 3.0, 2.0, 1.0])
    case = spd_with_spectrum(w, rng)
    v_asc = case.eigenvectors  # ascending: the reverse of the result's order
    res, info = rs.refine_eigenbasis(case.matrix, v_asc, return_info=True)
    assert info.permutation.tolist() == [3, 2, 1, 0]
    assert np.abs(res.eigenvectors - v_asc[:, info.permutation]).max() <= 50 * EPS64
    np.testing.assert_allclose(res.eigenvalues, w, rtol=20 * EPS64)
    assert info.off_diagonal <= 20 * EPS64


@settings(max_examples=15)
@given(n=st.integers(2, 10), seed=SEEDS, cond=st.floats(1.0, 1e6),
       angle=st.floats(1e-6, 0.5), cold=st.booleans(), complex_=st.booleans())
def test_off_diagonal_is_the_rotated_matrix_off_diagonal_mass(n, seed, cond, angle, cold,
                                                               complex_):
    """``off_diagonal`` (from the residual ``A Q - Q diag(w)``) is its definition on ``Q^H A Q``.

    For a unitary ``Q`` the two Frobenius norms are equal; each side is computed
    to ``O(n eps ||A||_F)`` absolute (one product, or one product and a subtraction).
    """
    rng = np.random.default_rng(seed)
    case = spd_with_spectrum(np.geomspace(1.0, 1.0 / cond, n), rng, complex=complex_)
    q = None if cold else _near_basis(case.eigenvectors[:, ::-1], angle, rng)
    if q is not None and complex_:
        q = q.astype(np.complex128)
    res, info = rs.refine_eigenbasis(case.matrix, q, return_info=True)
    v = res.eigenvectors
    b = v.conj().T @ case.matrix @ v
    diag = np.diag(b).real
    off = np.linalg.norm(b - np.diag(np.diag(b)))
    ref = off / np.linalg.norm(diag)
    scale = np.linalg.norm(case.matrix) / np.linalg.norm(diag)
    assert abs(info.off_diagonal - ref) <= 10 * n * EPS64 * scale


@settings(max_examples=15)
@given(n=st.integers(1, 10), seed=SEEDS, steps=st.integers(1, 3), cond=st.floats(1.0, 1e6),
       angle=st.floats(0.0, 0.5))
def test_without_resort_the_basis_is_the_qr_of_the_sorted_power_step(n, seed, steps, cond,
                                                                     angle):
    """``resort=False``: the same basis as the default, in the last QR's column order.

    The last step's columns come from ``qr(A Q)`` with ``Q``'s columns sorted by
    their Rayleigh quotients, which are the ``eigenvalues`` returned; the default
    only measures the quotients again and reorders. Both are products of the
    same operations, so they agree exactly.
    """
    rng = np.random.default_rng(seed)
    case = spd_with_spectrum(np.geomspace(1.0, 1.0 / cond, n), rng)
    q = _near_basis(case.eigenvectors, angle, rng)  # ascending: every sort moves columns
    res, info = rs.refine_eigenbasis(case.matrix, q, steps=steps, return_info=True)
    raw, raw_info = rs.refine_eigenbasis(case.matrix, q, steps=steps, resort=False,
                                         return_info=True)
    assert np.abs(raw.eigenvectors.T @ raw.eigenvectors - np.eye(n)).max() <= 10 * n * EPS64
    assert np.all(np.diff(raw.eigenvalues) <= 0) and raw_info.steps == steps
    # The default's columns are the raw ones reordered; the permutations compose.
    col = [int(np.argmax(np.abs(raw.eigenvectors.T @ res.eigenvectors[:, j])))
           for j in range(n)]
    assert sorted(col) == list(range(n))
    np.testing.assert_array_equal(res.eigenvectors, raw.eigenvectors[:, col])
    np.testing.assert_array_equal(info.permutation, raw_info.permutation[col])
    # The eigenvalues (and the report) belong to the basis the last step started from.
    start = q[:, raw_info.permutation] if steps == 1 else None
    if start is not None:
        rq = np.sum(start * (case.matrix @ start), axis=0)
        np.testing.assert_allclose(raw.eigenvalues, rq, rtol=0,
                                   atol=10 * n * EPS64 * np.linalg.norm(case.matrix))
        sym = (case.matrix + case.matrix.T) / 2  # as symmetrize_input does
        qr_q, qr_r = np.linalg.qr(sym @ start)
        np.testing.assert_array_equal(raw.eigenvectors, qr_q * np.where(np.diag(qr_r) < 0, -1, 1))


def test_cold_start_is_eigh_descending():
    rng = np.random.default_rng(2)
    case = spd_with_spectrum(np.geomspace(1, 1e-4, 7), rng)
    res, info = rs.refine_eigenbasis(case.matrix, return_info=True)
    w, v = np.linalg.eigh(case.matrix)
    np.testing.assert_allclose(res.eigenvalues, w[::-1], rtol=0, atol=10 * 7 * EPS64)
    assert np.abs(np.abs(np.sum(res.eigenvectors * v[:, ::-1], axis=0)) - 1).max() <= 1e-10
    assert info.steps == 0 and info.permutation.tolist() == list(range(7))
    assert info.off_diagonal <= 10 * 7 * EPS64


def test_batched_and_broadcast_q_match_a_loop():
    rng = np.random.default_rng(3)
    a = spd_with_spectrum(np.geomspace(1, 1e-2, 5) * np.ones((2, 3, 1)), rng).matrix
    q = random_orthogonal(5, rng)  # one basis for the whole batch
    res, info = rs.refine_eigenbasis(a, q, steps=2, return_info=True)
    assert res.eigenvectors.shape == (2, 3, 5, 5) and info.off_diagonal.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            one, one_info = rs.refine_eigenbasis(a[i, j], q, steps=2, return_info=True)
            np.testing.assert_allclose(res.eigenvectors[i, j], one.eigenvectors, atol=1e-13)
            assert info.permutation[i, j].tolist() == one_info.permutation.tolist()


@pytest.mark.parametrize("backend", ["jax", "array_api"])
@pytest.mark.parametrize("cold", [False, True])
def test_other_backends_agree_with_numpy(backend, cold):
    rng = np.random.default_rng(4)
    case = spd_with_spectrum(np.geomspace(1, 1e-3, 6) * np.ones((2, 1)), rng)
    q = None if cold else _near_basis(case.eigenvectors[0, :, ::-1], 0.1, rng)
    ref, ref_info = rs.refine_eigenbasis(case.matrix, q, return_info=True)
    got, info = rs.refine_eigenbasis(
        to_backend(backend, case.matrix), None if cold else to_backend(backend, q),
        return_info=True)
    vec = to_numpy(got.eigenvectors)
    overlap = np.abs(np.sum(vec * ref.eigenvectors, axis=-2))
    assert np.abs(overlap - 1).max() <= 1e-10  # columns agree up to sign (cold: eigh's)
    np.testing.assert_allclose(to_numpy(got.eigenvalues), ref.eigenvalues, atol=1e-13)
    np.testing.assert_allclose(to_numpy(info.off_diagonal), ref_info.off_diagonal, atol=1e-12)
    assert to_numpy(info.permutation).tolist() == ref_info.permutation.tolist()


@pytest.mark.parametrize("backend", ["numpy", "jax", "jax_jit", "array_api"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cholesky_qr_gives_the_householder_basis(backend, dtype):
    """Shifted Cholesky QR and Householder QR return the same ``Q`` up to rounding."""
    rng = np.random.default_rng(6)
    n = 24
    # Eigenvalues 1 .. 1e-3 with neighbour ratios about 0.74: A Q has condition about
    # 1e3, so its Q is determined to about 1e3 eps per column (times a small factor).
    case = spd_with_spectrum(np.geomspace(1, 1e-3, n) * np.ones((2, 1)), rng)
    q = _near_basis(case.eigenvectors[0, :, ::-1], 0.05, rng)
    a, q = case.matrix.astype(dtype), q.astype(dtype)
    ref, ref_info = rs.refine_eigenbasis(a, q, orthonormalize="householder", return_info=True)
    call = lambda x, y: rs.refine_eigenbasis(  # noqa: E731
        x, y, orthonormalize="cholesky", return_info=True)
    if backend == "jax_jit":
        import jax

        call = jax.jit(call)
    name = "jax" if backend == "jax_jit" else backend
    got, info = call(to_backend(name, a), to_backend(name, q))
    eps = EPS32 if dtype == "float32" else EPS64
    vec = to_numpy(got.eigenvectors)
    assert vec.dtype == dtype
    assert np.abs(vec - ref.eigenvectors).max() <= 1e4 * eps
    assert np.abs(np.swapaxes(vec, -1, -2) @ vec - np.eye(n)).max() <= 10 * n * eps
    assert to_numpy(info.permutation).tolist() == ref_info.permutation.tolist()
    np.testing.assert_allclose(to_numpy(info.off_diagonal), ref_info.off_diagonal, rtol=1e-3)


@pytest.mark.parametrize("cond", [1e7, 1e12])
def test_cholesky_qr_on_ill_conditioned_and_singular_float32_statistics(cond):
    """In float32 the shifted rounds orthonormalize ``A Q`` of any condition, zeros included."""
    import jax

    rng = np.random.default_rng(7)
    n = 64
    w = np.geomspace(1.0, 1.0 / cond, n)
    w[-8:] = 0.0
    case = spd_with_spectrum(w, rng)
    q = _near_basis(case.eigenvectors[:, ::-1], 0.1, rng)
    got, info = jax.jit(lambda x, y: rs.refine_eigenbasis(
        x, y, orthonormalize="cholesky", return_info=True))(
        to_backend("jax", case.matrix.astype("float32")), to_backend("jax", q.astype("float32")))
    ref, ref_info = rs.refine_eigenbasis(case.matrix, q, return_info=True)  # float64
    vec = to_numpy(got.eigenvectors).astype(np.float64)
    assert np.abs(vec.T @ vec - np.eye(n)).max() <= 10 * n * EPS32
    # The step is as good as float64's: the off-diagonal mass it leaves agrees to the
    # float32 rounding of A Q, relative to ||A|| (about n eps32 / ||diag||).
    off = rs.refine_eigenbasis(case.matrix, vec, return_info=True)[1].off_diagonal
    off_ref = rs.refine_eigenbasis(case.matrix, ref.eigenvectors, return_info=True)[1].off_diagonal
    assert off <= off_ref + 10 * n * EPS32


@pytest.mark.parametrize("jit", [False, True])
def test_failed_cholesky_qr_falls_back_to_householder(monkeypatch, jit):
    import jax
    import jax.numpy as jnp

    import rootsolve.eigenbasis as eb

    def broken(be, aq, q, b, cname):
        if be.eager:
            raise np.linalg.LinAlgError("not positive definite")
        return eb._qr_step(be, aq).at[0].set(jnp.nan)  # the first matrix failed

    monkeypatch.setattr(eb, "_cholesky_qr", broken)
    rng = np.random.default_rng(8)
    case = spd_with_spectrum(np.geomspace(1, 1e-2, 6) * np.ones((2, 1)), rng)
    q = _near_basis(case.eigenvectors[0, :, ::-1], 0.1, rng)
    ref = rs.refine_eigenbasis(case.matrix, q, orthonormalize="householder")
    x = jnp.asarray(case.matrix) if jit else case.matrix
    call = lambda a, b: rs.refine_eigenbasis(a, b, orthonormalize="cholesky")  # noqa: E731
    got = jax.jit(call)(x, jnp.asarray(q)) if jit else call(x, q)
    np.testing.assert_allclose(to_numpy(got.eigenvectors), ref.eigenvectors, atol=1e-13)


def test_auto_orthonormalization_is_householder_on_a_cpu():
    rng = np.random.default_rng(9)
    case = spd_with_spectrum(np.geomspace(1, 1e-2, 6), rng)
    q = _near_basis(case.eigenvectors[:, ::-1], 0.1, rng)
    auto = rs.refine_eigenbasis(case.matrix, q)
    hh = rs.refine_eigenbasis(case.matrix, q, orthonormalize="householder")
    assert np.array_equal(auto.eigenvectors, hh.eigenvectors)


@pytest.mark.parametrize(("name", "on_gpu", "n", "expected"), [
    ("jax", True, 1024, "cholesky"), ("cupy", True, 256, "cholesky"),
    ("cupy", True, 512, "householder"), ("jax", False, 64, "householder"),
    ("numpy", False, 64, "householder"),
])
def test_auto_orthonormalization_by_device_and_size(name, on_gpu, n, expected):
    from rootsolve._backend import Backend
    from rootsolve.eigenbasis import _auto_orthonormalization

    assert _auto_orthonormalization(Backend(name, np, True, on_gpu), n) == expected


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cold", [False, True])
def test_cupy_agrees_with_numpy(dtype, cold):
    cp = cupy_or_skip()
    rng = np.random.default_rng(5)
    n = 32
    case = spd_with_spectrum(np.geomspace(1, 1e-2, n) * np.ones((3, 1)), rng)
    q = None if cold else _near_basis(case.eigenvectors[0, :, ::-1], 0.05, rng)
    ref, ref_info = rs.refine_eigenbasis(case.matrix, q, return_info=True)
    got, info = rs.refine_eigenbasis(
        cp.asarray(case.matrix, dtype=dtype), None if cold else cp.asarray(q, dtype=dtype),
        return_info=True)
    assert isinstance(got.eigenvectors, cp.ndarray) and got.eigenvectors.dtype == dtype
    # The eigenvalues lie 1e-2 apart in ratio at worst, so the columns are determined to
    # about eps * n / gap, and the Rayleigh quotients to eps * n * ||A||.
    eps = EPS32 if dtype == "float32" else EPS64
    vec = cp.asnumpy(got.eigenvectors).astype(np.float64)
    overlap = np.abs(np.sum(vec * ref.eigenvectors, axis=-2))
    assert np.abs(overlap - 1).max() <= 1e3 * n * eps
    np.testing.assert_allclose(cp.asnumpy(got.eigenvalues), ref.eigenvalues, atol=10 * n * eps)
    assert cp.asnumpy(info.permutation).tolist() == ref_info.permutation.tolist()
    assert np.allclose(cp.asnumpy(info.off_diagonal), ref_info.off_diagonal,
                       atol=10 * n * eps, rtol=1e-3)


def test_jax_jit_and_vmap():
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(5)
    case = spd_with_spectrum(np.geomspace(1, 1e-3, 6) * np.ones((3, 1)), rng)
    q = np.stack([_near_basis(v[:, ::-1], 0.1, rng) for v in case.eigenvectors])
    ref = rs.refine_eigenbasis(case.matrix, q, steps=2)
    f = jax.jit(jax.vmap(lambda a, q: rs.refine_eigenbasis(a, q, steps=2, return_info=True)))
    got, info = f(jnp.asarray(case.matrix), jnp.asarray(q))
    np.testing.assert_allclose(np.asarray(got.eigenvectors), ref.eigenvectors, atol=1e-12)
    assert info.off_diagonal.shape == (3,) and bool(jnp.all(info.finite))
    # Non-finite input under jit: NaN results and a flag, nothing raised.
    bad = jnp.asarray(case.matrix).at[1, 0, 0].set(jnp.nan)
    got, info = f(bad, jnp.asarray(q))
    assert np.asarray(info.finite).tolist() == [True, False, True]
    assert bool(jnp.all(jnp.isnan(got.eigenvectors[1])))
    assert bool(jnp.all(jnp.isfinite(got.eigenvectors[0])))


@pytest.mark.parametrize("method", ["householder", "cholesky"])
def test_jax_jit_warm_non_finite_input_flags_only_its_matrix(method):
    # The warm path hands a non-finite matrix to the products and the QR as it is (only a
    # cold eigh gets a finite stand-in): its results are NaN and flagged, and the other
    # matrices of the batch are computed as without it.
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(15)
    case = spd_with_spectrum(np.geomspace(1, 1e-3, 6) * np.ones((3, 1)), rng)
    q = np.stack([_near_basis(v[:, ::-1], 0.1, rng) for v in case.eigenvectors])
    f = jax.jit(lambda a, q: rs.refine_eigenbasis(a, q, orthonormalize=method,
                                                  return_info=True))
    clean, _ = f(jnp.asarray(case.matrix), jnp.asarray(q))
    bad_a = jnp.asarray(case.matrix).at[1, 2, 3].set(jnp.nan)
    bad_q = jnp.asarray(q).at[2, 0, 0].set(jnp.inf)
    got, info = f(bad_a, bad_q)
    assert np.asarray(info.finite).tolist() == [True, False, False]
    assert bool(jnp.all(jnp.isnan(got.eigenvectors[1:])))
    assert bool(jnp.all(jnp.isnan(info.off_diagonal[1:])))
    np.testing.assert_array_equal(np.asarray(got.eigenvectors[0]),
                                  np.asarray(clean.eigenvectors[0]))
    # The permutation stays a permutation, whatever the NaN did to the sort.
    assert (np.sort(np.asarray(info.permutation), axis=-1) == np.arange(6)).all()


def test_float32_input_keeps_its_dtype_and_float64_compute_helps():
    rng = np.random.default_rng(6)
    n = 32
    case = spd_with_spectrum(np.geomspace(1, 1e-2, n), rng)
    q = _near_basis(case.eigenvectors[:, ::-1], 1e-3, rng)
    a32, q32 = case.matrix.astype(np.float32), q.astype(np.float32)
    res, info = rs.refine_eigenbasis(a32, q32, return_info=True)
    assert res.eigenvectors.dtype == np.float32 and res.eigenvalues.dtype == np.float32
    assert np.abs(res.eigenvectors.T @ res.eigenvectors - np.eye(n)).max() <= 10 * n * EPS32
    res64 = rs.refine_eigenbasis(a32, q32, compute_dtype="float64")
    assert res64.eigenvectors.dtype == np.float32
    orth64 = np.abs(res64.eigenvectors.astype(np.float64).T @ res64.eigenvectors - np.eye(n))
    assert orth64.max() <= 4 * EPS32  # only the final rounding to float32


def test_complex_hermitian():
    rng = np.random.default_rng(7)
    case = spd_with_spectrum(np.geomspace(1, 1e-2, 5), rng, complex=True)
    res, info = rs.refine_eigenbasis(case.matrix, return_info=True)
    warm, winfo = rs.refine_eigenbasis(case.matrix, res.eigenvectors, return_info=True)
    assert warm.eigenvectors.dtype == np.complex128 and warm.eigenvalues.dtype == np.float64
    np.testing.assert_allclose(warm.eigenvectors, res.eigenvectors, atol=1e-12)
    assert winfo.off_diagonal <= 1e-13


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((np.ones((3, 4)),), {}, ValueError, r"square.*\(3, 4\)"),
        ((np.eye(3), np.eye(4)), {}, ValueError, r"q must have shape \(\.\.\., 3, 3\)"),
        ((np.ones((2, 3, 3)), np.ones((4, 3, 3))), {}, ValueError, r"\(4,\).*\(2,\)"),
        ((np.eye(3), np.eye(3)), {"steps": 0}, ValueError, "steps=0"),
        ((np.eye(3), np.eye(3)), {"steps": 1.5}, TypeError, "steps=1.5"),
        ((np.eye(3), np.eye(3)), {"orthonormalize": "qr"}, ValueError, "orthonormalize must be"),
        ((np.eye(3),), {"compute_dtype": "int8"}, ValueError, "compute_dtype='int8'"),
        ((np.array([[np.nan, 0], [0, 1.0]]),), {}, ValueError, "non-finite"),
        ((np.array([["a"]]),), {}, TypeError, "dtype <U1"),
    ],
)
def test_bad_input_is_named(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        rs.refine_eigenbasis(*args, **kwargs)
