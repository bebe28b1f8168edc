"""The reference Shampoo's root tests, run against rootsolve.

From ``scalable_shampoo/optax/distributed_shampoo_test.py`` (google-research):

* ``test_matrix_inverse_root``: 16 x 16 symmetric matrices of condition
  ``10^2 .. 10^11`` in float32, ``p = 4``, ridge ``1e-12``: the condition number
  is as built to 1 %, and the error is below 0.1 while ``kappa < 10^7``.
* ``test_matrix_inverse_root_padding``: a float32 matrix of condition 1e3 scaled
  by 1e-3, rooted with ridge 1e-3, and the same matrix zero-padded to twice its
  size: the padded root's leading block agrees to ``rtol = 1e-2``, its residual
  is at most 4 times the unpadded one's, and the padded rows and columns are
  zero. The reference marks the padding with ``padding_start``; rootsolve has
  no such argument, and the same facts hold with the ridge applied to the
  unpadded block and a pseudo-inverse cut-off (``pinv_atol``) for the padding.
* ``test_all_padding``: an all-padding 10 x 10 matrix gives a zero root and a
  zero error; here the pseudo-inverse of the zero matrix.

The remaining tests of that file (LOBPCG preconditioning, ``_pth_root_difference``)
exercise reference internals with no counterpart in rootsolve.
"""

import numpy as np
import pytest
import scipy.stats

import rootsolve


def _gen_symmetric_matrix(dim, condition_number, rng):
    u = scipy.stats.ortho_group.rvs(dim=dim, random_state=rng).astype(np.float64)
    diag = np.diag([condition_number ** (-i / (dim - 1)) for i in range(dim)])
    return u @ diag @ u.T


CASES = [(method, e) for method in ("auto", "newton") for e in range(2, 12)]


@pytest.mark.parametrize("method, e", CASES)
def test_matrix_inverse_root(method, e):
    rng = np.random.RandomState(e)
    condition_number = 10**e
    ms = _gen_symmetric_matrix(16, condition_number, rng)
    assert abs(np.linalg.cond(ms) - condition_number) < condition_number * 0.01
    a = ms.astype(np.float32)
    if e >= 7:  # no guarantee: an answer or a refusal, never an exception of another kind
        try:
            rootsolve.inv_root(a, 4, ridge=1e-12, method=method, return_info=True)
        except rootsolve.SingularMatrixError:
            pass
        return
    _, info = rootsolve.inv_root(a, 4, ridge=1e-12, method=method, return_info=True)
    assert float(info.residual) < 0.1


@pytest.mark.parametrize("sz", [4, 32])
def test_matrix_inverse_root_padding(sz):
    rng = np.random.RandomState(1)
    ms = _gen_symmetric_matrix(sz, 1e3, rng).astype(np.float32) * np.float32(1e-3)
    rt, info = rootsolve.inv_root(ms, 4, ridge=1e-3, return_info=True)
    err = float(info.residual)
    padded = np.zeros((2 * sz, 2 * sz), dtype=np.float32)
    padded[:sz, :sz] = ms + np.float32(1e-3) * np.eye(sz, dtype=np.float32)
    pad_rt, pad_info = rootsolve.inv_root(padded, 4, pinv_atol=1e-6, return_info=True)
    np.testing.assert_allclose(rt, pad_rt[:sz, :sz], rtol=1e-2)
    assert float(pad_info.residual) <= 4 * max(err, float(np.finfo(np.float32).eps))
    assert np.abs(pad_rt[sz:]).sum() == 0
    assert np.abs(pad_rt[:, sz:]).sum() == 0


def test_all_padding():
    rt, info = rootsolve.inv_root(np.zeros((10, 10)), 4, pinv_atol=1e-3, return_info=True)
    assert np.abs(rt).sum() == 0.0
    assert np.abs(info.residual).sum() == 0.0
