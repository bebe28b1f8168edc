"""control.py: static-or-traced branches and schedules, finiteness checks, concatenation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rootsolve_optim.control import (
    all_true,
    computed_once,
    concat,
    due,
    finite,
    squares_finite,
    started,
    when,
)


def test_static_schedules_fold_to_python_true():
    count = jnp.int32(5)
    assert due(count, 0, 1) is True and started(count, 0) is True
    assert not isinstance(due(count, 1, 1), bool)  # a traced decision otherwise


@pytest.mark.parametrize("start, every", [(0, 3), (2, 1), (2, 3), (4, 2)])
def test_due_and_started_match_their_definition(start, every):
    for t in range(12):
        want_due = t >= start and (t - start) % every == 0
        assert bool(jax.jit(due, static_argnums=(1, 2))(jnp.int32(t), start, every)) == want_due
        assert bool(due(jnp.int32(t), jnp.int32(start), jnp.int32(every))) == want_due
        assert bool(started(jnp.int32(t), jnp.int32(start))) == (t >= start)


def test_when_is_static_for_python_bools_and_a_cond_otherwise():
    calls = []

    def yes(x):
        calls.append("yes")
        return x + 1

    def no(x):
        calls.append("no")
        return x - 1

    assert when(True, yes, no, 1) == 2 and calls == ["yes"]
    calls.clear()
    out = jax.jit(lambda p, x: when(p, yes, no, x))(jnp.asarray(False), jnp.float32(1))
    assert float(out) == 0.0 and sorted(calls) == ["no", "yes"]  # both branches traced


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_finite_sees_every_non_finite_value(bad):
    x = np.ones((3, 4), np.float32)
    assert bool(finite(jnp.asarray(x)))
    x[1, 2] = bad
    assert not bool(finite(jnp.asarray(x)))
    np.testing.assert_array_equal(finite(jnp.asarray(x), axis=1), [True, False, True])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_finite_sees_a_non_finite_value_in_a_large_array_under_jit(bad):
    """XLA's CPU backend vectorizes a max-reduction with instructions that drop NaN, so a
    check through ``max(|x|)`` missed this NaN; the checks must see it at every size."""
    x = np.ones((2, 256, 256), np.float32)
    x[1, 1, 2] = bad
    assert not bool(jax.jit(finite)(jnp.asarray(x)))
    np.testing.assert_array_equal(
        jax.jit(lambda y: finite(y, axis=(-2, -1)))(jnp.asarray(x)), [True, False])
    assert not bool(jax.jit(squares_finite)(jnp.asarray(x)))
    assert bool(jax.jit(finite)(jnp.ones((2, 256, 256), jnp.float32)))


def test_squares_finite_refuses_values_whose_square_overflows():
    big = float(np.sqrt(np.finfo(np.float32).max))  # its square is about the largest float32
    assert bool(squares_finite(jnp.float32([0.5 * big, -1.0])))
    assert not bool(squares_finite(jnp.float32([2.0 * big, 1.0])))
    assert bool(finite(jnp.float32([2.0 * big])))  # finite itself


def test_all_true_and_concat():
    assert bool(all_true([])) and not bool(all_true([jnp.asarray(True), jnp.asarray(False)]))
    x = jnp.arange(3.0)
    assert concat([x]) is x
    np.testing.assert_array_equal(concat([x, x + 3]), np.arange(6.0))
    empty = concat([], jnp.int32)
    assert empty.shape == (0,) and empty.dtype == jnp.int32


def test_computed_once_keeps_the_flag():
    assert computed_once(True) is True and computed_once(False) is False
    for flag in (True, False):
        assert bool(jax.jit(computed_once)(jnp.asarray(flag))) is flag
    traced = jax.jit(lambda x: computed_once(finite(x)))
    assert bool(traced(jnp.ones(3))) and not bool(traced(jnp.asarray([1.0, jnp.nan])))
