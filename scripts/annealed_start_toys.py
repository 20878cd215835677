"""The annealed sampler with its importance-resampled start on the memorized toys (docs/posterior.md).

    python scripts/annealed_start_toys.py [--step-reset]

Settings of ``tests/posterior_samplers/test_annealed_start.py``: 400 chains, 4,000 prior draws, ``start_sigma = 2σ``,
10 levels × 10 MALA steps, float64, seeds 0 and 1000. Prints, per problem and seed, the assignment TV to the exact
posterior's mode masses, misfit/noise over the exact value and the start's ESS. ``--step-reset``: each level's MALA
step factor starts afresh (``AnnealedConfig.step_reset``, as in the FWI validation config).
"""

import argparse

import torch

from geomem.experiments.validate_samplers import toy_config
from geomem.posterior.sample import sample_posterior
from geomem.posterior.validation import score, toy_problem

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--step-reset", action="store_true")
step_reset = ap.parse_args().step_reset
for name in ("cubic1d", "quadratic2d", "linear4d"):
    p = toy_problem(name)
    cfg = toy_config("annealed", p.sigma, {"prior_draws": 4000, "start_sigma": 2 * p.sigma, "steps": 10,
                                           "mala_steps": 10, "step_reset": step_reset})
    for seed in (0, 1000):
        res = sample_posterior(p.prior, p.likelihood, "annealed", 400, cfg, seed=seed, dtype=torch.float64)
        s = score(res, p)
        print(f"{name:12s} seed {seed:4d}: TV {s['tv']:.3f}, misfit/noise ratio {s['misfit_ratio']:.3f}, "
              f"start ESS {res.info['start_ess']:.0f}")
