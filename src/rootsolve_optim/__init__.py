"""rootsolve_optim: blocked Shampoo for JAX, as an optax transformation.

Implements Anil, Gupta, Koren, Regan, Singer, "Scalable Second Order
Optimization for Deep Learning" (arXiv 2002.09018); every matrix root comes
from :mod:`rootsolve`.
"""

from .host import HostRootFn, HostRootMetrics, host_root_fn
from .metrics import FactorMetrics, ShampooMetrics, shampoo_metrics
from .preconditioner import DeviceRootFn, RootFn, RootResult, device_root_fn
from .shampoo import Factor, ParamState, ShampooState, scale_by_shampoo, shampoo
from .sharding import ShardedRootFn, block_mesh, sharded_root_fn

__all__ = [
    "shampoo",
    "scale_by_shampoo",
    "ShampooState",
    "ParamState",
    "Factor",
    "RootFn",
    "RootResult",
    "DeviceRootFn",
    "device_root_fn",
    "FactorMetrics",
    "ShampooMetrics",
    "shampoo_metrics",
    "host_root_fn",
    "HostRootFn",
    "HostRootMetrics",
    "sharded_root_fn",
    "ShardedRootFn",
    "block_mesh",
]
