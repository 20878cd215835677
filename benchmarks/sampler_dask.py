"""The FWI sampler path of ``geomem validate-samplers``, serial against Dask, with the time split by phase.

    python -m benchmarks.sampler_dask --workers 0 2 [--chains 4 --steps 2 --mala-steps 2 --prior-draws 8]
                                      [--n-train 50] [--truth heldout:0] [--memory-limit 750MB] --out FILE.json

Work: what ``validate-samplers`` runs for one FWI truth with the memorized prior (``run_fwi``): the model set and
survey of :class:`~geomem.workflow.problem.Problem` (curvefault 64², 5 shots), the memorized prior of the first
``n_train`` models, the likelihood of ``truth`` at 5.5 % noise, and the ``annealed`` sampler with an
importance-resampled start (``prior_draws`` forward solves, then ``steps × (mala_steps + 1)`` likelihood
gradients and a final forward solve per chain). For every worker count ``w`` (0: serial, the recipes' rule:
``workflow.parallel.dask_client``), in a fresh client:

- ``startup_s``: starting the cluster (none when serial);
- ``warmup_s``: one untimed likelihood gradient of ``4 w`` chains (or 4), where the processes build their
  Devito operators (a worker that got none of these tasks builds them in the run);
- ``run_s``: the timed sampler run, split into ``gradient_s`` (``Likelihood.misfit_and_gradient`` calls),
  ``forward_s`` (``Likelihood.residual_norm``: the start's prior draws and the final misfits) and ``rest_s``
  (everything else, in this process: the prior, MALA's arithmetic, noise);
- ``main_cpu_s``: CPU time of this process during the run; with Dask, ``worker_cpu_s``: the CPU time of all
  worker processes during the run (``time.process_time`` on each, through ``Client.run``). ``cpu_s`` is their
  sum: on a loaded machine, where wall times say little, ``cpu_s`` against the serial run's says whether the
  parallel run does extra work (e.g. workers rebuilding their Devito operators);
- with Dask, ``devito_builds``: per worker, how many times it built an operator's Devito objects (warm-up and
  run; 1 is the least a worker that solved anything can do), and ``devito_builds_in_run``: those in the run;
- with Dask, ``transfers`` and ``transfer_s``: the tasks that first fetched a dependency (the operator, ``y``)
  from another worker, and the time spent fetching;
- with Dask, ``worker_compute_s``: the summed compute time of the tasks on the workers (Dask's task stream),
  and ``busy``: ``worker_compute_s / (w · (gradient_s + forward_s))``, the fraction of the workers' time
  spent computing while the sampler waited for them.

Dask's active memory manager (on by default, every 2 s) drops the extra replicas of scattered data that no queued
task on a worker needs — between two sampler calls, the operator on all workers but one; the next task on such a
worker gets a fresh copy. A long run meets it hundreds of times; a short one can be made to meet it as often with
``DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__INTERVAL=100ms`` (recorded in the JSON).

``--memory-limit`` starts the cluster with that memory limit per worker (``LocalCluster(memory_limit=...)``,
wrapped like the recipes' client) instead of Dask's default share of the host's memory: near the workers' own
size, Dask spills their stored data (the operator, ``y``) to disk and hands the tasks fresh copies.

``speedup = run_s(serial) / run_s(w)``; ``max_abs_diff``: the largest difference of the samples from the serial
run's (``equal``: bit for bit). The JSON records the host (``benchmarks.gpu_dask.host_cpus``) and the settings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import save_json
from benchmarks.gpu_dask import host_cpus


class _PhaseTimer:
    """Wall time and calls of a likelihood's per-chain methods (wraps the instance's bound methods)."""

    def __init__(self, lik, names=("misfit_and_gradient", "residual_norm")):
        self.seconds = dict.fromkeys(names, 0.0)
        self.calls = dict.fromkeys(names, 0)
        for name in names:
            setattr(lik, name, self._wrap(name, getattr(lik, name)))

    def _wrap(self, name, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t0
                self.calls[name] += 1

        return timed


def _cpu() -> float:
    return time.process_time()


def _count_builds() -> None:
    """In a worker: count the builds of an acoustic operator's Devito objects (``_devito`` with none built)."""
    from geomem.physics.acoustic import AcousticOperator

    if hasattr(AcousticOperator, "_bench_builds"):
        return
    build = AcousticOperator._devito

    def counted(self):
        AcousticOperator._bench_builds += self._dv is None
        return build(self)

    AcousticOperator._bench_builds = 0
    AcousticOperator._devito = counted


def _builds() -> int:
    from geomem.physics.acoustic import AcousticOperator

    return int(AcousticOperator._bench_builds)


@contextlib.contextmanager
def _client(workers: int, memory_limit: str | None):
    """The recipes' client (``dask_client``), or a LocalCluster with ``memory_limit`` per worker."""
    from geomem.workflow.parallel import dask_client

    if memory_limit is None or workers <= 1:
        with dask_client(workers) as client:
            yield client
        return
    from distributed import Client, LocalCluster

    from geomem.physics.faults import BoundedClient

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit=memory_limit) as cluster, Client(cluster) as client:
        yield BoundedClient(client)


