"""A/B timing of the Devito operator: ``geomem/physics/acoustic.py`` now against the same file at a git
revision, in one process, calls interleaved (so both see the same machine load).

    OMP_NUM_THREADS=1 python -m benchmarks.ab_acoustic [--rev 6e1155a] [--sizes 8 64 128] [--repeats 7]

Per size and kind (forward, Born, adjoint Born, gradient; one shot), the median CPU time of the thread
(``time.thread_time``) for each version and their ratio. The 8² grid with a 100 ms record shows the
per-call Python overhead. Prints a table and writes ``benchmarks/results/ab_acoustic.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import geomem  # noqa: E402,F401
from benchmarks.common import machine, summarize  # noqa: E402
from geomem.physics.acoustic import AcousticOperator  # noqa: E402
from geomem.physics.acquisition import Geometry  # noqa: E402
from geomem.runs import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def old_class(rev: str):
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:geomem/physics/acoustic.py"], check=True,
                         capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(src)
    spec = importlib.util.spec_from_file_location(f"acoustic_{rev}", fh.name)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    os.unlink(fh.name)
    return mod.AcousticOperator


def calls(op, n: int) -> dict:
    v = np.full((1, n, n), 2.0)
    v[:, n // 2 :] = 3.0
    dd = np.random.default_rng(0).standard_normal((1, op.nt, op.geometry.n_rec))
    return {"forward": lambda: op.forward_shots(v, [0]), "born": lambda: op.born_shots(v, 0.01 * v, [0]),
            "adjoint_born": lambda: op.adjoint_born_shots(v, dd, [0]),
            "gradient": lambda: op.misfit_gradient_shots(v, dd, [0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="6e1155a", help="git revision of the old acoustic.py")
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 128])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    Old = old_class(args.rev)
    rows = []
    for n in args.sizes:
        t_max = 100.0 if n < 16 else 1000.0
        geom = Geometry.surface((n, n), 10.0, t_max=t_max)
        fns = {"old": calls(Old((n, n), 10.0, geom), n), "new": calls(AcousticOperator((n, n), 10.0, geom), n)}
        for version in fns.values():
            for fn in version.values():
                fn()  # build, compile, first run
        times = {k: {"old": [], "new": []} for k in fns["new"]}
        for _ in range(args.repeats):
            for kind in times:
                for version in ("old", "new"):
                    c = time.thread_time()
                    fns[version][kind]()
                    times[kind][version].append(time.thread_time() - c)
        for kind, t in times.items():
            old, new = summarize(t["old"]), summarize(t["new"])
            rows.append({"size": n, "nt": geom.nt, "kind": kind, "old_cpu": old, "new_cpu": new,
                         "speedup": old["median"] / new["median"]})
            print(f"{n:>4}² nt={geom.nt:<5} {kind:13s} old {1e3 * old['median']:8.2f} ms   new "
                  f"{1e3 * new['median']:8.2f} ms   x{old['median'] / new['median']:.2f}")
    out = write_json(ROOT / "benchmarks" / "results" / "ab_acoustic.json",
                     {"machine": machine(), "rev_old": args.rev, "clock": "thread CPU time", "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
