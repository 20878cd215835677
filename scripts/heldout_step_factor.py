"""The MALA step factor inside ``annealed``, level by level, on the held-out FWI truth (docs/posterior.md).

    python scripts/heldout_step_factor.py [--sigma-min 0.001] [--chains 2]

Runs ``annealed`` with the FWI validation's settings (256 prior draws, ``start_sigma = 2``, 10 levels × 10 MALA
steps; same problem as ``geomem validate-samplers``: 64², 5 shots, 5.5 % noise, N = 50, noise seed 0) on a few
chains and prints, per level, σ, the step factor ``c`` (``h = c r²``) with which its MALA moves start and end, their
acceptance and the chains' misfit/noise after them. The sampler is not changed: ``geomem.posterior.annealed``'s
``mala_moves`` is wrapped to record its input and output state. Cost: ``chains × 110`` gradients + 256 forward
solves, serial Devito.
"""

from __future__ import annotations

import argparse
import importlib
import math

import numpy as np
import torch

from geomem.experiments.validate_samplers import fwi_truth_problem
from geomem.posterior.annealed import AnnealedConfig
from geomem.posterior.sample import sample_posterior
from geomem.priors.memorized import MemorizedPrior


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma-min", type=float, default=0.001)
    ap.add_argument("--chains", type=int, default=2)
    args = ap.parse_args()

    train, F_train, lik = fwi_truth_problem("heldout:0")
    prior = MemorizedPrior(torch.from_numpy(train))
    annealed_module = importlib.import_module("geomem.posterior.annealed")  # the package re-exports the function
    inner = annealed_module.mala_moves
    norm = lik.gamma * math.sqrt(lik.n_data)

    def recorded(likelihood, state, anchor, r, steps, noise, adapt_rate=0.2, c_max=1.0):
        c_in, acc0, prop0 = float(state.c.mean()), state.accepted, state.proposed
        out = inner(likelihood, state, anchor, r, steps, noise, adapt_rate, c_max)
        mon = np.sqrt(2.0 * out.phi.double().cpu().numpy()) * likelihood.gamma / norm
        sigma = r * 0.5 / math.sqrt(0.25 - r * r) if r < 0.5 else float("nan")  # invert r = στ/√(σ² + τ²), τ = 0.5
        print(f"sigma {sigma:9.3g}  r {r:9.3g}  step factor {c_in:9.3g} -> {float(out.c.mean()):9.3g}  "
              f"acceptance {(out.accepted - acc0) / max(out.proposed - prop0, 1):.2f}  "
              f"misfit/noise {np.round(mon, 4).tolist()}", flush=True)
        return out

    annealed_module.mala_moves = recorded
    cfg = AnnealedConfig(steps=10, mala_steps=10, prior_draws=256, start_sigma=2.0, sigma_min=args.sigma_min)
    sample_posterior(prior, lik, "annealed", args.chains, cfg, seed=0)


if __name__ == "__main__":
    main()
