"""The memorized-prior denoiser on one GPU against its floor (d = 64² = 4096, N = 10⁵ and 10⁶).

    python -m benchmarks.gpu_memorized --out FILE.json [--sizes 100000 1000000] [--batches 16 64] [--grid-sizes 1000000]
    python -m benchmarks.gpu_memorized --compile-only --out FILE.json    # any machine, no GPU: see compile_report

Training set: uniform random models in [−1, 1] made on the GPU (float32, one copy: 16.4 GB at N = 10⁶).
Queries: training models plus σ·noise. Per (N, B, σ) row, timed with CUDA events (median of ``repeats`` after
a warm-up):

- ``denoise``: :meth:`MemorizedPrior.denoise` as a user calls it (input checks, the float32/float64 switch,
  the default layout), and each layout of :meth:`MemorizedPrior._denoise_raw` alone (``xc,wx`` … and
  ``sdpa``: PyTorch's ``scaled_dot_product_attention`` with the bias as float mask, whichever kernel it picks;
  ``triton``: the two kernels of :mod:`geomem.priors.memorized_triton` with their default configuration; a
  layout that raises is recorded with its error, and ``first_call_s`` is the first call's wall time, Triton's
  compilation included);
- ``triton_grid`` (float32 rows at the ``--grid-sizes`` N): the ``triton`` layout for each configuration of
  :data:`TRITON_GRID` (precision ieee/tf32x3 × three tile/warp choices), keyed by ``TritonConfig.label()``;
  a configuration that fails to compile or run is recorded with its error;
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
from geomem.priors.memorized_triton import TritonConfig

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
            with_cpu_path: bool, with_grid: bool) -> dict:
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
    if with_grid and work == torch.float32:
        row["triton_grid"] = {cfg.label(): run_layout("triton", cfg, peak=False) for cfg in TRITON_GRID}
    if with_cpu_path:
        xb, sc, wk = prior._prepare(x, sigma)

        def cpu_path() -> torch.Tensor:
            return prior._denoise_flat(xb, sc, wk, torch.float32)[0]
        t = _time(cpu_path, max(1, repeats // 3))
        row["cpu_path_chunk4096"] = {"s": t, "floor_fraction": floor / t}
    print(json.dumps(row), flush=True)
    return row


def rows_for(n: int, batches: list[int], sigmas: list[float], rates: dict, repeats: int, gen,
             with_grid: bool) -> list[dict]:
    prior = MemorizedPrior(torch.rand(n, 1, 64, 64, device="cuda", generator=gen) * 2 - 1)
    out = [one_row(prior, b, sig, rates, repeats, gen, b == min(batches) and sig == sigmas[0], with_grid)
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
    pointers = {"Q", "X", "XN", "RB", "INV", "LW", "L", "M", "P"}  # float32 arrays; the rest: int32 sizes/strides
    sig = {p.name: "constexpr" if p.name in consts else ("*fp32" if p.name in pointers else "i32")
           for p in kernel.params}
    attrs = {(p.num,): [["tt.divisibility", 16]] for p in kernel.params if p.name not in consts}
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


def compile_report(arch: int = 90, d: int = 4096, n: int = 1_000_000) -> list[dict]:
    """Both kernels of every :data:`TRITON_GRID` configuration compiled for sm_<arch> at B = 16 and 64 (padded
    batch ``BP``), d = 4096, N = 10⁶, with log-weights: a configuration that fails is recorded with its error."""
    import triton

    from geomem.priors import memorized_triton as mt

    rows = []
    for cfg in TRITON_GRID:
        rows_split = triton.cdiv(triton.cdiv(n, cfg.split), cfg.sum_block_n) * cfg.sum_block_n
        for bp in (16, 64):
            kernels = {
                "logits": (mt._logits_kernel, {"D": d, "BP": bp, "BLOCK_N": cfg.block_n, "BLOCK_K": cfg.block_k,
                                               "HAS_LW": True, "SWAP": cfg.swap, "PREC": cfg.precision},
                           {"num_warps": cfg.warps, "num_stages": cfg.stages}),
                "weighted_sum": (mt._weighted_sum_kernel,
                                 {"D": d, "ITERS": rows_split // cfg.sum_block_n, "BP": bp, "BLOCK_N": cfg.sum_block_n,
                                  "BLOCK_D": cfg.sum_block_d, "PREC": cfg.precision},
                                 {"num_warps": cfg.sum_warps, "num_stages": cfg.sum_stages}),
            }
            for name, (kernel, consts, options) in kernels.items():
                row = {"config": cfg.label(), "BP": bp, "kernel": name}
                try:
                    row.update(_aot(kernel, consts, options, arch))
                except Exception as exc:  # noqa: BLE001  (recorded)
                    row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
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
                    help="N at which the Triton configurations of TRITON_GRID are timed (none: skip the grid)")
    ap.add_argument("--compile-only", action="store_true",
                    help="compile the Triton grid for sm_90 and report registers/spills (no GPU needed), then stop")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.compile_only:
        res = {"triton": _triton_version(), "arch": "sm_90a", "rows": compile_report()}
        save_json(args.out, res)
        return
    gen = torch.Generator(device="cuda").manual_seed(0)
    rates = device_rates("cuda")
    print(json.dumps(rates), flush=True)
    rows = []
    for n in args.sizes:
        rows += rows_for(n, args.batches, args.sigmas, rates, args.repeats, gen, n in args.grid_sizes)
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": _triton_version(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rates": rates, "rows": rows}
    save_json(args.out, res)


if __name__ == "__main__":
    main()