def run_one(workers: int, args) -> tuple[dict, np.ndarray]:
    from geomem.posterior.annealed import AnnealedConfig
    from geomem.posterior.sample import sample_posterior
    from geomem.priors.memorized import MemorizedPrior
    from geomem.workflow.problem import ModelSetSettings, Problem, SurveySettings

    problem = Problem.build(ModelSetSettings(), SurveySettings())
    prior = MemorizedPrior(torch.from_numpy(problem.train(args.n_train)))
    cfg = AnnealedConfig(steps=args.steps, mala_steps=args.mala_steps, prior_draws=args.prior_draws,
                         start_sigma=args.start_sigma)
    row: dict = {"workers": workers}
    t0 = time.perf_counter()
    with _client(workers, args.memory_limit) as client:
        row["startup_s"] = time.perf_counter() - t0
        if client is not None:
            client.run(_count_builds)
        _, lik = problem.likelihood(args.truth, 0.055, 0, args.n_train, client=client)
        t0 = time.perf_counter()
        lik.misfit_and_gradient(torch.from_numpy(problem.train(4 * max(workers, 1))))
        row["warmup_s"] = time.perf_counter() - t0
        builds0 = dict(client.run(_builds)) if client is not None else {}
        timer = _PhaseTimer(lik)
        stream = None
        cpu0 = client.run(_cpu) if client is not None else {}
        c0, t0 = time.process_time(), time.perf_counter()
        if client is None:
            res = sample_posterior(prior, lik, "annealed", args.chains, cfg, seed=0)
        else:
            from distributed import get_task_stream

            with get_task_stream(client._client if hasattr(client, "_client") else client) as stream:
                res = sample_posterior(prior, lik, "annealed", args.chains, cfg, seed=0)
        row["run_s"] = time.perf_counter() - t0
        row["main_cpu_s"] = time.process_time() - c0
        if client is not None:
            cpu1 = client.run(_cpu)
            row["worker_cpu_s"] = float(sum(cpu1[w] - cpu0[w] for w in cpu1 if w in cpu0))
            builds1 = client.run(_builds)
            row["devito_builds"] = sorted(builds1.values())
            row["devito_builds_in_run"] = sorted(builds1[w] - builds0.get(w, 0) for w in builds1)
        row["cpu_s"] = row["main_cpu_s"] + row.get("worker_cpu_s", 0.0)
    row["gradient_s"] = timer.seconds["misfit_and_gradient"]
    row["forward_s"] = timer.seconds["residual_norm"]
    row["rest_s"] = row["run_s"] - row["gradient_s"] - row["forward_s"]
    row["calls"] = dict(timer.calls)
    row["gradients_per_sample"] = res.info["gradients_per_sample"]
    row["forwards_per_sample"] = res.info["forwards_per_sample"]
    if stream is not None:
        compute = [s["stop"] - s["start"] for t in stream.data for s in t["startstops"] if s["action"] == "compute"]
        row["tasks"] = len(stream.data)
        transfers = [s["stop"] - s["start"] for t in stream.data for s in t["startstops"] if s["action"] == "transfer"]
        row["transfers"], row["transfer_s"] = len(transfers), float(sum(transfers))
        row["worker_compute_s"] = float(sum(compute))
        row["task_compute_median_s"] = float(np.median(compute))
        row["busy"] = row["worker_compute_s"] / (workers * (row["gradient_s"] + row["forward_s"]))
    return row, res.samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--mala-steps", type=int, default=2)
    ap.add_argument("--prior-draws", type=int, default=8)
    ap.add_argument("--start-sigma", type=float, default=2.0)
    ap.add_argument("--n-train", type=int, default=50)
    ap.add_argument("--truth", default="heldout:0")
    ap.add_argument("--memory-limit", default=None, help="per Dask worker, e.g. 750MB (default: Dask's share)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")  # the 64² survey's dispersion advice
    warnings.simplefilter("ignore", UserWarning)
    from geomem.env import apply_defaults

    apply_defaults()
    import dask
    import distributed  # noqa: F401  (registers its configuration defaults)

    res = {"host": host_cpus(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "settings": {k: v for k, v in vars(args).items() if k != "out"},
           "active_memory_manager": dask.config.get("distributed.scheduler.active-memory-manager"), "rows": []}
    print(json.dumps(res["host"]), flush=True)
    reference = None
    for w in args.workers:
        row, samples = run_one(w, args)
        if reference is None:
            reference = (w, samples)
        row["reference_workers"] = reference[0]
        row["max_abs_diff"] = float(np.max(np.abs(samples - reference[1])))
        row["equal"] = bool(np.array_equal(samples, reference[1]))
        row["speedup"] = res["rows"][0]["run_s"] / row["run_s"] if res["rows"] else 1.0
        res["rows"].append(row)
        print(json.dumps(row), flush=True)
    res["host"]["load_avg_end"] = list(os.getloadavg())
    save_json(args.out, res)


if __name__ == "__main__":
    main()
