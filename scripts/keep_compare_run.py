#!/usr/bin/env python
"""Keep a `geomem compare` run under benchmarks/results without its samples (docs/posterior.md, docs/results.md).

    python scripts/keep_compare_run.py RUN_DIR DEST_DIR [--prefix NAME_]

Copies metrics.json, config.toml and provenance.json and writes learned_chains.npz from the run's one
samples_<truth>_n<N>.npz: the learned chains' final misfit ‖y − F‖ (``misfit``), their misfit per level
(``history``, levels × chains), the levels' σ (``levels``), γ and the number of data values ``n_data`` — what
`scripts/compare_table.py` and `scripts/learned_chain_levels.py` read from a kept folder. ``--prefix`` names the files
``NAME_metrics.json``, ``NAME_config.toml``, ``NAME_chains.npz`` in DEST_DIR instead (no provenance), as the CPU runs
under benchmarks/results/validate_learned_cpu2 are kept.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("run", type=Path)
ap.add_argument("dest", type=Path)
ap.add_argument("--prefix", default="")
args = ap.parse_args()
samples = sorted(args.run.glob("samples_*_n*.npz"))
if len(samples) != 1:
    raise SystemExit(f"{args.run}: expected one samples_<truth>_n<N>.npz, found {len(samples)}")
tag = samples[0].name[len("samples_"):].rsplit("_n", 1)[0]
metrics = json.loads((args.run / "metrics.json").read_text())
(truth,) = metrics["truths"].values()
args.dest.mkdir(parents=True, exist_ok=True)
names = (("metrics.json", "config.toml"), "chains.npz") if args.prefix else \
    (("metrics.json", "config.toml", "provenance.json"), "learned_chains.npz")
for name in names[0]:
    shutil.copyfile(args.run / name, args.dest / f"{args.prefix}{name}")
s = np.load(samples[0])
np.savez(args.dest / f"{args.prefix}{names[1]}", misfit=s["learned__misfit"], history=s["learned__history"],
         levels=s["learned__levels"], gamma=truth["gamma"], n_data=np.load(args.run / f"truth_{tag}.npz")["y"].size)
print(f"kept {args.run} in {args.dest}")
