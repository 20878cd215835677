"""``benchmarks.gpu_dask`` on this CPU, tiny (32², 4 chains, the process pool only): every parallel result is
bit-equal to the serial one, the serial reference is timed again at the end with its drift, and
``benchmarks.gpu_tables`` renders the file."""

import json

from benchmarks import gpu_dask, gpu_tables


def test_pool_rows_and_serial_drift(tmp_path, monkeypatch):
    out = tmp_path / "dask.json"
    monkeypatch.setattr("sys.argv", ["gpu_dask", "--workers", "1", "2", "--chains", "4", "--size", "32",
                                     "--min-seconds", "0", "--no-dask", "--out", str(out)])
    gpu_dask.main()
    res = json.loads(out.read_text())
    kinds = [(r["kind"], r["workers"]) for r in res["rows"]]
    assert kinds == [("serial", 1), ("pool", 2), ("pool", 1), ("serial_end", 1)]
    start, *pools, end = res["rows"]
    assert all(r["equal_to_serial"] for r in (*pools, end))
    assert end["drift"] == end["seconds"] / start["seconds"] > 0
    for r in pools:
        assert r["efficiency"] == start["seconds"] / (r["workers"] * r["seconds"])
    table = gpu_tables.dask(tmp_path)
    assert f"(drift {end['drift']:.2f}×)" in table and "| 2 |" in table
