"""Per-chain view of FWI validation runs of ``geomem validate-samplers`` (docs/posterior.md, held-out truth).

    python scripts/heldout_chains.py RUN_FOLDER [RUN_FOLDER ...] [--truth heldout0] [--kind memorized]

For each run folder's cached samples of one prior (``cache/<truth>_<kind>*.npz``; ``--kind learned_n1000`` for a
learned prior's, whose importance start is printed too when it had one): each chain's nearest
training model and misfit/noise, and, over the chains whose nearest model is the exact posterior's (the training
model of least misfit), their mean misfit/noise relative to that model's own. Same problem as the validation
(model set and survey defaults of ``FWISettings``, N = 50, noise seed 0); no PDE solve.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from geomem.experiments.validate_samplers import fwi_truth_problem


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--truth", default="heldout0")
    ap.add_argument("--kind", default="memorized", help="memorized, or learned_<prior> (e.g. learned_n1000)")
    args = ap.parse_args()
    spec = args.truth.replace("heldout", "heldout:").replace("train", "train:")
    train, F_train, lik = fwi_truth_problem(spec)
    train = train.reshape(len(train), -1)
    own = np.sqrt(lik.data_sq_misfit(F_train)) / (lik.gamma * math.sqrt(lik.n_data))
    best = int(np.argmin(own))
    for run in args.runs:
        for path in sorted(Path(run, "cache").glob(f"{args.truth}_{args.kind}_*.npz")):
            z = np.load(path)
            x = z["samples"].reshape(len(z["samples"]), -1)
            mon = z["misfit"] / (float(z["gamma"]) * math.sqrt(float(z["n_data"])))
            near = np.argmin((x**2).sum(1)[:, None] - 2 * x @ train.T + (train**2).sum(1)[None], axis=1)
            on = near == best
            print(f"{path}: sigmas {np.round(z['info__sigmas'], 5).tolist()}")
            print(f"  nearest models {near.tolist()}")
            print(f"  misfit/noise {np.round(mon, 4).tolist()}")
            if "info__start_ess" in z.files:
                print(f"  start: ESS {float(z['info__start_ess']):.2f}, draws {z['info__start_draws'].tolist()}, "
                      f"misfit/noise {np.round(z['info__start_misfit_over_noise'], 4).tolist()}")
            on_txt = (f", mean misfit/noise {mon[on].mean():.4f} ({100 * (mon[on].mean() / own[best] - 1):+.2f} %), "
                      f"range {mon[on].min():.4f}-{mon[on].max():.4f}") if on.any() else ""
            print(f"  on model {best} ({own[best]:.4f}): {on.sum()} of {len(on)} chains{on_txt}; other chains vs "
                  f"their own model: {np.round(mon[~on] / own[near[~on]] - 1, 4).tolist()}")


if __name__ == "__main__":
    main()
