"""Smoke test of the benchmark runner (``python -m benchmarks --quick``): it runs every case at tiny sizes
and writes a JSON file with the machine, versions and per-case results. Not timed: only the schema and the
internal consistency of the numbers are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASES = ("memorized", "devito", "dps", "training", "linearized", "gradient")


def _stat_ok(stat: dict) -> bool:
    return stat["n"] >= 1 and 0 <= stat["min"] <= stat["q1"] <= stat["median"] <= stat["q3"] <= stat["max"]


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "QUICK" in proc.stdout and f"wrote {out}" in proc.stdout
    return json.loads(out.read_text())


def test_machine_and_versions(quick_result):
    m = quick_result["machine"]
    assert quick_result["quick"] is True and quick_result["schema_version"] == 1
    assert m["cores"] >= 1 and isinstance(m["cpu_model"], str) and m["cpu_model"]
    assert {"torch", "devito", "numpy", "geomem"} <= set(m["versions"])
    assert m["date"][:2] == "20" and len(m["load_avg_start"]) == 3
    assert set(quick_result["cases"]) == set(CASES)


def test_memorized_case(quick_result):
    rows = quick_result["cases"]["memorized"]["rows"]
    assert rows
    for r in rows:
        assert _stat_ok(r["chunked"]["wall"]) and _stat_ok(r["chunked"]["cpu"])
        # the chunked denoiser and the broadcast formula agree on the same inputs (float32 round-off)
        assert r["max_abs_difference"] < 1e-4
        assert r["speedup"] == pytest.approx(r["broadcast"]["wall"]["median"] / r["chunked"]["wall"]["median"])


def test_devito_case(quick_result):
    res = quick_result["cases"]["devito"]
    for r in res["per_shot"]:
        for kind in ("forward", "born", "adjoint_born", "gradient"):
            t = r[kind]["time"]["wall"]
            assert _stat_ok(t)
            assert r[kind]["gpts_wall"] == pytest.approx(r["points_per_shot"] / t["median"] / 1e9)
        assert r["points_per_shot"] == r["padded_shape"][0] * r["padded_shape"][1] * r["nt"]


def test_gradient_case(quick_result):
    for r in quick_result["cases"]["gradient"]["rows"]:
        assert set(r["variants"]) == {"sponge/direct", "sponge/by_parts", "pml/by_parts"}
        for row in r["variants"].values():
            t = row["time"]
            assert _stat_ok(t["forward"]["cpu"]) and _stat_ok(t["gradient"]["wall"])
            assert row["gradient_over_forward"]["cpu"] == pytest.approx(
                t["gradient"]["cpu"]["median"] / t["forward"]["cpu"]["median"])


def test_dps_split_adds_up(quick_result):
    for r in quick_result["cases"]["dps"]["rows"]:
        parts = ("denoiser", "vjp", "physics", "denoiser+vjp", "overhead")
        assert sum(r[f"{k}_fraction"] for k in parts) == pytest.approx(1.0, abs=1e-9)
        assert r["physics_fraction"] > 0 and r["seconds_per_sample"] > 0
        assert r["chains_per_hour"] == pytest.approx(3600 / r["seconds_per_sample"])
        # the learned prior is split by autograd; the memorized prior's analytic VJP is fused with D
        if r["prior"] == "learned":
            assert r["denoiser_fraction"] > 0 and r["vjp_fraction"] > 0 and r["denoiser+vjp_fraction"] == 0
        else:
            assert r["denoiser+vjp_fraction"] > 0 and r["vjp_fraction"] == 0


def test_linearized_and_training_cases(quick_result):
    rows = quick_result["cases"]["linearized"]["rows"]
    dense = [r for r in rows if r["method"] == "dense" and "skipped" not in r]
    assert dense and dense[0]["born_actions"] == dense[0]["d"]
    assert dense[0]["mean_relative_difference_to_matrix_free"] < 1.0
    mf = [r for r in rows if r["method"] == "matrix-free"]
    assert all(r["pde_solves"] > 0 and r["born_actions"] >= 1 for r in mf)
    cpu = quick_result["cases"]["training"]["cpu"]
    assert cpu["median_models_per_s"] > 0 and len(cpu["models_per_s"]) == 1


def test_unknown_case_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--cases", "nope"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown case" in proc.stderr


def test_summarize_quartiles():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.common import summarize
    finally:
        sys.path.remove(str(ROOT))
    s = summarize([4.0, 1.0, 3.0, 2.0])  # numpy linear interpolation: q1 = 1.75, q3 = 3.25
    assert s == {"median": 2.5, "q1": 1.75, "q3": 3.25, "min": 1.0, "max": 4.0, "n": 4}
