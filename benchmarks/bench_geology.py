"""Benchmark: generating 1000 velocity models of 64×64 per family and difficulty, on one core.

Target (issue 2): 1000 models of 64×64 in under 10 s on one core. Reports the best and the median of
``--repeats`` runs (the development machine is shared) of ``make_model_set`` (generation plus the
near-duplicate check), the duplicate check alone, and saving/loading the set as .npz and .zarr.

    OMP_NUM_THREADS=1 python benchmarks/bench_geology.py [--n 1000] [--size 64] [--repeats 3]

Writes ``benchmarks/results/bench_geology.json``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy loads

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from geomem.geology import FAMILIES, ModelSet, make_model_set  # noqa: E402
from geomem.geology.distances import close_pairs  # noqa: E402
from geomem.runs import git_revision, write_json  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bench_geology.json"
TARGET_S = 10.0


def timed(fn, repeats):
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    print(f"{'family':11s} {'diff':4s} {'best s':>7s} {'median s':>9s} {'dup check s':>11s} {'models/s':>9s}  target")
    for family in FAMILIES:
        for difficulty in "AB":
            best, median, ms = timed(
                lambda f=family, d=difficulty: make_model_set(f, n=args.n, size=args.size, seed=0, difficulty=d),
                args.repeats,
            )
            dup, _, _ = timed(lambda m=ms: close_pairs(m.models, 0.01, scale=m.vmax - m.vmin), args.repeats)
            ok = best < TARGET_S
            rows.append(dict(family=family, difficulty=difficulty, best_s=best, median_s=median, duplicate_check_s=dup,
                             models_per_s=args.n / best, under_target=ok))
            print(f"{family:11s} {difficulty:4s} {best:7.2f} {median:9.2f} {dup:11.3f} {args.n / best:9.0f}  "
                  f"{'ok' if ok else 'SLOW'}")
    ms = make_model_set("curvefault", n=args.n, size=args.size, seed=0)
    io = {}
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".npz", ".zarr"):
            path = Path(tmp) / f"set{suffix}"
            save, _, _ = timed(lambda p=path: ms.save(p), args.repeats)
            load, _, _ = timed(lambda p=path: ModelSet.load(p), args.repeats)
            io[suffix] = dict(save_s=save, load_s=load)
            print(f"{suffix:6s} save {save:.3f} s, load {load:.3f} s ({args.n} models)")
    write_json(RESULTS, dict(
        n=args.n, size=args.size, repeats=args.repeats, target_s=TARGET_S, rows=rows, io=io,
        machine=dict(platform=platform.platform(), processor=platform.processor(), cpus=os.cpu_count()),
        threads=1, git_revision=git_revision(), time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    ))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
