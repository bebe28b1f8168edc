"""scipy's tests of ``sqrtm`` and ``fractional_matrix_power``, run against rootsolve.

Same inputs (seeds, sizes, scales, named matrices) and the same assertions and
tolerances as scipy's ``linalg/tests/test_matfuncs.py`` (``TestSqrtM``,
``TestFractionalMatrixPower``), calling ``rootsolve.root(a, 2, assume_a="gen")``
and ``rootsolve.power(a, t, assume_a="gen")``. scipy answers eigenvalues on the
negative real axis with numpy's branch; rootsolve does so with
``branch="numpy"`` and refuses without it. Where rootsolve deliberately
differs the test says so and asserts rootsolve's behaviour:

* a real matrix whose principal power is real gets a real result (scipy
  returns complex128 whenever the real Schur form has 2x2 blocks);
* float16 input gives float16 output (scipy: float32), as every dtype keeps its
  type in rootsolve; float128 is refused with a message (LAPACK has no such type);
* powers that do not exist are refused with a specific error where scipy
  returns NaN/inf (negative powers of singular matrices, square roots of
  nilpotent matrices).
"""

import warnings

import numpy as np
import pytest
import scipy.linalg
from numpy.testing import assert_allclose, assert_array_almost_equal, assert_array_equal
from scipy.linalg import expm, funm, logm

import rootsolve
from rootsolve import errors
from rootsolve.schur_pade import briggs_minus_one

COMPLEX_CHARS = ("F", "D", "G")


def sqrtm(a, **kw):
    return rootsolve.root(a, 2, assume_a="gen", branch="numpy", **kw)


def fractional_matrix_power(a, t, **kw):
    return rootsolve.power(a, t, assume_a="gen", branch="numpy", **kw)


def _al_mohy_higham_2012_experiment_1():
    # Al-Mohy & Higham (2012), "Improved inverse scaling and squaring algorithms
    # for the matrix logarithm", Experiment 1: upper triangular, strongly nonnormal.
    return np.array([
        [3.2346e-1, 3e4, 3e4, 3e4],
        [0, 3.0089e-1, 3e4, 3e4],
        [0, 0, 3.2210e-1, 3e4],
        [0, 0, 0, 3.0744e-1]], dtype=float)


