"""The annealed sampler with its importance-resampled start on the memorized toys (docs/posterior.md).

    python scripts/annealed_start_toys.py

Settings of ``tests/posterior_samplers/test_annealed_start.py``: 400 chains, 4,000 prior draws, ``start_sigma = 2σ``,
10 levels × 10 MALA steps, float64, seeds 0 and 1000. Prints, per problem and seed, the assignment TV to the exact
posterior's mode masses, misfit/noise over the exact value and the start's ESS.
"""

import torch

from geomem.experiments.validate_samplers import toy_config
from geomem.posterior.sample import sample_posterior
from geomem.posterior.validation import score, toy_problem

for name in ("cubic1d", "quadratic2d", "linear4d"):
    p = toy_problem(name)
    cfg = toy_config("annealed", p.sigma, {"prior_draws": 4000, "start_sigma": 2 * p.sigma, "steps": 10,
                                           "mala_steps": 10})
    for seed in (0, 1000):
        res = sample_posterior(p.prior, p.likelihood, "annealed", 400, cfg, seed=seed, dtype=torch.float64)
        s = score(res, p)
        print(f"{name:12s} seed {seed:4d}: TV {s['tv']:.3f}, misfit/noise ratio {s['misfit_ratio']:.3f}, "
              f"start ESS {res.info['start_ess']:.0f}")
