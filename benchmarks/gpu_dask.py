"""Dask efficiency of the Devito physics on a many-core host, beside the host's own scaling without Dask.

    python -m benchmarks.gpu_dask --workers 1 2 4 8 12 15 16 [--chains 64] [--size 64] --out FILE.json

Work: ``Likelihood.misfit_and_gradient`` (the call every DPS step makes) on ``chains`` velocity models at
``size``² (default 64², the compare's size)
with the default 5-shot survey (serial Devito per process, ``OMP_NUM_THREADS=1``): one forward with saved
wavefield and one adjoint per shot per chain, one task per chain. ``chains`` defaults to 4 × the largest
worker count, so every worker has at least 4 tasks per call. Three ways of running the same calls:

- ``serial``: the ``Likelihood`` with no client, in this process (the reference time ``t_serial``);
- ``pool``: the same per-chain calls on a ``multiprocessing`` pool of w forked processes (no Dask; the forks
  inherit this process's built Devito operators), one chain per task: the host's own scaling — cores,
  shared caches and memory bandwidth, SMT siblings;
- ``dask``: the ``Likelihood`` on a ``LocalCluster`` of single-threaded worker processes (``local_client``):
  one cluster of max(w) workers is started and warmed up once, then scaled down through the worker counts,
  largest first (the remaining workers keep their built operators); ``--fresh-clusters`` starts a new cluster
  per worker count instead (each worker then builds its operators in the warm-up call).

Per worker count: one untimed warm-up call on 2·w chains, then timed calls of all chains, at least
``repeats`` of them and until ``min_seconds`` of timed wall time; the median is kept. Efficiency
``E(w) = t_serial / (w · t(w))``; ``dask_over_pool = t_dask(w) / t_pool(w)`` is what Dask itself costs.
The serial calls are timed again at the end (row ``serial_end``, with ``drift = t_serial_end / t_serial``): on a
shared host the serial speed can change during the run (session 15: the same work 10 % apart within one call), and
``E(w)`` is only as good as ``t_serial``.
Every timed result is checked equal to the serial one (bit for bit, as the code promises). The JSON also
records the host: ``os.cpu_count()``, the CPUs this process may use, physical cores and threads per core
(from ``/proc/cpuinfo``, and ``lscpu`` where installed).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.case_devito import velocity
from benchmarks.common import save_json
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.parallel import local_client
from geomem.posterior.likelihood import Likelihood

_POOL_LIKELIHOOD: Likelihood | None = None  # set before forking: the pool's processes inherit it


def host_cpus() -> dict:
    """Logical CPUs, usable CPUs, physical cores and threads per core of this host."""
    out = {"cpu_count": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
           "load_avg": list(os.getloadavg())}
    try:
        cores, logical, model = set(), 0, None
        phys = core = None
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = (s.strip() for s in line.partition(":"))
            if key == "processor":
                logical += 1
            elif key == "model name" and model is None:
                model = val
            elif key == "physical id":
                phys = val
            elif key == "core id":
                core = val
            elif not key and core is not None:
                cores.add((phys, core))
                phys = core = None
        if core is not None:
            cores.add((phys, core))
        out.update(cpu_model=model, logical_cpus_cpuinfo=logical, physical_cores_cpuinfo=len(cores) or None,
                   threads_per_core_cpuinfo=(logical / len(cores)) if cores else None)
    except OSError as exc:
        out["cpuinfo_error"] = str(exc)
    if shutil.which("lscpu"):
        try:
            text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
            keys = ("Thread(s) per core", "Core(s) per socket", "Socket(s)", "NUMA node(s)", "Model name",
                    "L3 cache", "CPU(s)")
            out["lscpu"] = {k: v.strip() for k, _, v in (ln.partition(":") for ln in text.splitlines())
                            if k.strip() in keys}
        except (OSError, subprocess.SubprocessError) as exc:
            out["lscpu_error"] = str(exc)
    return out


def _one_chain(xi: np.ndarray):
    phi, grad = _POOL_LIKELIHOOD.misfit_and_gradient(torch.from_numpy(xi[None]))
    return phi, grad


def _timed(fn, min_calls: int, min_seconds: float) -> tuple[float, list[float], object]:
    times, out = [], None
    while len(times) < min_calls or sum(times) < min_seconds:
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def _row(kind: str, w: int, t: float, times: list[float], t_serial: float, equal: bool) -> dict:
    return {"kind": kind, "workers": w, "seconds": t, "calls": len(times), "all_seconds": times,
            "speedup": t_serial / t, "efficiency": t_serial / (w * t), "equal_to_serial": equal}


def _wait_for_workers(client, n: int, timeout: float = 60.0) -> bool:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if len(client.scheduler_info(n_workers=-1)["workers"]) == n:
            return True
        time.sleep(0.2)
    return False


def main() -> None:
    global _POOL_LIKELIHOOD
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, default=None, help="default: 4 × the largest worker count")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 12, 15, 16])
    ap.add_argument("--size", type=int, default=64, help="models of size² (the default survey of that size)")
    ap.add_argument("--repeats", type=int, default=1, help="timed calls at least")
    ap.add_argument("--min-seconds", type=float, default=3.0, help="and timed wall time at least")
    ap.add_argument("--no-pool", action="store_true", help="skip the multiprocessing baseline")
    ap.add_argument("--no-dask", action="store_true", help="skip Dask")
    ap.add_argument("--fresh-clusters", action="store_true",
                    help="a new LocalCluster per worker count (slower to run) instead of one scaled down")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    # the 64² survey's "points per wavelength" advice, once per process and worker, is not a result
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")
    warnings.simplefilter("ignore", UserWarning)
    workers = sorted(set(args.workers), reverse=True)
    chains = args.chains or 4 * workers[0]
    res = {"host": host_cpus(), "chains": chains, "workers": workers, "shape": [args.size, args.size],
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": []}
    res["cores"] = res["host"]["cpu_count"]
    print(json.dumps(res["host"]), flush=True)
    op = AcousticOperator.default(args.size)
    res.update(shots=op.geometry.n_src, nt=op.nt)
    v_true = velocity(args.size)
    y = op.forward(v_true)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(np.stack([v_true * (0.97 + 0.02 * rng.random()) for _ in range(chains)]))
    serial = Likelihood(op, y, gamma=1.0)
    serial.misfit_and_gradient(x[:2])  # builds and compiles the operators in this process
    t_serial, times, (phi_s, grad_s) = _timed(lambda: serial.misfit_and_gradient(x), args.repeats, args.min_seconds)
    res["rows"].append({"kind": "serial", "workers": 1, "seconds": t_serial, "calls": len(times),
                        "all_seconds": times, "per_chain_s": t_serial / chains})
    print(json.dumps(res["rows"][-1]), flush=True)

    def equal(phi, grad) -> bool:
        return bool(torch.equal(phi, phi_s) and torch.equal(grad, grad_s))

    if not args.no_pool:
        _POOL_LIKELIHOOD = serial
        ctx = multiprocessing.get_context("fork")
        xs = list(x.numpy())
        for w in workers:
            with ctx.Pool(w) as pool:
                def call(pool=pool, n=chains):
                    parts = pool.map(_one_chain, xs[:n], chunksize=1)
                    return torch.cat([p for p, _ in parts]), torch.cat([g for _, g in parts])

                call(n=min(chains, 2 * w))
                t, times, (phi, grad) = _timed(call, args.repeats, args.min_seconds)
            res["rows"].append(_row("pool", w, t, times, t_serial, equal(phi, grad)))
            print(json.dumps(res["rows"][-1]), flush=True)

    if not args.no_dask:
        groups = [[w] for w in workers] if args.fresh_clusters else [workers]
        res["dask_clusters"] = "one per worker count" if args.fresh_clusters else "one, scaled down"
        for group in groups:
            t0 = time.perf_counter()
            client = local_client(group[0])
            try:
                lik = Likelihood(op, y, gamma=1.0, client=client)
                lik.misfit_and_gradient(x[: min(chains, 2 * group[0])])  # every worker builds its operators
                res.setdefault("dask_start_s", []).append(time.perf_counter() - t0)
                for w in group:
                    if w != group[0]:
                        client.cluster.scale(w)
                        if not _wait_for_workers(client, w):
                            res["rows"].append({"kind": "dask", "workers": w, "error": "scale-down timed out"})
                            print(json.dumps(res["rows"][-1]), flush=True)
                            continue
                    lik.misfit_and_gradient(x[: min(chains, 2 * w)])
                    t, times, (phi, grad) = _timed(lambda lik=lik: lik.misfit_and_gradient(x), args.repeats,
                                                   args.min_seconds)
                    res["rows"].append(_row("dask", w, t, times, t_serial, equal(phi, grad)))
                    print(json.dumps(res["rows"][-1]), flush=True)
            finally:
                client.close()
                client.cluster.close()
    t_end, times, (phi_e, grad_e) = _timed(lambda: serial.misfit_and_gradient(x), args.repeats, args.min_seconds)
    res["rows"].append({"kind": "serial_end", "workers": 1, "seconds": t_end, "calls": len(times),
                        "all_seconds": times, "per_chain_s": t_end / chains, "drift": t_end / t_serial,
                        "equal_to_serial": equal(phi_e, grad_e)})
    print(json.dumps(res["rows"][-1]), flush=True)
    pools = {r["workers"]: r["seconds"] for r in res["rows"] if r["kind"] == "pool"}
    for r in res["rows"]:
        if r["kind"] == "dask" and "seconds" in r and r["workers"] in pools:
            r["dask_over_pool"] = r["seconds"] / pools[r["workers"]]
    res["host"]["load_avg_end"] = list(os.getloadavg())
    save_json(args.out, res)


if __name__ == "__main__":
    main()
