"""What the absorbing boundary sends back: data with an ``nbl``-point layer against a reference on a domain so
large that nothing returns within the record.

    OMP_NUM_THREADS=1 DEVITO_LANGUAGE=C python scripts/boundary_reflection.py [--size 64] [--nbl 20]
        [--boundaries sponge,pml] [--json out.json]

Survey: the default one (``Geometry.surface``: 5 sources and a receiver per column at 10 m depth, 15 Hz,
1 s) on a ``size²`` grid at 10 m; velocity: a 1.5 → 4 km/s linear gradient with a 4 km/s block. The reference
embeds the model in a domain ``W`` points larger on every side (edge values, exactly what the operator's own
padding sees), with ``W h > v_edge t_max / 2``: a wave leaving the model reaches the reference's own layer and
comes back after ``t_max`` at the earliest (computed once, with the default sponge). Reported:
``‖d_nbl − d_ref‖ / ‖d_ref‖`` over all shots, and in 0.3–0.6 s.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry


def velocity(n: int) -> np.ndarray:
    """``(1, n, n)``: linear 1.5 → 4 km/s with depth and a 4 km/s block."""
    v = 1.5 + 2.5 * np.linspace(0.0, 1.0, n)[:, None] * np.ones((1, n))
    v[n // 2 : n // 2 + n // 8, n // 4 : 3 * n // 4] = 4.0
    return v[None]


def reference_width(v: np.ndarray, h: float, t_max: float) -> int:
    """Points ``W`` with ``2 W h / v_max ≥ 1.1 t_max`` (velocity km/s = m/ms)."""
    return int(math.ceil(1.1 * float(v.max()) * t_max / (2.0 * h)))


def relative(d: np.ndarray, ref: np.ndarray, time: np.ndarray, window=None) -> float:
    sel = slice(None) if window is None else (time >= window[0]) & (time <= window[1])
    return float(np.linalg.norm(d[:, sel] - ref[:, sel]) / np.linalg.norm(ref[:, sel]))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--nbl", type=int, nargs="+", default=[20])
    ap.add_argument("--boundaries", default="sponge,pml")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    n, h = args.size, 10.0
    v = velocity(n)
    geom = Geometry.surface((n, n), h)
    w = reference_width(v, h, geom.t_max)
    big = n + 2 * w
    v_big = np.pad(v[0], w, mode="edge")[None]
    shift = np.array([w * h, w * h])
    geom_big = Geometry((big, big), (h, h), geom.src_coords + shift, geom.rec_coords + shift, geom.t_max, geom.f0)
    out = {"size": n, "reference_extra_points": w, "rows": []}
    t0 = time.perf_counter()
    ref = AcousticOperator((big, big), h, geom_big, nbl=20).forward(v_big)
    for b in args.boundaries.split(","):
        for nbl in args.nbl:
            d = AcousticOperator((n, n), h, geom, nbl=nbl, boundary=b).forward(v)
            row = {"boundary": b, "nbl": nbl, "rel_diff": relative(d, ref, geom.time),
                   "rel_diff_300_600ms": relative(d, ref, geom.time, (300.0, 600.0))}
            out["rows"].append(row)
            print(f"{b:6s} nbl={nbl:3d}: relative difference to the reference {100 * row['rel_diff']:.2f} % "
                  f"(0.3-0.6 s: {100 * row['rel_diff_300_600ms']:.2f} %)  [{time.perf_counter() - t0:.0f} s]",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
