"""scripts/sweep_tables.py prints a kept sweep metrics file's sample rates as they are stored (a run folder's
metrics.json or, since session 13, a metrics file given directly)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEPT = REPO / "benchmarks" / "results" / "h200" / "sweep50k"


def _table(arg: Path) -> str:
    proc = subprocess.run([sys.executable, "scripts/sweep_tables.py", str(arg)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_metrics_file_and_a_folder_print_their_own_rates_and_ratios():
    for arg, metrics_file in ((KEPT / "session13" / "metrics_n50_w32.json",) * 2, (KEPT, KEPT / "metrics.json")):
        out = _table(arg)
        m = json.loads(metrics_file.read_text())
        for r in (x for x in m["samples"] if x["n"] == 50):
            rate = r["memorization"]["rates"][m["criterion"]]["samples"]["rate"]
            ratio = r["memorization"]["median_ratio_k"]["samples"]
            row = next(line for line in out.splitlines() if line.startswith(f"| 50 | 32 | {r['step']} |"))
            assert f"| {rate:.3f} [" in row and f"| {ratio:.3f} |" in row
