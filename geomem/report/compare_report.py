"""Draw the figures and ``report.html`` of a ``geomem compare`` run folder, from the folder alone.

Reads ``metrics.json``, ``config.toml``, ``truth_<tag>.npz`` and ``samples_<tag>_n<N>.npz``; writes
``figures/*.png`` and a self-contained ``report.html`` (figures embedded). Nothing is recomputed but
cheap summaries of saved samples (means, stds, calibration bins); rates are rebuilt from the saved ratio
records with the run's seed, so they equal those in ``metrics.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from geomem.config import load_toml
from geomem.errors import DataFileError
from geomem.metrics.memorization import PRIMARY_CRITERION, MemorizationRatios, report_from_ratios
from geomem.metrics.posterior_quality import calibration
from geomem.report import save_figure
from geomem.report.compare_figures import memorized_pairs, misfit_curves, posterior_grid
from geomem.report.html import Report
from geomem.report.metric_figures import calibration_plot, ratio_histograms

KIND_ORDER = ("learned", "memorized", "linearized", "lookup")
CRITERION = PRIMARY_CRITERION.name


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path, dpi=100)


def summary_rows(metrics: dict) -> tuple[list[str], list[list]]:
    """One row per (truth, N, posterior): memorized rate with its nulls, quality numbers."""
    header = ["truth", "N", "posterior", f"memorized ({CRITERION}) [95% CI]", "null: held-out", "null: leave-one-out",
              "RMSE (km/s)", "SSIM", "mean std (km/s)", "coverage@0.9", "distinct nearest", "misfit/noise"]
    rows = []
    for spec, t in metrics["truths"].items():
        for n, res in t["sizes"].items():
            for kind in KIND_ORDER:
                if kind not in res["memorization"]:
                    continue
                rates = res["memorization"][kind]["memorization"]["rates"][CRITERION]
                q = res["quality"]["posteriors"][kind]

                def fmt(r):
                    return f"{r['rate']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"

                def num(key, digits, q=q):
                    return f"{q[key]:.{digits}f}" if key in q else "n/a"  # no truth for observed data

                rows.append([spec, n, kind, fmt(rates["samples"]), fmt(rates["heldout"]), fmt(rates["leave_one_out"]),
                             num("rmse", 3), num("ssim", 3), num("mean_std", 3), num("coverage@0.9", 2),
                             num("distinct_nearest", 0), num("misfit/noise", 2)])
    return header, rows


def write_report(run: str | Path) -> Path:
    run = Path(run)
    if not (run / "metrics.json").is_file():
        raise DataFileError(f"{run} has no metrics.json; it is not a finished `geomem compare` run folder")
    metrics = json.loads((run / "metrics.json").read_text())
    config = load_toml(run / "config.toml")
    figures = run / "figures"
    figures.mkdir(exist_ok=True)
    ms = metrics["model_set"]
    vmin, vmax = ms["vmin"], ms["vmax"]
    spacing = float(config.get("model_set", {}).get("spacing", 10.0))
    n_boot, seed = int(config.get("n_boot", 1000)), int(config.get("seed", 0))

    report = Report("geomem compare: learned versus memorized posteriors")
    report.add_paragraph(
        f"Model set: {ms['family']}, {ms['n']} models of {ms['shape'][1]}×{ms['shape'][2]} at {spacing:g} m, "
        f"velocities {vmin}–{vmax} km/s. Training-set sizes N = {metrics['sizes']}. Memorized-prior bandwidth "
        f"σ = σ_min = {metrics['sigma']} (normalized units). Wall time {metrics['wall_time_s']:.0f} s."
    )
    report.add_paragraph(
        "Every memorization rate is shown beside its null baselines: held-out models of the same family "
        "scored against the same training set, and leave-one-out within the training set. A rate near its "
        "nulls says nothing about memorization."
    )
    header, rows = summary_rows(metrics)
    report.add_table(rows, header, caption="Posteriors side by side")
    dist_rows = [[spec, n, pair, f"{v:.4g}"] for spec, t in metrics["truths"].items()
                 for n, res in t["sizes"].items() for pair, v in res["quality"]["energy_distance"].items()]
    if dist_rows:
        report.add_table(dist_rows, ["truth", "N", "pair", "energy distance (km/s)"],
                         caption="Distances between posterior sample sets")

    for spec, t in metrics["truths"].items():
        tag = spec.replace(":", "")
        with np.load(run / f"truth_{tag}.npz") as f:
            truth = f["velocity"] if "velocity" in f.files else None  # None: observed data
            gamma = float(f["gamma"])
            m_data = int(f["y"].size)
        report.add_heading(f"Truth {spec} (model #{t['index']}), γ = {gamma:.3g}" if truth is not None
                           else f"Observed data, γ = {gamma:.3g} (no truth: errors and calibration are not shown)")
        for n in t["sizes"]:
            with np.load(run / f"samples_{tag}_n{n}.npz") as f:
                arrays = {k: f[k] for k in f.files}
            kinds = [k for k in KIND_ORDER if f"{k}__velocity" in arrays]
            samples = {k: arrays[f"{k}__velocity"] for k in kinds}
            name = f"{tag}_n{n}"
            report.add_heading(f"N = {n}", level=3)
            fig = posterior_grid(truth, samples, spacing, vmin, vmax, f"truth {spec}, N = {n}")
            report.add_figure(_save(fig, figures / f"posteriors_{name}.png"),
                              "Posterior means, pointwise standard deviations and errors (km/s).")
            nulls = {g: MemorizationRatios.from_arrays(arrays, f"null__{g}") for g in ("heldout", "leave_one_out")}
            for kind in ("learned", "memorized"):
                if kind not in kinds:
                    continue
                ratios = MemorizationRatios.from_arrays(arrays, f"{kind}__samples")
                rep = report_from_ratios({"samples": ratios, **nulls}, n_boot, seed)
                kept = arrays[f"{kind}__kept"]
                fig = memorized_pairs(samples[kind][kept], arrays[f"{kind}__nearest_velocity"], ratios.ratio_k,
                                      ratios.nearest, spacing, vmin, vmax,
                                      f"{kind} prior: most memorized samples (top) and nearest training models")
                report.add_figure(_save(fig, figures / f"nearest_{kind}_{name}.png"),
                                  f"{kind} prior: samples with the smallest d1/mean(d2..dk) beside their nearest "
                                  "training models.")
                fig = ratio_histograms(rep)
                report.add_figure(_save(fig, figures / f"ratios_{kind}_{name}.png"),
                                  f"{kind} prior: nearest-neighbour ratios of the samples and of the nulls.")
                if truth is not None:
                    fig = calibration_plot(calibration(samples[kind], truth),
                                           title=f"{kind} prior, truth {spec}, N = {n}")
                    report.add_figure(_save(fig, figures / f"calibration_{kind}_{name}.png"),
                                      f"{kind} prior: calibration of the pointwise std against the error.")
            histories = {k: (arrays[f"{k}__levels"], arrays[f"{k}__history"]) for k in ("learned", "memorized")
                         if f"{k}__history" in arrays and f"{k}__levels" in arrays}
            if histories:
                fig = misfit_curves(histories, gamma * np.sqrt(m_data),
                                    f"data misfit along the sampler's schedule, truth {spec}, N = {n}")
                report.add_figure(_save(fig, figures / f"misfit_{name}.png"),
                                  "Data misfit of the Tweedie estimate at every step of every chain.")
            crit_rows = []
            for k in kinds:
                for crit, groups in t["sizes"][n]["memorization"][k]["memorization"]["rates"].items():
                    crit_rows.append([k, crit, *(f"{groups[g]['rate']:.2f} [{groups[g]['low']:.2f}, "
                                                 f"{groups[g]['high']:.2f}]" for g in ("samples", "heldout",
                                                                                       "leave_one_out"))])
            report.add_table(crit_rows, ["posterior", "criterion", "samples", "null: held-out", "null: leave-one-out"],
                             caption=f"Memorization rates with 95% bootstrap intervals, every criterion (N = {n})")
    return report.write(run / "report.html")
