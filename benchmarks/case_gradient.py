"""Case: the gradient's cost in forwards, for the two exact imaging forms and the two boundaries, in one run.

Per shot (one process, serial Devito, float32, the default 5-source survey at 10 m, 1 s): a forward
(``forward_shots``) and a gradient (``misfit_gradient_shots``: forward with save + adjoint) of each variant,
timed round-robin (each repeat runs every variant once, so load changes hit them alike). Variants:
``sponge/direct`` (today's default operator), ``sponge/by_parts`` and ``pml/by_parts``
(``AcousticOperator(boundary=..., imaging=...)``). Reported: median CPU and wall times and
``gradient / forward`` of the same operator (the target is ≤ 2.5), plus the gradient of each variant relative
to the default's.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from benchmarks.common import summarize
from geomem.physics.acoustic import AcousticOperator

FULL = {"sizes": [64, 128, 256], "repeats": 7}
QUICK = {"sizes": [24], "repeats": 1}
VARIANTS = (("sponge", "direct"), ("sponge", "by_parts"), ("pml", "by_parts"))


def velocity(n: int) -> np.ndarray:
    """Linear gradient 1.5 → 4 km/s with a 4 km/s block: ``(1, n, n)`` (as the devito case)."""
    v = 1.5 + 2.5 * np.linspace(0.0, 1.0, n)[:, None] * np.ones((1, n))
    v[n // 2 : n // 2 + n // 8, n // 4 : 3 * n // 4] = 4.0
    return v[None]


def _time(fn) -> tuple[float, float]:
    c0, t0 = time.thread_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.thread_time() - c0


def size_row(n: int, repeats: int) -> dict:
    v = velocity(n)
    v0 = 0.97 * v
    calls = {}
    for boundary, imaging in VARIANTS:
        op = AcousticOperator.default(n, boundary=boundary, imaging=imaging)
        d_obs = op.forward_shots(v, [0])
        calls[f"{boundary}/{imaging}"] = {
            "forward": lambda op=op: op.forward_shots(v0, [0]),
            "gradient": lambda op=op, d=d_obs: op.misfit_gradient_shots(v0, d, [0]),
        }
    samples = {(k, kind): {"wall": [], "cpu": []} for k in calls for kind in ("forward", "gradient")}
    for rep in range(repeats + 1):  # the first round is warm-up (compilation, first-touch of the saved field)
        for k, fns in calls.items():
            for kind, fn in fns.items():
                wall, cpu = _time(fn)
                if rep:
                    samples[(k, kind)]["wall"].append(wall)
                    samples[(k, kind)]["cpu"].append(cpu)
    out = {"shape": [n, n], "variants": {}}
    base = None
    for k in calls:
        t = {kind: {c: summarize(samples[(k, kind)][c]) for c in ("wall", "cpu")} for kind in ("forward", "gradient")}
        ratio = {c: t["gradient"][c]["median"] / t["forward"][c]["median"] for c in ("wall", "cpu")}
        base = base or t["gradient"]["cpu"]["median"]
        out["variants"][k] = {"time": t, "gradient_over_forward": ratio,
                              "gradient_over_default_gradient_cpu": t["gradient"]["cpu"]["median"] / base}
    return out


def run(quick: bool) -> dict:
    cfg = QUICK if quick else FULL
    with warnings.catch_warnings():  # 4.85 points per wavelength at 1.46 km/s: advice, not an error
        warnings.simplefilter("ignore")
        return {"config": cfg, "rows": [size_row(n, cfg["repeats"]) for n in cfg["sizes"]]}


def table(result: dict) -> list[list[str]]:
    out = []
    for r in result["rows"]:
        for k, row in r["variants"].items():
            t = row["time"]
            out.append([f"gradient {k}", f"{r['shape'][0]}²",
                        f"fwd cpu {1e3 * t['forward']['cpu']['median']:.3g} ms",
                        f"grad cpu {1e3 * t['gradient']['cpu']['median']:.3g} ms",
                        f"grad/fwd {row['gradient_over_forward']['cpu']:.2f} cpu, "
                        f"{row['gradient_over_forward']['wall']:.2f} wall",
                        f"vs default grad {row['gradient_over_default_gradient_cpu']:.2f}"])
    return out
