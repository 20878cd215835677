"""Shot parallelism through Dask distributed.

:class:`ShotParallel` wraps an :class:`~geomem.physics.acoustic.AcousticOperator` and implements the same
:class:`~geomem.physics.operator.ForwardOperator` protocol, splitting the shots into one contiguous chunk
per worker. The operator is shipped to every worker once (``client.scatter(op, broadcast=True)``); it
pickles without its Devito objects, which each worker builds on first use and keeps.

Results equal the serial ones bit for bit: every shot runs the same code, shot kernels return per-shot
arrays, and the sums over shots are done here in shot order in float64 (:func:`combine_shots`).

Operators resident in each worker (:func:`resident`). A task receives the scattered operator as Dask stores it, and
Dask hands a worker *new* copies of it: its active memory manager (on by default, every 2 s) drops the broadcast
replicas that no queued task on a worker needs — between two sampler calls, on all workers but one — and the next
task there fetches a copy from a peer; data spilled to disk under memory pressure come back as copies too; and
several likelihoods, or ``workflow.parallel.forward_all``, scatter the same operator separately. A copy arrives
without Devito objects, and building them costs 2.3–3.2 s of CPU on the 2-core machine (measured: 5–6 builds per
worker in a 36-task sampler run with the manager every 100 ms, 9× the serial CPU; ``benchmarks/sampler_dask.py``).
Every task therefore swaps the copy it gets for the one resident in its process under the operator's key
(:func:`resident_key`, one per operator object of the calling process), so each process builds its Devito objects
once per operator.

Client choice (:func:`resolve_client`): a ``distributed.Client``; an address string (``tcp://host:8786``);
``None`` → the address in ``GEOMEM_DASK_ADDRESS`` if set, else serial (no Dask at all).
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections import OrderedDict

import numpy as np

from geomem.errors import ConfigError, ShapeError
from geomem.physics.acoustic import AcousticOperator, check_gamma, combine_shots
from geomem.physics.operator import ForwardOperator, LinearOperator

ENV_ADDRESS = "GEOMEM_DASK_ADDRESS"


def resolve_client(client=None, timeout: str = "10s"):
    """A ``distributed.Client`` for ``client`` (Client, address, or None → ``$GEOMEM_DASK_ADDRESS``), or None
    for serial execution. ``timeout`` bounds the wait for a scheduler given by address."""
    if client is None:
        client = os.environ.get(ENV_ADDRESS) or None
        if client is None:
            return None
    if isinstance(client, str):
        from distributed import Client

        try:
            return Client(client, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {client!r} ({exc}); check the address") from None
    return client


def local_client(n_workers: int = 2):
    """A ``Client`` on a new ``LocalCluster`` of ``n_workers`` single-threaded processes (close it when done)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster)


#: operators resident in this process, by key, least recently used first (see :func:`resident`)
_RESIDENT: OrderedDict[str, object] = OrderedDict()
#: at most this many resident operators per process (each holds its Devito buffers)
RESIDENT_MAX = 4
_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def resident_key(op) -> str:
    """The key of operator object ``op`` in this process (a random UUID, the same for every call on the same
    object): the workers keep one resident copy of it under this key."""
    try:
        return _KEYS[op]
    except KeyError:
        pass
    except TypeError:  # not weakly referenceable: a new key each call (callers keep the one they scatter with)
        return uuid.uuid4().hex
    key = _KEYS[op] = uuid.uuid4().hex
    return key


def resident(op, key: str):
    """The operator resident in this process under ``key``: ``op`` itself the first time (it then stays), the
    earlier copy afterwards, with the Devito objects that copy has built. At most :data:`RESIDENT_MAX` are kept
    (least recently used dropped)."""
    held = _RESIDENT.get(key)
    if held is None:
        _RESIDENT[key] = held = op
        while len(_RESIDENT) > RESIDENT_MAX:
            _RESIDENT.popitem(last=False)
    else:
        _RESIDENT.move_to_end(key)
    return held


def on_resident(fn, key: str, op, *args):
    """``fn(resident(op, key), *args)``: what a Dask task runs (module level, so workers can import it)."""
    return fn(resident(op, key), *args)


def _forward(op, v, shots):
    return op.forward_shots(v, shots)


def _born(op, v, dv, shots):
    return op.born_shots(v, dv, shots)


def _adjoint(op, v, dd, shots):
    return op.adjoint_born_shots(v, dd, shots)


def _misfit(op, v, d_obs, shots):
    return op.misfit_gradient_shots(v, d_obs, shots)


class ShotParallel(ForwardOperator):
    """``op`` with its shots mapped over a Dask cluster (or run serially when there is no client)."""

    def __init__(self, op: AcousticOperator, client=None, n_chunks: int | None = None):
        self.op = op
        self.model_shape, self.data_shape = op.model_shape, op.data_shape
        self.client = resolve_client(client)
        n_src = op.geometry.n_src
        if self.client is None:
            self._op_ref = self._key = None
            n = 1
        else:
            self._key = resident_key(op)
            self._op_ref = self.client.scatter(op, broadcast=True, hash=False)
            n = n_chunks or max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})))
        self.chunks = [c.tolist() for c in np.array_split(np.arange(n_src), min(n, n_src))]

    def _map(self, fn, v, shared=None, per_shot=None):
        """Run ``fn(op, v, [shared,] [per_shot[chunk],] chunk)`` over the chunks; return the chunk results."""
        head = () if shared is None else (shared,)
        args = [head + (() if per_shot is None else (per_shot[c[0] : c[-1] + 1],)) for c in self.chunks]
        if self.client is None:
            return [fn(self.op, v, *a, c) for a, c in zip(args, self.chunks, strict=True)]
        futures = [
            self.client.submit(on_resident, fn, self._key, self._op_ref, v, *a, c, pure=False)
            for a, c in zip(args, self.chunks, strict=True)
        ]
        return self.client.gather(futures)

    def forward(self, v: np.ndarray) -> np.ndarray:
        """``F(v)`` for ``(1, nz, nx)`` or a batch ``(B, 1, nz, nx)``, shots in parallel."""
        v = self.op.check_velocity(v)
        if v.ndim == 4:
            return np.stack([self.forward(vi) for vi in v])
        return np.concatenate(self._map(_forward, v))

    def jacobian(self, v: np.ndarray) -> LinearOperator:
        v = self.op.check_velocity(v, batched_ok=False)

        def matvec(dv):
            return np.concatenate(self._map(_born, v, shared=np.asarray(dv)))

        def rmatvec(dd):
            return np.concatenate(self._map(_adjoint, v, per_shot=np.asarray(dd))).sum(axis=0).astype(self.op.dtype)

        return LinearOperator(self.model_shape, self.data_shape, matvec, rmatvec)

    def misfit_and_gradient(self, v: np.ndarray, d_obs: np.ndarray, gamma: float) -> tuple[float, np.ndarray]:
        check_gamma(gamma)
        v = self.op.check_velocity(v, batched_ok=False)
        d_obs = np.asarray(d_obs)
        if d_obs.shape != self.data_shape:
            raise ShapeError(f"observed data must have shape {self.data_shape} (n_src, nt, n_rec), got {d_obs.shape}")
        parts = self._map(_misfit, v, per_shot=d_obs)
        phis = np.concatenate([p for p, _ in parts])
        grads = np.concatenate([g for _, g in parts])
        return combine_shots(phis, grads, gamma, self.op.dtype)
