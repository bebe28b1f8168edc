"""Shampoo's updates against a direct float64 numpy implementation of the formulas.

The reference (:class:`RefShampoo`) is independent of ``rootsolve_optim``:
blocks are listed by explicit slicing, statistics by ``np.tensordot``, roots
by ``np.linalg.eigh`` of ``S + rel_ridge lambda_max I``, grafting and momentum
by their textbook formulas (Anil et al., arXiv 2002.09018, eqs. (2)-(3) and
sec. 5; Gupta, Koren, Singer, ICML 2018, Algorithm 2; Kingma & Ba,
arXiv 1412.6980). Each test writes out by hand the shape a parameter is
treated as (merging) and which dimensions are preconditioned.

Tolerance: both sides root the same float64 statistics up to rounding,
``|dS| ~ n eps lambda_max``. With the ridge every eigenvalue is at least
``rel_ridge lambda_max``, so ``w^(-1/p)`` moves by at most
``(1/p) n eps / rel_ridge`` relative; two roots, a block norm and a few steps
of accumulation multiply that by a small constant, taken as 10.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rootsolve_optim import block_stacks, parameter_factors, scale_by_shampoo, shampoo

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
REL_RIDGE = 1e-6


def inv_root(s: np.ndarray, p: int, rel_ridge: float) -> np.ndarray:
    """``(S + rel_ridge lambda_max I)^(-1/p)`` by eigendecomposition."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    w = w + rel_ridge * max(w[-1], 0.0)
    return (v * w ** (-1.0 / p)) @ v.T


def _chunks(size: int, block: int, cut: bool) -> list[slice]:
    if not cut:
        return [slice(0, size)]
    return [slice(a, min(a + block, size)) for a in range(0, size, block)]


def _mode_product(x: np.ndarray, m: np.ndarray, axis: int) -> np.ndarray:
    """Multiply ``x`` by the matrix ``m`` along ``axis``."""
    return np.moveaxis(np.tensordot(m, x, axes=([1], [axis])), 0, axis)


def _gram(x: np.ndarray, axis: int) -> np.ndarray:
    others = [a for a in range(x.ndim) if a != axis]
    return np.tensordot(x, x, axes=(others, others))


