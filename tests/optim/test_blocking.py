"""blocking.py: how one parameter is cut into blocks (plans, block norms)."""

import jax.numpy as jnp
import numpy as np
import pytest

from rootsolve_optim.blocking import block_norms, make_plan, to_blocks


def test_plans_at_the_thresholds():
    assert make_plan((4096, 2), block_size=256).factor_shapes() == ((16, 256), (16, 2))
    assert make_plan((4097, 2), block_size=256).factor_shapes() == ((1, 2),)
    assert make_plan((4097, 5000), block_size=256).graft_only
    assert make_plan((3,), block_size=256).graft_only
    assert make_plan((0, 5), block_size=256).graft_only
    assert make_plan((3,), block_size=256, skip_rank_lt=1).factor_shapes() == ((1, 3),)



@pytest.mark.parametrize(
    "shape, kw",
    [
        ((600, 300), {}),  # four groups: 2x1 full, ragged rows, ragged columns, corner
        ((3, 5, 64, 40), {}),  # merged to (15, 64 * 40 = 2560): ragged 2560
        ((300, 7, 9), dict(preconditioner_type="input")),
        ((5000, 3), {}),  # an unpreconditioned dimension is not cut
    ],
)
def test_block_norms_equal_the_norms_of_the_cut_blocks(shape, kw):
    """The block norms reduced in place equal the norms of to_blocks' copies (same sums in
    float64 up to summation order: a few ulps)."""
    plan = make_plan(shape, block_size=256, **kw)
    x = jnp.asarray(np.random.default_rng(0).standard_normal(shape))
    for b, n in zip(to_blocks(x, plan), block_norms(x, plan), strict=True):
        want = np.linalg.norm(np.asarray(b).reshape(b.shape[0], -1), axis=1)
        np.testing.assert_allclose(np.asarray(n), want, rtol=1e-13)
