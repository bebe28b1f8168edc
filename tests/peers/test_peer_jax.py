"""jax's tests of ``jax.scipy.linalg.sqrtm``, run against rootsolve.

Same shapes, dtypes, input distributions (jax's ``rand_default``: normal
entries of scale 3, complex ones with independent real and imaginary parts),
tolerances and assertions as ``testSqrtmPSDMatrix``, ``testSqrtmGenMatrix`` and
``testSqrtmEdgeCase`` in jax's ``tests/linalg_test.py``; the compile check
(``_CompileAndCheck``) becomes rootsolve under ``jax.jit`` against rootsolve
eagerly. General matrices with eigenvalues on the negative real axis take
numpy's branch (``branch="numpy"``), which jax's ``sqrtm`` also follows.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import rootsolve

SHAPES = [(4, 4), (15, 15), (50, 50), (100, 100)]
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
#: jax's default tolerances (``jtu.default_tolerance``), used where a test passes none.
DEFAULT_TOL = {np.float32: 1e-6, np.float64: 1e-15, np.complex64: 1e-6, np.complex128: 1e-15}


def rand_default(rng, shape, dtype):
    """jax's ``jtu.rand_default``: standard normal entries times 3."""
    x = 3 * rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        x = x + 3j * rng.standard_normal(shape)
    return x.astype(dtype)


def _single(dtype):
    return dtype in (np.float32, np.complex64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_sqrtm_psd_matrix(shape, dtype):
    rng = np.random.default_rng(shape[0])
    arg = rand_default(rng, shape, dtype)
    mat = arg @ arg.T
    tol = 1e-4 if _single(dtype) else 1e-8
    got = rootsolve.root(mat, 2, assume_a="gen")
    # scipy >= 1.16 computes sqrtm of single-precision input in single precision, with
    # errors up to ~1e-3 at n = 100; the reference here is scipy's in double precision.
    ref = scipy.linalg.sqrtm(mat.astype(np.result_type(mat, np.float64)))
    np.testing.assert_allclose(got, ref, atol=tol, rtol=tol)
    # The compile check: the same root under jit (the Schur-free method); each case
    # compiles anew, so n = 4 in every dtype and n = 50 in float64.
    if shape[0] != 4 and not (shape[0] == 50 and dtype == np.float64):
        return
    jitted = jax.jit(lambda a: rootsolve.root(a, 2, assume_a="gen"))(jnp.asarray(mat))
    np.testing.assert_allclose(np.asarray(jitted), got, atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_sqrtm_gen_matrix(shape, dtype):
    rng = np.random.default_rng(100 + shape[0])
    arg = rand_default(rng, shape, dtype)
    tol = 2e-3 if _single(dtype) else 1e-8
    r = rootsolve.root(arg, 2, assume_a="gen", branch="numpy")
    np.testing.assert_allclose(r @ r, arg, atol=tol, rtol=DEFAULT_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "diag, expected",
    [([1, 0, 0], [1, 0, 0]), ([0, 4, 0], [0, 2, 0]), ([0, 0, 0, 9], [0, 0, 0, 3]),
     ([0, 0, 9, 0, 0, 4], [0, 0, 3, 0, 0, 2])],
)
def test_sqrtm_edge_case(diag, expected, dtype):
    mat = np.diag(np.array(diag)).astype(dtype)
    root = rootsolve.root(mat, 2, assume_a="gen")
    tol = DEFAULT_TOL[dtype]
    np.testing.assert_allclose(root, np.diag(np.array(expected)), atol=tol, rtol=tol)
