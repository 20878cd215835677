"""``benchmarks.gpu_tables``: the part4 summary computes each row's status from the kept H200 numbers and the
issue's bars (it is not written by hand), and every section renders from the kept results."""

import json
import shutil
from pathlib import Path

import pytest

from benchmarks import gpu_tables

KEPT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "h200" / "session15" / "part4"


def _status(table: str, row_start: str) -> str:
    line = next(x for x in table.splitlines() if x.startswith(f"| {row_start}"))
    return line.rstrip(" |").rsplit("| ", 1)[1]


def test_issue_rows_of_the_kept_part4_run():
    table = gpu_tables.issue_rows(KEPT)
    dask = json.loads((KEPT / "dask.json").read_text())
    eff16 = next(r["efficiency"] for r in dask["rows"] if r["kind"] == "dask" and r["workers"] == 16)
    assert eff16 < gpu_tables.TARGETS["dask"]  # 79.6 %: the kept run misses the bar
    assert _status(table, "Dask") == "**missed**"
    assert f"Dask {100 * eff16:.1f} %" in table
    assert _status(table, "training") == "met"
    assert _status(table, "memorized") == "met"
    assert _status(table, "DPS") == "met"


@pytest.mark.parametrize(("efficiency", "expected"), [(0.81, "met"), (0.5, "**missed**")])
def test_dask_status_follows_the_numbers(tmp_path, efficiency, expected):
    for f in gpu_tables.PART4_FILES:
        shutil.copy(KEPT / f, tmp_path / f)
    dask = json.loads((tmp_path / "dask.json").read_text())
    for r in dask["rows"]:
        if r["kind"] == "dask" and r["workers"] == 16:
            r["efficiency"] = efficiency
    (tmp_path / "dask.json").write_text(json.dumps(dask))
    assert _status(gpu_tables.issue_rows(tmp_path), "Dask") == expected


def test_every_section_renders_from_the_kept_results(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["gpu_tables", str(KEPT)])
    gpu_tables.main()
    out = capsys.readouterr().out
    for title in ("The four rows of issue #17 from one run", "Training throughput", "Memorized denoiser",
                  "Dask efficiency", "DPS step on the GPU"):
        assert f"#### {title}" in out
    assert "Against each kind's own 1-worker time" in out


def test_the_earlier_parts_still_render(capsys, monkeypatch):
    """The default directory (part1–part3 results, whose ``dask.json`` has no process-pool rows)."""
    monkeypatch.setattr("sys.argv", ["gpu_tables"])
    gpu_tables.main()
    out = capsys.readouterr().out
    assert "#### Dask efficiency\n" in out and "#### The four rows" not in out
