"""MALA against HMC moves in the annealed sampler on the validation toys (docs/posterior.md, "Hamiltonian moves").

    python scripts/annealed_moves_toys.py [--chains 400] [--seeds 0 1000]

Each toy with its validation defaults (``toy_config``: ``sigma_min = σ``) and 20 levels × 16 likelihood gradients per
level, float64; the likelihood step is plain MALA, HMC with 4 leapfrog steps per trajectory (``moves = "hmc"``), the
same with the chains carried from level to level (``chain_start = "carried"``) and with the step size carried
(``step_carry = "size"``, the FWI setting). Prints per problem, variant and seed the assignment TV to the exact mode
masses (mixture toys), misfit/noise over the exact value and the coverage of 90 % intervals (Gaussian problem).
"""

import argparse

import torch

from geomem.experiments.validate_samplers import toy_config
from geomem.posterior.sample import sample_posterior
from geomem.posterior.validation import score, toy_problem

VARIANTS = {
    "mala": {},
    "hmc L=4": {"moves": "hmc", "leapfrog_steps": 4},
    "hmc L=4 carried": {"moves": "hmc", "leapfrog_steps": 4, "chain_start": "carried"},
    "hmc L=4 step_carry=size": {"moves": "hmc", "leapfrog_steps": 4, "step_carry": "size"},
}

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--chains", type=int, default=400)
ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1000])
args = ap.parse_args()
for name in ("linear_gaussian", "linear4d", "quadratic2d", "cubic1d"):
    p = toy_problem(name)
    for label, extra in VARIANTS.items():
        cfg = toy_config("annealed", p.sigma, {"steps": 20, "mala_steps": 16, **extra})
        for seed in args.seeds:
            res = sample_posterior(p.prior, p.likelihood, "annealed", args.chains, cfg, seed=seed, dtype=torch.float64)
            s = score(res, p)
            parts = [f"{k} {s[k]:.3f}" for k in ("tv", "misfit_ratio", "coverage") if s.get(k) is not None]
            print(f"{name:15s} {label:24s} seed {seed:4d}: {', '.join(parts)}", flush=True)
