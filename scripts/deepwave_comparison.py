"""geomem against deepwave on the same survey, both with a PML and no free surface.

    OMP_NUM_THREADS=1 DEVITO_LANGUAGE=C python scripts/deepwave_comparison.py [--size 64] [--nbl 20]
        [--boundary pml] [--json out.json]

Survey: ``size²`` at 10 m, 5 sources on grid nodes (columns ``round(linspace(0, nx − 1, 5))``) and a receiver
per column, all at 10 m depth (one grid row, so both codes place them on nodes: no interpolation differences),
15 Hz Ricker, 1 s; velocity: 1.5 → 4 km/s with depth and a 4 km/s block (``scripts/boundary_reflection.py``).
deepwave (``deepwave.scalar``, 8th-order accuracy, ``pml_width=nbl``, ``pml_freq=f0``, no location
interpolation) gets our wavelet and our ``dt``; it takes m/s and ``(z, x)`` grid indices and returns
``(shot, receiver, time)``. Its source term has the opposite sign, so ``−d_deepwave`` is compared. Reported:
``‖−d_dw − d_geomem‖ / ‖d_geomem‖`` over the whole record and in 0–0.3, 0.3–0.6, 0.6–1 s, and the least-squares
amplitude factor between the two (≈ 1 when they agree).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry


def velocity(n: int) -> np.ndarray:
    v = 1.5 + 2.5 * np.linspace(0.0, 1.0, n)[:, None] * np.ones((1, n))
    v[n // 2 : n // 2 + n // 8, n // 4 : 3 * n // 4] = 4.0
    return v[None]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--nbl", type=int, default=20)
    ap.add_argument("--boundary", default="pml", choices=["pml", "sponge"])
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import deepwave
    import torch

    torch.set_num_threads(1)
    n, h = args.size, 10.0
    xs = np.round(np.linspace(0, n - 1, 5)) * h
    xr = np.arange(n) * h
    geom = Geometry((n, n), (h, h), np.stack([xs, np.full_like(xs, h)], 1), np.stack([xr, np.full_like(xr, h)], 1))
    op = AcousticOperator((n, n), h, geom, nbl=args.nbl, boundary=args.boundary, dtype=np.float64)
    v = velocity(n)
    ours = op.forward(v)
    src = torch.tensor(np.stack([geom.src_coords[:, 1], geom.src_coords[:, 0]], -1)[:, None, :] / h).round().long()
    rec = np.stack([geom.rec_coords[:, 1], geom.rec_coords[:, 0]], -1) / h
    rec = torch.tensor(np.repeat(rec[None], geom.n_src, 0)).round().long()
    amp = torch.tensor(np.repeat(geom.wavelet()[None, None], geom.n_src, 0), dtype=torch.float64)
    out = deepwave.scalar(torch.tensor(v[0] * 1000.0, dtype=torch.float64), h, op.dt / 1000.0,
                          source_amplitudes=amp, source_locations=src, receiver_locations=rec, accuracy=8,
                          pml_width=args.nbl, pml_freq=geom.f0, location_interpolation="none")
    theirs = -out[-1].numpy().transpose(0, 2, 1).astype(np.float64)
    alpha = float(np.sum(theirs * ours) / np.sum(theirs * theirs))

    def rel(lo, hi):
        sel = (geom.time >= lo) & (geom.time < hi)
        return float(np.linalg.norm(theirs[:, sel] - ours[:, sel]) / np.linalg.norm(ours[:, sel]))

    res = {"deepwave_version": deepwave.__version__, "size": n, "nbl": args.nbl, "geomem_boundary": args.boundary,
           "dt_ms": op.dt, "relative_difference": rel(0, np.inf), "amplitude_factor": alpha,
           "windows_ms": [[0, 300], [300, 600], [600, 1001]],
           "windowed": [rel(0, 300), rel(300, 600), rel(600, 1001)]}
    print(f"deepwave {deepwave.__version__} vs geomem ({args.boundary}, nbl={args.nbl}, {n}²): relative difference "
          f"{100 * res['relative_difference']:.2f} % (windows " + ", ".join(f"{100 * x:.2f} %" for x in res["windowed"])
          + f"), amplitude factor {alpha:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
