"""Bounded waits and clear errors for work on a Dask cluster.

:class:`BoundedClient` wraps a ``distributed.Client`` for :class:`~geomem.physics.parallel.ShotParallel` (or any
code that calls ``scatter``/``submit``/``gather``): every wait is bounded by ``timeout_s`` seconds, tasks get
``retries`` extra attempts, and a cluster that cannot do the work raises :class:`ClusterError` instead of
hanging. A worker that dies in the middle of a task is handled by the Dask scheduler itself, which reruns the
task on another worker (up to ``distributed.scheduler.allowed-failures`` deaths per task); every shot runs the
same deterministic code, so the result equals the serial one bit for bit.

    par = ShotParallel(op, BoundedClient(client, timeout_s=120))
"""

from __future__ import annotations

from typing import Any

from geomem.errors import GeomemError


class ClusterError(GeomemError):
    """The Dask cluster cannot finish the work: no worker left, workers keep dying, or a bounded wait ran out."""


class BoundedClient:
    """``client`` with bounded ``scatter``/``gather`` waits and task retries; other attributes pass through."""

    def __init__(self, client: Any, timeout_s: float = 300.0, retries: int = 2):
        if not timeout_s > 0:
            raise ClusterError(f"timeout_s must be > 0 seconds, got {timeout_s}")
        if int(retries) < 0:
            raise ClusterError(f"retries must be >= 0, got {retries}")
        self._client = client
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def n_workers(self) -> int:
        return len(self._client.scheduler_info(n_workers=-1).get("workers", {}))

    def _no_workers(self, what: str) -> ClusterError:
        return ClusterError(f"no Dask worker is left to {what} (scheduler {self._client.scheduler.address}); "
                            "restart the cluster or run serially (workers = 0)")

    def scatter(self, data: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout_s)
        try:
            return self._client.scatter(data, **kwargs)
        except TimeoutError:
            raise self._no_workers("receive the operator") from None

    def submit(self, fn, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("retries", self.retries)
        return self._client.submit(fn, *args, **kwargs)

    def map(self, fn, *iterables: Any, **kwargs: Any) -> list:
        kwargs.setdefault("retries", self.retries)
        return self._client.map(fn, *iterables, **kwargs)

    def gather(self, futures: list) -> list:
        """Results of ``futures``, waiting at most ``timeout_s``; :class:`ClusterError` when they cannot come."""
        from distributed import wait
        from distributed.scheduler import KilledWorker

        if self.n_workers() == 0:  # a worker may be (re)starting, e.g. under load: wait for one, boundedly
            try:
                self._client.wait_for_workers(1, timeout=min(self.timeout_s, 60.0))
            except TimeoutError:
                raise self._no_workers("run the tasks") from None
        try:
            wait(futures, timeout=self.timeout_s)
            return self._client.gather(futures)
        except TimeoutError:
            if self.n_workers() == 0:
                raise self._no_workers("run the tasks") from None
            raise ClusterError(f"Dask tasks did not finish within {self.timeout_s:g} s on {self.n_workers()} "
                               "worker(s); raise the timeout or check the workers' logs") from None
        except KilledWorker as exc:
            raise ClusterError(f"Dask workers died repeatedly while running a task ({exc}); check their memory "
                               "and logs, or run serially (workers = 0)") from None
