"""Why the Devito gradient does not scale to every core of a host: the same work in 1..P processes at once.

    OMP_NUM_THREADS=1 python -m benchmarks.host_scaling --procs 1 2 4 8 16 [--size 64] [--repeats 1] --out FILE.json
    python -m benchmarks.host_scaling --show FILE.json [FILE.json ...]     (the efficiency table of kept runs)

Weak scaling, no scheduler: P forked processes (they inherit this process's built Devito operators) wait at a
barrier, then each runs the same fixed work alone; each reports its own wall time. The efficiency at P is
``t(1) / t_max(P)`` (the slowest process sets a balanced parallel run's wall time; ``t_median(P)`` is kept
too); with ``repeats`` > 1 every level (P = 1 included) runs that many times and the medians of ``t_max`` and
``t_median`` over the repeats are used. Four kinds of work, from cache-resident to memory-bound (``size``²,
default 64², the default 5-shot survey of that size, float32):

- ``forward``: ``AcousticOperator.forward`` of the 5 shots: the stencil alone; its working set (three time
  levels and the model on the padded grid, ~0.2 MB) stays in each core's L2, so it measures the cores' clock
  and nothing shared;
- ``gradient``: ``Likelihood.misfit_and_gradient`` of one model (what one Dask task of ``gpu_dask.py`` runs):
  the forward with its wavefield saved at every step (``(nt + 1)`` levels of the padded grid, ~50 MB per shot)
  and the adjoint that reads it back: the same stencils plus a stream through memory;
- ``gradient_pml``: the same with ``boundary="pml", imaging="by_parts"`` (more arithmetic per saved byte);
- ``stream``: ``numpy.copyto`` between two 128 MiB arrays: memory bandwidth alone (GB/s per process; read +
  write counted, as STREAM's copy does).

If ``forward`` keeps its speed at P while ``gradient`` does not, the saved wavefield's memory traffic is what
does not scale (shared memory bandwidth or last-level cache); if ``forward`` slows down as much, the cores
themselves run slower when all are busy (clock boost, shared physical cores), and no change to the scheduler or
to the memory traffic can give a parallel efficiency above ``forward``'s. The CPU clock reported by
``/proc/cpuinfo`` is sampled in the middle of each run (on a virtual machine it may be the nominal clock).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.case_devito import velocity
from benchmarks.common import save_json
from benchmarks.gpu_dask import host_cpus
from geomem.physics.acoustic import AcousticOperator
from geomem.posterior.likelihood import Likelihood

_WORK: dict = {}  # set before forking: the processes inherit it
STREAM_BYTES = 128 * 2**20


def _build(size: int, kinds: list[str]) -> dict:
    v = velocity(size)
    out = {}
    for name, kw in (("gradient", {}), ("gradient_pml", {"boundary": "pml", "imaging": "by_parts"})):
        if name not in kinds and (name != "gradient" or "forward" not in kinds):
            continue
        op = AcousticOperator.default(size, **kw)
        lik = Likelihood(op, op.forward(v), gamma=1.0)
        x = torch.from_numpy((0.98 * v)[None])
        lik.misfit_and_gradient(x)  # builds and compiles in this process
        out[name] = (lambda lik=lik, x=x: lik.misfit_and_gradient(x))
        if name == "gradient":
            out["forward"] = (lambda op=op, v=v: op.forward(v))
    a = np.ones(STREAM_BYTES // 8)
    b = np.empty_like(a)
    out["stream"] = (lambda a=a, b=b: np.copyto(b, a))
    return out


def _worker(kind: str, reps: int, barrier, queue) -> None:
    fn = _WORK[kind]
    fn()  # first touch of this process's copy-on-write pages
    barrier.wait()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    queue.put(time.perf_counter() - t0)


def _clock_mhz() -> float | None:
    try:
        vals = [float(ln.split(":")[1]) for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("cpu MHz")]
    except (OSError, ValueError, IndexError):
        return None
    return statistics.mean(vals) if vals else None


def run_level(kind: str, procs: int, reps: int) -> dict:
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    ps = [ctx.Process(target=_worker, args=(kind, reps, barrier, queue)) for _ in range(procs)]
    for p in ps:
        p.start()
    times, mhz = [], None
    while len(times) < procs:
        try:
            times.append(queue.get(timeout=0.5))
        except Exception:  # noqa: BLE001 (queue.Empty: sample the clock while the processes run)
            if mhz is None:
                mhz = _clock_mhz()
    for p in ps:
        p.join()
    return {"kind": kind, "procs": procs, "reps": reps, "seconds_each": sorted(times),
            "t_max": max(times), "t_median": statistics.median(times), "clock_mhz_mid_run": mhz}


def table(res: dict) -> list[str]:
    """Markdown rows ``| kind, size² | P | median-process efficiency (slowest's) | … |`` of one kept run."""
    procs = sorted({r["procs"] for r in res["rows"]})
    out = ["| work | " + " | ".join(f"P = {p}" for p in procs) + " |", "|---|" + "---:|" * len(procs)]
    for kind in dict.fromkeys(r["kind"] for r in res["rows"]):
        cells = {r["procs"]: (f"{r['GBps_total']:.0f} GB/s" if "GBps_total" in r else
                              f"{r['efficiency_median']:.2f} ({r['efficiency']:.2f})")
                 for r in res["rows"] if r["kind"] == kind}
        out.append(f"| {kind}, {res.get('size', 64)}² | " + " | ".join(cells.get(p, "") for p in procs) + " |")
    return out


def main() -> None:
    global _WORK
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show", type=Path, nargs="+", help="print the tables of these kept runs and stop")
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--kinds", nargs="+", default=["forward", "gradient", "gradient_pml", "stream"])
    ap.add_argument("--seconds", type=float, default=2.0, help="wall time of one process's work at P = 1")
    ap.add_argument("--size", type=int, default=64, help="models of size² (the default survey of that size)")
    ap.add_argument("--repeats", type=int, default=1, help="runs of every level (medians over them are used)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.show:
        for path in args.show:
            res = json.loads(path.read_text())
            print(f"{path} ({res['host'].get('cpu_model')}, {res['date']}; median process (slowest); stream: "
                  f"total GB/s)")
            print("\n".join(table(res)))
        return
    if args.out is None:
        ap.error("--out is required (or --show FILE to print kept runs)")
    warnings.simplefilter("ignore", UserWarning)  # the 64² survey's points-per-wavelength advice
    res = {"host": host_cpus(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": [],
           "clock_mhz_idle": _clock_mhz(), "size": args.size, "repeats": args.repeats}
    print(json.dumps(res["host"]), flush=True)
    _WORK = _build(args.size, args.kinds)
    est = AcousticOperator.default(args.size).memory_estimate()  # Devito's buffers per process (one shot at a time)
    res.update(forward_buffers_mib=est["forward"] / 2**20, gradient_buffers_mib=est["gradient"] / 2**20)
    for kind in args.kinds:
        fn = _WORK[kind]
        fn()  # first touch (the stream's target pages), outside the calibration
        t0 = time.perf_counter()
        for _ in range(3):
            fn()
        reps = max(3, int(round(args.seconds / ((time.perf_counter() - t0) / 3))))
        t1 = None
        for procs in sorted(set(args.procs)):
            runs = [run_level(kind, procs, reps) for _ in range(args.repeats)]
            row = dict(runs[0], t_max=statistics.median(r["t_max"] for r in runs),
                       t_median=statistics.median(r["t_median"] for r in runs),
                       seconds_each=[r["seconds_each"] for r in runs])
            t1 = row["t_max"] if procs == 1 else t1
            if t1 is not None:
                row["efficiency"] = t1 / row["t_max"]
                row["efficiency_median"] = t1 / row["t_median"]
            if kind == "stream":  # copy: read + write of STREAM_BYTES per call
                row["GBps_each"] = 2 * STREAM_BYTES * reps / row["t_median"] / 1e9
                row["GBps_total"] = procs * row["GBps_each"]
            res["rows"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "seconds_each"}), flush=True)
    res["host"]["load_avg_end"] = list(os.getloadavg())
    save_json(args.out, res)


if __name__ == "__main__":
    main()
