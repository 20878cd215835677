"""Run the benchmark cases, print one table, write one JSON file.

    OMP_NUM_THREADS=1 python -m benchmarks [--quick] [--cases memorized,devito,dps,training,linearized,gradient]
                                           [--device cpu|cuda] [--dps-physics auto|devito|placeholder]
                                           [--dps-priors learned,memorized] [--dps-steps eager,graph]
                                           [--out benchmarks/results/<machine>.json]

Every case does warm-up calls, then repeats, and reports medians with quartiles and min/max (see
``benchmarks/common.py``). The JSON holds the machine (CPU model, cores, load average, GPU), versions,
git revision and date, and each case's full result. ``--quick`` runs tiny sizes with one repeat: a smoke
run for CI whose numbers mean nothing. On a machine without Devito (``--device cuda`` on the GPU host),
run ``--cases memorized,dps``: the DPS case then replaces the physics by a placeholder (see case_dps).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

CASES = ("memorized", "devito", "dps", "training", "linearized", "gradient")
SCHEMA_VERSION = 1


def _case_kwargs(name: str, device: str, has_devito: bool, dps_physics: str = "auto",
                 dps_priors: list[str] | None = None, dps_steps: list[str] | None = None) -> dict:
    if name == "memorized":
        return {"device": device}
    if name == "dps":
        physics = ("devito" if has_devito else "placeholder") if dps_physics == "auto" else dps_physics
        return {"device": device, "physics": physics, "priors": dps_priors, "steps": dps_steps}
    return {}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke run; not a measurement)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device for memorized and dps")
    ap.add_argument("--dps-physics", default="auto", choices=["auto", "devito", "placeholder"],
                    help="DPS case physics: Devito (auto: where installed) or the placeholder ½‖x‖², which times "
                         "the networks and the sampler alone")
    ap.add_argument("--dps-priors", default="learned,memorized",
                    help="DPS case priors, comma-separated subset of learned,memorized")
    ap.add_argument("--dps-steps", default="eager",
                    help="DPS case: how the sampler's update runs, comma-separated subset of eager,compiled,graph "
                         "(dps(step=...); graph: CUDA only), one row per prior and kind")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/<machine>.json)")
    args = ap.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    dps_priors = [p.strip() for p in args.dps_priors.split(",") if p.strip()]
    dps_steps = [p.strip() for p in args.dps_steps.split(",") if p.strip()]
    if not dps_steps or set(dps_steps) - {"eager", "compiled", "graph"}:
        ap.error(f"--dps-steps takes eager, compiled and/or graph, got {args.dps_steps!r}")
    if "graph" in dps_steps and args.device != "cuda":
        ap.error("--dps-steps graph needs --device cuda (CUDA graphs)")
    if not dps_priors or set(dps_priors) - {"learned", "memorized"}:
        ap.error(f"--dps-priors takes learned and/or memorized, got {args.dps_priors!r}")

    import torch

    import geomem  # noqa: F401  (environment defaults: serial Devito, quiet logs)
    from benchmarks.common import machine
    from geomem.runs import write_json

    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch sees no GPU; use --device cpu")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    try:
        importlib.import_module("devito")
        has_devito = True
    except ImportError:
        has_devito = False
    if not has_devito and ({"devito", "linearized", "gradient"} & set(cases) or args.dps_physics == "devito"):
        ap.error("the devito, linearized and gradient cases need Devito, which is not installed here")

    info = machine()
    result = {"schema_version": SCHEMA_VERSION, "quick": args.quick, "device": args.device, "machine": info,
              "cases": {}, "seconds": {}}
    rows = []
    for name in cases:
        mod = importlib.import_module(f"benchmarks.case_{name}")
        t = time.perf_counter()
        print(f"[{name}] running ...", file=sys.stderr, flush=True)
        res = mod.run(args.quick, **_case_kwargs(name, args.device, has_devito, args.dps_physics, dps_priors,
                                                    dps_steps))
        result["seconds"][name] = time.perf_counter() - t
        result["cases"][name] = res
        rows += mod.table(res)
    result["machine"]["load_avg_end"] = list(os.getloadavg())

    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))] if rows else []
    gpu = info["gpu"]["name"] if info["gpu"] else "no GPU"
    print(f"{info['cpu_model']} ({info['cores']} cores, load {info['load_avg_start'][0]:.1f}), {gpu}, "
          f"torch {info['versions'].get('torch')}, devito {info['versions'].get('devito')}, {info['date']}"
          + ("  [QUICK: smoke run, not a measurement]" if args.quick else ""))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    tag = "quick" if args.quick else ("gpu" if args.device == "cuda" else f"cpu{info['cores']}")
    out = args.out or Path(__file__).resolve().parent / "results" / f"suite_{tag}.json"
    write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
