"""rootsolve_optim: blocked Shampoo for JAX, as an optax transformation.

Implements Anil, Gupta, Koren, Regan, Singer, "Scalable Second Order
Optimization for Deep Learning" (arXiv 2002.09018); every matrix root comes
from :mod:`rootsolve`. Start with :func:`shampoo`; ``help(rootsolve_optim.shampoo)``
lists every option, and docs/optimizer.md maps the modules. :func:`soap` is SOAP
(Vyas et al., arXiv 2409.11321): Adam in the eigenbasis of Shampoo's statistics.
"""

try:
    import jax as _jax  # noqa: F401
    import optax as _optax  # noqa: F401
except ImportError as _exc:
    raise ImportError(
        f"rootsolve_optim needs jax and optax ({_exc}); install them with "
        "pip install 'rootsolve[jax]' (or 'rootsolve[optim]' for the demo and Flax/Orbax too)"
    ) from _exc

from rootsolve import __version__ as __version__

from .host import HostRootFn as HostRootFn
from .host import HostRootMetrics as HostRootMetrics
from .host import host_root_fn as host_root_fn
from .metrics import ShampooMetrics as ShampooMetrics
from .metrics import shampoo_metrics as shampoo_metrics
from .preconditioner import FactorMetrics as FactorMetrics
from .root_functions import DeviceRootFn as DeviceRootFn
from .root_functions import RootFn as RootFn
from .root_functions import RootResult as RootResult
from .root_functions import device_root_fn as device_root_fn
from .shampoo import Factor as Factor
from .shampoo import ShampooState as ShampooState
from .shampoo import scale_by_shampoo as scale_by_shampoo
from .shampoo import shampoo as shampoo
from .sharding import ShardedRootFn as ShardedRootFn
from .sharding import block_mesh as block_mesh
from .sharding import sharded_root_fn as sharded_root_fn
from .soap import SOAPFactor as SOAPFactor
from .soap import SOAPState as SOAPState
from .soap import scale_by_soap as scale_by_soap
from .soap import soap as soap
from .stacking import BlockStack as BlockStack
from .stacking import StackMember as StackMember
from .stacking import block_stacks as block_stacks
from .stacking import parameter_factors as parameter_factors

__all__ = [
    "shampoo",
    "scale_by_shampoo",
    "soap",
    "scale_by_soap",
    "SOAPState",
    "SOAPFactor",
    "ShampooState",
    "Factor",
    "BlockStack",
    "StackMember",
    "block_stacks",
    "parameter_factors",
    "RootFn",
    "RootResult",
    "DeviceRootFn",
    "device_root_fn",
    "host_root_fn",
    "HostRootFn",
    "HostRootMetrics",
    "sharded_root_fn",
    "ShardedRootFn",
    "block_mesh",
    "FactorMetrics",
    "ShampooMetrics",
    "shampoo_metrics",
]
