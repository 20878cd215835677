"""The samplers' per-chain path on Dask workers against the serial one, with the operator resident per worker.

The annealed sampler with an importance-resampled start (prior draws → forward solves, then MALA gradients, then
the final misfits) on a tiny Devito problem: one Dask task per chain on two worker processes gives the same
samples, misfits and start as the serial run, bit for bit (every chain runs the same code on the same inputs, and
the results are gathered in chain order). In between, every worker's stored data are spilled to disk (what Dask
does under memory pressure; a task then receives a fresh copy of the operator): the workers still hold one
resident operator each, built once.
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


def _resident_state() -> list:
    from geomem.physics import parallel

    return [op._dv is not None for op in parallel._RESIDENT.values()]


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
    serial = annealed(prior, lik, 3, cfg, seed=0, dtype=torch.float64)
    F_serial = lik.forward_data(prior.train)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        par_lik = lik.with_client(BoundedClient(client))
        first = annealed(prior, par_lik, 3, cfg, seed=0, dtype=torch.float64)
        assert sum(client.run(_spill_everything).values()) >= 2  # the operator and y left memory on each worker
        par = annealed(prior, par_lik, 3, cfg, seed=0, dtype=torch.float64)
        F_par = par_lik.forward_data(prior.train)
        resident = client.run(_resident_state)
    for run in (first, par):
        np.testing.assert_array_equal(run.samples, serial.samples)
        np.testing.assert_array_equal(run.misfit, serial.misfit)
        assert run.info["start_draws"] == serial.info["start_draws"]
        assert run.info["gradients_per_sample"] == serial.info["gradients_per_sample"]
    np.testing.assert_array_equal(F_par, F_serial)
    assert sorted(resident.values()) == [[True], [True]]  # one built operator per worker, after the spill too
