"""The memorized-prior denoiser on one GPU against its floor (d = 64² = 4096, N = 10⁵ and 10⁶).

    python -m benchmarks.gpu_memorized --out FILE.json [--sizes 100000 1000000] [--batches 16 64] [--grid-sizes 1000000]
    python -m benchmarks.gpu_memorized --sizes 1000000 --batches 16 --sigmas 1 --grid tune --out FILE.json
    python -m benchmarks.gpu_memorized --sizes 1000000 --batches 16 64 --sigmas 1 --grid shipped --out FILE.json
    python -m benchmarks.gpu_memorized --compile-only [--grid tune] --out FILE.json   # any machine, no GPU

Training set: uniform random models in [−1, 1] made on the GPU (float32, one copy: 16.4 GB at N = 10⁶).
Queries: training models plus σ·noise. Per (N, B, σ) row, timed with CUDA events (median of ``repeats`` after
a warm-up):

- ``denoise``: :meth:`MemorizedPrior.denoise` as a user calls it (input checks, the float32/float64 switch,
  the default layout), and each layout of :meth:`MemorizedPrior._denoise_raw` alone (``xc,wx`` … and
  ``sdpa``: PyTorch's ``scaled_dot_product_attention`` with the bias as float mask, whichever kernel it picks;
  ``triton``: the two kernels of :mod:`geomem.priors.memorized_triton` with their default configuration; a
  layout that raises is recorded with its error, and ``first_call_s`` is the first call's wall time, Triton's
  compilation included);
- ``triton_grid`` (float32 rows at the ``--grid-sizes`` N, ``--grid session6``, the default): the ``triton``
  layout for each configuration of :data:`TRITON_GRID` (precision ieee/tf32x3 × three tile/warp choices), keyed
  by ``TritonConfig.label()``; a configuration that fails to compile or run is recorded with its error;
  ``--grid shipped`` times only the tuned pair geomem ships, :data:`geomem.priors.memorized_triton.H200_TF32X3`
  (the opt-in ``triton_config``), the same way;
- ``triton_tune`` (``--grid tune`` instead, float32 rows at the ``--grid-sizes`` N; :func:`tune_kernels`): per
  precision of :data:`TUNE_PRECISIONS`, each kernel timed alone for each of its parameter sets
  (:data:`TUNE_LOGITS`, :data:`TUNE_SUM`; the other kernel's parameters do not change its time), with its
  rate in bytes of the set per second and its largest deviation from the default configuration's output; then
  the ``triton`` layout end to end (time, floor fraction, errors against float64) for the default
  configuration and for every pairing of the :data:`TUNE_TOP` fastest parameter sets of each kernel;
  :func:`print_tune` prints the tables;
- ``cpu_path``: the chunk-of-4096 centred path the CPU uses (at B = 16, σ = 1 only), the "before" number;
- accuracy of each: ``‖D − D_ref‖ / ‖D_ref‖`` against the centred float64 path on the same GPU, and at σ = 30
  too (``rel_err_sigma30``, float32 rows), where the weights spread over many components (their effective
  number ``1/Σ r²`` is reported): at σ = 1 and d = 4096 they are one-hot, which checks the logits' argmax only;
- ``floor_fraction`` = floor / time with ``floor = max(N·d·4 bytes / bandwidth, 4·B·N·d flops / matmul rate)``,
  both ceilings measured in this run (``benchmarks.case_memorized.device_rates``: a 2 GiB device copy and an
  8192² float32 product, TF32 off as in the denoiser);
- ``peak_extra_gib``: the most memory a call allocates beyond the training set.

``--compile-only`` (no GPU needed): :func:`compile_report` compiles both Triton kernels of every
:data:`TRITON_GRID` configuration for sm_90 (H100/H200) and prints shared memory, registers and spills.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.case_memorized import device_rates
from benchmarks.common import save_json
from geomem.priors import MemorizedPrior
from geomem.priors.memorized_triton import H200_TF32X3, TritonConfig

LAYOUTS = ("xc,wx", "cx,wx", "xc,xw", "cx,xw", "sdpa", "triton")
#: Triton configurations timed at the --grid-sizes, each in exact float32 and in 3-pass TF32: the default (tiles
#: of 128 rows × 32 pixels, then 32 rows × 128 pixels, 8 warps); the swapped logits product (training rows as the
#: M dimension: Hopper's wgmma for tf32x3) with 64-pixel tiles and a finer split; 256-row × 16-pixel logits tiles
#: and 16-row sum steps with 4 stages (registers and spills of each: ``--compile-only``).
_TILES = (
    {},
    {"swap": True, "sum_block_d": 64, "split": 128},
    {"block_n": 256, "block_k": 16, "stages": 4, "sum_block_n": 16, "sum_stages": 4},
)
TRITON_GRID = tuple(TritonConfig(precision=p, **t) for p in ("ieee", "tf32x3") for t in _TILES)
#: the configurations ``--grid`` times end to end (``tune`` is the separate per-kernel sweep below)
GRIDS = {"session6": TRITON_GRID, "shipped": (H200_TF32X3,)}

#: ``--grid tune`` (B = 16, d = 4096, N = 10⁶ in mind): both kernels only stream the 16.4 GB set, so the
#: parameters are chosen for bytes in flight per SM (Little's law: ~4.8 TB/s × ~1 µs loaded latency ≈ 5 MB over
#: 132 SMs, ≳ 40 KB an SM; a program keeps ``stages − 1`` tiles of ``rows × pixels × 4`` bytes in flight, and the
#: smaller tiles let 2–4 programs share an SM), for longer contiguous row segments (``block_k``/``sum_block_d``
#: × 4 bytes of each 16 KB row per step), for ``swap``/``sum_swap``, the tensor-core product with the training
#: rows (pixels) as its M dimension (Hopper's wgmma needs M ≥ 64; with B = 16 as M Triton falls back to
#: mma.sync), and for ``tma``/``sum_tma``, Hopper's bulk copies (one instruction a tile instead of 16-byte
#: ``cp.async`` copies from per-thread addresses). ``split`` sets the weighted sum's grid, ``split × 4096 /
#: sum_block_d`` programs: multiples of the 132 SMs (66, 132, 264) leave no partly filled last wave (64 slabs of
#: 32 tiles = 2048 programs run as 7.8 waves of 264 at two programs an SM: the last wave is 3/4 full, ~3 % of
#: the kernel). Compiled for sm_90 at B = 16 (``--compile-only --grid tune``), no set spills registers in tf32x3
#: (larger tiles, e.g. ``block_k = 256``, do); in ieee four logits sets with TMA spill 108–240 bytes.
TUNE_PRECISIONS = ("tf32x3", "ieee")
TUNE_LOGITS = tuple({"block_n": n, "block_k": k, "warps": w, "stages": st, "swap": sw, "tma": m}
                    for n, k, w, st, sw, m in (
    (128, 32, 8, 3, False, False),   # the default (session 6's best in tf32x3): 16 KB a stage
    (128, 32, 4, 3, False, False),
    (128, 32, 8, 4, False, False),   # 48 KB in flight a program
    (128, 32, 8, 5, False, False),   # 64 KB in flight a program
    (128, 64, 8, 3, False, False),   # 32 KB a stage, 256 B row segments
    (128, 64, 8, 4, False, False),   # 64 KB in flight a program
    (64, 64, 4, 3, False, False),    # 16 KB a stage, twice the programs
    (64, 64, 4, 4, False, False),
    (64, 128, 8, 3, False, False),   # 32 KB a stage, 512 B row segments
    (32, 128, 4, 4, False, False),   # 16 KB a stage, 512 B row segments, 31,250 programs (short tail)
    (256, 32, 8, 3, False, False),   # 32 KB a stage
    (128, 32, 8, 3, True, False),    # swapped: X tile as the M = 128 side (wgmma)
    (128, 32, 4, 4, True, False),
    (128, 64, 8, 3, True, False),
    (64, 64, 4, 3, True, False),
    (64, 64, 4, 4, True, False),
    (256, 32, 8, 3, True, False),
    (256, 64, 8, 3, True, False),    # 64 KB a stage
    (128, 32, 8, 3, False, True),    # TMA reads (one bulk copy a tile, no per-thread addresses)
    (128, 32, 8, 4, False, True),
    (128, 64, 8, 3, False, True),
    (64, 64, 4, 3, False, True),
    (64, 128, 8, 3, False, True),
    (128, 32, 8, 3, True, True),
    (128, 64, 8, 3, True, True),
    (256, 32, 8, 3, True, True),
))
TUNE_SUM = tuple({"sum_block_n": n, "sum_block_d": dd, "sum_warps": w, "sum_stages": st, "split": x, "sum_swap": sw,
                  "sum_tma": m} for n, dd, w, st, x, sw, m in (
    (32, 128, 8, 3, 64, False, False),   # the default: 16 KB a stage, 2048 programs
    (32, 128, 8, 3, 66, False, False),   # 2112 = 16 × 132 programs
    (32, 128, 8, 3, 132, False, False),
    (32, 128, 8, 3, 264, False, False),
    (32, 128, 4, 3, 132, False, False),
    (32, 128, 8, 4, 132, False, False),  # 48 KB in flight a program
    (32, 128, 8, 5, 132, False, False),  # 64 KB in flight a program
    (64, 128, 8, 3, 132, False, False),  # 32 KB a stage
    (32, 256, 8, 3, 132, False, False),  # 32 KB a stage, 1 KB row segments
    (16, 256, 4, 4, 132, False, False),  # 16 KB a stage, 1 KB row segments
    (16, 512, 8, 3, 132, False, False),  # 32 KB a stage, 2 KB row segments
    (64, 64, 4, 3, 132, False, False),   # 16 KB a stage, 4224 × 2 programs
    (16, 128, 4, 5, 132, False, False),  # 8 KB a stage, 4 in flight
    (32, 128, 8, 3, 132, True, False),   # swapped: pixels as the M = 128 side (wgmma)
    (32, 128, 8, 4, 132, True, False),
    (32, 256, 8, 3, 132, True, False),
    (64, 64, 8, 4, 132, True, False),
    (32, 128, 4, 4, 132, True, False),
    (32, 128, 8, 3, 132, False, True),   # TMA reads
    (32, 128, 8, 4, 132, False, True),
    (64, 128, 8, 3, 132, False, True),
    (32, 256, 8, 3, 132, False, True),
    (32, 128, 8, 3, 66, False, True),
    (32, 128, 8, 3, 132, True, True),
    (32, 256, 8, 3, 132, True, True),
))
#: fastest parameter sets of each kernel paired end to end (per precision): TUNE_TOP² configurations
TUNE_TOP = 2


def _time(fn, repeats: int) -> float:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    return sorted(times)[len(times) // 2]


def _peak_extra(fn) -> float:
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**30


def one_row(prior: MemorizedPrior, batch: int, sigma: float, rates: dict, repeats: int, gen,
            with_cpu_path: bool, grid: str | None) -> dict:
    n, d = prior.n_train, prior.dim
    train = prior.train
    idx = torch.randint(n, (batch,), device="cuda", generator=gen)
    x = train[idx] + sigma * torch.randn(batch, 1, 64, 64, device="cuda", generator=gen)
    xbar64, s64, _ = prior._prepare(x.double(), sigma)
    ref = prior._denoise_flat(xbar64, s64, torch.float64, torch.float64)[0] + prior._norms_center(torch.float64)[1]

    def rel(dd: torch.Tensor, target: torch.Tensor) -> float:
        dd = dd.reshape(batch, d).double()
        return float(torch.linalg.norm(dd - target) / torch.linalg.norm(target))

    xbar, s, work = prior._prepare(x, sigma, raw=True)
    flops_floor = 4 * batch * n * d / rates["matmul_flops"]
    bytes_floor = n * d * 4 / rates["bandwidth_Bps"]
    floor = max(flops_floor, bytes_floor)
    row = {"N": n, "batch": batch, "d": d, "sigma": sigma, "work_dtype": str(work).replace("torch.", ""),
           "chunk_rows": prior.raw_chunk_rows(batch, work), "set_gib": n * d * 4 / 2**30,
           "floor_s": floor, "floor_bound": "matmul" if flops_floor >= bytes_floor else "memory"}

    def denoise() -> torch.Tensor:
        return prior.denoise(x, sigma)

    t = _time(denoise, repeats)
    row["denoise"] = {"s": t, "floor_fraction": floor / t, "rel_err": rel(denoise(), ref),
                      "peak_extra_gib": _peak_extra(denoise)}
    spread = None  # (x̄, σ, float64 reference) at σ = 30 for the float32 layouts
    if work == torch.float32:  # at σ = 1 the weights are nearly one-hot: check accuracy where they spread too
        xw = x + 30.0 * torch.randn(x.shape, device="cuda", generator=gen)
        xb30, s30, _ = prior._prepare(xw.double(), 30.0)
        ref30 = prior._denoise_flat(xb30, s30, torch.float64, torch.float64)[0] + prior._norms_center(torch.float64)[1]
        row["denoise"]["rel_err_sigma30"] = rel(prior.denoise(xw, 30.0), ref30)
        row["denoise"]["sigma30_effective_components"] = float(1.0 / (prior.responsibilities(xw[:1], 30.0).double()
                                                                      ** 2).sum())
        xb30f, s30f, work30 = prior._prepare(xw, 30.0, raw=True)
        if work30 == torch.float32:
            spread = (xb30f, s30f, ref30)

    def run_layout(layout: str, config: TritonConfig | None = None, peak: bool = True) -> dict:
        def fn() -> torch.Tensor:
            return prior._denoise_raw(xbar, s, work, torch.float32, layout=layout, triton_config=config)
        try:
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            first = time.perf_counter() - t0
            t = _time(fn, repeats)
            res = {"s": t, "floor_fraction": floor / t, "rel_err": rel(fn(), ref), "first_call_s": first}
            if spread is not None:
                got = prior._denoise_raw(spread[0], spread[1], torch.float32, torch.float32, layout=layout,
                                         triton_config=config)
                res["rel_err_sigma30"] = rel(got, spread[2])
            if peak:
                res["peak_extra_gib"] = _peak_extra(fn)
            return res
        except Exception as exc:  # noqa: BLE001  (a layout or config the GPU/PyTorch/Triton cannot run is recorded)
            return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}

    for layout in LAYOUTS if work == torch.float32 else ("xc,wx",):
        row[layout] = run_layout(layout)
    if grid in GRIDS and work == torch.float32:
        row["triton_grid"] = {cfg.label(): run_layout("triton", cfg, peak=False) for cfg in GRIDS[grid]}
    if grid == "tune" and work == torch.float32:
        row["triton_tune"] = tune_kernels(prior, xbar, s, rates, repeats,
                                          lambda cfg: run_layout("triton", cfg, peak=False))
    if with_cpu_path:
        xb, sc, wk = prior._prepare(x, sigma)

        def cpu_path() -> torch.Tensor:
            return prior._denoise_flat(xb, sc, wk, torch.float32)[0]
        t = _time(cpu_path, max(1, repeats // 3))
        row["cpu_path_chunk4096"] = {"s": t, "floor_fraction": floor / t}
    print(json.dumps(row), flush=True)
    return row


def _timed(fn, repeats: int) -> dict:
    """``{"s", "compile_s"}`` of ``fn`` (first call's wall time, Triton's compilation included), or its error."""
    try:
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return {"compile_s": time.perf_counter() - t0, "s": _time(fn, repeats)}
    except Exception as exc:  # noqa: BLE001  (a configuration that fails to compile or run is recorded)
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def _rel_diff(got: torch.Tensor, ref: torch.Tensor) -> float:
    """``max |got − ref| / max |ref|`` over the entries finite in ``ref`` (inf where their finiteness differs)."""
    fin = torch.isfinite(ref)
    if not torch.equal(fin, torch.isfinite(got)):
        return float("inf")
    return float((got.double() - ref.double())[fin].abs().max() / ref.double()[fin].abs().max())


def tune_kernels(prior: MemorizedPrior, xbar: torch.Tensor, s: torch.Tensor, rates: dict, repeats: int,
                 end_to_end) -> dict:
    """The ``--grid tune`` sweep at one (N, B) (module docstring): per precision, each parameter set of
    :data:`TUNE_LOGITS` timed on the logits kernel alone and each of :data:`TUNE_SUM` on the weighted-sum kernel
    alone (on the logits of the default configuration), then ``end_to_end(config)`` (the ``triton`` layout with
    its errors against float64) for the default and the :data:`TUNE_TOP`² pairings of the fastest sets whose
    output deviates from the default's by < 1e-4 (relative to the largest entry: rounding is ~1e-7, a wrong
    kernel O(1)); ``best``: the fastest end to end.

    Per kernel (its host function :func:`~geomem.priors.memorized_triton.logits` or ``weighted_sum``: the launch
    and the small torch reduction of its per-tile outputs): ``s``, ``compile_s``, ``set_Bps`` (``N·d·4`` bytes /
    s: the kernel reads the set once), ``bandwidth_fraction`` (of the copy bandwidth measured in this run),
    ``diff_vs_default`` (logits; for the weighted sum the larger of ``a``'s and ``t``'s)."""
    from geomem.priors.memorized_triton import logits, weighted_sum  # (sys.modules: the tests' interpreted copy)

    n, d = prior.n_train, prior.dim
    train = prior._flat
    norms = prior._norms_center(torch.float32)[0]
    lw = None if prior.log_weights is None else prior.log_weights.to(device=train.device, dtype=torch.float32)
    row_bias = (xbar**2).sum(1) + 2.0 * (xbar.double() @ prior._center64.to(xbar.device)).float()
    inv2s2 = (1.0 / (2.0 * s**2)).reshape(-1).contiguous()
    set_bytes = n * d * train.element_size()

    def rate(res: dict) -> dict:
        if "s" in res:
            res["set_Bps"] = set_bytes / res["s"]
            res["bandwidth_fraction"] = res["set_Bps"] / rates["bandwidth_Bps"]
        return res

    def e2e(res: dict, cfg: TritonConfig) -> None:
        res["end_to_end"][cfg.label()] = {**end_to_end(cfg), "logits_label": cfg.logits_label(),
                                          "sum_label": cfg.sum_label()}

    def sweep(prec: str, res: dict) -> None:  # fills res as it goes: what ran survives a later failure
        base = TritonConfig(precision=prec)
        e2e(res, base)
        logit_ref, m_ref = logits(xbar, train, norms, row_bias, inv2s2, lw, base)
        m_ref = m_ref.clamp_min(torch.finfo(torch.float32).min)
        a_ref, t_ref = weighted_sum(logit_ref, m_ref, train, base)
        for params in TUNE_LOGITS:
            cfg = dataclasses.replace(base, **params)
            r = rate(_timed(lambda cfg=cfg: logits(xbar, train, norms, row_bias, inv2s2, lw, cfg), repeats))
            if "s" in r:
                got, gm = logits(xbar, train, norms, row_bias, inv2s2, lw, cfg)
                r["diff_vs_default"] = max(_rel_diff(got, logit_ref), _rel_diff(gm, m_ref))
                del got
            res["logits"][cfg.logits_label()] = {**r, "params": params}
            print(json.dumps({"tune": prec, "kernel": "logits", "set": cfg.logits_label(), **r}), flush=True)
        for params in TUNE_SUM:
            cfg = dataclasses.replace(base, **params)
            r = rate(_timed(lambda cfg=cfg, lg=logit_ref, m=m_ref: weighted_sum(lg, m, train, cfg), repeats))
            if "s" in r:
                a, t = weighted_sum(logit_ref, m_ref, train, cfg)
                r["diff_vs_default"] = max(_rel_diff(a, a_ref), _rel_diff(t, t_ref))
            res["sum"][cfg.sum_label()] = {**r, "params": params}
            print(json.dumps({"tune": prec, "kernel": "sum", "set": cfg.sum_label(), **r}), flush=True)

        def fastest(table: dict) -> list[dict]:
            ok = sorted((v for v in table.values() if v.get("diff_vs_default", 1.0) < 1e-4), key=lambda v: v["s"])
            return [v["params"] for v in ok[:TUNE_TOP]]
        for lp in fastest(res["logits"]):
            for sp in fastest(res["sum"]):
                cfg = dataclasses.replace(base, **lp, **sp)
                if cfg.label() not in res["end_to_end"]:  # the default may be among the pairings
                    e2e(res, cfg)

    out = {}
    for prec in TUNE_PRECISIONS:
        res = out[prec] = {"logits": {}, "sum": {}, "end_to_end": {}}
        try:
            sweep(prec, res)
        except Exception as exc:  # noqa: BLE001  (recorded; e.g. a CUDA error that ends the context)
            res["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        timed = [(v["s"], k) for k, v in res["end_to_end"].items() if "s" in v]
        if timed:
            name = min(timed)[1]
            res["best"] = {"config": name, "s": res["end_to_end"][name]["s"],
                           "floor_fraction": res["end_to_end"][name]["floor_fraction"]}
        print(json.dumps({"tune": prec, "end_to_end": res["end_to_end"], "best": res.get("best"),
                          "error": res.get("error")}), flush=True)
    return out


def print_tune(rows: list[dict]) -> None:
    """Tables of the ``triton_tune`` results of ``rows``: each kernel's parameter sets (fastest first) and the
    end-to-end configurations (with the kernels' own times and the rest: torch's reductions, allocations)."""
    for row in rows:
        for prec, res in row.get("triton_tune", {}).items():
            print(f"\n== N = {row['N']:,}, B = {row['batch']}, sigma = {row['sigma']}, {prec}: floor "
                  f"{row['floor_s'] * 1e3:.2f} ms ({row['floor_bound']})")
            if "error" in res:
                print(f"the sweep stopped early: {res['error']}")
            for kernel in ("logits", "sum"):
                print(f"{kernel + ' kernel alone':<24} {'ms':>8} {'GB/s':>7} {'% copy bw':>9} {'diff vs default':>15}"
                      f" {'compile s':>9}")
                for name, v in sorted(res[kernel].items(), key=lambda kv: kv[1].get("s", float("inf"))):
                    if "error" in v:
                        print(f"{name:<24} {v['error']}")
                        continue
                    print(f"{name:<24} {v['s'] * 1e3:8.3f} {v['set_Bps'] / 1e9:7.0f} "
                          f"{100 * v['bandwidth_fraction']:8.1f}% {v['diff_vs_default']:15.1e} {v['compile_s']:9.2f}")
            print(f"{'end to end':<44} {'ms':>8} {'% floor':>8} {'rest ms':>8} {'rel.err σ':>10} {'σ = 30':>9}")
            for name, v in sorted(res["end_to_end"].items(), key=lambda kv: kv[1].get("s", float("inf"))):
                if "error" in v:
                    print(f"{name:<44} {v['error']}")
                    continue
                lk, sk = res["logits"].get(v["logits_label"], {}), res["sum"].get(v["sum_label"], {})
                rest = (v["s"] - lk["s"] - sk["s"]) * 1e3 if "s" in lk and "s" in sk else float("nan")
                print(f"{name:<44} {v['s'] * 1e3:8.3f} {100 * v['floor_fraction']:7.1f}% {rest:8.3f} "
                      f"{v['rel_err']:10.1e} {v.get('rel_err_sigma30', float('nan')):9.1e}")


def rows_for(n: int, batches: list[int], sigmas: list[float], rates: dict, repeats: int, gen,
             grid: str | None) -> list[dict]:
    prior = MemorizedPrior(torch.rand(n, 1, 64, 64, device="cuda", generator=gen) * 2 - 1)
    out = [one_row(prior, b, sig, rates, repeats, gen, b == min(batches) and sig == sigmas[0], grid)
           for b in batches for sig in sigmas]
    del prior
    torch.cuda.empty_cache()
    return out


def _aot(kernel, consts: dict, options: dict, arch: int) -> dict:
    """Compile one kernel for sm_<arch> without a GPU as a launch at N = 10⁶ would (every integer argument
    divisible by 16, ``stride_xd`` = 1 a constant) and read shared memory, registers and spills (ptxas -v)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    consts = {**consts, "stride_xd": 1}
    pointers = {"Q", "X", "XN", "RB", "INV", "LW", "L", "TM", "M", "P", "T"}  # float32 arrays; the rest: int32
    sig = {p.name: "constexpr" if p.name in consts else ("*fp32" if p.name in pointers else "i32")
           for p in kernel.params}
    if consts.get("TMA"):  # X (and Q) TMA descriptors of (BLOCK_N or BP, BLOCK_K or BLOCK_D) blocks
        inner = consts.get("BLOCK_K", consts.get("BLOCK_D"))
        sig["X"] = f"tensordesc<fp32[{consts['BLOCK_N']}, {inner}]>"
        if "Q" in sig:
            sig["Q"] = f"tensordesc<fp32[{consts['BP']}, {inner}]>"
    attrs = {(p.num,): [["tt.divisibility", 16]] for p in kernel.params if p.name not in consts and
             not sig[p.name].startswith("tensordesc")}
    k = triton.compile(ASTSource(kernel, sig, consts, attrs), target=GPUTarget("cuda", arch, 32), options=options)
    ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "k.ptx"
        src.write_text(k.asm["ptx"])
        out = subprocess.run([str(ptxas), f"-arch=sm_{arch}a", "-v", str(src), "-o", str(Path(tmp) / "k.cubin")],
                             capture_output=True, text=True, check=True)
    info = out.stdout + out.stderr
    ttgir = k.asm["ttgir"]
    return {"shared_bytes": k.metadata.shared, "registers": int(re.search(r"Used (\d+) registers", info)[1]),
            "spill_store_bytes": int(re.search(r"(\d+) bytes spill stores", info)[1]),
            "product": "wgmma" if "warp_group_dot" in ttgir else ("mma" if "#mma" in ttgir else "fma")}


