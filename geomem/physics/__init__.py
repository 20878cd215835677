"""geomem.physics: forward operators (protocol, Devito acoustic FWI), acquisition, torch bridge, Dask shots.

Devito and torch are imported only when first needed (building an operator, using the torch bridge).
"""

from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry, critical_dt, ricker
from geomem.physics.operator import ForwardOperator, LinearOperator, dottest, taylor_test
from geomem.physics.parallel import ShotParallel, local_client, resolve_client

__all__ = [
    "AcousticOperator",
    "ForwardOperator",
    "Geometry",
    "LinearOperator",
    "ShotParallel",
    "TorchOperator",
    "as_torch",
    "critical_dt",
    "dottest",
    "local_client",
    "resolve_client",
    "ricker",
    "taylor_test",
]


def __getattr__(name):
    if name in ("TorchOperator", "as_torch"):
        from geomem.physics import torch_bridge

        return getattr(torch_bridge, name)
    raise AttributeError(f"module 'geomem.physics' has no attribute {name!r}")