class RefShampoo:
    """Shampoo with grafting and momentum for one parameter.

    ``merged`` and ``mask`` give the shape the parameter is treated as and
    which of its dimensions are preconditioned (written out by each test).
    """

    def __init__(
        self, shape, merged, mask, *, block_size, beta1=0.0, beta2=0.999, nesterov=False,
        moving_average=True, graft="none", graft_beta1=0.9, graft_beta2=None,
        graft_eps=1e-10, graft_norm="block", start=0, pcs=1, scs=1, rel_ridge=1e-6,
        exponent=None,
    ):
        self.shape, self.merged, self.mask = tuple(shape), tuple(merged), tuple(mask)
        self.dims = [i for i, m in enumerate(mask) if m]
        self.p = exponent or 2 * len(self.dims)
        per_dim = [_chunks(d, block_size, m) for d, m in zip(merged, mask, strict=True)]
        self.blocks = list(itertools.product(*per_dim))
        self.stats = [
            {i: np.zeros((b[i].stop - b[i].start,) * 2) for i in self.dims} for b in self.blocks
        ]
        self.roots = [{i: np.eye(len(s)) for i, s in st.items()} for st in self.stats]
        self.b1, self.b2, self.nesterov, self.ma = beta1, beta2, nesterov, moving_average
        self.graft, self.gb1, self.geps, self.gnorm = graft, graft_beta1, graft_eps, graft_norm
        self.gb2 = beta2 if graft_beta2 is None else graft_beta2
        self.start, self.pcs, self.scs, self.rel = start, pcs, scs, rel_ridge
        self.gm = np.zeros(merged)
        self.gv = np.zeros(merged)
        self.mom = np.zeros(merged)
        self.t = 0

    def _graft_dir(self, g: np.ndarray) -> np.ndarray:
        kind, t = self.graft, self.t + 1
        if kind.endswith("_normalized"):
            nrm = np.linalg.norm(g)
            g = g / nrm if nrm > 0 else np.zeros_like(g)
            kind = kind[: -len("_normalized")]
        if kind in ("none", "sgd"):
            return g
        if kind == "sign":
            return np.sign(g)
        if kind == "adagrad":
            self.gv = self.gv + g * g
            return g / (np.sqrt(self.gv) + self.geps)
        b2 = self.gb2
        w2 = 1.0 if b2 == 1 else 1.0 - b2
        self.gv = b2 * self.gv + w2 * g * g
        v_hat = self.gv if b2 == 1 else self.gv / (1 - b2**t)
        if kind == "rmsprop":
            return g / (np.sqrt(v_hat) + self.geps)
        assert kind == "adam"
        self.gm = self.gb1 * self.gm + (1 - self.gb1) * g
        return (self.gm / (1 - self.gb1**t)) / (np.sqrt(v_hat) + self.geps)

    def _update_stats(self, g: np.ndarray) -> None:
        w = 1.0 if self.b2 == 1 else 1.0 - self.b2
        for j, b in enumerate(self.blocks):
            for i in self.dims:
                self.stats[j][i] = self.b2 * self.stats[j][i] + w * _gram(g[b], i)

    def _refresh(self) -> None:
        for roots, stats in zip(self.roots, self.stats, strict=True):
            for i in self.dims:
                roots[i] = inv_root(stats[i], self.p, self.rel)

    def _shampoo_dir(self, g: np.ndarray, graft: np.ndarray) -> np.ndarray:
        d = np.zeros_like(g)
        for b, roots in zip(self.blocks, self.roots, strict=True):
            x = g[b]
            for i in self.dims:
                x = _mode_product(x, roots[i], i)
            if self.graft != "none" and self.gnorm == "block":
                x = x * np.linalg.norm(graft[b]) / np.linalg.norm(x)
            d[b] = x
        if self.graft != "none" and self.gnorm == "tensor":
            d = d * np.linalg.norm(graft) / np.linalg.norm(d)
        return d

    def step(self, grad: np.ndarray, decay: np.ndarray | None = None) -> np.ndarray:
        """The update direction for gradient ``grad`` (to be scaled by ``-lr``); ``decay``
        (``weight_decay theta``) is added to the grafted direction before momentum."""
        g = np.asarray(grad, np.float64).reshape(self.merged)
        graft = self._graft_dir(g)
        t = self.t
        if t % self.scs == 0:
            self._update_stats(g)
        if t >= self.start and (t - self.start) % self.pcs == 0:
            self._refresh()
        d = self._shampoo_dir(g, graft) if t >= self.start and self.dims else graft
        if decay is not None:
            d = d + np.asarray(decay, np.float64).reshape(self.merged)
        w = 1.0 - self.b1 if self.ma else 1.0
        self.mom = self.b1 * self.mom + w * d
        out = self.b1 * self.mom + w * d if self.nesterov else self.mom
        self.t += 1
        return out.reshape(self.shape)


# -- harness -------------------------------------------------------------------------------

_OPTION_NAMES = {
    "beta1": "beta1", "beta2": "beta2", "nesterov": "nesterov",
    "moving_average": "moving_average_for_momentum", "graft": "graft_type",
    "graft_beta1": "graft_beta1", "graft_beta2": "graft_beta2", "graft_eps": "graft_eps",
    "graft_norm": "graft_norm", "start": "start_preconditioning_step",
    "pcs": "preconditioning_compute_steps", "scs": "statistics_compute_steps",
    "exponent": "exponent_override",
}
_DEFAULTS = dict(beta1=0.0, beta2=0.999, nesterov=False, graft="none", start=0, pcs=1)



def grads_for(shape, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(steps)]


