"""The samplers' per-chain path on Dask workers against the serial one, with the operator resident per worker.

The annealed sampler with an importance-resampled start (prior draws → forward solves, then MALA gradients, then
the final misfits) on a tiny Devito problem: one Dask task per chain on two worker processes gives the same
samples, misfits and start as the serial run, bit for bit (every chain runs the same code on the same inputs, and
the results are gathered in chain order). In between, every worker's stored data are spilled to disk (what Dask
does under memory pressure; Dask's active memory manager likewise drops replicas of scattered data between calls):
a task then receives a fresh copy of the operator, and each worker still builds its Devito objects once.
"""

import numpy as np
import pytest
import torch

from geomem.geology import make_model_set
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry
from geomem.posterior.annealed import AnnealedConfig, annealed
from geomem.posterior.likelihood import Likelihood
from geomem.priors import MemorizedPrior

SHAPE = (10, 10)


def _spill_everything(dask_worker) -> int:
    """Move every stored value of this worker to disk (Dask's own eviction); the number moved."""
    n = 0
    while len(dask_worker.data.fast) and dask_worker.data.evict() != -1:
        n += 1
    return n


def _count_builds() -> None:
    """Count, in this worker, the builds of an acoustic operator's Devito objects (``AcousticOperator._devito``
    with nothing built yet) and the runs (every solve asks for them)."""
    from geomem.physics.acoustic import AcousticOperator

    build = AcousticOperator._devito

    def counted(self):
        AcousticOperator._counts[0] += self._dv is None
        AcousticOperator._counts[1] += 1
        return build(self)

    AcousticOperator._counts = [0, 0]
    AcousticOperator._devito = counted


def _counts() -> list:
    from geomem.physics.acoustic import AcousticOperator

    return list(AcousticOperator._counts)


@pytest.mark.slow
def test_annealed_with_start_on_dask_workers_equals_serial():
    from distributed import Client, LocalCluster

    from geomem.physics.faults import BoundedClient

    geo = Geometry.surface(SHAPE, 10.0, n_src=2, t_max=200.0, f0=15.0, vmax_bound=4.5)
    op = AcousticOperator(SHAPE, 10.0, geo, nbl=6, dtype=np.float64)
    ms = make_model_set("curvefault", n=5, size=SHAPE, seed=3)
    p = ms.parameterization
    lik = Likelihood.from_truth(op, ms.models[4], 0.05, p, seed=0)
    prior = MemorizedPrior(torch.from_numpy(p.to_normalized(ms.models[:4])).double())
    cfg = AnnealedConfig(steps=2, mala_steps=1, prior_draws=6, start_sigma=1.0, sigma_min=0.05)
    serial = annealed(prior, lik, 4, cfg, seed=0, dtype=torch.float64)
    F_serial = lik.forward_data(prior.train)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(_count_builds)
        par_lik = lik.with_client(BoundedClient(client))
        first = annealed(prior, par_lik, 4, cfg, seed=0, dtype=torch.float64)
        before = client.run(_counts)
        assert sum(client.run(_spill_everything).values()) >= 2  # the operator and y left memory on each worker
        par = annealed(prior, par_lik, 4, cfg, seed=0, dtype=torch.float64)
        F_par = par_lik.forward_data(prior.train)
        after = client.run(_counts)
    for run in (first, par):
        np.testing.assert_array_equal(run.samples, serial.samples)
        np.testing.assert_array_equal(run.misfit, serial.misfit)
        assert run.info["start_draws"] == serial.info["start_draws"]
        assert run.info["gradients_per_sample"] == serial.info["gradients_per_sample"]
    np.testing.assert_array_equal(F_par, F_serial)
    # a worker that solved before and after the spill got a fresh copy of the operator: it still built it once
    both = [w for w in after if before[w][1] > 0 and after[w][1] > before[w][1]]
    assert both
    assert all(after[w][0] == 1 for w in both)
