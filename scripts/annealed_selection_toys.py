"""The annealed sampler with and without likelihood-tempered selection on the toys (docs/posterior.md).

    python scripts/annealed_selection_toys.py [--select-levels 3] [--select-ess 0.5]

Defaults of ``geomem validate-samplers`` for ``annealed`` (50 levels × 10 MALA steps, ``sigma_min`` = the problem's σ),
400 chains, float64, seeds 0 and 1000. Prints per problem, selection setting and seed the assignment TV to the exact
posterior's mode masses, misfit/noise over the exact value, coverage of 90 % intervals (Gaussian problem) and the
number of lineages left after each selection.
"""

import argparse

import torch

from geomem.experiments.validate_samplers import toy_config
from geomem.posterior.sample import sample_posterior
from geomem.posterior.validation import score, toy_problem

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--select-levels", type=int, default=3)
ap.add_argument("--select-ess", type=float, default=0.5)
args = ap.parse_args()
for name in ("cubic1d", "quadratic2d", "linear4d", "linear_gaussian"):
    p = toy_problem(name)
    for sel in (0, args.select_levels):
        cfg = toy_config("annealed", p.sigma, {"select_levels": sel, "select_ess": args.select_ess})
        for seed in (0, 1000):
            res = sample_posterior(p.prior, p.likelihood, "annealed", 400, cfg, seed=seed, dtype=torch.float64)
            s = score(res, p)
            print(f"{name:15s} select_levels {sel}  seed {seed:4d}: TV {s.get('tv', float('nan')):.3f}, misfit/noise "
                  f"ratio {s['misfit_ratio']:.3f}, coverage {s.get('coverage', float('nan')):.3f}, lineages "
                  f"{res.info.get('select_lineages', '-')}", flush=True)
