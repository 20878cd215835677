"""Speed and peak memory of the memorized-prior denoiser: chunked matrix products vs direct broadcast.

N = 1000 training models of 64×64, batch 16, one CPU thread, float32. The broadcast baseline is the
textbook formula ``x[:, None] − train[None]`` (a ``(B, N, d)`` tensor). On CPU, peak memory is the rise
of the process's resident-set high-water mark during one call after a warm-up (Linux
``/proc/self/clear_refs``); the chunked call's temporaries (a few ``(B, N)`` and ``(B, d)`` arrays, under
1 MiB here) are served from memory the allocator already holds, so its measured rise can read 0. The
analytic size of the largest temporaries is reported beside it. On CUDA, peak memory is
``torch.cuda.max_memory_allocated`` above the memory held before the call.
Prints a table and writes ``benchmarks/results/memorized_<device>.json``.

    OMP_NUM_THREADS=1 python benchmarks/bench_memorized.py [--device cuda]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from geomem.priors import MemorizedPrior
from geomem.runs import write_json

N, SIZE, BATCH, REPEATS = 1000, 64, 16, 30


def broadcast_denoise(train: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
    d2 = ((x[:, None] - train[None]) ** 2).flatten(2).sum(-1)  # (B, N)
    r = torch.softmax(-d2 / (2 * sigma**2), dim=1)
    return (r @ train.flatten(1)).reshape(x.shape)


def _kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(field)


def peak_mib(fn, device: str) -> float:
    if device == "cuda":
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
    return (_kib("VmHWM:") - before) / 1024


def timed_ms(fn, repeats: int, device: str) -> tuple[float, float]:
    """Median and minimum wall time of ``fn`` in ms over ``repeats`` calls after one warm-up."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def main(device: str = "cpu") -> dict:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    train = torch.rand(N, 1, SIZE, SIZE, generator=g) * 2 - 1
    prior = MemorizedPrior(train).to(device)
    train_dev = train.to(device)
    d = SIZE * SIZE
    rows = []
    for sigma in (1.0, 0.1):
        x = train[torch.randint(N, (BATCH,), generator=g)] + sigma * torch.randn(BATCH, 1, SIZE, SIZE, generator=g)
        ref = broadcast_denoise(train.double(), x.double(), sigma)
        x = x.to(device)
        err = float((prior.denoise(x, sigma).double().cpu() - ref).abs().max())
        t_chunk, t_chunk_min = timed_ms(lambda x=x, s=sigma: prior.denoise(x, s), REPEATS, device)
        t_broad, t_broad_min = timed_ms(
            lambda x=x, s=sigma: broadcast_denoise(train_dev, x, s), max(3, REPEATS // 5), device
        )
        m_chunk = peak_mib(lambda x=x, s=sigma: prior.denoise(x, s), device)
        m_broad = peak_mib(lambda x=x, s=sigma: broadcast_denoise(train_dev, x, s), device)
        rows.append(
            {
                "sigma": sigma,
                "chunked_ms": t_chunk,
                "chunked_ms_min": t_chunk_min,
                "broadcast_ms": t_broad,
                "broadcast_ms_min": t_broad_min,
                "speedup": t_broad / t_chunk,
                "chunked_peak_mib": m_chunk,
                "broadcast_peak_mib": m_broad,
                "chunked_temporaries_mib_analytic": (4 * BATCH * min(N, prior.chunk_size) + 3 * BATCH * d) * 8 / 2**20,
                "broadcast_temporaries_mib_analytic": 2 * BATCH * N * d * 4 / 2**20,
                "max_abs_error_vs_float64_broadcast": err,
            }
        )
    print(f"memorized denoiser, N={N}, {SIZE}x{SIZE}, batch {BATCH}, 1 CPU thread, float32, device {device}")
    print(f"{'sigma':>6} {'chunked ms (min)':>17} {'broadcast ms':>13} {'speedup':>8} {'chunk MiB':>10} "
          f"{'bcast MiB':>10} {'max err':>9}")
    for r in rows:
        chunk = f"{r['chunked_ms']:.2f} ({r['chunked_ms_min']:.2f})"
        print(f"{r['sigma']:>6g} {chunk:>17} {r['broadcast_ms']:>13.1f} {r['speedup']:>8.1f} "
              f"{r['chunked_peak_mib']:>10.1f} {r['broadcast_peak_mib']:>10.1f} "
              f"{r['max_abs_error_vs_float64_broadcast']:>9.1e}")
    result = {
        "setup": {"N": N, "model_shape": [1, SIZE, SIZE], "batch": BATCH, "threads": 1, "dtype": "float32",
                  "repeats": REPEATS, "statistic": "median (and min)", "device": device,
                  "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
                  "machine": platform.platform(), "processor": platform.processor(), "torch": torch.__version__},
        "rows": rows,
    }
    write_json(Path(__file__).parent / "results" / f"memorized_{device}.json", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    main(parser.parse_args().device)
