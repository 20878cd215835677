"""Case 1: the memorized-prior denoiser ``D(x, σ) = Σ_n softmax_n(−‖x − x_n‖²/2σ²) x_n`` against the direct
broadcast formula, on the same inputs in the same process.

Chunked (geomem): distances through one matrix product per chunk, ``‖x‖² − 2 x·x_n + ‖x_n‖²``; memory
``O(B·chunk + B·d)``. Broadcast: ``((x[:, None] − train[None])²).sum(-1)``, a ``(B, N, d)`` temporary; it is
run when that temporary fits ``broadcast_budget_gib``, otherwise one sample at a time (a ``(1, N, d)``
temporary), and skipped (with the reason) when even that exceeds the budget.

Floor (CUDA only): a call must at least read the training set once and do the two products (distances and
weighted sum, ``4 B N d`` flops), so ``floor = max(N d · 4 B / bandwidth, 4 B N d / matmul rate)`` with the
bandwidth measured by a large device-to-device copy (``2 · bytes`` moved) and the matmul rate by a large
square float32 product under the same TF32 setting as the denoiser, both in the same run. Reported:
``floor / measured`` (the achieved fraction of the floor; target ≥ 0.5 at N = 10⁵).
"""

from __future__ import annotations

import torch

from benchmarks.common import peak_mib, timeit
from geomem.priors import MemorizedPrior

FULL = {"sizes": [1000, 10_000, 100_000], "batch": 64, "shape": 64, "sigmas": [1.0, 0.1], "repeats": 10}
QUICK = {"sizes": [200], "batch": 4, "shape": 16, "sigmas": [1.0], "repeats": 1}
#: the issue-3 target: N = 1000, batch 16, one thread, < 10 ms and >= 10x the broadcast formula
TARGET_ROW = {"N": 1000, "batch": 16, "target_ms": 10.0, "target_speedup": 10.0}


