"""options.py: invalid options raise and echo the value; options that shape the state must
stay static."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rootsolve_optim import (
    block_mesh,
    device_root_fn,
    host_root_fn,
    scale_by_shampoo,
    shampoo,
    sharded_root_fn,
)

PARAMS = {"w": jnp.zeros((6, 4), jnp.float32), "b": jnp.zeros(4, jnp.float32)}


def gradients(steps, seed=0, dtype=jnp.float32, scale=1.0):
    rng = np.random.default_rng(seed)
    return [
        {
            "w": jnp.asarray(scale * rng.standard_normal((6, 4)), dtype),
            "b": jnp.asarray(scale * rng.standard_normal(4), dtype),
        }
        for _ in range(steps)
    ]


@pytest.mark.parametrize(
    "kw, err, match",
    [
        (dict(block_size=0), ValueError, "block_size=0"),
        (dict(block_size=2.5), TypeError, "block_size=2.5"),
        (dict(beta1=1.0), ValueError, "beta1=1.0"),
        (dict(beta2=0.0), ValueError, "beta2=0.0"),
        (dict(beta2=1.5), ValueError, "beta2=1.5"),
        (dict(graft_type="adamw"), ValueError, "graft_type='adamw'"),
        (dict(graft_norm="layer"), ValueError, "graft_norm='layer'"),
        (dict(preconditioner_type="left"), ValueError, "preconditioner_type='left'"),
        (dict(preconditioning_compute_steps=0), ValueError, "preconditioning_compute_steps=0"),
        (dict(start_preconditioning_step=-1), ValueError, "start_preconditioning_step=-1"),
        (dict(exponent_override=0), ValueError, "exponent_override=0"),
        (dict(max_residual=0.0), ValueError, "max_residual=0.0"),
        (dict(rel_ridge=-1.0), ValueError, "rel_ridge=-1.0"),
        (dict(root_method="qr"), ValueError, "method='qr'"),
        (dict(compute_dtype="float16"), ValueError, "compute_dtype='float16'"),
        (dict(root_fn=42), TypeError, "root_fn=42"),
        (dict(stack_parameters="yes"), TypeError, "stack_parameters='yes'"),
        (dict(precision="fast"), ValueError, "precision='fast'"),
        (dict(statistics_precision=3), ValueError, "statistics_precision=3"),
        (dict(root_fn=device_root_fn(), rel_ridge=1e-3), ValueError, "rel_ridge"),
    ],
)
def test_invalid_options_raise_and_echo_the_value(kw, err, match):
    with pytest.raises(err, match=match):
        scale_by_shampoo(**kw)


@pytest.mark.parametrize(
    "kw, match",
    [(dict(weight_decay=-0.1), "weight_decay=-0.1"),
     (dict(gradient_clip_norm=0.0), "gradient_clip_norm=0.0"),
     (dict(weight_decay_mode="coupled"), "weight_decay_mode='coupled'")],
)
def test_invalid_shampoo_options(kw, match):
    with pytest.raises(ValueError, match=match):
        shampoo(0.1, **kw)


def test_structural_option_traced_by_inject_hyperparams_is_explained():
    tx = optax.inject_hyperparams(shampoo)(learning_rate=0.1, block_size=128)
    state = tx.init(PARAMS)
    with pytest.raises(TypeError, match="static_args"):
        jax.jit(tx.update)(gradients(1)[0], state, PARAMS)


def test_root_fn_outside_static_args_is_explained():
    """inject_hyperparams calls every callable not in static_args as a schedule."""
    tx = optax.inject_hyperparams(shampoo)(learning_rate=0.1, root_fn=device_root_fn())
    with pytest.raises(TypeError, match=r"static_args=\(\.\.\., 'root_fn'\)"):
        tx.init(PARAMS)
    static = optax.inject_hyperparams(shampoo, static_args=("root_fn",))
    tx = static(learning_rate=0.1, root_fn=device_root_fn())
    updates, _ = jax.jit(tx.update)(gradients(1)[0], tx.init(PARAMS), PARAMS)
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree_util.tree_leaves(updates))


def test_every_root_function_called_as_a_schedule_says_so():
    with host_root_fn() as host:
        for fn in (device_root_fn(), host, sharded_root_fn(block_mesh())):
            with pytest.raises(TypeError, match="inject_hyperparams.*'root_fn'"):
                fn(jnp.zeros((), jnp.int32))


def test_rel_ridge_outside_static_args_is_explained():
    tx = optax.inject_hyperparams(shampoo)(learning_rate=0.1, rel_ridge=1e-5)
    state = tx.init(PARAMS)  # a concrete value: read as the number it holds
    with pytest.raises(TypeError, match=r"static_args=\(\.\.\., 'rel_ridge'\)"):
        jax.jit(tx.update)(gradients(1)[0], state, PARAMS)


def test_default_roots_on_one_cpu_device_are_float64_host_roots():
    """Where the device roots would be float64 on the CPU, the default computes them on the
    host; float32 roots (``compute_dtype``, or x64 off) and an explicit root function stay."""
    from rootsolve_optim import DeviceRootFn, HostRootFn
    from rootsolve_optim.options import build_root_fn, default_root_fn

    assert jax.default_backend() == "cpu" and jax.device_count() == 1  # tests run on one
    fn = default_root_fn("newton", 1e-5, None)
    assert isinstance(fn, HostRootFn) and not fn.asynchronous
    assert fn.method == "newton" and fn.conditioning.rel_ridge == 1e-5
    assert isinstance(default_root_fn("auto", None, "float64"), HostRootFn)
    assert isinstance(default_root_fn("auto", None, "float32"), DeviceRootFn)
    with jax.enable_x64(False):
        assert isinstance(default_root_fn("auto", None, None), DeviceRootFn)
    explicit = device_root_fn()
    assert build_root_fn(explicit, "auto", None, None) is explicit


def test_default_host_roots_are_the_device_roots_up_to_rounding():
    """The same statistics (the gradients are given, so both runs accumulate the same ones)
    get the same roots: float64 eigh on both sides, agreeing to kappa n eps_64 with
    kappa <= 1 / rel_ridge, each rounded once to the float32 statistics' dtype."""
    grads = gradients(4, seed=3)

    def roots(root_fn):
        tx = scale_by_shampoo(
            root_fn=root_fn, start_preconditioning_step=1, preconditioning_compute_steps=1
        )
        state = tx.init(PARAMS)
        update = jax.jit(tx.update)
        for g in grads:
            _, state = update(g, state, PARAMS)
        return state.factors

    host, device = roots(None), roots(device_root_fn())
    assert len(host) == len(device) > 0
    eps32 = float(jnp.finfo(jnp.float32).eps)
    for h, d in zip(host, device, strict=True):
        assert int(h.metrics.last_refresh.min()) == 3 and int(h.metrics.failures.sum()) == 0
        np.testing.assert_array_equal(h.stat, d.stat)
        np.testing.assert_allclose(h.root, d.root, rtol=2 * eps32, atol=2 * eps32 * float(
            jnp.max(jnp.abs(d.root))))