def tune_configs() -> tuple[TritonConfig, ...]:
    """The configurations ``--compile-only --grid tune`` compiles: each parameter set of :data:`TUNE_LOGITS` and
    of :data:`TUNE_SUM` (paired with the other kernel's defaults) in each of :data:`TUNE_PRECISIONS`."""
    return tuple(TritonConfig(precision=p, **params) for p in TUNE_PRECISIONS for params in TUNE_LOGITS + TUNE_SUM)


def kernel_specs(cfg: TritonConfig, bp: int, d: int = 4096, n: int = 1_000_000, mt=None) -> dict:
    """``{name: (kernel, constexprs, options)}`` of both kernels as a launch of ``cfg`` at (N, d) with padded batch
    ``bp`` and log-weights compiles them (for :func:`_aot`: float32 set); the kernels of module ``mt`` (default
    :mod:`geomem.priors.memorized_triton`)."""
    import triton

    if mt is None:
        from geomem.priors import memorized_triton as mt

    rows_split = triton.cdiv(triton.cdiv(n, cfg.split), cfg.sum_block_n) * cfg.sum_block_n
    return {
        "logits": (mt._logits_kernel, {"D": d, "BP": bp, "BLOCK_N": cfg.block_n, "BLOCK_K": cfg.block_k,
                                       "HAS_LW": True, "SWAP": cfg.swap, "PREC": cfg.precision, "TMA": cfg.tma},
                   {"num_warps": cfg.warps, "num_stages": cfg.stages}),
        "weighted_sum": (mt._weighted_sum_kernel,
                         {"D": d, "ITERS": rows_split // cfg.sum_block_n, "BP": bp, "BLOCK_N": cfg.sum_block_n,
                          "BLOCK_D": cfg.sum_block_d, "SWAP": cfg.sum_swap, "PREC": cfg.precision,
                          "TMA": cfg.sum_tma},
                         {"num_warps": cfg.sum_warps, "num_stages": cfg.sum_stages}),
    }


