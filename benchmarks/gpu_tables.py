"""Markdown tables of the GPU-machine results (``benchmarks/results/h200/*.json``, written by
``scripts/gpu/h200_suite.sh``) for docs/benchmarks.md and docs/gpu.md.

    python -m benchmarks.gpu_tables [RESULTS_DIR]

Reads what is there: part1/part2 (``train_a``–``train_c``, ``equivalence``, ``memorized``, ``dask``), part3
(``train_d``–``train_f``, ``dps_gpu``, ``dask_scaling``, ``gradient``) and part4 (``dask``, ``dps_overhead_gpu``,
``memorized``, ``train_fp32``, ``train_fast``: with all five, first the four rows of issue #17 with their targets,
:func:`issue_rows`); a section whose file is missing is left out.
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
    ("max-autotune", True, False): "bf16 + `compile = \"max-autotune\"` (CUDA graphs)",
    ("max-autotune-no-cudagraphs", True, False): "bf16 + `compile = \"max-autotune-no-cudagraphs\"`",
}
TRAIN_FILES = ("train_a.json", "train_b.json", "train_c.json", "train_d.json", "train_e.json", "train_f.json",
               "train_fp32.json", "train_fast.json")
PART4_FILES = ("dask.json", "dps_overhead_gpu.json", "memorized.json", "train_fp32.json", "train_fast.json")
#: issue #17's bars: training models/s of the fast path, memorized denoiser fraction of the floor at B ≥ 16 and
#: N = 10⁶, Dask efficiency at 16 workers, DPS overhead fraction of a step
TARGETS = {"training": 10_000, "memorized": 0.50, "dask": 0.80, "dps": 0.10}


def _load(d: Path, name: str) -> dict:
    return json.loads((d / name).read_text())


def training(d: Path) -> str:
    rows = []
    for f in TRAIN_FILES:
        if (d / f).is_file():
            rows += [(f, r) for r in _load(d, f)["rows"]]
    out = ["| path | batch | models/s | ms/step | first 15 steps (compile) | peak GPU memory | file |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for f, r in rows:
        what = VARIANT_TEXT.get((r["compile"], r["bf16"], r["channels_last"]), r["name"])
        if "cudnn_benchmark" in r:  # part3 rows; earlier runs left cuDNN's benchmark mode off
            what += f", cuDNN benchmark {'on' if r['cudnn_benchmark'] else 'off'}"
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
    tri = [r for r in m["rows"] if "triton" in r]
    if tri:  # the Triton kernels (memorized_triton.py): the default config and each config of the grid
        out += ["", "Triton kernels (`layout=\"triton\"`, `geomem/priors/memorized_triton.py`), float32 rows; "
                "config = precision, logits tiles (rows n, k, warps w, stages s; T: swapped product) / "
                "weighted-sum tiles (rows n, pixels d) × slabs; time, % of floor, rel. error (σ; σ = 30):", "",
                "| N | B | σ | config | time | % of floor | rel. error (σ; σ = 30) |",
                "|---:|---:|---:|---|---:|---:|---|"]
        for r in tri:
            for name, v in (("default", r["triton"]), *r.get("triton_grid", {}).items()):
                name = name.replace(" | ", " / ")
                cell = (f"{1e3 * v['s']:.2f} ms | **{100 * v['floor_fraction']:.0f} %** | {v['rel_err']:.0e}; "
                        f"{v.get('rel_err_sigma30', float('nan')):.1e}") if "s" in v else f"{v['error']} | – | –"
                out.append(f"| {r['N']:,} | {r['batch']} | {r['sigma']:g} | {name} | {cell} |")
    sd = [(r["N"], r["batch"], r["sdpa"]) for r in m["rows"] if "sdpa" in r]
    head = "`scaled_dot_product_attention` (queries x̄/σ², keys = values = the set, bias as float mask): "
    out += ["", head + "; ".join(
        f"N = {n:,}, B = {b}: " + (f"{1e3 * v['s']:.0f} ms ({100 * v['floor_fraction']:.1f} %)" if "s" in v
                                  else v["error"]) for n, b, v in sd) + "."]
    return "\n".join(out)


def dask_scaling(d: Path, name: str = "dask_scaling.json") -> str:
    """``gpu_dask.py`` with the process-pool baseline (part3, part4): pool and Dask side by side per worker count,
    efficiency against the serial call and against each kind's own 1-worker time where that was run."""
    r = _load(d, name)
    h = r["host"]
    serial = next(row for row in r["rows"] if row["kind"] == "serial")
    lscpu = h.get("lscpu", {})
    smt = lscpu.get("Thread(s) per core") or (f"{h['threads_per_core_cpuinfo']:g}" if h.get(
        "threads_per_core_cpuinfo") else "?")
    out = [f"{r['chains']} chains × {r['shots']}-shot gradients at {r['shape'][0]}² (nt = {r['nt']}); host: "
           f"{h['cpu_count']} logical CPUs ({h['usable_cpus']} usable), {h.get('physical_cores_cpuinfo') or '?'} "
           f"physical cores, {smt} thread(s) per core, {h.get('cpu_model') or lscpu.get('Model name', '?')}; "
           f"serial in one process: {serial['seconds']:.2f} s ({serial['per_chain_s']:.3f} s a chain). Pool: "
           f"`multiprocessing` fork pool, no Dask (the host's own scaling); Dask: `LocalCluster`, "
           f"{r.get('dask_clusters', '?')} (start and warm-up "
           f"{', '.join(f'{t:.1f}' for t in r.get('dask_start_s', [])) or '?'} s).", "",
           "| workers | pool: wall | pool: efficiency | Dask: wall | Dask: efficiency | Dask / pool time | "
           "equal to serial (pool, Dask) |", "|---:|---:|---:|---:|---:|---:|---|"]
    by = {(row["kind"], row["workers"]): row for row in r["rows"] if row["kind"] in ("pool", "dask")}
    end = next((row for row in r["rows"] if row["kind"] == "serial_end"), None)
    if end is not None:
        out[0] += f" Serial again at the end: {end['seconds']:.2f} s (drift {end['drift']:.2f}×)."
    own = {kind: by[(kind, 1)]["seconds"] for kind in ("pool", "dask") if "seconds" in by.get((kind, 1), {})}

    def cells(row):
        if row is None:
            return "–", "–", None
        if "error" in row:
            return row["error"], "–", None
        return f"{row['seconds']:.2f} s", f"**{100 * row['efficiency']:.0f} %**", row["equal_to_serial"]

    for w in sorted({k[1] for k in by}):
        pw, pe, peq = cells(by.get(("pool", w)))
        dw, de, deq = cells(by.get(("dask", w)))
        ratio = by.get(("dask", w), {}).get("dask_over_pool")
        eq = ", ".join("–" if e is None else ("bit for bit" if e else "NO") for e in (peq, deq))
        out.append(f"| {w} | {pw} | {pe} | {dw} | {de} | {'–' if ratio is None else f'{ratio:.2f}'} | {eq} |")
    if own:
        top = max(w for _, w in by)
        out += ["", f"Against each kind's own 1-worker time instead of the serial call (t₁ / ({top} · t_{top})): " +
                ", ".join(f"{kind} {100 * t1 / (top * by[(kind, top)]['seconds']):.0f} %" for kind, t1 in own.items()
                          if "seconds" in by.get((kind, top), {})) + "."]
    return "\n".join(out)


