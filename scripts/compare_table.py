#!/usr/bin/env python
"""Print the markdown table of one or more `geomem compare` run folders (docs/results.md, section 5).

    python scripts/compare_table.py RUN [RUN ...]

RUN is a run folder, or the file prefix of a run kept with `scripts/keep_compare_run.py --prefix`
(e.g. benchmarks/results/validate_learned_cpu2/n200_50k_hmc_select3_: PREFIXmetrics.json, PREFIXchains.npz).

Reads each folder's metrics.json (scores of every posterior: memorization rate under the primary criterion with
its held-out and leave-one-out nulls, RMSE / SSIM of the posterior mean, coverage of 90 % intervals, misfit/noise:
the median over the chains, as compare reports it) and samples_<truth>_n<N>.npz (or, in a folder kept under
benchmarks/results without its samples by scripts/keep_compare_run.py, learned_chains.npz) (the learned
posterior's misfit/noise per chain: mean, median, range and how many chains are at or under 1.2), then the energy
distances,
the median closeness ratio d1/mean(d2..dk) of every posterior's samples beside its nulls, the learned sampler's
gradients per sample and, where it selected chains (`select_levels`), the effective sample
size and the number of lineages left after each selection, and the wall time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from geomem.metrics.posterior_quality import data_misfit_vs_noise
from geomem.workflow.scoring import markdown_table

CRITERION = "d1/mean(d2..dk) < 0.5"
ORDER = ("learned", "memorized", "linearized", "lookup")


def rate(r: dict, key: str, ci: bool) -> str:
    x = r[key]
    return f"{x['rate']:.2f} [{x['low']:.2f}, {x['high']:.2f}]" if ci else f"{x['rate']:.2f}"


def kept_files(run: Path) -> tuple[Path, Path]:
    """metrics.json and the kept chains' file of a run folder, or of a prefix given to keep_compare_run.py."""
    if run.is_dir():
        return run / "metrics.json", run / "learned_chains.npz"
    return Path(f"{run}metrics.json"), Path(f"{run}chains.npz")


def rows_of(run: Path) -> tuple[list[list[str]], list[str]]:
    metrics_file, kept = kept_files(run)
    m = json.loads(metrics_file.read_text())
    rows, notes = [], []
    for spec, t in m["truths"].items():
        tag = spec.replace(":", "")
        for n, s in t["sizes"].items():
            q = s["quality"]["posteriors"]
            per_chain, mis = "", None
            f = run / f"samples_{tag}_n{n}.npz"
            if f.is_file() and "learned__misfit" in np.load(f).files:
                mis = data_misfit_vs_noise(np.load(f)["learned__misfit"], float(t["gamma"]),
                                           np.load(run / f"truth_{tag}.npz")["y"].size)
            elif kept.is_file():  # a folder kept under benchmarks/results: the chains' misfits without the samples
                z = np.load(kept)
                mis = data_misfit_vs_noise(z["misfit"], float(z["gamma"]), int(z["n_data"]))
            if mis is not None:
                per_chain = (f"mean {mis.mean():.2f}, median {np.median(mis):.2f} [{mis.min():.2f}, {mis.max():.2f}], "
                             f"{int((mis <= 1.2).sum())}/{len(mis)} ≤ 1.2")
            for kind in ORDER:
                if kind not in q:
                    continue
                r = s["memorization"][kind]["memorization"]["rates"][CRITERION]
                rows.append([spec, n, kind, rate(r, "samples", True), rate(r, "heldout", False),
                             rate(r, "leave_one_out", False), f"{q[kind]['rmse']:.3f}", f"{q[kind]['ssim']:.3f}",
                             f"{q[kind]['coverage@0.9']:.3f}", f"{q[kind]['misfit/noise']:.2f}",
                             per_chain if kind == "learned" else ""])
            ratios = {k: s["memorization"][k]["memorization"]["median_ratio_k"] for k in ORDER if k in q}
            if ratios:
                null = next(iter(ratios.values()))
                notes.append(f"{spec}, N = {n}: median d1/mean(d2..dk) " + ", ".join(
                    f"{k} {v['samples']:.3f}" for k, v in ratios.items())
                    + f" (nulls: held-out {null['heldout']:.3f}, leave-one-out {null['leave_one_out']:.3f})")
            notes.append(f"{spec}, N = {n}: energy distance (km/s) " + ", ".join(
                f"{k} {v:.2f}" for k, v in s["quality"]["energy_distance"].items()))
            info = s.get("sampler_info", {}).get("learned", {})
            if info:
                picks = zip(info.get("select_after", []), info.get("select_ess", []), info.get("select_beta", []),
                            info.get("select_lineages", []), strict=True)
                sel = "".join(f"; selection after level {k}: ESS {e:.1f}, β {b:.2g}, {g} lineages"
                              for k, e, b, g in picks)
                notes.append(f"{spec}, N = {n}: learned sampler {info.get('gradients_per_sample')} gradients per "
                             f"sample{sel}")
    notes.append(f"{run}: sampler {m['sampler']}, wall {m['wall_time_s']:.0f} s")
    return rows, notes


def main(runs: list[str]) -> None:
    rows, notes = [], []
    for run in runs:
        r, n = rows_of(Path(run))
        rows += r
        notes += n
    print(markdown_table(["truth", "N", "posterior", "memorized [95 % CI]", "null held-out", "null leave-one-out",
                          "RMSE (km/s)", "SSIM", "coverage 90 %", "misfit/noise", "learned per chain"], rows))
    print()
    print("\n".join(f"- {n}" for n in notes))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
