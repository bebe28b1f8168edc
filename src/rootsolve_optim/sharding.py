"""Spreading the block roots of Shampoo over devices with ``jax.shard_map``.

Every block's inverse root is an independent problem, and a stack of k
equally shaped statistics is the unit the optimizer hands to its root
function. Anil et al. (arXiv 2002.09018, sec. 5) exploit that independence to
share the cubic-cost root computations among many processors instead of
repeating all of them everywhere: each worker computes the roots of a subset
of the preconditioners and the results are exchanged. On an SPMD program
(JAX/XLA) the same division of labour reads: pad the stack to a multiple of
the device count, give each device a contiguous slice of the block axis,
compute the slice's roots locally, and all-gather the result so every device
holds every root again. With D devices the root step costs about
``ceil(k / D)`` blocks of work per device plus one all-gather of ``k n^2``
numbers, instead of ``k`` blocks on every device.

:func:`sharded_root_fn` wraps any root function (by default the on-device
:func:`rootsolve_optim.root_functions.device_root_fn`) this way;
:func:`block_mesh` builds the 1-D mesh over the local devices. On a CPU the
devices can be simulated with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (set before JAX
starts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rootsolve._validation import check_order

from .root_functions import RootFn, RootResult, check_root_call, device_root_fn, solve_roots

__all__ = ["sharded_root_fn", "ShardedRootFn", "block_mesh"]

_shard_map = getattr(jax, "shard_map", None)
if _shard_map is None:  # jax < 0.6.1 kept it in experimental
    from jax.experimental.shard_map import shard_map as _shard_map


def block_mesh(axis_name: str = "blocks", devices: Sequence[Any] | None = None) -> Mesh:
    """A 1-D mesh named ``axis_name`` over ``devices`` (default: all local devices).

    Parameters
    ----------
    axis_name : str, default "blocks"
        Name of the mesh axis the block stacks are split over.
    devices : sequence of jax devices, optional
        Defaults to ``jax.local_devices()``.

    Returns
    -------
    jax.sharding.Mesh
    """
    if not isinstance(axis_name, str) or not axis_name:
        raise ValueError(f"axis_name must be a non-empty str, got axis_name={axis_name!r}")
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must not be empty, got []")
    return Mesh(np.asarray(devices, dtype=object), (axis_name,))


def _pad_identity(stats: Any, multiple: int) -> Any:
    """Append identity blocks so the block axis is a multiple of ``multiple``.

    The identity is the cheapest well-conditioned filler: every root method
    handles it exactly and its inverse root is itself.
    """
    k, n = stats.shape[0], stats.shape[-1]
    pad = -k % multiple
    if pad == 0:
        return stats
    eye = jnp.broadcast_to(jnp.eye(n, dtype=stats.dtype), (pad, n, n))
    return jnp.concatenate([stats, eye], axis=0)


@dataclass(frozen=True)
class ShardedRootFn:
    """A root function whose block stack is split over one mesh axis.

    Build it with :func:`sharded_root_fn`. ``__call__`` follows
    :class:`~rootsolve_optim.root_functions.RootFn`; ``with_info`` also returns
    the iteration counts when the base root function reports them.
    """

    mesh: Mesh
    axis_name: str
    base_root_fn: Any

    def with_info(self, stats: Any, p: int, step: Any) -> RootResult:
        """Roots of ``stats`` (k, n, n), computed ``ceil(k / D)`` blocks per device."""
        p = check_order(p)
        stats = jnp.asarray(stats)
        if stats.ndim != 3 or stats.shape[-1] != stats.shape[-2]:
            raise ValueError(f"stats must have shape (k, n, n), got {stats.shape}")
        k = stats.shape[0]
        spread = _shard_map(
            lambda block, step: tuple(solve_roots(self.base_root_fn, block, p, step)),
            mesh=self.mesh,
            in_specs=(P(self.axis_name), P()),
            out_specs=(P(self.axis_name),) * len(RootResult._fields),
        )
        padded = _pad_identity(stats, self.mesh.shape[self.axis_name])
        out = spread(padded, jnp.asarray(step, jnp.int32))
        # Gather: every device gets every root (XLA emits one all-gather per output).
        replicated = NamedSharding(self.mesh, P())
        return RootResult(*(jax.lax.with_sharding_constraint(x[:k], replicated) for x in out))

    def __call__(self, stats: Any, p: int | None = None, step: Any = None) -> tuple[Any, Any, Any]:
        check_root_call(stats, p)
        roots, residual, converged, _ = self.with_info(stats, p, step)
        return roots, residual, converged


def sharded_root_fn(
    mesh: Mesh, axis_name: str = "blocks", base_root_fn: RootFn | None = None
) -> ShardedRootFn:
    """A Shampoo ``root_fn`` that splits the block stack over a mesh axis.

    Parameters
    ----------
    mesh : jax.sharding.Mesh
        Devices to use, e.g. :func:`block_mesh`. Other mesh axes than
        ``axis_name`` see the statistics replicated and repeat the work.
    axis_name : str, default "blocks"
        Mesh axis the block axis ``k`` is split over.
    base_root_fn : RootFn, optional
        Computes each device's share ``(k / D, n, n)``; default
        :func:`rootsolve_optim.root_functions.device_root_fn` (rootsolve on
        jax arrays). It must be traceable inside ``shard_map``.

    Returns
    -------
    ShardedRootFn
        A :class:`~rootsolve_optim.root_functions.RootFn`
        ``(stats, p, step) -> (roots, residual, converged)`` for ``stats`` of
        shape ``(k, n, n)``; the results are replicated on every device of
        the mesh (an all-gather after the local roots).

    Notes
    -----
    ``k`` is padded with identity blocks to a multiple of the axis size ``D``;
    the padding is dropped before returning, so any ``k >= 1`` works (for
    ``k < D`` some devices only root identities). Call it from a
    global-view (``jit``) program, not from inside another ``shard_map``
    over the same axis.

    References
    ----------
    R. Anil, V. Gupta, T. Koren, K. Regan, Y. Singer, "Scalable Second Order
    Optimization for Deep Learning", arXiv 2002.09018, sec. 5.
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    if axis_name not in mesh.axis_names:
        raise ValueError(
            f"axis_name must be one of the mesh axes {mesh.axis_names}, got {axis_name!r}"
        )
    if base_root_fn is None:
        base_root_fn = device_root_fn()
    elif not callable(base_root_fn):
        raise TypeError(f"base_root_fn must be callable, got base_root_fn={base_root_fn!r}")
    return ShardedRootFn(mesh, axis_name, base_root_fn)