def check_against_reference(cases, *, block_size=64, steps=6, extra=None, **opts):
    """Run several parameters through one transformation and their references side by side.

    ``cases`` lists ``(shape, merged, mask)``: the parameter's shape, the shape
    it is treated as and which of those dimensions are preconditioned.
    """
    opts = {**_DEFAULTS, **opts}
    kw = {_OPTION_NAMES[k]: v for k, v in opts.items()}
    extra = {"merge_small_dims": False, **(extra or {})}
    tx = scale_by_shampoo(block_size=block_size, rel_ridge=REL_RIDGE, **kw, **extra)
    refs = [
        RefShampoo(shape, merged, mask, block_size=block_size, rel_ridge=REL_RIDGE, **opts)
        for shape, merged, mask in cases
    ]
    params = {f"p{i}": jnp.zeros(c[0], jnp.float64) for i, c in enumerate(cases)}
    grads = [grads_for(c[0], steps, seed=i) for i, c in enumerate(cases)]
    state = tx.init(params)
    update = jax.jit(tx.update)
    for t in range(steps):
        out, state = update({f"p{i}": jnp.asarray(g[t]) for i, g in enumerate(grads)}, state)
        for i, (ref, g) in enumerate(zip(refs, grads, strict=True)):
            want, got = ref.step(g[t]), np.asarray(out[f"p{i}"])
            tol = 10 * max(cases[i][1] or (1,)) * EPS64 / REL_RIDGE
            assert got.dtype == np.float64
            np.testing.assert_allclose(
                got, want, rtol=tol, atol=tol * np.abs(want).max(),
                err_msg=f"step {t}, shape {cases[i][0]}",
            )
    return state


MATRIX = ((5, 4), (5, 4), (True, True))
RANK3 = ((3, 4, 5), (3, 4, 5), (True,) * 3)
RANK4 = ((2, 3, 2, 3), (2, 3, 2, 3), (True,) * 4)
VECTOR = ((7,), (7,), (False,))


# -- the formulas, rank 1 to 4 ---------------------------------------------------------------


def test_ranks_one_to_four():
    """Matrix: L^(-1/4) G R^(-1/4); order 3: S_i^(-1/6); order 4: S_i^(-1/8); vector: graft.

    beta2 = 1 accumulates plain sums (beta2 < 1, a moving average, runs in the other tests).
    """
    state = check_against_reference(
        [MATRIX, RANK3, RANK4, VECTOR], beta2=1.0, graft="rmsprop", steps=4
    )
    # one statistic per dimension of the matrix, the order-3 and the order-4 tensor; none
    # for the vector
    assert len(state.factors) == 2 + 3 + 4


def test_matrix_first_step_by_hand():
    """One step, beta2 = 1, no ridge to speak of: D = (G G^T)^(-1/4) G (G^T G)^(-1/4) = U V^T."""
    g = np.random.default_rng(3).standard_normal((4, 4))
    tx = scale_by_shampoo(
        beta1=0.0, beta2=1.0, graft_type="none", start_preconditioning_step=0,
        preconditioning_compute_steps=1, rel_ridge=1e-12, merge_small_dims=False,
    )
    out, _ = jax.jit(tx.update)({"x": jnp.asarray(g)}, tx.init({"x": jnp.zeros((4, 4))}))
    u, _, vt = np.linalg.svd(g)
    np.testing.assert_allclose(np.asarray(out["x"]), u @ vt, atol=1e-6)


def test_merging():
    """block_size 16 is also the merge threshold.

    (3, 4, 5): 3*4 = 12 <= 16 < 12*5, a 12 x 5 matrix; (1, 2, 3, 1, 4): unit
    dimensions vanish, 2*3 = 6, then 6*4 > 16, a 6 x 4 matrix; (5, 3): 15 <= 16,
    a 15-vector with one 15 x 15 statistic and exponent 1/2.
    """
    check_against_reference(
        [((3, 4, 5), (12, 5), (True, True)), ((1, 2, 3, 1, 4), (6, 4), (True, True)),
         ((5, 3), (15,), (True,))],
        block_size=16, extra={"merge_small_dims": True},
    )


