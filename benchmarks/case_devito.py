"""Case 2: the Devito acoustic operator per shot, Dask shot parallelism, and deepwave on the same survey.

Per shot (one process, serial Devito, float32, 1 s record): forward, Born, adjoint Born, gradient
(forward with save + adjoint) at 64², 128², 256² (10 m, 5 surface sources, a receiver per column, 15 Hz).
Rate: grid-point updates per second ``(nx + 2 nbl)(nz + 2 nbl) nt / t`` counted once per shot whatever the
kind (Born and gradient rates are "forward-equivalent"), from the median wall time and from the median CPU
time of the thread (the estimate for a free core on a loaded machine).

Dask: the gradient of ``n_shots`` shots on a ``LocalCluster`` of ``w`` single-threaded workers against one
process; efficiency ``t_serial / (w · t_dask)``.

deepwave (``deepwave.scalar``, 8th order, PML of the same width): forward of the same 5-shot survey on the
same velocity, with our wavelet and ``dt``; deepwave takes m/s and ``[shot, source, (z, x)]`` grid-index
locations and returns ``(shot, receiver, time)``; its source term has the opposite sign (the least-squares
amplitude factor between the two is ≈ −1). Reported: relative difference ``‖−d_dw − d_geomem‖ / ‖d_geomem‖``
over the whole record and in time windows, with the default 20-point absorbing layers and with 80-point
layers (the boundaries differ: a damping sponge here, a PML there).
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import timeit
from geomem.physics.acoustic import AcousticOperator

FULL = {"sizes": [64, 128, 256], "repeats": 5, "dask_workers": [1, 2], "dask_shots": 8, "deepwave_nbl": [20, 80]}
QUICK = {"sizes": [24], "repeats": 1, "dask_workers": [], "dask_shots": 2, "deepwave_nbl": []}
KINDS = ("forward", "born", "adjoint_born", "gradient")


def velocity(n: int) -> np.ndarray:
    """Linear gradient 1.5 → 4 km/s with a 4 km/s block: ``(1, n, n)``."""
    v = 1.5 + 2.5 * np.linspace(0.0, 1.0, n)[:, None] * np.ones((1, n))
    v[n // 2 : n // 2 + n // 8, n // 4 : 3 * n // 4] = 4.0
    return v[None]


def per_shot(n: int, repeats: int) -> dict:
    op = AcousticOperator.default(n)
    v, v0 = velocity(n), velocity(n) * 0.97
    d_obs = op.forward_shots(v, [0])
    dv = np.random.default_rng(0).standard_normal(op.model_shape)
    dd = np.random.default_rng(1).standard_normal((1, op.nt, op.geometry.n_rec))
    fns = {
        "forward": lambda: op.forward_shots(v0, [0]),
        "born": lambda: op.born_shots(v0, dv, [0]),
        "adjoint_born": lambda: op.adjoint_born_shots(v0, dd, [0]),
        "gradient": lambda: op.misfit_gradient_shots(v0, d_obs, [0]),
    }
    points = op.padded_shape[0] * op.padded_shape[1] * op.nt
    out = {"shape": [n, n], "padded_shape": list(op.padded_shape), "nt": op.nt, "points_per_shot": points}
    for kind, fn in fns.items():
        t = timeit(fn, repeats)
        out[kind] = {"time": t, "gpts_wall": points / t["wall"]["median"] / 1e9,
                     "gpts_cpu": points / t["cpu"]["median"] / 1e9}
    for clock in ("wall", "cpu"):
        out[f"gradient_over_forward_{clock}"] = (out["gradient"]["time"][clock]["median"]
                                                 / out["forward"]["time"][clock]["median"])
    return out


def dask_scaling(n: int, n_shots: int, workers: list[int], repeats: int) -> dict:
    from geomem.physics.acquisition import Geometry
    from geomem.physics.parallel import ShotParallel, local_client

    op = AcousticOperator((n, n), 10.0, Geometry.surface((n, n), 10.0, n_src=n_shots))
    v, v0 = velocity(n), velocity(n) * 0.97
    d_obs = op.forward(v)
    serial = timeit(lambda: op.misfit_and_gradient(v0, d_obs, 1.0), repeats)
    rows = []
    for w in workers:
        client = local_client(w)
        try:
            par = ShotParallel(op, client)
            t = timeit(lambda par=par: par.misfit_and_gradient(v0, d_obs, 1.0), repeats)
        finally:
            client.close()
            client.cluster.close()
        speedup = serial["wall"]["median"] / t["wall"]["median"]
        rows.append({"workers": w, "time": t, "speedup": speedup, "efficiency": speedup / w})
    return {"shape": [n, n], "n_shots": n_shots, "serial": serial, "rows": rows}


def _deepwave_row(deepwave, torch, n: int, nbl: int, repeats: int) -> dict:
    v = velocity(n)
    op = AcousticOperator.default(n, nbl=nbl)
    g, h = op.geometry, op.spacing[0]
    ours = op.forward(v).astype(np.float64)
    src = torch.tensor(np.stack([g.src_coords[:, 1], g.src_coords[:, 0]], -1)[:, None, :] / h, dtype=torch.float32)
    rec = np.stack([g.rec_coords[:, 1], g.rec_coords[:, 0]], -1) / h
    rec = torch.tensor(np.repeat(rec[None], g.n_src, 0), dtype=torch.float32)
    amp = torch.tensor(np.repeat(g.wavelet()[None, None, : op.nt], g.n_src, 0), dtype=torch.float32)
    vt = torch.tensor(v[0] * 1000.0, dtype=torch.float32)

    def run_dw():
        return deepwave.scalar(vt, h, op.dt / 1000.0, source_amplitudes=amp, source_locations=src,
                               receiver_locations=rec, accuracy=8, pml_width=nbl, pml_freq=g.f0)[-1]

    theirs = -run_dw().numpy().transpose(0, 2, 1).astype(np.float64)
    alpha = float(np.sum(theirs * ours) / np.sum(theirs * theirs))  # after the sign flip: ≈ +1

    def rel(lo, hi):
        return float(np.linalg.norm(theirs[:, lo:hi] - ours[:, lo:hi]) / np.linalg.norm(ours[:, lo:hi]))

    windows = [(0, 300), (300, 600), (600, op.nt)]
    return {
        "nbl": nbl, "relative_difference": rel(0, op.nt), "amplitude_factor_after_sign_flip": alpha,
        "windows_ms": [[lo * op.dt, hi * op.dt] for lo, hi in windows],
        "windowed_relative_difference": [rel(lo, hi) for lo, hi in windows],
        "deepwave_time_5_shots": timeit(run_dw, repeats), "geomem_time_5_shots": timeit(lambda: op.forward(v), repeats),
    }


def deepwave_comparison(n: int, nbls: list[int], repeats: int) -> dict:
    try:
        import deepwave
        import torch
    except ImportError as exc:
        return {"available": False, "reason": f"deepwave not importable: {exc}"}
    torch.set_num_threads(1)
    rows = [_deepwave_row(deepwave, torch, n, nbl, repeats) for nbl in nbls]
    return {"available": True, "version": deepwave.__version__, "shape": [n, n], "rows": rows}


def run(quick: bool) -> dict:
    cfg = QUICK if quick else FULL
    result = {"config": cfg, "per_shot": [per_shot(n, cfg["repeats"]) for n in cfg["sizes"]]}
    if cfg["dask_workers"]:
        result["dask"] = dask_scaling(cfg["sizes"][0], cfg["dask_shots"], cfg["dask_workers"], cfg["repeats"])
    if cfg["deepwave_nbl"]:
        result["deepwave"] = deepwave_comparison(cfg["sizes"][0], cfg["deepwave_nbl"], cfg["repeats"])
    return result


def table(result: dict) -> list[list[str]]:
    out = []
    for r in result["per_shot"]:
        for kind in KINDS:
            t = r[kind]["time"]
            out.append([f"devito {kind}", f"{r['shape'][0]}² nt={r['nt']}",
                        f"{1e3 * t['wall']['median']:.3g} ms [{1e3 * t['wall']['q1']:.3g}-{1e3 * t['wall']['q3']:.3g}]",
                        f"cpu {1e3 * t['cpu']['median']:.3g} ms", f"{r[kind]['gpts_wall']:.2f} Gpt/s wall",
                        f"{r[kind]['gpts_cpu']:.2f} Gpt/s cpu"])
        out.append(["devito grad/fwd", f"{r['shape'][0]}²", f"{r['gradient_over_forward_wall']:.2f} wall",
                    f"{r['gradient_over_forward_cpu']:.2f} cpu", "", ""])
    if "dask" in result:
        d = result["dask"]
        for row in d["rows"]:
            out.append([f"dask gradient {d['n_shots']} shots", f"{d['shape'][0]}², {row['workers']} workers",
                        f"{1e3 * row['time']['wall']['median']:.4g} ms",
                        f"serial {1e3 * d['serial']['wall']['median']:.4g} ms", f"speedup {row['speedup']:.2f}",
                        f"eff {100 * row['efficiency']:.0f}%"])
    dw = result.get("deepwave")
    if dw and dw.get("available"):
        for row in dw["rows"]:
            out.append(["deepwave forward 5 shots", f"{dw['shape'][0]}² nbl={row['nbl']}",
                        f"{1e3 * row['deepwave_time_5_shots']['wall']['median']:.4g} ms",
                        f"geomem {1e3 * row['geomem_time_5_shots']['wall']['median']:.4g} ms",
                        f"rel diff {row['relative_difference']:.3f}",
                        "windows " + ", ".join(f"{x:.3f}" for x in row["windowed_relative_difference"])])
    elif dw:
        out.append(["deepwave", "", dw["reason"], "", "", ""])
    return out
