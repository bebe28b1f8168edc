"""Gradients through every method (the adjoint Fréchet derivative of rootsolve.frechet).

All in float64 (the suite enables ``jax_enable_x64`` in conftest.py). The
matrices have spectra in ``[1, 3]`` (``kappa = 3``), where every method meets
its stopping tolerance ``sqrt(n) eps / 2`` on ``||M - I||``; the Fréchet
derivative of ``x -> x^t`` there has norm ``O(1)``, so two exact-arithmetic
equal gradients differ by ``O(n kappa eps)`` relative, and a central
difference with step ``h`` by ``O(h^2 + eps / h)`` (``h = 1e-5``: 1e-10).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rootsolve as rs
from rootsolve.frechet import divided_differences
from rootsolve.testing import spd_with_spectrum

jax = pytest.importorskip("jax")
jnp = jax.numpy

EPS64 = float(np.finfo(np.float64).eps)
N = 5
#: Agreement of two gradients computed different ways (see the module docstring).
AGREE = 1e3 * N * EPS64
#: Central differences with step H.
H = 1e-5
FD = 1e-8

GENERAL = [("schur_newton", "gen"), ("schur_free", "gen")]
ALL = [("newton", "pos"), *GENERAL]


def _spd(seed: int = 0) -> jax.Array:
    return jnp.asarray(spd_with_spectrum(np.linspace(1.0, 3.0, N), seed).matrix)


def _general(seed: int = 0) -> jax.Array:
    rng = np.random.default_rng(seed)
    return jnp.asarray(2.0 * np.eye(N) + 0.25 * rng.standard_normal((N, N)))


def _loss(method: str, assume_a: str, t: float, weight: jax.Array):
    return lambda m: jnp.sum(weight * rs.power(m, t, method=method, assume_a=assume_a))


def _rel(x, y) -> float:
    return float(jnp.linalg.norm(x - y) / jnp.linalg.norm(y))


@pytest.mark.parametrize("t", [-1.0 / 3.0, 1.5])
@pytest.mark.parametrize(("method", "assume_a"), ALL)
def test_gradient_matches_eigh(method, assume_a, t):
    """On SPD input every method's gradient is eigh's (jax's own eigh derivative).

    The Hermitian methods symmetrize, so their gradient is symmetric; the
    general ones differentiate along every direction, and their symmetric
    part is the Hermitian gradient.
    """
    a = _spd()
    weight = jnp.asarray(np.random.default_rng(1).standard_normal((N, N)))
    ref = jax.grad(_loss("eigh", "pos", t, weight))(a)
    got = jax.grad(_loss(method, assume_a, t, weight))(a)
    if assume_a == "gen":
        got = (got + got.T) / 2
    assert _rel(got, ref) < AGREE


@pytest.mark.parametrize(("method", "assume_a"), ALL)
def test_gradient_matches_finite_differences(method, assume_a):
    a = _spd() if assume_a == "pos" else _general()
    rng = np.random.default_rng(2)
    weight = jnp.asarray(rng.standard_normal((N, N)))
    e = rng.standard_normal((N, N))
    e = jnp.asarray((e + e.T) / 2 if assume_a == "pos" else e)
    f = _loss(method, assume_a, -1.0 / 3.0, weight)
    fd = (f(a + H * e) - f(a - H * e)) / (2 * H)
    ad = jnp.sum(jax.grad(f)(a) * e)
    assert abs(float(ad - fd)) <= FD * max(1.0, abs(float(fd)))


@pytest.mark.parametrize(("method", "assume_a"), [("newton", "pos"), ("schur_free", "gen")])
def test_gradient_under_jit_and_vmap(method, assume_a):
    """vmap(grad) over a batch equals jit(grad) one matrix at a time, and both the
    finite differences of the loss."""
    make = _spd if assume_a == "pos" else _general
    a = jnp.stack([make(0), make(3)])
    weight = jnp.asarray(np.random.default_rng(4).standard_normal((N, N)))
    f = _loss(method, assume_a, 0.5, weight)
    g = jax.jit(jax.grad(f))
    one_by_one = jnp.stack([g(a[0]), g(a[1])])
    assert _rel(jax.vmap(jax.grad(f))(a), one_by_one) < AGREE
    e = jnp.eye(N) + 0.5 * jnp.ones((N, N))
    fd = (f(a[1] + H * e) - f(a[1] - H * e)) / (2 * H)
    assert abs(float(jnp.sum(one_by_one[1] * e) - fd)) <= FD * max(1.0, abs(float(fd)))


def test_schur_newton_gradient_under_jit_uses_schur_free():
    """Schur-Newton needs concrete input; differentiated under ``jit`` the forward
    pass refuses, as without ``grad``, and ``method="auto"`` runs Schur-free."""
    a = _general()
    weight = jnp.ones((N, N))
    with pytest.raises(ValueError, match="schur_newton"):
        jax.jit(jax.grad(_loss("schur_newton", "gen", 0.5, weight)))(a)
    got = jax.jit(jax.grad(_loss("auto", "gen", 0.5, weight)))(a)
    ref = jax.grad(_loss("schur_newton", "gen", 0.5, weight))(a)
    assert _rel(got, ref) < AGREE


@pytest.mark.parametrize(
    ("method", "t"), [("schur_pade", 0.37), ("auto", 0.37), ("integer_power", -2.0)]
)
@pytest.mark.parametrize("jit", [False, True])
def test_any_exponent_gradient_matches_finite_differences(method, t, jit):
    """Schur-Pade (any real t; a host callback under ``jit``) is differentiated by the
    Frechet adjoint, integer powers by jax through their products and inverse."""
    a = _general(5)
    rng = np.random.default_rng(6)
    weight = jnp.asarray(rng.standard_normal((N, N)))
    e = jnp.asarray(rng.standard_normal((N, N)))
    f = _loss(method, "gen", t, weight)
    g = jax.jit(jax.grad(f)) if jit else jax.grad(f)
    fd = (f(a + H * e) - f(a - H * e)) / (2 * H)
    ad = jnp.sum(g(a) * e)
    assert abs(float(ad - fd)) <= FD * max(1.0, abs(float(fd)))


def test_divided_differences_close_eigenvalues():
    """The expm1 form keeps full accuracy where the plain quotient cancels: at
    ``w_i = w_j (1 + d)`` the quotient is ``t w^(t-1) (1 + (t-1) d / 2 + O(d^2))``."""
    w = jnp.asarray([2.0, 2.0 * (1 + 1e-9)])
    t = -1.0 / 3.0
    f = divided_differences(jnp, w, t)
    expect = t * 2.0 ** (t - 1) * (1 + (t - 1) * 1e-9 / 2)
    assert abs(float(f[0, 1]) - expect) <= 4 * EPS64 * abs(expect)
    assert abs(float(f[0, 0]) - t * 2.0 ** (t - 1)) <= 4 * EPS64 * abs(expect)


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    p=st.integers(1, 4),
    q=st.integers(1, 3),
    sign=st.sampled_from([-1, 1]),
    method=st.sampled_from(["schur_newton", "schur_free"]),
)
def test_general_gradient_finite_differences_property(seed, p, q, sign, method):
    """Gradients vs central differences on small well-conditioned general matrices
    (eigenvalues within 0.25 sqrt(n) < 0.6 of 2, so far from the negative axis)."""
    a = _general(seed)
    rng = np.random.default_rng(seed + 1)
    weight = jnp.asarray(rng.standard_normal((N, N)))
    e = jnp.asarray(rng.standard_normal((N, N)))
    f = _loss(method, "gen", sign * q / p, weight)
    fd = (f(a + H * e) - f(a - H * e)) / (2 * H)
    ad = jnp.sum(jax.grad(f)(a) * e)
    assert abs(float(ad - fd)) <= FD * max(1.0, abs(float(fd)))


def test_ridge_gradient_matches_eigh():
    """With ``ridge=r`` Newton's gradient is the Daleckii-Krein one at the shifted
    eigenvalues, as eigh's is (the ridge is a constant)."""
    a = _spd(5) - 0.5 * jnp.eye(N)
    weight = jnp.asarray(np.random.default_rng(6).standard_normal((N, N)))

    def loss(method):
        return lambda m: jnp.sum(weight * rs.inv_root(m, 2, method=method, ridge=0.5))

    assert _rel(jax.grad(loss("newton"))(a), jax.grad(loss("eigh"))(a)) < AGREE
