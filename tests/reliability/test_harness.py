"""The bad-input harness (scripts/bad_input_harness.py) classifies what it sees: a clean one-line error, a
traceback, a hang and a silent success are each recognized (the harness itself is run by hand, see
docs/reliability.md)."""

import importlib.util
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bad_input_harness", REPO / "scripts" / "bad_input_harness.py")
harness = importlib.util.module_from_spec(spec)
sys.modules["bad_input_harness"] = harness  # dataclasses look their module up there
spec.loader.exec_module(harness)


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Import every command once here, as the harness does, so each forked case starts fast."""
    import geomem.cli

    try:
        geomem.cli._register()
    except ImportError:  # a broken command module: each case then shows it as its own traceback
        pass


def run(tmp_path, argv, expect="error", check=None, timeout=60.0):
    return harness.run_case(harness.Case("test", argv, expect, check), tmp_path / "case", timeout)


def test_clean_error_and_silent_success(tmp_path):
    r = run(tmp_path, ["data", "make", "--n", "0", "--size", "8", "--out", "x.npz"])
    assert r["class"] == "clean" and r["exit"] == 2 and r["stderr_tail"][-1].startswith("error: ")
    r = run(tmp_path, ["data", "make", "--n", "2", "--size", "8", "--out", "y.npz"])  # valid, but "must fail"
    assert r["class"] == "silent" and r["exit"] == 0
    r = run(tmp_path, ["data", "make", "--n", "2", "--size", "8", "--out", "z.npz"], "ok",
            lambda work: (work / "z.npz").is_file())
    assert r["class"] == "ok"
    r = run(tmp_path, ["data", "make", "--n", "2", "--size", "8", "--out", "w.npz"], "ok", lambda work: False)
    assert r["class"] == "silent"  # valid input, wrong result


def test_traceback_and_hang(tmp_path, monkeypatch):
    import geomem.geology.modelset as modelset

    def broken(*args, **kwargs):
        raise KeyError("deep inside")

    monkeypatch.setattr(modelset, "make_model_set", broken)  # inherited by the forked child
    r = run(tmp_path, ["data", "make", "--n", "2", "--size", "8", "--out", "x.npz"])
    assert r["class"] == "traceback" and "KeyError" in r["stderr_tail"][-1]
    monkeypatch.setattr(modelset, "make_model_set", lambda *a, **k: time.sleep(60))
    start = time.perf_counter()
    r = run(tmp_path, ["data", "make", "--n", "2", "--size", "8", "--out", "x.npz"], timeout=2.0)
    assert r["class"] == "hang" and time.perf_counter() - start < 30


@pytest.mark.parametrize("word", ["train", "invert", "model"])
def test_the_case_list_is_large_and_covers_the_commands(word):
    from collections import defaultdict

    listed = harness.cases(defaultdict(lambda: "FIXTURE"))
    assert len(listed) >= 300
    assert sum(c.command == word for c in listed) >= 20
