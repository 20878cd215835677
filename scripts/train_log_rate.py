#!/usr/bin/env python
"""Median training throughput of one or more runs over a window of steps, from their train_log.jsonl.

    python scripts/train_log_rate.py LOG [LOG ...] [--from STEP] [--to STEP]

Each log line is one `geomem` training log record (``step``, ``models_per_s`` over the last ``log_every`` steps);
records with a non-finite rate (a run stopped mid-window) are skipped. Prints per log the number of records, the
median, min and max models/s in ``from ≤ step ≤ to``, and the sum of the medians (runs sharing one GPU at once:
docs/benchmarks.md, "Several trainings at once on one H200").
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("logs", type=Path, nargs="+")
ap.add_argument("--from", dest="lo", type=int, default=0)
ap.add_argument("--to", dest="hi", type=int, default=10**12)
args = ap.parse_args()
total = 0.0
for log in args.logs:
    rates = [r["models_per_s"] for r in map(json.loads, log.read_text().splitlines())
             if args.lo <= r["step"] <= args.hi and math.isfinite(r["models_per_s"])]
    if not rates:
        raise SystemExit(f"{log}: no record with a finite rate in steps {args.lo}..{args.hi}")
    med = statistics.median(rates)
    total += med
    print(f"{log}: {len(rates)} records, median {med:,.0f} models/s [{min(rates):,.0f}, {max(rates):,.0f}]")
print(f"sum of medians: {total:,.0f} models/s")
