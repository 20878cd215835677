"""Shared pieces of the benchmark cases: timing statistics, peak memory, machine description.

Timing protocol (every case): ``warmup`` untimed calls, then ``repeats`` timed calls. Each call is timed
twice: wall clock (``time.perf_counter``) and the calling thread's CPU time (``time.thread_time``). On a
shared machine the CPU time is the better estimate of what the code costs on a free core (it excludes the
time the thread waited for a core), the wall time is what the user saw. Reported per quantity: median,
first and third quartile, min and max, in seconds. On CUDA the device is synchronized around each call;
there the CPU time only counts the host thread and is not meaningful (wall time is the measure).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def summarize(values: list[float]) -> dict[str, float]:
    """Median, quartiles (``numpy.percentile`` linear interpolation), min, max and count of ``values``."""
    a = np.asarray(values, dtype=np.float64)
    q1, q3 = np.percentile(a, [25, 75])
    return {"median": float(np.median(a)), "q1": float(q1), "q3": float(q3), "min": float(a.min()),
            "max": float(a.max()), "n": int(a.size)}


def timeit(fn: Callable[[], Any], repeats: int, warmup: int = 1, sync: Callable[[], None] | None = None) -> dict:
    """Time ``fn()``: ``{"wall": summarize(...), "cpu": summarize(...)}`` in seconds."""
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.thread_time(), time.perf_counter()
        fn()
        sync()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return {"wall": summarize(wall), "cpu": summarize(cpu)}


def _kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_mib(fn: Callable[[], Any], device: str = "cpu") -> float:
    """Peak memory a call of ``fn`` adds, in MiB.

    CUDA: ``torch.cuda.max_memory_allocated`` above the memory allocated before the call. CPU (Linux): the
    rise of the resident-set high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``) above the
    resident set before the call; temporaries served from memory the allocator already holds read as 0.
    """
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _kib("VmRSS:")
    fn()
    return max(_kib("VmHWM:") - before, 0) / 1024


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """CPU model, logical cores, load average at the start, GPU (if torch sees one), versions, date."""
    import torch

    from geomem.runs import provenance

    prov = provenance()
    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "memory_gib": props.total_memory / 2**30, "count": torch.cuda.device_count()}
    versions = dict(prov["versions"])
    for name in ("deepwave",):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return {"cpu_model": cpu_model(), "cores": os.cpu_count(), "load_avg_start": list(os.getloadavg()),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "platform": prov["machine"]["platform"],
            "gpu": gpu, "versions": versions, "git_revision": prov["git_revision"], "date": prov["time"]}


def median_ratio(a: dict, b: dict, clock: str = "wall") -> float:
    """``median(a) / median(b)`` of two :func:`timeit` results."""
    return a[clock]["median"] / b[clock]["median"]


def fmt_time(stat: dict[str, float]) -> str:
    """``median [q1, q3]`` in ms."""
    return f"{1e3 * stat['median']:.3g} ms [{1e3 * stat['q1']:.3g}, {1e3 * stat['q3']:.3g}]"


def stdev(values: list[float]) -> float:
    return statistics.pstdev(values) if len(values) > 1 else 0.0


def save_json(path: Path, res: dict) -> Path:
    """Write a benchmark's result ``res`` to ``path`` as JSON (parent folders made, written atomically: a killed
    run leaves no partial file) and say so on stdout."""
    from geomem.runs import write_json

    out = write_json(path, res)
    print(f"wrote {out}")
    return out
