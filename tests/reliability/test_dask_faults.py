"""Faults in the parallel layer: a Dask worker killed in the middle of a multi-shot gradient is replaced and the
result equals the serial one; with no worker left the call fails with a ClusterError in bounded time."""

import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import count

from geomem.errors import GeomemError
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.faults import BoundedClient, ClusterError
from geomem.physics.parallel import ShotParallel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "physics"))
from physics_helpers import SHAPE, SPACING, random_velocity, tiny_geometry  # noqa: E402


def _op():
    return AcousticOperator(SHAPE, SPACING, tiny_geometry(n_src=4, t_max=200.0), nbl=10, dtype=np.float64)


def test_no_worker_left_is_a_clear_error_in_bounded_time():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
        t0 = time.monotonic()
        with pytest.raises(ClusterError, match="no Dask worker is left"):
            ShotParallel(_op(), BoundedClient(client, timeout_s=2.0))
        assert time.monotonic() - t0 < 20
        bounded = BoundedClient(client, timeout_s=2.0)
        with pytest.raises(ClusterError, match="no Dask worker is left"):
            bounded.gather([bounded.submit(sum, [1, 2], pure=False)])
        count("faults injected: no worker left")
    with pytest.raises(GeomemError, match="timeout_s"):
        BoundedClient(None, timeout_s=0)


@pytest.mark.slow
def test_worker_killed_mid_gradient_result_equals_serial():
    from distributed import Client, LocalCluster

    op = _op()
    v, d_obs = random_velocity(60), op.forward(random_velocity(61))
    phi_ref, g_ref = op.misfit_and_gradient(v, d_obs, 0.5)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        par = ShotParallel(op, BoundedClient(client, timeout_s=240.0), n_chunks=4)
        result = {}
        worker = threading.Thread(target=lambda: result.update(out=par.misfit_and_gradient(v, d_obs, 0.5)))
        worker.start()
        deadline = time.monotonic() + 120
        while not any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        busy = [addr for addr, tasks in client.processing().items() if tasks]
        assert busy, "no task started"
        pids = client.run(os.getpid, workers=busy[:1])
        os.kill(pids[busy[0]], signal.SIGKILL)  # a real kill of the worker process while it solves shots
        count("faults injected: worker killed mid-gradient")
        worker.join(timeout=300)
        assert not worker.is_alive()
        phi, g = result["out"]
    assert phi == phi_ref
    np.testing.assert_array_equal(g, g_ref)

    # and with every worker gone: a ClusterError within the bound, not a hang
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        par = ShotParallel(op, BoundedClient(client, timeout_s=5.0), n_chunks=2)
        cluster.scale(0)
        deadline = time.monotonic() + 30
        while client.scheduler_info(n_workers=-1)["workers"] and time.monotonic() < deadline:
            time.sleep(0.1)
        t0 = time.monotonic()
        with pytest.raises(ClusterError):
            par.misfit_and_gradient(v, d_obs, 0.5)
        assert time.monotonic() - t0 < 30
        count("faults injected: all workers gone")
