"""`geomem compare` killed mid-run: the run folder holds only complete files, and a rerun reuses the finished
stages (cache) and produces the same numbers as an uninterrupted run; SIGINT stops with exit 130 and a message."""

import json
import random
import signal

import numpy as np
import pytest
from reliability_helpers import REPO, check_complete, count, start, wait_for

TINY = str(REPO / "data" / "configs" / "compare_tiny.toml")
ARGS = ["compare", "-c", TINY, "sampler.split_gibbs.levels=4", "chains=3"]


def _cache_files(run):
    return sorted(p.name for p in (run / "cache").rglob("*.npz")) if (run / "cache").exists() else []


@pytest.mark.slow
def test_sigkill_then_rerun_equals_uninterrupted(tmp_path):
    straight = tmp_path / "straight"
    proc = start([*ARGS, "--out", str(straight)], cwd=tmp_path)
    assert proc.wait(timeout=600) == 0, proc.communicate()
    killed = tmp_path / "killed"
    proc = start([*ARGS, "--out", str(killed)], cwd=tmp_path)
    try:
        # wait until at least two stages are cached, then kill at a seeded random moment
        assert wait_for(lambda: len(_cache_files(killed)) >= 2, 300, proc), proc.communicate()
        wait_for(lambda: False, random.Random(0).uniform(0.0, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        count("sigkills_sent")
    finally:
        proc.kill()
    check_complete(killed)
    done_before = set(_cache_files(killed))
    proc = start([*ARGS, "--out", str(killed)], cwd=tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert done_before <= set(_cache_files(killed))
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert a["truths"] == b["truths"]
    for f in straight.glob("samples_*.npz"):
        with np.load(f) as x, np.load(killed / f.name) as y:
            for k in x.files:
                np.testing.assert_array_equal(x[k], y[k], err_msg=f"{f.name}:{k}")


@pytest.mark.slow
def test_sigint_stops_compare_cleanly(tmp_path):
    run = tmp_path / "run"
    proc = start([*ARGS, "--out", str(run)], cwd=tmp_path)
    try:
        assert wait_for(lambda: len(_cache_files(run)) >= 1, 300, proc), proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        count("sigint_stops")
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Aborted" in err and "Traceback" not in err
    check_complete(run)
