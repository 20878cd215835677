"""Markdown tables of the GPU-machine results (``benchmarks/results/h200/*.json``, written by
``scripts/gpu/h200_suite.sh``) for docs/benchmarks.md and docs/gpu.md.

    python -m benchmarks.gpu_tables [RESULTS_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parent / "results" / "h200"
VARIANT_TEXT = {
    ("off", False, False): "fp32, eager (today's default path)",
    ("off", True, True): "bf16 autocast + channels-last, eager",
    ("default", True, False): "bf16 + `compile = \"default\"`",
    ("default", True, True): "bf16 + channels-last + `compile = \"default\"`",
    ("reduce-overhead", True, False): "bf16 + `compile = \"reduce-overhead\"` (CUDA graphs)",
}


def _load(d: Path, name: str) -> dict:
    return json.loads((d / name).read_text())


def training(d: Path) -> str:
    rows = []
    for f in ("train_a.json", "train_b.json", "train_c.json"):
        if (d / f).is_file():
            rows += [(f, r) for r in _load(d, f)["rows"]]
    out = ["| path | batch | models/s | ms/step | first 15 steps (compile) | peak GPU memory | file |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for f, r in rows:
        what = VARIANT_TEXT.get((r["compile"], r["bf16"], r["channels_last"]), r["name"])
        if "error" in r:
            out.append(f"| {what} | {r['batch']} | failed: {r['error'][:60]} | | | | {f} |")
            continue
        out.append(f"| {what} | {r['batch']} | {r['models_per_s']:,.0f} | {r['ms_per_step']:.1f} | "
                   f"{r['first_steps_s']:.0f} s | {r['peak_gib']:.1f} GiB | {f} |")
    return "\n".join(out)


def memorized(d: Path) -> str:
    m = _load(d, "memorized.json")
    rt = m["rates"]
    out = [f"Ceilings measured in the same run: copy bandwidth {rt['bandwidth_Bps'] / 1e12:.2f} TB/s, float32 matmul "
           f"(TF32 off) {rt['matmul_flops'] / 1e12:.1f} TFLOP/s.", "",
           "| N | B | σ | distances in | floor | `denoise` | % of floor | best layout (% of floor) | "
           "CPU path, chunks of 4096 | extra memory (set) | rel. error (σ; σ = 30) |",
           "|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---|"]
    for r in m["rows"]:
        den = r["denoise"]
        layouts = {k: v for k, v in r.items() if k in ("xc,wx", "cx,wx", "xc,xw", "cx,xw") and "s" in v}
        best = min(layouts, key=lambda k: layouts[k]["s"])
        cpu = r.get("cpu_path_chunk4096")
        cpu_txt = f"{1e3 * cpu['s']:.1f} ms ({100 * cpu['floor_fraction']:.0f} %)" if cpu else "–"
        err30 = f"; {den['rel_err_sigma30']:.1e}" if "rel_err_sigma30" in den else ""
        out.append(f"| {r['N']:,} | {r['batch']} | {r['sigma']:g} | {r['work_dtype']} | {1e3 * r['floor_s']:.2f} ms "
                   f"({r['floor_bound']}) | {1e3 * den['s']:.2f} ms | **{100 * den['floor_fraction']:.0f} %** | "
                   f"`{best}` ({100 * layouts[best]['floor_fraction']:.0f} %) | {cpu_txt} | "
                   f"{den['peak_extra_gib']:.2f} GiB ({r['set_gib']:.1f} GiB) | {den['rel_err']:.0e}{err30} |")
    sd = [(r["N"], r["batch"], r["sdpa"]) for r in m["rows"] if "sdpa" in r]
    head = "`scaled_dot_product_attention` (queries x̄/σ², keys = values = the set, bias as float mask): "
    out += ["", head + "; ".join(
        f"N = {n:,}, B = {b}: " + (f"{1e3 * v['s']:.0f} ms ({100 * v['floor_fraction']:.1f} %)" if "s" in v
                                  else v["error"]) for n, b, v in sd) + "."]
    return "\n".join(out)


def dask(d: Path) -> str:
    r = _load(d, "dask.json")
    serial = r["rows"][0]
    out = [f"{r['chains']} chains × {r['shots']}-shot gradients at {r['shape'][0]}² (nt = {r['nt']}), host with "
           f"{r['cores']} cores; serial in one process: {serial['seconds']:.2f} s ({serial['per_chain_s']:.3f} s a "
           f"chain).", "", "| Dask workers | wall time | speed-up | efficiency | gradients equal to serial |",
           "|---:|---:|---:|---:|---|"]
    for row in r["rows"][1:]:
        out.append(f"| {row['workers']} | {row['seconds']:.2f} s | {row['speedup']:.2f} | "
                   f"**{100 * row['efficiency']:.0f} %** | {'bit for bit' if row['equal_to_serial'] else 'NO'} |")
    return "\n".join(out)


def equivalence(d: Path) -> str:
    e = _load(d, "equivalence.json")
    null = e["null_leave_one_out_rate12"]
    out = [f"N = {e['n_train']} (the shipped model set), batch {e['batch']}, {e['steps']} steps, same data and "
           f"settings; leave-one-out null rate (d1/d2 < 1/3): {null['rate']:.3f}.", "",
           "| run | logged models/s | mean loss, last fifth | memorization rate (256 samples) | median d1 |",
           "|---|---:|---:|---|---:|"]
    for name, r in e["runs"].items():
        rate = r["memorization"]["rate_ratio12"]
        out.append(f"| {name}{' (resumed at step ' + str(r['resumed_at']) + ')' if r['resumed_at'] else ''} | "
                   f"{r['models_per_s_median']:,.0f} | {e['final_fifth_mean_loss'][name]:.4f} | "
                   f"{rate['rate']:.3f} [{rate['low']:.3f}, {rate['high']:.3f}] | "
                   f"{r['memorization']['median_d1']:.3f} |")
    out += ["", f"Mean |Δ logged loss| over the curve: fp32 ↔ bf16 fast path (same seed) "
            f"{e['mean_abs_loss_diff_fp32_vs_fast_same_seed']:.4f}; fast path seed 0 ↔ seed 1 (the noise) "
            f"{e['mean_abs_loss_diff_fast_seed0_vs_seed1']:.4f}."]
    return "\n".join(out)


def main() -> None:
    d = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    for title, fn in (("Training throughput", training), ("bf16 vs fp32 training", equivalence),
                      ("Memorized denoiser", memorized), ("Dask efficiency", dask)):
        print(f"#### {title}\n\n{fn(d)}\n")


if __name__ == "__main__":
    main()
