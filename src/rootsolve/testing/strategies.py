"""Hypothesis strategies for test matrices and exponents.

``hypothesis`` is imported only when a strategy is built, so that
:mod:`rootsolve.testing` imports without it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .general import jordan_like, near_negative_axis, nonnormal, random_spectrum
from .spd import clustered_spectrum, logspaced_spectrum, spd_with_spectrum

__all__ = ["KINDS", "spd_matrices", "root_orders", "general_matrices", "general_exponents"]

#: Spectrum shapes that :func:`spd_matrices` draws from.
KINDS = ("logspaced", "clustered", "rank_deficient")

_SEED_MAX = 2**32 - 1


def _hypothesis():
    try:
        import hypothesis.strategies as st
    except ImportError as exc:  # pragma: no cover - exercised only without hypothesis
        raise ImportError(
            "rootsolve.testing strategies need hypothesis (pip install hypothesis)"
        ) from exc
    return st


def _strategy(st, value: Any, default: Any):
    if value is None:
        return default
    if isinstance(value, st.SearchStrategy):
        return value
    return st.just(value)


def _spectrum(draw, st, kind: str, n: int, cond: float) -> np.ndarray:
    if kind == "logspaced":
        return logspaced_spectrum(n, cond)
    if kind == "clustered":
        n_small = draw(st.integers(0, n))
        spread = draw(st.sampled_from([0.0, 1e-8, 1e-3]))
        return clustered_spectrum(n, cond, n_small=n_small, spread=spread)
    rank = draw(st.integers(0, n - 1)) if n > 1 else 0
    zeros = np.zeros(n - rank)
    return np.concatenate([zeros, logspaced_spectrum(rank, cond) if rank else []])


def spd_matrices(
    n: Any = None,
    *,
    cond: Any = None,
    dtype: Any = "float64",
    batch_shape: Any = (),
    kind: Any = "logspaced",
    scale: Any = None,
):
    """Hypothesis strategy for Hermitian positive (semi)definite test matrices.

    Each example is an :class:`SPDMatrix`: the matrix and the eigenpairs it
    was built from (:func:`spd_with_spectrum`), so a test has an independent
    reference in :meth:`SPDMatrix.power`. Every parameter takes a value or
    a strategy.

    Parameters
    ----------
    n : int or strategy, default ``st.integers(1, 12)``
        Matrix size.
    cond : float or strategy, optional
        Condition number of the nonzero spectrum. Default ``10**u`` with
        ``u`` uniform in ``[0, 6]`` for 64-bit dtypes and ``[0, 3]`` for
        32-bit ones, the range where a result is still meaningful.
    dtype : dtype or str or strategy, default "float64"
        ``"float32"``, ``"float64"``, ``"complex64"`` or ``"complex128"``;
        complex dtypes give complex Hermitian matrices.
    batch_shape : tuple or strategy, default ``()``
        Leading batch dimensions; each batch member has its own eigenvectors
        and its own scale.
    kind : {"logspaced", "clustered", "rank_deficient", "any"} or strategy
        Shape of the spectrum: geometric (:func:`logspaced_spectrum`), two
        clusters (:func:`clustered_spectrum`, random split and spread), or
        singular (random rank ``0 <= r < n``, zeros plus a geometric part).
    scale : float or strategy, optional
        Multiplies the spectrum (largest eigenvalue). Default ``10**u`` with
        ``u`` uniform in ``[-3, 3]``: roots are homogeneous, and a method
        should not depend on the units of its input.

    Returns
    -------
    hypothesis.strategies.SearchStrategy[SPDMatrix]

    Examples
    --------
    >>> from hypothesis import given
    >>> from rootsolve.testing import spd_matrices, root_orders
    >>> @given(spd_matrices(kind="any"), root_orders())
    ... def test_root(case, p): ...
    """
    st = _hypothesis()
    if isinstance(kind, str) and kind != "any" and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or 'any', got kind={kind!r}")
    n_st = _strategy(st, n, st.integers(1, 12))
    dtype_st = _strategy(st, dtype, st.just("float64")).map(np.dtype)
    batch_st = _strategy(st, batch_shape, st.just(()))
    kind_st = _strategy(st, None if kind == "any" else kind, st.sampled_from(KINDS))
    scale_st = _strategy(st, scale, st.floats(-3.0, 3.0).map(lambda u: 10.0**u))

    @st.composite
    def build(draw):
        size, dt, shape = draw(n_st), draw(dtype_st), tuple(draw(batch_st))
        if dt.kind not in "fc":
            raise ValueError(f"dtype must be a real or complex floating dtype, got {dt}")
        top = 6.0 if np.finfo(dt).eps < 1e-10 else 3.0
        kappa = draw(_strategy(st, cond, st.floats(0.0, top).map(lambda u: 10.0**u)))
        which = draw(kind_st)
        if which not in KINDS:
            raise ValueError(f"kind must be one of {KINDS} or 'any', got kind={which!r}")
        base = _spectrum(draw, st, which, size, kappa)
        count = math.prod(shape)
        scales = np.array([draw(scale_st) for _ in range(count)]).reshape((*shape, 1))
        seed = draw(st.integers(0, _SEED_MAX))
        return spd_with_spectrum(base * scales, np.random.default_rng(seed), dtype=dt)

    return build()


def root_orders(max_p: int = 8):
    """Hypothesis strategy for root orders ``p`` in ``1..max_p``.

    Includes the orders that are not powers of two (3, 5, 6, 7), where a
    matrix power exact only for ``p`` in {1, 2, 4, 8} goes wrong.
    """
    st = _hypothesis()
    if max_p < 1:
        raise ValueError(f"max_p must be >= 1, got max_p={max_p}")
    return st.integers(1, max_p)


def general_matrices(
    n: Any = None,
    *,
    real: bool | None = None,
    kinds: tuple[str, ...] = ("spectrum", "nonnormal", "jordan", "near_negative"),
    max_cond_v: float = 1e2,
):
    """Hypothesis strategy for :class:`GeneralMatrix` values off the closed negative axis.

    Parameters
    ----------
    n : int or strategy, optional
        Size (default: integers 2 to 8).
    real : bool, optional
        Only real (True) or complex (False) matrices; both by default.
    kinds : tuple of str
        Families to draw from: ``"spectrum"`` (random spectrum),
        ``"nonnormal"``, ``"jordan"`` (Jordan-like blocks), ``"near_negative"``.
    max_cond_v : float
        Largest condition number of the eigenvector matrix.
    """
    st = _hypothesis()

    sizes = st.integers(2, 8) if n is None else (n if hasattr(n, "example") else st.just(n))
    reals = st.booleans() if real is None else st.just(real)

    @st.composite
    def draw(draw_):
        size = draw_(sizes)
        is_real = draw_(reals)
        kind = draw_(st.sampled_from(kinds))
        seed = draw_(st.integers(0, 2**32 - 1))
        if kind == "nonnormal":
            dep = draw_(st.floats(0.5, 20.0))
            return nonnormal(size, rng=seed, departure=dep, real=is_real)
        if kind == "jordan":
            lam = draw_(st.floats(0.2, 5.0))
            cut = draw_(st.integers(1, size))
            sizes_ = (cut, size - cut) if cut < size else (size,)
            eig = (lam, 1 / lam)[: len(sizes_)]
            return jordan_like(sizes_, eig, rng=seed, real=is_real)
        cond_v = draw_(st.floats(1.0, max_cond_v))
        if kind == "near_negative" and size >= 2:
            delta = draw_(st.floats(0.05, 0.5))
            return near_negative_axis(size, delta=delta, rng=seed, real=is_real, cond_v=cond_v)
        lo = draw_(st.floats(1e-2, 1.0))
        hi = draw_(st.floats(1.0, 1e2))
        return random_spectrum(size, rng=seed, moduli=(lo, hi), real=is_real, cond_v=cond_v)

    return draw()


def general_exponents(max_p: int = 8, max_q: int = 3):
    """Hypothesis strategy for exponents ``t = m / p`` as pairs ``(m, p)``.

    ``m`` is drawn from ``+-(1..max_q)`` and ``p`` from ``1..max_p``.
    """
    st = _hypothesis()

    return st.tuples(
        st.integers(1, max_q).flatmap(lambda q: st.sampled_from((q, -q))),
        st.integers(1, max_p),
    )