def test_vector_and_matrix_statistics_of_one_size():
    """(4, 3) merges into a 12-vector (exponent 1/2) whose 12 x 12 statistic is rooted in
    one call with the (12, 5) matrix's (exponent 1/4) and squared."""
    check_against_reference(
        [((4, 3), (12,), (True,)), ((12, 5), (12, 5), (True, True))],
        block_size=16, extra={"merge_small_dims": True},
    )


def test_exponent_override():
    check_against_reference([MATRIX, RANK3], exponent=2, steps=4)


# -- blocking ------------------------------------------------------------------------------


def test_blocks_and_skipped_dimension():
    """Blocks of at most 4 per dimension; dimensions above 10 are left alone.

    (6, 10): row chunks 4+2, column chunks 4+4+2, six blocks in four shapes;
    (5, 3, 6): 2 x 1 x 2 blocks; (20, 3): the 20 is skipped, so D = G R^(-1/2).
    """
    state = check_against_reference(
        [((6, 10), (6, 10), (True, True)), ((5, 3, 6), (5, 3, 6), (True,) * 3),
         ((20, 3), (20, 3), (False, True))],
        block_size=4, graft="sgd", steps=4, extra={"skip_preconditioning_dim_size_gt": 10},
    )
    params = {
        "p0": jnp.zeros((6, 10)), "p1": jnp.zeros((5, 3, 6)), "p2": jnp.zeros((20, 3))
    }
    layout = dict(block_size=4, merge_small_dims=False, skip_preconditioning_dim_size_gt=10)
    # groups 4x4 (2 blocks), 4x2, 2x4 (2 blocks), 2x2: one statistic per dimension of each
    per = parameter_factors(state, params, **layout)
    assert [tuple(f.stat.shape) for f in per["p0"]] == [
        (2, 4, 4), (2, 4, 4), (1, 4, 4), (1, 2, 2), (2, 2, 2), (2, 4, 4), (1, 2, 2), (1, 2, 2)
    ]
    assert [tuple(f.stat.shape) for f in per["p2"]] == [
        (1, 3, 3)
    ]


@pytest.mark.parametrize("graft, graft_norm", [("rmsprop_normalized", "block"),
                                               ("adam", "tensor"), ("none", "block")])
def test_stacked_parameters(graft, graft_norm):
    """Blocks of one shape from several parameters share one stack (one product per step),
    and every parameter still gets its own reference update.

    Blocks of 4: (8, 8) gives four 4 x 4 blocks, (8, 12) six, (12, 4) three and (6, 4) one,
    plus a 2 x 4 block of its own; (4, 4, 4) is an order-3 tensor (another exponent).
    """
    cases = [
        ((8, 8), (8, 8), (True, True)), ((8, 12), (8, 12), (True, True)),
        ((4, 4, 4), (4, 4, 4), (True,) * 3), ((12, 4), (12, 4), (True, True)),
        ((6, 4), (6, 4), (True, True)),
    ]
    layout = dict(block_size=4, merge_small_dims=False, stack_parameters=True)
    state = check_against_reference(
        cases, block_size=4, steps=4, graft=graft, graft_norm=graft_norm, beta1=0.9,
        nesterov=True, extra={"stack_parameters": True},
    )
    params = {f"p{i}": jnp.zeros(c[0]) for i, c in enumerate(cases)}
    stacks = block_stacks(params, **layout)
    assert [(s.block_shape, s.num_blocks) for s in stacks] == [
        ((4, 4), 14), ((4, 4, 4), 1), ((2, 4), 1)
    ]
    assert [tuple(f.stat.shape) for f in state.factors] == [
        (14, 4, 4), (14, 4, 4), (1, 4, 4), (1, 4, 4), (1, 4, 4), (1, 2, 2), (1, 4, 4)
    ]
    last = parameter_factors(state, params, **layout)["p4"]
    assert [tuple(f.stat.shape) for f in last] == [(1, 4, 4), (1, 4, 4), (1, 2, 2), (1, 4, 4)]


# -- one-sided ------------------------------------------------------------------------------


