"""scripts/compare_table.py reads kept compare runs — a folder and a `keep_compare_run.py --prefix` file set — and
prints what their files hold (the numbers of docs/results.md section 5 come from it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEPT = REPO / "benchmarks" / "results"


def _table(*runs: Path) -> str:
    proc = subprocess.run([sys.executable, "scripts/compare_table.py", *map(str, runs)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_prefix_and_a_folder_give_their_own_rows_ratios_and_chains():
    prefix = KEPT / "validate_learned_cpu2" / "n200_50k_hmc_select3_"
    folder = KEPT / "h200" / "session11" / "compare_n50"
    out = _table(prefix, folder)
    for metrics_file, n in ((Path(f"{prefix}metrics.json"), "200"), (folder / "metrics.json", "50")):
        s = json.loads(metrics_file.read_text())["truths"]["heldout:0"]["sizes"][n]
        learned = s["quality"]["posteriors"]["learned"]
        row = next(line for line in out.splitlines() if line.startswith(f"| heldout:0 | {n} | learned |"))
        assert f"| {learned['rmse']:.3f} |" in row and f"| {learned['misfit/noise']:.2f} |" in row
        assert "16/16 ≤ 1.2" in row  # per chain, from the kept chains' file (no samples are kept)
        ratio = s["memorization"]["learned"]["memorization"]["median_ratio_k"]
        line = next(x for x in out.splitlines() if f"N = {n}: median d1/mean(d2..dk)" in x)
        assert f"learned {ratio['samples']:.3f}" in line and f"held-out {ratio['heldout']:.3f}" in line
