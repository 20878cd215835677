"""Render the benchmark results as the Markdown tables of ``docs/benchmarks.md``.

    python -m benchmarks.report benchmarks/results/suite_cpu2.json [more result files ...]

Each row: case, size, measured (median and spread), floor or target, ratio (measured against the floor or
target, > 1 is better for rates and fractions, < 1 is better for times against a time budget), met/missed,
and a short note. Reads the runner's JSON (``python -m benchmarks``) and, for the geology target, the stored
``benchmarks/results/bench_geology.json``. Prints to stdout; nothing here measures anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HEADER = ("| case | size | measured: median [q1, q3] | floor / target | ratio | status | note |\n"
          "|---|---|---|---|---|---|---|")


def _ms(stat: dict) -> str:
    return f"{1e3 * stat['median']:.3g} ms [{1e3 * stat['q1']:.3g}, {1e3 * stat['q3']:.3g}]"


def _status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def memorized_rows(res: dict) -> list[list[str]]:
    out = []
    for r in res["rows"]:
        size = f"N={r['N']}, B={r['batch']}, σ={r['sigma']:g} ({r['work_dtype']})"
        measured = _ms(r["chunked"]["wall"])
        bcast = (f"broadcast {_ms(r['broadcast']['wall'])} ({r['broadcast_mode']}), x{r['speedup']:.1f}; "
                 f"peak {r['chunked_peak_mib']:.0f} vs {r['broadcast_peak_mib']:.0f} MiB" if "broadcast" in r
                 else r["broadcast_mode"])
        if "floor_fraction" in r:
            ok = r["floor_fraction"] >= 0.5 if r["N"] == 100_000 else None
            out.append([f"memorized denoiser ({res['device']})", size, measured,
                        f"floor {1e3 * r['floor_s']:.3g} ms ({r['floor_bound']})", f"{r['floor_fraction']:.2f}",
                        _status(ok), bcast])
        else:
            out.append([f"memorized denoiser ({res['device']})", size, measured, "—", "—", "n/a", bcast])
    t = res.get("target_row")
    if t:
        out.append(["memorized denoiser, issue target", f"N={t['N']}, B={t['batch']}, 1 thread",
                    _ms(t["chunked"]["wall"]), f"< {t['target_ms']:g} ms and ≥ {t['target_speedup']:g}x broadcast",
                    f"{t['target_ms'] / (1e3 * t['chunked']['cpu']['median']):.2f} (time), x{t['speedup']:.1f}",
                    _status(t["met"]), f"CPU time {_ms(t['chunked']['cpu'])}; broadcast {_ms(t['broadcast']['wall'])}"])
    return out


def devito_rows(res: dict) -> list[list[str]]:
    out = []
    for r in res["per_shot"]:
        n = r["shape"][0]
        for kind in ("forward", "born", "adjoint_born", "gradient"):
            k = r[kind]
            target, ratio, ok = "—", "—", None
            if kind == "forward" and n == 128:
                target, ratio, ok = "≥ 1 Gpt/s (cpu time)", f"{k['gpts_cpu']:.2f}", k["gpts_cpu"] >= 1.0
            out.append([f"Devito {kind} per shot", f"{n}² (+2·20 layer), nt {r['nt']}", _ms(k["time"]["wall"]),
                        target, ratio, _status(ok),
                        f"{k['gpts_wall']:.2f} Gpt/s wall, {k['gpts_cpu']:.2f} Gpt/s cpu "
                        f"(cpu {1e3 * k['time']['cpu']['median']:.3g} ms)"])
        g = r["gradient_over_forward_cpu"]
        out.append(["Devito gradient / forward", f"{n}²",
                    f"{g:.2f} (cpu), {r['gradient_over_forward_wall']:.2f} (wall)", "≤ 2.5",
                    f"{2.5 / g:.2f}", _status(g <= 2.5), "ratio of median CPU times"])
    d = res.get("dask")
    if d:
        for row in d["rows"]:
            out.append([f"Dask gradient, {d['n_shots']} shots", f"{d['shape'][0]}², {row['workers']} worker(s)",
                        _ms(row["time"]["wall"]), "≥ 80% efficiency at 16 workers (not measurable: 2 cores)",
                        f"{row['efficiency']:.2f}", "n/a",
                        f"serial {_ms(d['serial']['wall'])}, speedup {row['speedup']:.2f}"])
    dw = res.get("deepwave")
    if dw and dw.get("available"):
        for row in dw["rows"]:
            w = ", ".join(f"{x:.3f}" for x in row["windowed_relative_difference"])
            t_dw, t_ours = row["deepwave_time_5_shots"]["wall"], row["geomem_time_5_shots"]["wall"]
            out.append([f"deepwave {dw['version']} forward, 5 shots", f"{dw['shape'][0]}², {row['nbl']}-point layers",
                        _ms(t_dw), f"geomem {_ms(t_ours)}",
                        f"{t_ours['median'] / t_dw['median']:.2f} (geomem/deepwave)", "n/a",
                        f"rel. data difference {row['relative_difference']:.3f} (windows 0-.3, .3-.6, .6-1 s: {w}); "
                        f"amplitude factor {row['amplitude_factor_after_sign_flip']:.3f}"])
    elif dw:
        out.append(["deepwave", "—", "—", "—", "—", "n/a", dw["reason"]])
    return out


def dps_rows(res: dict) -> list[list[str]]:
    out = []
    for r in res["rows"]:
        parts = ", ".join(f"{k} {100 * r[f'{k}_fraction']:.0f}% ({1e3 * r[f'time_{k}']['median']:.3g} ms)"
                          for k in ("denoiser", "vjp", "denoiser+vjp", "physics") if r[f"{k}_fraction"] > 0)
        kind = f", {r['step_ran']} step" if "step_ran" in r else ""
        steady = (f"; overhead after step 1 {100 * r['overhead_fraction_steady']:.1f}%, step 1 "
                  f"{1e3 * r['first_step_wall']:.3g} ms" if "overhead_fraction_steady" in r else "")
        out.append([f"DPS step, {r['prior']} prior ({r['device']}{kind})",
                    f"{r['size']}², {r['n_shots']} shots, physics: {r['physics']}", _ms(r["step_wall"]),
                    "overhead ≤ 10%", f"{r['overhead_fraction']:.3f}", _status(r["overhead_target_met"]),
                    f"{parts}{steady}; {r['seconds_per_sample']:.3g} s/sample ({r['steps']} steps), "
                    f"{r['chains_per_hour']:.0f} chains/h"])
    return out


def training_rows(res: dict) -> list[list[str]]:
    c, cfg = res["cpu"], res["config"]
    out = [["training, fp32 (cpu)", f"{cfg['size']}², batch {cfg['batch']}",
            f"{c['median_models_per_s']:.3g} models/s [{min(c['models_per_s']):.3g}, {max(c['models_per_s']):.3g}]",
            "—", "—", "n/a", "min/max of the repeats"]]
    for s in res["gpu_stored"]:
        sp = s.get("bf16_speedup_over_fp32")
        rates = "; ".join(f"{t['what'].replace('train ', '')} {t['models_per_s']:.4g}" for t in s["train"])
        out.append([f"training ({s['device']}, stored)", f"{s['size'][0]}², batch {s['batch']}", rates + " models/s",
                    "bf16 ≥ 2x fp32", f"{sp:.2f}" if sp else "—", _status(sp >= 2.0 if sp else None),
                    f"not re-run; {s['file']}"])
    return out


def linearized_rows(res: dict) -> list[list[str]]:
    out = []
    for r in res["rows"]:
        if "skipped" in r:
            out.append([f"linearized component, {r['method']}", f"{r['size']}², d={r['d']}", "—", "—", "—", "n/a",
                        r["skipped"]])
            continue
        note = (f"mean differs from matrix-free (rank 20) by {r['mean_relative_difference_to_matrix_free']:.1e}"
                if "mean_relative_difference_to_matrix_free" in r else f"{r['cg_iterations']} CG iterations")
        out.append([f"linearized component, {r['method']}", f"{r['size']}², d={r['d']}, rank {r['rank']}",
                    f"{r['time']['median']:.3g} s", "—", "—", "n/a",
                    f"{r['pde_solves']} PDE solves ({r['born_actions']} Born, {r['adjoint_actions']} adjoint); "
                    f"log evidence {r['log_evidence']:.6g}; {note}"])
    return out


def geology_rows(path: Path) -> list[list[str]]:
    g = json.loads(path.read_text())
    worst = max(g["rows"], key=lambda r: r["best_s"])
    return [["geology generation (stored)", f"{g['n']} models of {g['size']}², slowest family "
             f"{worst['family']}/{worst['difficulty']}", f"{worst['median_s']:.3g} s (best {worst['best_s']:.3g} s)",
             f"< {g['target_s']:g} s", f"{g['target_s'] / worst['best_s']:.1f}",
             _status(all(r["under_target"] for r in g["rows"])), f"{path.name}, {g['time']}"]]


def gradient_rows(res: dict) -> list[list[str]]:
    out = []
    for r in res["rows"]:
        n = r["shape"][0]
        for k, row in r["variants"].items():
            t, g = row["time"], row["gradient_over_forward"]["cpu"]
            out.append([f"gradient / forward, {k}", f"{n}² (+2·20 layer)", f"{g:.2f} (cpu), "
                        f"{row['gradient_over_forward']['wall']:.2f} (wall)", "≤ 2.5", f"{2.5 / g:.2f}",
                        _status(g <= 2.5), f"gradient cpu {_ms(t['gradient']['cpu'])}, forward cpu "
                        f"{_ms(t['forward']['cpu'])}; gradient {row['gradient_over_default_gradient_cpu']:.2f}× "
                        "sponge/direct's"])
    return out


RENDER = {"memorized": memorized_rows, "devito": devito_rows, "dps": dps_rows, "training": training_rows,
          "linearized": linearized_rows, "gradient": gradient_rows}


def machine_line(name: str, res: dict) -> str:
    """One line naming the result file, its machine, load, versions and date."""
    m = res["machine"]
    gpu = m["gpu"]["name"] if m["gpu"] else "no GPU"
    return (f"`{name}`: {m['cpu_model']}, {m['cores']} cores, {gpu}; load average {m['load_avg_start'][0]:.1f} → "
            f"{m.get('load_avg_end', [float('nan')])[0]:.1f}; torch {m['versions'].get('torch')}, devito "
            f"{m['versions'].get('devito')}; {m['date']}")


def case_table(res: dict, cases=None) -> list[str]:
    """The table lines (header included) of ``cases`` (default: every case) of one result file."""
    lines = [HEADER]
    for name, case in res["cases"].items():
        if cases is None or name in cases:
            lines += ["| " + " | ".join(row) + " |" for row in RENDER[name](case)]
    return lines


def render(paths: list[Path]) -> str:
    lines = []
    for p in paths:
        res = json.loads(p.read_text())
        lines.append(f"\n#### {machine_line(p.name, res)}\n")
        lines += case_table(res)
    geo = Path(__file__).resolve().parent / "results" / "bench_geology.json"
    if geo.exists():
        lines.append("\n#### Stored: geology generation (one core of the 2-core machine)\n")
        lines.append(HEADER)
        lines += ["| " + " | ".join(row) + " |" for row in geology_rows(geo)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render([Path(a) for a in sys.argv[1:]]))
