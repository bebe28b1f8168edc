"""grafting.py: per-block grafting against numpy norms (the grafting kinds themselves are
checked against a reference implementation in test_shampoo_reference.py)."""

import jax.numpy as jnp
import numpy as np

from rootsolve_optim.grafting import graft_blocks

EPS32 = float(np.finfo(np.float32).eps)


def test_graft_blocks_takes_each_blocks_norm_from_the_graft():
    """Per block D ||graft|| / ||D||: the direction of D, the norm of the graft (float32
    norms of 12 entries: a few eps_32 relative); a vanishing block takes the graft."""
    rng = np.random.default_rng(0)
    d = rng.standard_normal((3, 4, 3)).astype(np.float32)
    g = rng.standard_normal((3, 4, 3)).astype(np.float32)
    d[1] = 0.0
    out, ok = graft_blocks(jnp.asarray(d), jnp.asarray(g))
    out = np.asarray(out)
    assert bool(ok)
    for b in (0, 2):
        want = d[b] * np.linalg.norm(g[b]) / np.linalg.norm(d[b])
        np.testing.assert_allclose(out[b], want, rtol=16 * EPS32, atol=16 * EPS32)
    np.testing.assert_array_equal(out[1], g[1])


def test_graft_blocks_with_known_norms_and_overflow():
    d = jnp.ones((2, 2, 2), jnp.float32)
    g = 2 * jnp.ones((2, 2, 2), jnp.float32)
    out, ok = graft_blocks(d, g, jnp.float32([3.0, 5.0]))  # given norms are used as they are
    want = np.stack([np.full((2, 2), 1.5), np.full((2, 2), 2.5)])  # ||d_b|| = 2
    np.testing.assert_allclose(np.asarray(out), want, rtol=4 * EPS32)
    assert bool(ok)
    huge = jnp.full((1, 2, 2), 1e30, jnp.float32)  # its norm overflows float32
    _, ok = graft_blocks(huge, jnp.ones((1, 2, 2), jnp.float32))
    assert not bool(ok)
