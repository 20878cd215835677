"""Dask clients for the recipes and forward modelling of many models.

``workers``: the number of Dask worker processes for per-chain / per-model PDE solves; ``None`` picks
:func:`default_workers` (serial on machines with ≤ 2 cores, where a 2-worker cluster measured 49 % efficient
and slower than serial for the main job). ``$GEOMEM_DASK_ADDRESS`` names an existing cluster instead.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from geomem.physics.faults import BoundedClient
from geomem.physics.parallel import local_client, on_resident, resident_key, resolve_client


def default_workers() -> int:
    """0 (serial) on ≤ 2 cores; otherwise one worker per core but one (the main process drives the GPU)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if cores <= 2 else cores - 1


@contextlib.contextmanager
def dask_client(workers: int | None, timeout_s: float = 600.0):
    """A Dask client: ``$GEOMEM_DASK_ADDRESS`` if set, a LocalCluster of ``workers`` processes, or none (≤ 1).

    The client is wrapped in :class:`~geomem.physics.faults.BoundedClient`: every wait is bounded, and a
    cluster that lost all its workers raises ``ClusterError`` instead of hanging.
    """
    external = resolve_client(None)
    if external is not None:
        yield BoundedClient(external, timeout_s=timeout_s)
        return
    workers = default_workers() if workers is None else workers
    if workers <= 1:
        yield None
        return
    client = local_client(workers)
    try:
        yield BoundedClient(client, timeout_s=timeout_s)
    finally:
        client.close()
        cluster = getattr(client, "cluster", None)
        if cluster is not None:
            cluster.close()


def _forward_model(op, v):
    return op.forward(v)


def forward_all(op, models: np.ndarray, client) -> np.ndarray:
    """``F(v_n)`` for every model, spread over the Dask workers (or serially), written into one preallocated
    array (no list of copies). Each worker runs the operator resident in its process
    (:func:`~geomem.physics.parallel.resident`): a likelihood of the same operator later reuses its Devito objects."""
    out = np.empty((len(models), *op.data_shape), dtype=op.dtype)
    if client is None:
        for i, v in enumerate(models):
            out[i] = op.forward(v)
        return out
    ref = client.scatter(op, broadcast=True, hash=False)
    model_refs = client.scatter(list(models), hash=False)
    n = len(models)
    futures = client.map(on_resident, [_forward_model] * n, [resident_key(op)] * n, [ref] * n, model_refs, pure=False)
    for i, fut in enumerate(futures):
        out[i] = client.gather([fut])[0]
        fut.release()
    return out