def compile_report(configs=TRITON_GRID, bps=(16, 64), arch: int = 90, d: int = 4096, n: int = 1_000_000) -> list[dict]:
    """Both kernels of every configuration compiled for sm_<arch> at each padded batch ``BP`` of ``bps``, d = 4096,
    N = 10⁶, with log-weights (a kernel already compiled with the same constants is not repeated): a
    configuration that fails is recorded with its error."""
    rows, seen = [], set()
    for cfg in configs:
        for bp in bps:
            for name, (kernel, consts, options) in kernel_specs(cfg, bp, d, n).items():
                key = (name, tuple(sorted(consts.items())), tuple(sorted(options.items())))
                if key in seen:
                    continue
                seen.add(key)
                label = cfg.logits_label() if name == "logits" else cfg.sum_label()
                row = {"config": cfg.label(), "precision": cfg.precision, "kernel_label": label, "BP": bp,
                       "kernel": name}
                t0 = time.perf_counter()
                try:
                    row.update(_aot(kernel, consts, options, arch))
                except Exception as exc:  # noqa: BLE001  (recorded)
                    row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                row["compile_s"] = time.perf_counter() - t0
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def _triton_version() -> str | None:
    try:
        import triton
    except ImportError:
        return None
    return triton.__version__


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[1.0, 0.1])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--grid-sizes", type=int, nargs="*", default=[1_000_000],
                    help="N at which the Triton configurations of --grid are timed (none: skip the grid)")
    ap.add_argument("--grid", choices=("session6", "shipped", "tune"), default="session6",
                    help="session6: TRITON_GRID end to end; shipped: the tuned H200_TF32X3 pair end to end; "
                         "tune: each kernel's parameter sets alone (TUNE_LOGITS, TUNE_SUM, both TUNE_PRECISIONS), "
                         "then the fastest pairings end to end")
    ap.add_argument("--compile-only", action="store_true",
                    help="compile the Triton grid for sm_90 and report registers/spills (no GPU needed), then stop")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.compile_only:
        res = {"triton": _triton_version(), "arch": "sm_90a", "grid": args.grid,
               "rows": compile_report(tune_configs() if args.grid == "tune" else GRIDS[args.grid],
                                      (16,) if args.grid == "tune" else (16, 64))}
        save_json(args.out, res)
        return
    t_start = time.perf_counter()
    gen = torch.Generator(device="cuda").manual_seed(0)
    rates = device_rates("cuda")
    print(json.dumps(rates), flush=True)
    rows = []
    for n in args.sizes:
        rows += rows_for(n, args.batches, args.sigmas, rates, args.repeats, gen,
                         args.grid if n in args.grid_sizes else None)
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": _triton_version(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "grid": args.grid,
           "wall_s": time.perf_counter() - t_start, "rates": rates, "rows": rows}
    save_json(args.out, res)
    print_tune(rows)


if __name__ == "__main__":
    main()
