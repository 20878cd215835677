#!/usr/bin/env python
"""Print the markdown table of the learned-prior sampler runs of scripts/sampler_budget.sh (docs/posterior.md,
"Which sampler when", is pasted from this).

    python scripts/sampler_budget_table.py ROOT [ROOT ...]

Every run folder under each ROOT (``ROOT/<prior>_<variant>``) gives one row per learned prior and sampler: the
mean misfit/noise of the valid chains (``metrics.json``), their median, min and max (per-chain misfits read from
the cached samples, ``cache/heldout0_learned_n<N>_<method>.npz``: misfit/noise = ‖y − F(x)‖ / (γ √M)), RMSE of
the posterior mean (km/s), coverage of the truth by the pointwise 5–95 % range, memorized fraction, likelihood
gradients and forward solves per sample, the start's ESS (annealed with prior draws) and the sampler's wall time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HEADER = ("| run | prior | sampler | misfit/noise mean | median [min, max] | RMSE km/s | coverage 90 % | memorized | "
          "grads/sample | solves/sample | start ESS | wall s |")


def rows(folder: Path) -> list[str]:
    m = json.loads((folder / "metrics.json").read_text())
    out = []
    for truth, t in m["fwi"]["truths"].items():
        for learned in t.get("learned", []):
            for method, r in learned["methods"].items():
                cached = np.load(folder / "cache" / f"{truth.replace(':', '')}_learned_n{learned['n']}_{method}.npz")
                ok = ~cached["diverged"].astype(bool)
                mon = cached["misfit"][ok] / (float(cached["gamma"]) * np.sqrt(float(cached["n_data"])))
                forwards = float(cached["info__forwards_per_sample"])
                ess = f"{float(cached['info__start_ess']):.2f}" if "info__start_ess" in cached else "–"
                out.append(f"| {folder.name} | N = {learned['n']} | {method} | {r['misfit_over_noise']:.2f} | "
                           f"{np.median(mon):.2f} [{mon.min():.2f}, {mon.max():.2f}] | {r['rmse_kms']:.3f} | "
                           f"{r['coverage90']:.3f} | {r['memorized_fraction']:.3f} | {r['gradients_per_sample']:.0f} | "
                           f"{forwards:.1f} | {ess} | {r['wall_time_s']:.0f} |")
    return out


def main(roots: list[str]) -> None:
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for root in roots:
        for folder in sorted(p for p in Path(root).iterdir() if (p / "metrics.json").is_file()):
            for row in rows(folder):
                print(row)


if __name__ == "__main__":
    main(sys.argv[1:])