def test_one_sided_input():
    """L^(-1/2) G; for (2, 3, 4) the inputs 2*3 merge to 6 and the output 4 stays apart."""
    check_against_reference(
        [((5, 4), (5, 4), (True, False)), ((2, 3, 4), (6, 4), (True, False))],
        extra={"preconditioner_type": "input", "merge_small_dims": True}, steps=4,
    )


def test_one_sided_output():
    """G R^(-1/2)."""
    check_against_reference(
        [((5, 4), (5, 4), (False, True))], extra={"preconditioner_type": "output"}, steps=4
    )


# -- grafting, momentum, schedule of roots ---------------------------------------------------


@pytest.mark.parametrize(
    "graft",
    ["sgd", "adagrad", "rmsprop", "rmsprop_normalized", "adagrad_normalized", "adam", "sign"],
)
def test_grafting_types(graft):
    """Each grafting direction, on a vector (grafting alone).

    How a graft's norm is transferred to Shampoo's direction does not depend
    on the kind; the other tests check it per block and per tensor.
    """
    check_against_reference([VECTOR], graft=graft, beta2=0.99, steps=4)


def test_grafting_per_tensor_and_rmsprop_with_beta2_one():
    """graft_norm="tensor"; RMSProp with graft_beta2 = 1 is AdaGrad."""
    check_against_reference(
        [((6, 5), (6, 5), (True, True)), VECTOR], block_size=4, graft="rmsprop",
        graft_norm="tensor", graft_beta2=1.0, steps=4,
    )


@pytest.mark.parametrize("nesterov, moving_average", [(False, False), (True, True)])
def test_momentum(nesterov, moving_average):
    check_against_reference(
        [MATRIX, VECTOR], beta1=0.9, nesterov=nesterov, moving_average=moving_average,
        graft="rmsprop_normalized", steps=5,
    )


def test_start_step_and_periods():
    """Grafting alone for t < 3; roots at t = 3, 6, 9 and stale in between; statistics every
    second step."""
    check_against_reference([MATRIX], graft="rmsprop", start=3, pcs=3, scs=2, steps=10)


# -- the ready optimizer: learning rate, weight decay, L2, clipping -------------------------

LR = 0.05
COMMON = dict(start_preconditioning_step=1, preconditioning_compute_steps=1, merge_small_dims=False)
PARAMS = {"w": jnp.asarray(np.random.default_rng(0).standard_normal((6, 4)))}
GRADS = [{"w": jnp.asarray(g)} for g in grads_for((6, 4), 3, seed=1)]


def _run(tx, grads=GRADS):
    state = tx.init(PARAMS)
    update = jax.jit(tx.update)
    outs = []
    for g in grads:
        u, state = update(g, state, PARAMS)
        outs.append(np.asarray(u["w"]))
    return outs


@pytest.fixture(scope="module")
def plain():
    """``shampoo(LR)`` with no decay, L2 or clipping, compiled once for the module."""
    tx = shampoo(LR, **COMMON)
    update = jax.jit(tx.update)

    def run(grads=GRADS):
        state, outs = tx.init(PARAMS), []
        for g in grads:
            u, state = update(g, state, PARAMS)
            outs.append(np.asarray(u["w"]))
        return outs

    return run


def test_decoupled_weight_decay_is_scaled_by_lr_once(plain):
    """theta <- theta - lr (D + wd theta): the decay term is exactly -lr wd theta, not lr^2."""
    wd = 0.3
    decayed = _run(shampoo(LR, weight_decay=wd, **COMMON))
    for a, b in zip(plain(), decayed, strict=True):
        np.testing.assert_allclose(b - a, -LR * wd * np.asarray(PARAMS["w"]), rtol=1e-12)


