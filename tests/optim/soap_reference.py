"""SOAP written out directly in float64 numpy: the reference the optax version is tested against.

Vyas, Morwani, Zhao, Shapira, Brandfonbrener, Janson, Kakade, "SOAP:
Improving and Stabilizing Shampoo using Adam", arXiv:2409.11321, Algorithm 3,
with the details of the authors' implementation:

* per block, one statistic per rotated dimension,
  ``S_i <- b_s S_i + (1 - b_s) G_(i) G_(i)^T`` (``b_s = shampoo_beta``, by
  default ``beta2``), updated *after* the step so that a gradient never
  enters the basis it is projected with;
* the first call only collects the statistics and computes the first bases
  by ``eigh`` (eigenvalues largest first); it returns a zero update and does
  not count as an Adam step;
* every step: ``G' = G x_i Q_i^T`` (a mode product per rotated dimension);
  the first moment ``M <- b1 M + (1 - b1) G`` is kept in the original
  coordinates and rotated each step, ``M' = M x_i Q_i^T``; the second moment
  ``V <- b2 V + (1 - b2) G'^2`` lives in the rotated coordinates;
  ``N' = m_hat / (sqrt(v_hat) + eps)`` with Adam's bias corrections
  (``m_hat = M' / (1 - b1^t)``, ``v_hat = V / (1 - b2^t)``, as
  ``optax.adam``; the authors' code adds ``eps`` before the correction); the
  update ``N' x_i Q_i`` rotated back;
* every ``precondition_frequency`` Adam steps, after the statistics, each
  basis is refreshed by one power step: columns sorted by the Rayleigh
  quotients ``diag(Q^T S Q)`` (largest first), ``V`` permuted along that
  dimension in the same way (the second moment follows its columns and is
  otherwise kept), then ``Q <- qr(S Q)``.

Dimensions without a basis (not preconditioned) keep Adam's coordinates. The
caller writes out how a parameter is treated: its merged shape, which merged
dimensions are rotated, and the block size along them.
"""

from __future__ import annotations

import itertools

import numpy as np


def chunks(size: int, block: int | None, cut: bool) -> list[slice]:
    """The slices a dimension of ``size`` is blocked into (whole if not ``cut``)."""
    if not cut or block is None:
        return [slice(0, size)]
    return [slice(a, min(a + block, size)) for a in range(0, size, block)]


def mode_product(x: np.ndarray, m: np.ndarray, axis: int) -> np.ndarray:
    """``x`` multiplied by the matrix ``m`` along ``axis`` (``m @ x_(axis)``)."""
    return np.moveaxis(np.tensordot(m, x, axes=([1], [axis])), 0, axis)


def gram(x: np.ndarray, axis: int) -> np.ndarray:
    """``X_(axis) X_(axis)^T``: contraction over every other dimension."""
    others = [a for a in range(x.ndim) if a != axis]
    return np.tensordot(x, x, axes=(others, others))


def eigh_descending(s: np.ndarray) -> np.ndarray:
    """Eigenvectors of symmetric ``s``, largest eigenvalue first."""
    _, v = np.linalg.eigh((s + s.T) / 2)
    return v[:, ::-1]


class RefSOAP:
    """SOAP for one parameter (see the module docstring).

    Parameters
    ----------
    shape : tuple of int
        The parameter's shape.
    merged : tuple of int
        The shape it is treated as (after merging dimensions).
    mask : tuple of bool
        Which merged dimensions are rotated.
    block_size : int or None
        Block extent along rotated dimensions (None: whole dimensions).
    skip_first : bool
        Whether the first call only initializes (the optimizer does this when
        any parameter has a basis).
    """

    def __init__(
        self, shape, merged, mask, *, block_size=None, beta1=0.9, beta2=0.95,
        shampoo_beta=None, eps=1e-8, precondition_frequency=10, bias_correction=True,
        skip_first=True,
    ):
        self.shape, self.merged, self.mask = tuple(shape), tuple(merged), tuple(mask)
        self.dims = [i for i, m in enumerate(self.mask) if m]
        per_dim = [chunks(d, block_size, m) for d, m in zip(self.merged, self.mask, strict=True)]
        self.blocks = list(itertools.product(*per_dim))
        self.stats = [{i: np.zeros((b[i].stop - b[i].start,) * 2) for i in self.dims}
                      for b in self.blocks]
        self.bases = None
        self.b1, self.b2, self.eps = beta1, beta2, eps
        self.bs = beta2 if shampoo_beta is None else shampoo_beta
        self.freq, self.bias = precondition_frequency, bias_correction
        self.m = np.zeros(self.merged)
        self.v = np.zeros(self.merged)  # in each block's rotated coordinates
        self.t = 0
        self.skip_first = skip_first

    def _rotate(self, x: np.ndarray, j: int, back: bool) -> np.ndarray:
        for i in self.dims:
            q = self.bases[j][i]
            x = mode_product(x, q if back else q.T, i)
        return x

    def _update_stats(self, g: np.ndarray) -> None:
        for j, b in enumerate(self.blocks):
            for i in self.dims:
                self.stats[j][i] = self.bs * self.stats[j][i] + (1 - self.bs) * gram(g[b], i)

    def _refresh(self) -> None:
        for j, b in enumerate(self.blocks):
            for i in self.dims:
                q, s = self.bases[j][i], self.stats[j][i]
                order = np.argsort(-np.einsum("ij,ik,kj->j", q, s, q), kind="stable")
                vb = self.v[b]
                self.v[b] = np.take(vb, order, axis=i)
                self.bases[j][i] = np.linalg.qr(s @ q[:, order])[0]

    def step(self, grad: np.ndarray) -> np.ndarray:
        """The direction for ``grad`` (to be scaled by ``-lr``), in the parameter's shape."""
        g = np.asarray(grad, np.float64).reshape(self.merged)
        if self.bases is None and self.skip_first:
            self._update_stats(g)
            self.bases = [{i: eigh_descending(st[i]) for i in self.dims} for st in self.stats]
            return np.zeros(self.shape)
        if self.bases is None:  # nothing to initialize: no rotated dimension
            self.bases = [{} for _ in self.blocks]
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        out = np.zeros(self.merged)
        for j, b in enumerate(self.blocks):
            g_rot = self._rotate(g[b], j, back=False)
            m_rot = self._rotate(self.m[b], j, back=False)
            self.v[b] = self.b2 * self.v[b] + (1 - self.b2) * g_rot**2
            m_hat, v_hat = m_rot, self.v[b]
            if self.bias:
                m_hat = m_hat / (1 - self.b1**self.t)
                v_hat = v_hat / (1 - self.b2**self.t)
            out[b] = self._rotate(m_hat / (np.sqrt(v_hat) + self.eps), j, back=True)
        self._update_stats(g)
        if self.dims and self.t % self.freq == 0:
            self._refresh()
        return out.reshape(self.shape)
