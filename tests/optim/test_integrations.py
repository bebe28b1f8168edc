"""Shampoo inside the libraries a JAX user trains with: ``flax.nnx.Optimizer``, flax's
``TrainState`` and an orbax checkpoint taken in the middle of training."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rootsolve_optim

nnx = pytest.importorskip("flax.nnx")
linen = pytest.importorskip("flax.linen")
train_state = pytest.importorskip("flax.training.train_state")
ocp = pytest.importorskip("orbax.checkpoint")

EPS32 = float(np.finfo(np.float32).eps)
# Small blocks, an early start and refreshes every few steps: every part of the state
# (grafting moments, momentum, statistics, roots, metrics) changes within a few steps.
OPTS = dict(block_size=8, start_preconditioning_step=2, preconditioning_compute_steps=3)


def data(seed=0, n=64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    w = rng.standard_normal((6, 3)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(np.tanh(x @ w))


class MLP(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(6, 12, rngs=rngs)
        self.out = nnx.Linear(12, 3, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


def mse(pred, y):
    return jnp.mean((pred - y) ** 2)


def test_nnx_optimizer_trains_as_plain_optax_does():
    """20 steps through ``nnx.Optimizer`` (which rebuilds every container inside the
    parameters' tree as its own ``State``) against the same transformation driven by hand
    on the same parameters, and the same with a grafting kind without state (an empty
    NamedTuple in the state). One jitted program holds all three, to compile once."""
    x, y = data()
    tx = rootsolve_optim.shampoo(3e-2, **OPTS)
    model = MLP(nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)
    params = nnx.as_pure(params)  # arrays, not the model's variables (which nnx updates)
    opt_state = tx.init(params)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    sgd_model = MLP(nnx.Rngs(0))
    sgd_tx = rootsolve_optim.shampoo(1e-1, graft_type="sgd", **OPTS)
    sgd_optimizer = nnx.Optimizer(sgd_model, sgd_tx, wrt=nnx.Param)

    def loss_of(m):
        return mse(m(x), y)

    @nnx.jit
    def step(model, optimizer, sgd_model, sgd_optimizer, params, opt_state):
        loss, grads = nnx.value_and_grad(loss_of)(model)
        optimizer.update(model, grads)
        sgd_loss, grads = nnx.value_and_grad(loss_of)(sgd_model)
        sgd_optimizer.update(sgd_model, grads)
        plain_loss, grads = jax.value_and_grad(lambda p: loss_of(nnx.merge(graphdef, p)))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (loss, sgd_loss, plain_loss), optax.apply_updates(params, updates), opt_state

    losses = []
    for _ in range(20):
        ls, params, opt_state = step(model, optimizer, sgd_model, sgd_optimizer, params,
                                     opt_state)
        losses.append([float(v) for v in ls])
    nnx_losses, sgd_losses, plain_losses = np.array(losses).T

    for ls in (nnx_losses, sgd_losses):
        assert np.all(np.isfinite(ls))
        assert ls[-1] < 0.5 * ls[0]
        assert np.mean(ls[-5:]) < np.mean(ls[5:10]) < np.mean(ls[:5])
    # The same arithmetic, differently fused at most: float32 rounding, amplified a little
    # by 20 steps of a well-conditioned problem.
    np.testing.assert_allclose(nnx_losses, plain_losses, rtol=1e3 * EPS32)
    got = jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))
    want = jax.tree_util.tree_leaves(params)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e3 * EPS32)
    for opt in (optimizer, sgd_optimizer):
        metrics = rootsolve_optim.shampoo_metrics(nnx.as_pure(opt.opt_state))
        assert int(metrics.count) == 20 and int(metrics.skipped_steps) == 0
        assert int(metrics.never_refreshed) == 0


class LinenMLP(linen.Module):
    @linen.compact
    def __call__(self, x):
        return linen.Dense(3)(jnp.tanh(linen.Dense(12)(x)))


X, Y = data(1)


@pytest.fixture(scope="module")
def linen_training():
    """A linen model, its parameters, a TrainState with Shampoo and a jitted step (compiled
    once for the tests that use it)."""
    model = LinenMLP()
    params = model.init(jax.random.key(1), X)
    tx = rootsolve_optim.shampoo(3e-2, weight_decay=1e-3, **OPTS)
    ts = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    # An int32 step counter and arrays on one device, as a checkpoint restores them, so that
    # the step compiled for a fresh state also takes a restored one.
    ts = jax.device_put(ts.replace(step=jnp.zeros((), jnp.int32)), jax.devices()[0])

    @jax.jit
    def step(ts):
        loss, grads = jax.value_and_grad(lambda p: mse(ts.apply_fn(p, X), Y))(ts.params)
        return loss, ts.apply_gradients(grads=grads)

    return ts, step


def test_linen_train_state_applies_shampoo(linen_training):
    ts, step = linen_training
    losses = []
    for _ in range(6):
        loss, ts = step(ts)
        losses.append(float(loss))
    assert int(ts.step) == 6
    assert int(rootsolve_optim.shampoo_metrics(ts.opt_state).count) == 6
    assert int(rootsolve_optim.shampoo_metrics(ts.opt_state).never_refreshed) == 0
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.9 * losses[0]


def test_orbax_checkpoint_mid_training_resumes_bit_identically(linen_training, tmp_path):
    """Train 10 steps; save the TrainState after 5 with orbax, restore it into the structure
    of a fresh one, train the last 5 again: parameters and every state array are
    bit-identical."""
    fresh, step = linen_training

    def train(ts, steps):
        for _ in range(steps):
            _, ts = step(ts)
        return ts

    straight = train(fresh, 10)
    halfway = train(fresh, 5)
    path = tmp_path / "ckpt"
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(path, halfway)
        ckptr.wait_until_finished()
        target = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, fresh)
        restored = ckptr.restore(path, target)
    assert jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(halfway)
    assert int(restored.step) == 5 and int(restored.opt_state[0].count) == 5
    resumed = train(restored, 5)
    a_leaves = jax.tree_util.tree_leaves(straight)
    b_leaves = jax.tree_util.tree_leaves(resumed)
    assert len(a_leaves) == len(b_leaves)
    for a, b in zip(a_leaves, b_leaves, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
