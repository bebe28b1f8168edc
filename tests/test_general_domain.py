"""The whole domain of scipy's fractional_matrix_power through the public API.

Any real exponent (Schur-Pade), integer exponents for every square matrix,
numpy's branch on the negative real axis, singular matrices with a semisimple
zero eigenvalue, empty input and the array-likes numpy accepts.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sl

import rootsolve as rs
from rootsolve import errors
from rootsolve import testing as gm

EPS = float(np.finfo(np.float64).eps)
A = gm.random_spectrum(6, rng=4).a  # real, nonsymmetric, complex pairs, off the negative axis


def _close(x, ref, factor=1e3):
    return np.linalg.norm(x - ref) <= factor * EPS * np.linalg.norm(ref) * A.shape[0]


@pytest.mark.parametrize("t", [0.37, -1.234, 2.71, np.pi])  # not q/p with p <= 64
def test_any_real_exponent_is_schur_pade_and_real(t):
    x, info = rs.power(A, t, assume_a="gen", return_info=True)
    assert info.method_name == "schur_pade"
    assert x.dtype == np.float64
    assert _close(x, sl.fractional_matrix_power(A, t).real)


def test_rational_exponents_keep_schur_newton():
    x, info = rs.power(A, -2 / 3, assume_a="gen", return_info=True)
    assert info.method_name == "schur_newton"
    y = rs.power(A, -2 / 3, assume_a="gen", method="schur_pade")
    assert _close(x, y)


def test_concrete_jax_input_on_the_cpu():
    x = rs.power(jnp.asarray(A), 0.37, assume_a="gen")
    assert isinstance(x, jax.Array)
    assert _close(np.asarray(x), rs.power(A, 0.37, assume_a="gen"))


@pytest.mark.parametrize("t", [2, 2.0, 3, -1, -2.0, 0])
def test_integer_exponents_for_any_spectrum(t):
    # A nonsymmetric matrix with negative and complex eigenvalues, and a symmetric
    # indefinite one under the default assume_a="pos": integer powers need no root.
    g = np.random.default_rng(1).standard_normal((5, 5))
    for a, assume in ((g, "gen"), (g + g.T, "pos")):
        x, info = rs.power(a, t, assume_a=assume, return_info=True)
        assert info.method_name == "integer_power"
        ref = np.linalg.matrix_power(a, int(t))
        assert np.linalg.norm(x - ref) <= 100 * EPS * np.linalg.cond(a) ** (t < 0) * (
            np.linalg.norm(a) ** abs(int(t)) * (np.linalg.norm(np.linalg.inv(a)) ** 2
                                                 if t < 0 else 1.0) + np.linalg.norm(ref))


def test_negative_integer_power_of_a_singular_matrix():
    with pytest.raises(errors.SingularMatrixError, match="rcond"):
        rs.power(np.array([[1.0, 2.0], [3.0, 6.0]]), -1, assume_a="gen")
    with pytest.raises(errors.SingularMatrixError):
        rs.inv_root(np.array([[1.0, 2.0], [3.0, 6.0]]), 1.0, assume_a="gen")


def test_root_of_order_one_under_jit():
    x = jax.jit(lambda m: rs.inv_root(m, 1, assume_a="gen"))(jnp.asarray(A))
    assert np.allclose(np.asarray(x), np.linalg.inv(A), rtol=1e-12, atol=1e-12)


# ---- numpy's branch --------------------------------------------------------------------

NEG = np.array([[1.0, 2.0], [3.0, -4.0]])  # eigenvalues 2 and -5


def test_negative_axis_refused_by_default_and_the_message_names_the_option():
    with pytest.raises(errors.NegativeEigenvalueError, match="branch='numpy'"):
        rs.root(NEG, 2, assume_a="gen")
    with pytest.raises(errors.NegativeEigenvalueError, match="branch='numpy'"):
        rs.power(NEG, 0.3, assume_a="gen")


@pytest.mark.parametrize("p", [2, 3, 4])
def test_numpy_branch_round_trips_and_agrees_with_scipy(p):
    x, info = rs.root(NEG, p, assume_a="gen", branch="numpy", return_info=True)
    assert x.dtype == np.complex128 and info.method_name == "schur_pade"
    assert np.allclose(np.linalg.matrix_power(x, p), NEG, rtol=1e-13, atol=1e-13)
    assert np.allclose(x, sl.fractional_matrix_power(NEG, 1 / p), rtol=1e-12, atol=1e-13)
    assert rs.root(NEG.astype(np.float32), p, assume_a="gen", branch="numpy").dtype == (
        np.complex64
    )


def test_under_jit_on_the_cpu_schur_pade_runs_through_a_host_callback():
    f = jax.jit(lambda m: rs.power(m, 0.37, assume_a="gen", return_info=True))
    x, info = f(jnp.asarray(A))
    assert x.dtype == jnp.float64 and info.method_name == "schur_pade"
    assert _close(np.asarray(x), rs.power(A, 0.37, assume_a="gen"))
    # A power that does not exist: reported, NaN.
    y, bad = f(jnp.asarray(NEG))
    assert not bool(bad.converged) and np.isnan(np.asarray(y)).all()
    # Complex input knows its output dtype: numpy's branch is accepted.
    g = jax.jit(lambda m: rs.root(m, 2, assume_a="gen", branch="numpy"))
    z = np.asarray(g(jnp.asarray(NEG.astype(complex))))
    assert np.allclose(z @ z, NEG, rtol=1e-13, atol=1e-13)
    v = jax.vmap(lambda m: rs.power(m, 0.37, assume_a="gen"))(jnp.stack([A, A]))
    assert _close(np.asarray(v[1]), rs.power(A, 0.37, assume_a="gen"))


def test_numpy_branch_is_refused_where_the_dtype_is_not_known_up_front():
    with pytest.raises(ValueError, match="under jit"):
        jax.jit(lambda m: rs.root(m, 2, assume_a="gen", branch="numpy"))(NEG)
    with pytest.raises(ValueError, match="assume_a='gen'"):
        rs.root(np.eye(2), 2, branch="numpy")
    with pytest.raises(ValueError, match="branch"):
        rs.root(np.eye(2), 2, assume_a="gen", branch="complex")


# ---- singular matrices -------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, ref",
    [(np.diag([2.0, 1.0, 0.0]), np.diag([np.sqrt(2.0), 1.0, 0.0])),
     (np.array([[1.0, 2.0], [3.0, 6.0]]), np.array([[1.0, 2.0], [3.0, 6.0]]) / np.sqrt(7.0))],
)
def test_semisimple_zero_eigenvalue_has_roots(a, ref):
    x, info = rs.root(a, 2, assume_a="gen", return_info=True)
    assert info.method_name == "schur_pade"
    assert np.allclose(x, ref, rtol=1e-14, atol=1e-14)


def test_nilpotent_jordan_block_has_no_root():
    with pytest.raises(errors.RootError, match="not semisimple"):
        rs.root(np.array([[0.0, 1.0], [0.0, 0.0]]), 2, assume_a="gen")
    with pytest.raises(errors.SingularMatrixError):
        rs.inv_root(np.diag([1.0, 0.0]), 2, assume_a="gen")


# ---- empty input and array-likes ----------------------------------------------------------


@pytest.mark.parametrize("shape", [(0, 0), (4, 0, 5, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128, np.int64])
def test_empty_input(shape, dtype):
    x, info = rs.root(np.empty(shape, dtype=dtype), 3, assume_a="gen", return_info=True)
    assert x.shape == shape
    assert x.dtype == (np.float64 if dtype == np.int64 else dtype)
    assert info.converged.shape == shape[:-2]


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_array_likes():
    a = np.array([[4.0, 1.0], [1.0, 3.0]])
    ref = rs.inv_root(a, 2)
    assert np.array_equal(rs.inv_root(np.asmatrix(a), 2), ref)
    assert type(rs.inv_root(np.asmatrix(a), 2)) is np.ndarray
    assert np.array_equal(rs.inv_root(memoryview(a), 2), ref)
    pd = pytest.importorskip("pandas")
    assert np.array_equal(rs.inv_root(pd.DataFrame(a), 2), ref)


@pytest.mark.skipif(not hasattr(np, "float128"), reason="no extended precision here")
def test_extended_precision_is_refused_with_advice():
    with pytest.raises(TypeError, match="LAPACK does not support.*float64"):
        rs.root(np.eye(2, dtype=np.float128), 2)