def _suite(d: Path, name: str, case: str) -> str:
    """A ``python -m benchmarks`` result file rendered as benchmarks.report does (one case)."""
    from benchmarks.report import case_table, machine_line

    res = _load(d, name)
    head = machine_line(name, res) + (" [QUICK: not a measurement]" if res["quick"] else "")
    return "\n".join([head, "", *case_table(res, {case})])


def dps(d: Path) -> str:
    return "\n\n".join(_suite(d, f, "dps") for f in ("dps_gpu.json", "dps_overhead_gpu.json") if (d / f).is_file())


def gradient(d: Path) -> str:
    return _suite(d, "gradient.json", "gradient")


def dask(d: Path) -> str:
    r = _load(d, "dask.json")
    if any(row.get("kind") == "pool" for row in r["rows"]):  # part4 runs the process pool beside Dask
        return dask_scaling(d, "dask.json")
    serial = r["rows"][0]
    out = [f"{r['chains']} chains × {r['shots']}-shot gradients at {r['shape'][0]}² (nt = {r['nt']}), host with "
           f"{r['cores']} cores; serial in one process: {serial['seconds']:.2f} s ({serial['per_chain_s']:.3f} s a "
           f"chain).", "", "| Dask workers | wall time | speed-up | efficiency | gradients equal to serial |",
           "|---:|---:|---:|---:|---|"]
    for row in (row for row in r["rows"][1:] if row.get("kind", "dask") == "dask"):
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


