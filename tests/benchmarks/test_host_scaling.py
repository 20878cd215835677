"""benchmarks/host_scaling.py runs the same work in P processes at once and reports each level's efficiency
against P = 1 (a small run: the memory copy only, which needs no Devito build)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_levels_report_times_of_every_process_and_efficiency_against_one(tmp_path):
    out = tmp_path / "host.json"
    subprocess.run([sys.executable, "-m", "benchmarks.host_scaling", "--procs", "1", "2", "--kinds", "stream",
                    "--seconds", "0.2", "--repeats", "2", "--out", str(out)], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    res = json.loads(out.read_text())
    rows = res["rows"]
    assert [(r["kind"], r["procs"]) for r in rows] == [("stream", 1), ("stream", 2)]
    assert res["repeats"] == 2 and res["gradient_buffers_mib"] > res["forward_buffers_mib"] > 0
    for r in rows:
        assert len(r["seconds_each"]) == 2 and all(len(times) == r["procs"] for times in r["seconds_each"])
        assert r["t_max"] >= r["t_median"] > 0
        assert r["GBps_total"] == r["procs"] * r["GBps_each"]
    one, two = rows
    assert one["efficiency"] == 1.0
    assert two["efficiency"] == one["t_max"] / two["t_max"]
    shown = subprocess.run([sys.executable, "-m", "benchmarks.host_scaling", "--show", str(out)], cwd=ROOT,
                           check=True, capture_output=True, text=True, timeout=60).stdout
    assert "| work | P = 1 | P = 2 |" in shown
    assert f"| stream, 64² | {one['GBps_total']:.0f} GB/s | {two['GBps_total']:.0f} GB/s |" in shown