@pytest.mark.parametrize("mode", ["decoupled", "before_momentum"])
def test_weight_decay_modes_train_as_their_rules_say(mode):
    """Five training steps of a matrix and a vector with momentum, Nesterov and an RMSProp
    graft, grafting alone before step 2, against the reference with the decay written out:
    ``"decoupled"``: theta <- theta - lr (M + wd theta), M from the directions alone;
    ``"before_momentum"`` (the 2022 reference implementation's default): D <- D + wd theta,
    then momentum and Nesterov. Same tolerance as :func:`check_against_reference`."""
    wd, steps, block_size = 0.1, 5, 64
    cases = [MATRIX, VECTOR]
    opts = dict(beta1=0.9, beta2=0.999, nesterov=True, graft="rmsprop_normalized", start=2)
    refs, others = (
        [
            RefShampoo(shape, merged, mask, block_size=block_size, rel_ridge=REL_RIDGE, **opts)
            for shape, merged, mask in cases
        ]
        for _ in range(2)
    )
    kw = {_OPTION_NAMES[k]: v for k, v in opts.items()}
    tx = shampoo(
        LR, weight_decay=wd, weight_decay_mode=mode, block_size=block_size,
        rel_ridge=REL_RIDGE, merge_small_dims=False, preconditioning_compute_steps=1, **kw,
    )
    rng = np.random.default_rng(3)
    theta = [rng.standard_normal(c[0]) for c in cases]
    other = list(theta)  # trained by the other mode's rule
    params = {f"p{i}": jnp.asarray(x) for i, x in enumerate(theta)}
    grads = [grads_for(c[0], steps, seed=i) for i, c in enumerate(cases)]
    state = tx.init(params)
    update = jax.jit(tx.update)
    for t in range(steps):
        u, state = update({f"p{i}": jnp.asarray(g[t]) for i, g in enumerate(grads)}, state,
                          params)
        params = optax.apply_updates(params, u)
        for i, (ref, oref) in enumerate(zip(refs, others, strict=True)):
            coupled = ref if mode == "before_momentum" else oref
            x = theta if mode == "before_momentum" else other
            x[i] = x[i] - LR * coupled.step(grads[i][t], decay=wd * x[i])
            decoupled = oref if mode == "before_momentum" else ref
            x = other if mode == "before_momentum" else theta
            x[i] = x[i] - LR * (decoupled.step(grads[i][t]) + wd * x[i])
            tol = 10 * max(cases[i][1]) * EPS64 / REL_RIDGE
            np.testing.assert_allclose(np.asarray(params[f"p{i}"]), theta[i], rtol=tol,
                                       atol=tol, err_msg=f"step {t}, {mode}")
    # The two rules are different updates, far apart beside the tolerance.
    assert all(np.max(np.abs(a - b)) > 1e4 * tol for a, b in zip(theta, other, strict=True))


def test_weight_decay_mask(plain):
    masked = _run(shampoo(LR, weight_decay=0.5, weight_decay_mask={"w": False}, **COMMON))
    for a, b in zip(plain(), masked, strict=True):
        np.testing.assert_array_equal(a, b)


def test_l2_adds_to_the_gradient(plain):
    c = 0.2
    with_l2 = _run(shampoo(LR, l2_regularization=c, **COMMON))
    shifted = plain([{"w": g["w"] + c * PARAMS["w"]} for g in GRADS])
    for a, b in zip(shifted, with_l2, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)


def test_gradient_clipping_by_global_norm(plain):
    clip = 0.5
    clipped = _run(shampoo(LR, gradient_clip_norm=clip, **COMMON))
    scaled = plain([{"w": g["w"] * min(1.0, clip / float(jnp.linalg.norm(g["w"])))} for g in GRADS])
    for a, b in zip(scaled, clipped, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-15)


def test_learning_rate_schedule_times_direction():
    """update_t = -lr(t) D_t, with D from scale_by_shampoo (optax evaluates lr in float32)."""
    sched = optax.linear_schedule(0.1, 0.02, transition_steps=2)
    scheduled = _run(shampoo(sched, **COMMON))
    direction = _run(scale_by_shampoo(**COMMON))
    for t, (a, b) in enumerate(zip(direction, scheduled, strict=True)):
        np.testing.assert_allclose(b, -float(sched(t)) * a, rtol=4 * EPS32)