def issue_rows(d: Path) -> str:
    """The four measurements issue #17 asks for from one run (``h200_suite.sh part4``), each against its bar; the
    status is computed here from the numbers and :data:`TARGETS`."""
    def status(ok: bool) -> str:
        return "met" if ok else "**missed**"

    train = {(r["name"], r["batch"]): r for f in ("train_fp32.json", "train_fast.json") for r in _load(d, f)["rows"]}
    fast = [r for (name, _), r in train.items() if name != "fp32" and "models_per_s" in r]
    fp32 = ", ".join(f"{r['models_per_s']:,.0f} (batch {b})" for (n, b), r in sorted(train.items()) if n == "fp32"
                     and "models_per_s" in r)
    best = max(fast, key=lambda r: r["models_per_s"], default=None)
    fast_txt = ", ".join(f"{r['models_per_s']:,.0f} (batch {r['batch']})"
                         for r in sorted(fast, key=lambda r: r["batch"]))
    rows = [("training, width-32 UNet at 64², models/s", f"fp32 eager {fp32}; bf16 + CUDA graphs {fast_txt}",
             f"≥ {TARGETS['training']:,}", status(best is not None and best["models_per_s"] >= TARGETS["training"]))]
    m = _load(d, "memorized.json")
    cells, ok = [], False
    for r in m["rows"]:
        if r["N"] < 1_000_000 or r["batch"] < 16:
            continue
        fr = {"cuBLAS `denoise`": r["denoise"]["floor_fraction"],
              **{f"Triton {k.replace(' | ', ' / ')}": v["floor_fraction"]
                 for k, v in r.get("triton_grid", {}).items() if "floor_fraction" in v}}
        ok = ok or max(fr.values()) >= TARGETS["memorized"]
        cells.append(f"B = {r['batch']} (floor {1e3 * r['floor_s']:.2f} ms): " +
                     ", ".join(f"{k} {100 * v:.0f} %" for k, v in fr.items()))
    rows.append(("memorized denoiser, N = 10⁶, % of the floor", "; ".join(cells), f"≥ {TARGETS['memorized']:.0%} at "
                 "B ≥ 16", status(ok)))
    dk = _load(d, "dask.json")
    by = {(r["kind"], r["workers"]): r for r in dk["rows"]}
    dask16, pool16, serial = by.get(("dask", 16), {}), by.get(("pool", 16), {}), by[("serial", 1)]
    end = by.get(("serial_end", 1))
    tail = f"; at the end {end['seconds']:.2f} s" if end else ""
    rows.append((f"Dask, {dk['chains']} chains of {dk['shape'][0]}² {dk['shots']}-shot gradients, 16 workers",
                 f"Dask {100 * dask16.get('efficiency', float('nan')):.1f} %, process pool "
                 f"{100 * pool16.get('efficiency', float('nan')):.1f} % (serial call {serial['seconds']:.2f} s{tail})",
                 f"≥ {TARGETS['dask']:.0%} at 16", status(dask16.get("efficiency", 0.0) >= TARGETS["dask"])))
    dps_rows = _load(d, "dps_overhead_gpu.json")["cases"]["dps"]["rows"]
    fr = {r["step_kind"]: r["overhead_fraction"] for r in dps_rows}
    rows.append(("DPS step overhead, memorized prior (placeholder physics, 50 steps)",
                 ", ".join(f"{k} {100 * v:.1f} %" for k, v in fr.items()), f"≤ {TARGETS['dps']:.0%}",
                 status(min(fr.values()) <= TARGETS["dps"])))
    out = ["| row | measured in this run | target | status |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {e} |" for a, b, c, e in rows]
    return "\n".join(out)


def main() -> None:
    d = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if all((d / f).is_file() for f in PART4_FILES):
        print(f"#### The four rows of issue #17 from one run\n\n{issue_rows(d)}\n")
    sections = (("Training throughput", training, TRAIN_FILES), ("bf16 vs fp32 training", equivalence,
                ("equivalence.json",)), ("Memorized denoiser", memorized, ("memorized.json",)),
                ("Dask efficiency", dask, ("dask.json",)),
                ("Dask efficiency beside a process pool", dask_scaling, ("dask_scaling.json",)),
                ("DPS step on the GPU", dps, ("dps_gpu.json", "dps_overhead_gpu.json")),
                ("Devito gradient / forward on one host core", gradient, ("gradient.json",)))
    for title, fn, files in sections:
        if any((d / f).is_file() for f in files):
            print(f"#### {title}\n\n{fn(d)}\n")


if __name__ == "__main__":
    main()
