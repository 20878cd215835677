"""geomem.physics: forward operators (protocol, Devito acoustic FWI), acquisition, torch bridge, Dask shots.

Devito and torch are imported only when first needed (building an operator, using the torch bridge).

>>> import numpy as np
>>> geo = Geometry.surface((12, 12), 10.0, n_src=1, t_max=150.0, vmax_bound=3.0)   # m, ms, km/s
>>> op = AcousticOperator((12, 12), 10.0, geo, vmax_bound=3.0, nbl=6, dtype=np.float64)
>>> v = np.full((1, 12, 12), 2.0)                                              # km/s
>>> op.forward(v).shape                                                        # (shots, nt, receivers)
(1, 103, 12)
>>> dottest(op.jacobian(v))[2] < 1e-12                                         # Born and its adjoint
True
>>> d_obs = op.forward(v + 0.1 * np.random.default_rng(0).standard_normal(v.shape))
>>> dm = 0.05 * np.random.default_rng(1).standard_normal(v.shape)
>>> round(taylor_test(lambda m: op.misfit_and_gradient(m, d_obs, 1.0), v, dm)["slope1"], 1)
2.0
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
