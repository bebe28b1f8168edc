"""optax's test of ``matrix_inverse_pth_root``, run against rootsolve.

The inputs (16 x 16 symmetric matrices ``U diag(kappa^(-i/15)) U^T`` with Haar
``U``, condition numbers ``10^2 .. 10^11``, cast to float32), the call
(``p = 4``, ridge ``1e-12``) and the assertions (the condition number is as
built to 1 %; the reported error below 0.1 while ``kappa < 10^7``, nothing
promised beyond) are those of ``test_matrix_inverse_pth_root`` in
``optax/_src/linear_algebra_test.py``. optax's error is its Newton's final
``max |M - I|``; rootsolve reports the residual ``||X^4 A - I||_F / sqrt(n)``
(``info.residual``). Run with the default method and with coupled Newton
(optax's iteration), eagerly and under ``jit``.
"""

import jax
import numpy as np
import pytest
import scipy.stats

import rootsolve


def _gen_symmetric_matrix(dim, condition_number, rng):
    u = scipy.stats.ortho_group.rvs(dim=dim, random_state=rng).astype(np.float64)
    diag = np.diag([condition_number ** (-i / (dim - 1)) for i in range(dim)])
    return u @ diag @ u.T


CASES = [
    (method, jit, e) for method in ("auto", "newton") for jit in (False, True) for e in range(2, 12)
]


#: One compiled function per method (same shape and dtype for every kappa).
JITTED = {}


@pytest.mark.parametrize("method, jit, e", CASES)
def test_matrix_inverse_pth_root(method, jit, e):
    rng = np.random.default_rng(e)

    def solve(a):
        return rootsolve.inv_root(a, 4, ridge=1e-12, method=method, return_info=True)[1]

    if jit:
        solve = JITTED.setdefault(method, jax.jit(solve))

    condition_number = 10**e
    ms = _gen_symmetric_matrix(16, condition_number, rng)
    assert abs(np.linalg.cond(ms) - condition_number) < condition_number * 0.01
    a = ms.astype(np.float32)
    if e >= 7:  # no guarantee: an answer or a refusal, never an exception of another kind
        try:
            info = solve(jax.numpy.asarray(a) if jit else a)
        except rootsolve.SingularMatrixError:
            return
        assert np.asarray(info.residual).shape == ()
        return
    info = solve(jax.numpy.asarray(a) if jit else a)
    assert float(np.asarray(info.residual)) < 0.1