class TestSqrtM:
    def test_round_trip_random_float(self):
        rng = np.random.default_rng(1738151906092735)
        for n in range(1, 6):
            m_unscaled = rng.standard_normal((n, n))
            for scale in np.logspace(-4, 4, 9):
                m = m_unscaled * scale
                r = sqrtm(m)
                assert_allclose(r.dot(r), m)

    def test_round_trip_random_complex(self):
        rng = np.random.default_rng(1738151906092736)
        for n in range(1, 6):
            m_unscaled = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
            for scale in np.logspace(-4, 4, 9):
                m = m_unscaled * scale
                r = sqrtm(m)
                assert_allclose(r.dot(r), m)

    def test_bad(self):
        # Higham's example of a matrix with a well-conditioned square root that the
        # Denman-Beavers style iterations get wrong.
        e = 2**-5
        se = np.sqrt(e)
        a = np.array([[1.0, 0, 0, 1], [0, e, 0, 0], [0, 0, e, 0], [0, 0, 0, 1]])
        sa = np.array([[1, 0, 0, 0.5], [0, se, 0, 0], [0, 0, se, 0], [0, 0, 0, 1]])
        assert_array_almost_equal(sa @ sa, a)
        esa = sqrtm(a)
        assert_array_almost_equal(esa @ esa, a)

    def test_sqrtm_type_preservation_and_conversion(self):
        for matrix_as_list in ([[1, 0], [0, 1]], [[1, 0], [1, 1]], [[2, 1], [1, 1]],
                               [[2, 3], [1, 2]], [[1, 1], [1, 1]]):
            w = scipy.linalg.eigvals(matrix_as_list)
            assert not any(v.imag or v.real < 0 for v in w)
            a = np.array(matrix_as_list, dtype=float)
            assert sqrtm(a).dtype.char not in COMPLEX_CHARS
            a = np.array(matrix_as_list, dtype=complex)
            assert sqrtm(a).dtype.char in COMPLEX_CHARS
            a = -np.array(matrix_as_list, dtype=float)
            assert sqrtm(a).dtype.char in COMPLEX_CHARS

    def test_sqrtm_type_conversion_mixed_sign_or_complex_spectrum(self):
        for matrix_as_list in ([[1, 0], [0, -1]], [[0, 1], [1, 0]],
                               [[0, 1, 0], [0, 0, -1], [1, 0, 0]]):
            w = scipy.linalg.eigvals(matrix_as_list)
            assert any(v.imag or v.real < 0 for v in w)
            a = np.array(matrix_as_list, dtype=complex)
            assert sqrtm(a).dtype.char in COMPLEX_CHARS
            a = np.array(matrix_as_list, dtype=float)
            assert sqrtm(a).dtype.char in COMPLEX_CHARS
            # Without the option the principal root does not exist: refused.
            with pytest.raises(errors.NegativeEigenvalueError, match="branch="):
                rootsolve.root(a, 2, assume_a="gen")

    def test_al_mohy_higham_2012_experiment_1(self):
        a = _al_mohy_higham_2012_experiment_1()
        r = sqrtm(a)
        round_trip = r @ r
        assert_allclose(round_trip, a, rtol=1e-5)
        assert_allclose(np.tril(round_trip), np.tril(a))

    def test_strict_upper_triangular(self):
        # Nilpotent: no square root exists. scipy fills it with nan/inf; rootsolve refuses.
        for dt in int, float:
            a = np.array([[0, 3, 0, 0], [0, 0, 3, 0], [0, 0, 0, 3], [0, 0, 0, 0]], dtype=dt)
            with pytest.raises(errors.RootError, match="not semisimple"):
                sqrtm(a)

    def test_opposite_sign_complex_eigenvalues(self):
        m = [[2j, 4], [0, -2j]]
        r = [[1 + 1j, 2], [0, 1 - 1j]]
        assert_allclose(np.dot(r, r), m, atol=1e-14)
        assert_allclose(sqrtm(m), r, atol=1e-14)

    def test_gh4866(self):
        m = np.array([[1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 1]])
        h = np.sqrt(0.5)
        r = np.array([[h, 0, 0, h], [0, 0, 0, 0], [0, 0, 0, 0], [h, 0, 0, h]])
        assert_allclose(r @ r, m, atol=1e-14)
        assert_allclose(sqrtm(m), r, atol=1e-14)

    def test_gh5336(self):
        m = np.diag([2, 1, 0])
        r = np.diag([np.sqrt(2), 1, 0])
        assert_allclose(r @ r, m, atol=1e-14)
        assert_allclose(sqrtm(m), r, atol=1e-14)

    def test_gh7839(self):
        assert_allclose(sqrtm(np.zeros((2, 2))), np.zeros((2, 2)), atol=1e-14)

    def test_gh17918(self):
        m = np.full((19, 19), 0.94)
        np.fill_diagonal(m, 1)
        assert np.isrealobj(sqrtm(m))

    def test_gh23278(self):
        m = np.array([[1.0, 0.0, 0.0], [0, 1, -1j], [0, 1j, 2]])
        sq = sqrtm(m)
        assert_allclose(sq @ sq, m, atol=1e-14)
        sq = sqrtm(m.astype(np.complex64))
        assert_allclose(sq @ sq, m, atol=1e-6)

    @pytest.mark.parametrize("dt", [np.uint8, np.uint16, np.uint32, np.uint64])
    def test_data_size_preservation_uint_in_float_out(self, dt):
        assert sqrtm(np.eye(10, dtype=dt)).dtype == np.float64

    @pytest.mark.parametrize("dt", [np.int8, np.int16, np.int32, np.int64])
    def test_data_size_preservation_int_in_float_out(self, dt):
        assert sqrtm(np.eye(10, dtype=dt)).dtype == np.float64

    @pytest.mark.parametrize("dt", [np.int8, np.int16, np.int32, np.int64])
    def test_data_size_preservation_int_in_comp_out(self, dt):
        assert sqrtm(np.array([[2, 4], [0, -2]], dtype=dt)).dtype == np.complex128

    def test_data_size_preservation_float_in_float_out(self):
        # rootsolve keeps float16 (scipy promotes it to float32).
        assert sqrtm(np.eye(10, dtype=np.float16)).dtype == np.float16
        assert sqrtm(np.eye(10, dtype=np.float32)).dtype == np.float32
        assert sqrtm(np.eye(10, dtype=np.float64)).dtype == np.float64
        if hasattr(np, "float128"):
            with pytest.raises(TypeError, match="LAPACK.*float64"):
                sqrtm(np.eye(10, dtype=np.float128))

    def test_data_size_preservation_float_in_comp_out(self):
        m = np.array([[2, 4], [0, -2]])
        assert sqrtm(m.astype(np.float16)).dtype == np.complex64
        assert sqrtm(m.astype(np.float32)).dtype == np.complex64
        assert sqrtm(m.astype(np.float64)).dtype == np.complex128

    def test_data_size_preservation_comp_in_comp_out(self):
        m = np.array([[2j, 4], [0, -2j]])
        assert sqrtm(m.astype(np.complex64)).dtype == np.complex64
        assert sqrtm(m.astype(np.complex128)).dtype == np.complex128
        if hasattr(np, "complex256"):
            with pytest.raises(TypeError, match="LAPACK.*complex128"):
                sqrtm(m.astype(np.complex256))

    @pytest.mark.parametrize("dt", [int, float, np.float32, complex, np.complex64])
    def test_empty(self, dt):
        s = sqrtm(np.empty((0, 0), dtype=dt))
        s0 = sqrtm(np.eye(2, dtype=dt))
        assert s.shape == (0, 0)
        assert s.dtype == s0.dtype

    def test_cf_noncontig_nd_inputs(self):
        rng = np.random.default_rng(1738151906092737)
        n = 13
        a = rng.uniform(size=(3, 2 * n, 2 * n))
        lower, upper = np.tril(a, k=-1) + np.eye(2 * n), np.triu(a)
        a = lower @ upper
        a_noncontig_c = a[:, ::2, ::2]
        a_noncontig_f = np.asfortranarray(a)[:, 1::2, 1::2]
        assert_allclose(sqrtm(a[:, ::2, ::2]), sqrtm(a_noncontig_c))
        assert_allclose(sqrtm(a[:, 1::2, 1::2]), sqrtm(a_noncontig_f))

    def test_empty_sizes(self):
        a = np.empty(shape=[4, 0, 5, 5], dtype=float)
        assert_array_equal(sqrtm(a), a)

    def test_negative_strides(self):
        rng = np.random.default_rng(1738151906092738)
        a = rng.uniform(size=(3, 5, 5))
        for view in (a[:, ::-1, ::-1], a[:, :, ::-1], a[:, ::-1, :]):
            assert_allclose(sqrtm(view), sqrtm(view.copy()))


