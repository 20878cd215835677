"""Per-shot speed of the Devito acoustic operator: forward, Born, adjoint Born, gradient, at 64² and 128²
(one process), and a Dask gradient on a LocalCluster.

Throughput is in billions of grid-point updates per second, counting the padded grid (``(nx + 2 nbl)
(nz + 2 nbl)`` points) times ``nt`` time steps per shot, once per shot whatever the kind (Born updates two
wavefields, the gradient runs a forward with save and an adjoint: their Gpt/s are "forward-equivalent").

    OMP_NUM_THREADS=1 python benchmarks/bench_devito.py [--sizes 64 128] [--workers 2] [--repeat 3]

Prints a table and writes ``benchmarks/results/devito_cpu.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import geomem  # noqa: E402,F401
from geomem.physics.acoustic import AcousticOperator  # noqa: E402
from geomem.physics.parallel import ShotParallel, local_client  # noqa: E402
from geomem.runs import write_json  # noqa: E402


def velocity(n: int) -> np.ndarray:
    z = np.linspace(0.0, 1.0, n)[:, None] * np.ones((1, n))
    v = 1.5 + 2.5 * z
    v[n // 2 : n // 2 + n // 8, n // 4 : 3 * n // 4] = 4.0
    return v[None]


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up: builds and (first time) compiles the Devito operator
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_size(n: int, repeat: int) -> dict:
    op = AcousticOperator.default(n)
    v, v0 = velocity(n), velocity(n) * 1.03
    d_obs = op.forward_shots(v, [0])
    dv = np.random.default_rng(0).standard_normal(op.model_shape)
    dd = np.random.default_rng(1).standard_normal((1, op.nt, op.geometry.n_rec))
    kinds = {
        "forward": lambda: op.forward_shots(v0, [0]),
        "born": lambda: op.born_shots(v0, dv, [0]),
        "adjoint_born": lambda: op.adjoint_born_shots(v0, dd, [0]),
        "gradient": lambda: op.misfit_gradient_shots(v0, d_obs, [0]),
    }
    points = op.padded_shape[0] * op.padded_shape[1] * op.nt
    out = {"shape": [n, n], "padded_shape": list(op.padded_shape), "nt": op.nt, "dt_ms": op.dt}
    for kind, fn in kinds.items():
        t = best_time(fn, repeat)
        out[kind] = {"seconds_per_shot": t, "gpts": points / t / 1e9}
    out["gradient_over_forward"] = out["gradient"]["seconds_per_shot"] / out["forward"]["seconds_per_shot"]
    return out


def bench_dask(n: int, n_shots: int, workers: int, repeat: int) -> dict:
    from geomem.physics.acquisition import Geometry

    geom = Geometry.surface((n, n), 10.0, n_src=n_shots)
    op = AcousticOperator((n, n), 10.0, geom)
    v, v0 = velocity(n), velocity(n) * 1.03
    d_obs = op.forward(v)
    serial = best_time(lambda: op.misfit_and_gradient(v0, d_obs, 1.0), repeat)
    client = local_client(workers)
    try:
        par = ShotParallel(op, client)
        parallel = best_time(lambda: par.misfit_and_gradient(v0, d_obs, 1.0), repeat)
    finally:
        client.close()
        client.cluster.close()
    return {"shape": [n, n], "n_shots": n_shots, "workers": workers, "serial_s": serial, "dask_s": parallel,
            "speedup": serial / parallel, "efficiency": serial / parallel / workers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "devito_cpu.json")
    args = parser.parse_args()
    rows = [bench_size(n, args.repeat) for n in args.sizes]
    print(f"{'grid':>8} {'nt':>5} {'kind':>13} {'ms/shot':>9} {'Gpt/s':>7}")
    for r in rows:
        for kind in ("forward", "born", "adjoint_born", "gradient"):
            print(f"{r['shape'][0]:>5}²   {r['nt']:>5} {kind:>13} {1e3 * r[kind]['seconds_per_shot']:9.1f} "
                  f"{r[kind]['gpts']:7.3f}")
        print(f"{'':>8} gradient / forward = {r['gradient_over_forward']:.2f}")
    dask = bench_dask(args.sizes[0], args.shots, args.workers, args.repeat)
    print(f"dask: {dask['n_shots']}-shot gradient at {dask['shape'][0]}², {dask['workers']} workers: serial "
          f"{dask['serial_s']:.3f} s, dask {dask['dask_s']:.3f} s, speedup {dask['speedup']:.2f}, "
          f"efficiency {100 * dask['efficiency']:.0f}%")
    write_json(args.out, {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                      "load_avg": os.getloadavg()},
                          "per_shot": rows, "dask": dask})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
