"""Shared pieces of the reliability suite: the run's figures (inputs tried, kills, faults) and file checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

#: counters filled by the tests and written to ``<pytest basetemp>/reliability_figures.json`` at session end
FIGURES: Counter = Counter()

REPO = Path(__file__).resolve().parents[2]
GEOMEM = [sys.executable, "-m", "geomem.cli"]


def count(name: str, k: int = 1) -> None:
    FIGURES[name] += k


def child_env() -> dict[str, str]:
    """Environment of a geomem subprocess: one thread, no GPU, non-interactive plots."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
            "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}


def start(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([*GEOMEM, *argv], cwd=cwd, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None, poll: float = 0.05) -> bool:
    """Poll ``predicate()`` until it is true (True), the timeout passes or ``proc`` exits (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(predicate())
        time.sleep(poll)
    return False


def is_debris(path: Path) -> bool:
    """A temporary file or folder of an atomic write (``.<name>.tmp-*`` / ``.<name>.old-*``)."""
    return any(part.startswith(".") and (".tmp-" in part or ".old-" in part) for part in path.parts)


def check_complete(folder: Path) -> list[Path]:
    """Every non-temporary file under ``folder`` is complete: ``.npz`` loads, ``.json``/``.jsonl`` parse,
    ``.png`` has its end marker, checkpoints match their ``complete.json`` hashes. Returns the files checked."""
    from geomem.priors.learned import _sha256

    checked = []
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        if is_debris(f.relative_to(folder)):
            continue
        if f.suffix == ".npz":
            with np.load(f, allow_pickle=False) as z:
                for k in z.files:
                    z[k]
        elif f.suffix == ".json":
            json.loads(f.read_text(encoding="utf-8"))
        elif f.suffix == ".jsonl":
            for line in f.read_text(encoding="utf-8").splitlines():
                json.loads(line)
        elif f.suffix == ".png":
            assert f.read_bytes().endswith(b"IEND\xaeB`\x82"), f
        if f.name == "complete.json":
            meta = json.loads(f.read_text(encoding="utf-8"))
            for name, digest in meta["sha256"].items():
                assert _sha256(f.parent / name) == digest, f.parent / name
        checked.append(f)
    return checked


def finite_or_geomem_error(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``: return its result (every float array in it finite), or None when it raised a
    GeomemError. Any other exception propagates and fails the calling test."""
    import torch

    from geomem.errors import GeomemError

    count("malformed inputs tried")
    try:
        out = fn(*args, **kwargs)
    except GeomemError as exc:
        count("GeomemError raised")
        msg = str(exc)
        assert msg and "\n" not in msg.strip(), f"error message must be one line: {msg!r}"
        return None
    for value in out if isinstance(out, tuple) else (out,):
        if isinstance(value, torch.Tensor):
            assert bool(torch.isfinite(value).all()), f"{fn.__name__} returned non-finite values"
        elif isinstance(value, (np.ndarray, float, np.floating)):
            assert np.all(np.isfinite(value)), f"{fn.__name__} returned non-finite values"
    count("correct results returned")
    return out
