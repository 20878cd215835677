"""Dask efficiency of the Devito physics on a many-core host: geomem's per-chain path from 1 to all cores.

    python -m benchmarks.gpu_dask --chains 32 --workers 1 2 4 8 16 --out FILE.json

Work: ``Likelihood.misfit_and_gradient`` (the call every DPS step makes) on ``chains`` velocity models at 64²
with the default 5-shot survey (serial Devito per process, ``OMP_NUM_THREADS=1``): one forward with saved
wavefield and one adjoint per shot per chain. Serial: the same call with no client, in this process. Dask:
the same ``Likelihood`` on a ``local_client(w)`` (``LocalCluster`` of w single-threaded worker processes, one
task per chain). Each is called twice untimed (Devito builds and compiles its operators on every worker) and
then ``repeats`` times; the median wall time is kept. Efficiency ``E(w) = t_serial / (w · t_dask(w))``; the
gradients of every Dask call are checked equal to the serial ones (bit for bit, as the code promises).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.case_devito import velocity
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.parallel import local_client
from geomem.posterior.likelihood import Likelihood


def _timed(fn, repeats: int) -> tuple[float, object]:
    out = fn()
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    op = AcousticOperator.default(64)
    v_true = velocity(64)
    y = op.forward(v_true)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(np.stack([v_true * (0.97 + 0.02 * rng.random()) for _ in range(args.chains)]))
    serial = Likelihood(op, y, gamma=1.0)
    t_serial, (phi_s, grad_s) = _timed(lambda: serial.misfit_and_gradient(x), args.repeats)
    rows = [{"workers": 0, "seconds": t_serial, "per_chain_s": t_serial / args.chains}]
    print(json.dumps(rows[-1]), flush=True)
    for w in args.workers:
        client = local_client(w)
        try:
            lik = Likelihood(op, y, gamma=1.0, client=client)
            t, (phi, grad) = _timed(lambda lik=lik: lik.misfit_and_gradient(x), args.repeats)
        finally:
            client.close()
            client.cluster.close()
        rows.append({"workers": w, "seconds": t, "speedup": t_serial / t, "efficiency": t_serial / (w * t),
                     "equal_to_serial": bool(torch.equal(phi, phi_s) and torch.equal(grad, grad_s))})
        print(json.dumps(rows[-1]), flush=True)
    res = {"cores": os.cpu_count(), "chains": args.chains, "shots": op.geometry.n_src, "shape": [64, 64],
           "nt": op.nt, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
