"""Markdown tables of the recipes' results (``validate-samplers``, ``rules``, ``select``): formatting only, from
the metrics dictionaries the recipes write to ``metrics.json``."""

from __future__ import annotations

import math


def _fmt(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def toy_table(rows: list[dict]) -> str:
    header = ["problem", "sampler", "TV ± sd (iid floor)", "misfit/noise (exact)", "ratio ± sd", "coverage 90%",
              "grads/sample", "solves/sample", "ESS", "wall s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        tv = "–" if "tv" not in r else f"{r['tv']:.3f} ± {r['tv_sd']:.3f} ({r['tv_floor']:.3f})"
        mon = ratio = "–"
        if "misfit_exact" in r:
            mon = f"{r.get('misfit_over_noise', float('nan')):.3f} ({r['misfit_exact']:.3f})"
            ratio = f"{r['misfit_ratio']:.3f} ± {r['misfit_ratio_sd']:.3f}"
        cov = "–" if "coverage" not in r else f"{r['coverage']:.3f} ± {r['coverage_sd']:.3f}"
        cells = [r["problem"], r["method"], tv, mon, ratio, cov, _fmt(r["gradients_per_sample"], 4),
                 _fmt(r["forwards_per_sample"], 3), _fmt(r["ess"], 3), _fmt(r["wall_time_s"], 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def fwi_table(fwi: dict) -> str:
    header = ["truth", "sampler", "TV", "on truth (≤1.05)", "misfit/noise", "misfit vs nearest", "RMSE km/s",
              "grads/sample", "solves/sample", "wall s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for spec, t in fwi["truths"].items():
        for r in t["rows"]:
            cells = [spec, r["method"], _fmt(r.get("tv")), _fmt(r.get("on_truth", "–")),
                     _fmt(r.get("misfit_over_noise")), _fmt(r.get("misfit_vs_nearest")), _fmt(r.get("rmse_kms")),
                     _fmt(r["gradients_per_sample"], 4), _fmt(r["forwards_per_sample"], 3),
                     _fmt(r["wall_time_s"], 3)]
            lines.append("| " + " | ".join(cells) + " |")
    learned = [(spec, row) for spec, t in fwi["truths"].items() for row in t.get("learned", [])]
    if learned:
        lines += ["", "| truth | learned prior | sampler | misfit/noise | RMSE km/s | coverage 90% | memorized "
                  "fraction | grads/sample | wall s |", "|" + "---|" * 9]
        for spec, row in learned:
            for method, r in row["methods"].items():
                cells = [spec, f"N = {row['n']}", method, _fmt(r["misfit_over_noise"]), _fmt(r["rmse_kms"]),
                         _fmt(r["coverage90"]), _fmt(r["memorized_fraction"]), _fmt(r["gradients_per_sample"], 4),
                         _fmt(r["wall_time_s"], 3)]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table_header(sigmas: tuple[float, ...]) -> list[str]:
    return ["ε", "α", "capacity", "params", "exc. share of samples", "memorized exc. (null)", "memorized rule (null)",
            "coverage exc. (null)", "coverage rule (null)",
            *[f"gen. ratio σ={s:g}" for s in sigmas], "energy samples/held-out (train ref.)"]


def _f3(v: float) -> str:
    return "nan" if v != v else f"{v:.3f}"


def table_row(res: dict, sigmas: tuple[float, ...]) -> list[str]:
    m, q = res["memorization"], res["quality"]
    return [f"{res['epsilon']:g}", f"{res['alpha']:g}", str(res["capacity"]), f"{res['parameters']:,}",
            _f3(m["sample_exception_share"]),
            f"{_f3(m['memorized_exception'])} ({_f3(m['null_exception'])})",
            f"{_f3(m['memorized_rule'])} ({_f3(m['null_rule'])})",
            f"{_f3(m['coverage_exception'])} ({_f3(m['null_coverage_exception'])})",
            f"{_f3(m['coverage_rule'])} ({_f3(m['null_coverage_rule'])})",
            *[_f3(res["generalization"][f"{s:g}"]["gen_ratio"]) for s in sigmas],
            f"{q['energy_samples_heldout']:.3f} ({q['energy_train_rules_heldout']:.3f})"]


def selection_row(name: str, res: dict, sigmas) -> list[str]:
    post = res.get("posterior")
    rmse = ", ".join(f"{v['rmse_kms']:.3f}" for v in post.values()) if post else "not run"
    return [name, str(res["n_train"]), str(res["distinct_facts_in_train"]),
            f"{res['memorized_rate_train']:.3f} ({res['null_memorized_rate_train']:.3f})",
            str(res["reproduced_train_models"]), f"{res['facts_reproduced']} ({res['null_facts_reproduced']})",
            *[f"{res['generalization'][f'{s:g}']['gen_ratio']:.3f}" for s in sigmas], rmse]