class TestFractionalMatrixPower:
    def test_round_trip_random_complex(self):
        rng = np.random.default_rng(1234)
        for p in range(1, 5):
            for n in range(1, 5):
                m_unscaled = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
                for scale in np.logspace(-4, 4, 9):
                    m = m_unscaled * scale
                    r = fractional_matrix_power(m, 1 / p)
                    assert_allclose(np.linalg.matrix_power(r, p), m)

    def test_round_trip_random_float(self):
        # Real matrices here have negative eigenvalues: numpy's branch (the option).
        rng = np.random.default_rng(1234)
        for p in range(1, 5):
            for n in range(1, 5):
                m_unscaled = rng.standard_normal((n, n))
                for scale in np.logspace(-4, 4, 9):
                    m = m_unscaled * scale
                    r = fractional_matrix_power(m, 1 / p)
                    assert_allclose(np.linalg.matrix_power(r, p), m)

    def test_larger_abs_fractional_matrix_powers(self):
        rng = np.random.default_rng(1234)
        for n in (2, 3, 5):
            for _ in range(10):
                m = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
                m_one_fifth = fractional_matrix_power(m, 0.2)
                assert_allclose(m, np.linalg.matrix_power(m_one_fifth, 5))
                x = fractional_matrix_power(m, -5.4)
                assert_allclose(x, np.linalg.matrix_power(m_one_fifth, -27))
                x = fractional_matrix_power(m, 3.8)
                assert_allclose(x, np.linalg.matrix_power(m_one_fifth, 19))

    def test_random_matrices_and_powers(self):
        rng = np.random.default_rng(1726500458620605)
        for _ in range(20):
            n = rng.integers(1, 5)
            p = rng.random()
            matrix_scale = np.exp(rng.integers(-4, 5))
            a = rng.random(size=[n, n])
            if [True, False][rng.choice(2)]:
                a = a + 1j * rng.random(size=[n, n])
            a = a * matrix_scale
            assert_allclose(fractional_matrix_power(a, p), expm(logm(a) * p))

    def test_al_mohy_higham_2012_experiment_1(self):
        a = _al_mohy_higham_2012_experiment_1()
        a_funm_sqrt = funm(a, np.sqrt)
        a_sqrtm = scipy.linalg.sqrtm(a)
        a_power = fractional_matrix_power(a, 0.5)
        assert_allclose(a_sqrtm, a_power)
        assert_allclose(sqrtm(a), a_power, rtol=1e-11)
        assert_allclose(a_sqrtm, a_funm_sqrt)
        for p in (1 / 2, 5 / 3):
            a_power = fractional_matrix_power(a, p)
            a_round_trip = fractional_matrix_power(a_power, 1 / p)
            assert_allclose(a_round_trip, a, rtol=1e-2)
            assert_allclose(np.tril(a_round_trip, 1), np.tril(a, 1))

    def test_briggs_helper_function(self):
        rng = np.random.default_rng(1234)
        for a in rng.standard_normal(10) + 1j * rng.standard_normal(10):
            for k in range(5):
                assert_allclose(briggs_minus_one(a, k), a ** np.exp2(-k) - 1)

    def test_type_preservation_and_conversion(self):
        for matrix_as_list in ([[1, 0], [0, 1]], [[1, 0], [1, 1]], [[2, 1], [1, 1]],
                               [[2, 3], [1, 2]]):
            w = scipy.linalg.eigvals(matrix_as_list)
            assert not any(v.imag or v.real < 0 for v in w)
            for p in (-2.4, -0.9, 0.2, 3.3):
                a = np.array(matrix_as_list, dtype=float)
                assert fractional_matrix_power(a, p).dtype.char not in COMPLEX_CHARS
                a = np.array(matrix_as_list, dtype=complex)
                assert fractional_matrix_power(a, p).dtype.char in COMPLEX_CHARS
                a = -np.array(matrix_as_list, dtype=float)
                assert fractional_matrix_power(a, p).dtype.char in COMPLEX_CHARS

    def test_type_conversion_mixed_sign_or_complex_spectrum(self):
        for matrix_as_list in ([[1, 0], [0, -1]], [[0, 1], [1, 0]],
                               [[0, 1, 0], [0, 0, 1], [1, 0, 0]]):
            w = scipy.linalg.eigvals(matrix_as_list)
            assert any(v.imag or v.real < 0 for v in w)
            negative_axis = any(v.real < 0 and not v.imag for v in w)
            for p in (-2.4, -0.9, 0.2, 3.3):
                a = np.array(matrix_as_list, dtype=complex)
                assert fractional_matrix_power(a, p).dtype.char in COMPLEX_CHARS
                a = np.array(matrix_as_list, dtype=float)
                x = fractional_matrix_power(a, p)
                if negative_axis:
                    assert x.dtype.char in COMPLEX_CHARS
                else:
                    # The cyclic permutation has eigenvalues 1, exp(+-2 pi i / 3): its
                    # principal power is real, and rootsolve returns it real.
                    assert x.dtype == np.float64
                    assert_allclose(x, scipy.linalg.fractional_matrix_power(a, p), atol=1e-14)

    def test_singular(self):
        for matrix_as_list in ([[0, 0], [0, 0]], [[1, 1], [1, 1]], [[1, 2], [3, 6]],
                               [[0, 0, 0], [0, 1, 1], [0, -1, 1]]):
            for newtype in (float, complex):
                a = np.array(matrix_as_list, dtype=newtype)
                for p in (-0.7, -0.9, -2.4, -1.3):
                    # scipy answers NaN; the power does not exist: refused.
                    with pytest.raises(errors.SingularMatrixError):
                        fractional_matrix_power(a, p)
                for p in (0.2, 1.43):
                    a_power = fractional_matrix_power(a, p)
                    with warnings.catch_warnings():
                        warnings.simplefilter("error")
                        a_round_trip = fractional_matrix_power(a_power, 1 / p)
                    assert_allclose(a_round_trip, a)

    def test_opposite_sign_complex_eigenvalues(self):
        m = [[2j, 4], [0, -2j]]
        r = [[1 + 1j, 2], [0, 1 - 1j]]
        assert_allclose(np.dot(r, r), m, atol=1e-14)
        assert_allclose(fractional_matrix_power(m, 0.5), r, atol=1e-14)