def broadcast_denoise(train: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The textbook formula with a ``(B, N, d)`` temporary."""
    d2 = ((x[:, None] - train[None]) ** 2).flatten(2).sum(-1)
    r = torch.softmax(-d2 / (2 * sigma**2), dim=1)
    return (r @ train.flatten(1)).reshape(x.shape)


def _sync(device: str):
    return torch.cuda.synchronize if device == "cuda" else None


def device_rates(device: str, size: int = 8192, copy_gib: float = 2.0) -> dict:
    """Measured memory bandwidth (bytes/s, device-to-device copy) and float32 matmul rate (flop/s)."""
    sync = _sync(device)
    n = int(copy_gib * 2**30 / 4)
    buffers = [torch.empty(n, device=device), torch.empty(n, device=device)]
    t_copy = timeit(lambda: buffers[1].copy_(buffers[0]), repeats=10, warmup=2, sync=sync)
    buffers.clear()
    m = torch.randn(size, size, device=device)
    t_mm = timeit(lambda: m @ m, repeats=10, warmup=2, sync=sync)
    return {"bandwidth_Bps": 2 * n * 4 / t_copy["wall"]["median"], "copy_bytes": 2 * n * 4,
            "matmul_flops": 2 * size**3 / t_mm["wall"]["median"], "matmul_size": size,
            "tf32": bool(torch.backends.cuda.matmul.allow_tf32) if device == "cuda" else False}


def one_row(train: torch.Tensor, prior: MemorizedPrior, batch: int, sigma: float, device: str, repeats: int,
            budget_gib: float, rates: dict | None, gen: torch.Generator) -> dict:
    n, d = train.shape[0], train[0].numel()
    idx = torch.randint(n, (batch,), generator=gen)
    x = (train[idx].cpu() + sigma * torch.randn(batch, *train.shape[1:], generator=gen)).to(device)
    sync = _sync(device)
    work = prior._prepare(x, sigma)[2]
    row = {"N": n, "batch": batch, "d": d, "sigma": sigma, "work_dtype": str(work).replace("torch.", "")}
    row["chunked"] = timeit(lambda: prior.denoise(x, sigma), repeats, sync=sync)
    row["chunked_peak_mib"] = peak_mib(lambda: prior.denoise(x, sigma), device)
    full_gib, one_gib = batch * n * d * 4 / 2**30, n * d * 4 / 2**30
    if full_gib <= budget_gib:
        mode, bfn = "whole batch", lambda: broadcast_denoise(train, x, sigma)
    elif one_gib <= budget_gib:
        mode = "one sample at a time"

        def bfn():
            return torch.cat([broadcast_denoise(train, x[i : i + 1], sigma) for i in range(batch)])
    else:
        mode, bfn = None, None
    row["broadcast_mode"] = mode or f"skipped: a (1, N, d) temporary is {one_gib:.1f} GiB > budget {budget_gib} GiB"
    if bfn is not None:
        err = float((prior.denoise(x, sigma).double() - bfn().double()).abs().max())
        row["broadcast"] = timeit(bfn, max(1, repeats // 3), sync=sync)
        row["broadcast_peak_mib"] = peak_mib(bfn, device)
        row["max_abs_difference"] = err
        row["speedup"] = row["broadcast"]["wall"]["median"] / row["chunked"]["wall"]["median"]
    if rates is not None:
        bytes_floor = n * d * 4 / rates["bandwidth_Bps"]
        flops_floor = 4 * batch * n * d / rates["matmul_flops"]
        row["floor_s"] = max(bytes_floor, flops_floor)
        row["floor_bound"] = "memory" if bytes_floor >= flops_floor else "matmul"
        row["floor_fraction"] = row["floor_s"] / row["chunked"]["wall"]["median"]
    return row


def run(quick: bool, device: str = "cpu") -> dict:
    cfg = QUICK if quick else FULL
    gen = torch.Generator().manual_seed(0)
    s = cfg["shape"]
    budget = 8.0 if device == "cuda" else 1.0
    rates = device_rates(device) if device == "cuda" and not quick else None
    rows = []
    largest = torch.rand(max(cfg["sizes"]), 1, s, s, generator=gen) * 2 - 1
    for n in cfg["sizes"]:
        train = largest[:n].to(device)
        prior = MemorizedPrior(train)
        reps = cfg["repeats"] if n <= 10_000 or device == "cuda" else 3
        for sigma in cfg["sigmas"]:
            rows.append(one_row(train, prior, cfg["batch"], sigma, device, reps, budget, rates, gen))
    target = None
    if not quick and device == "cpu":
        n, b = TARGET_ROW["N"], TARGET_ROW["batch"]
        train = largest[:n]
        target = one_row(train, MemorizedPrior(train), b, 1.0, device, 30, budget, None, gen)
        target.update(target_ms=TARGET_ROW["target_ms"], target_speedup=TARGET_ROW["target_speedup"],
                      met=bool(1e3 * target["chunked"]["cpu"]["median"] < TARGET_ROW["target_ms"]
                               and target["speedup"] >= TARGET_ROW["target_speedup"]))  # one core: CPU time
    return {"device": device, "threads": torch.get_num_threads(), "config": cfg, "rates": rates, "rows": rows,
            "target_row": target}


def table(result: dict) -> list[list[str]]:
    """Rows for the runner's table: N, batch, σ, chunked ms, broadcast ms, speedup, peak MiB, floor fraction."""
    out = []
    for r in result["rows"] + ([result["target_row"]] if result.get("target_row") else []):
        c = r["chunked"]["wall"]
        b = r.get("broadcast", {}).get("wall")
        out.append([
            f"memorized {result['device']}", f"N={r['N']} B={r['batch']} σ={r['sigma']:g} ({r['work_dtype']})",
            f"{1e3 * c['median']:.3g} ms [{1e3 * c['q1']:.3g}-{1e3 * c['q3']:.3g}]",
            f"bcast {1e3 * b['median']:.3g} ms, x{r['speedup']:.1f}" if b else r["broadcast_mode"][:40],
            f"{r['chunked_peak_mib']:.0f} / {r.get('broadcast_peak_mib', float('nan')):.0f} MiB",
            f"floor {100 * r['floor_fraction']:.0f}%" if "floor_fraction" in r else "",
        ])
    return out
