#!/usr/bin/env python
"""Effect of Chung's DPS step size ζ on learned-prior FWI samples (the table in docs/posterior.md).

Shipped N = 50 prior, held-out truth #1000 of the default model set, default survey (5 shots, 1 s), 5.5 % noise,
16 stochastic steps from σ = 20 to 0.01, 4 chains, seed 0. Prints the mean total variation of the samples
(``mean |Δx v| + mean |Δz v|``, km/s per cell) and misfit/noise per chain for each ζ. About 20 s per ζ on one core.

    OMP_NUM_THREADS=1 python scripts/dps_step_size.py [zeta ...]
"""

import sys

import numpy as np

from geomem.experiments.compare import CompareConfig
from geomem.posterior.dps import DPSConfig, dps
from geomem.posterior.likelihood import Likelihood
from geomem.priors.learned import LearnedPrior
from geomem.workflow.problem import build_operator, load_model_set


def total_variation(v: np.ndarray) -> float:
    return float(np.mean(np.abs(np.diff(v, axis=-1))) + np.mean(np.abs(np.diff(v, axis=-2))))


def main(zetas: list[float]) -> None:
    cfg = CompareConfig()
    ms = load_model_set(cfg.model_set)
    op = build_operator(ms, cfg.survey)
    param = ms.parameterization
    truth = ms.models[cfg.model_set.heldout_start]
    lik = Likelihood.from_truth(op, truth, cfg.noise, param, seed=0)
    prior = LearnedPrior.from_pretrained("n50")
    print(f"truth total variation {total_variation(truth):.3f}")
    for zeta in zetas:
        res = dps(prior, lik, 4, DPSConfig(steps=16, zeta=zeta), seed=0)
        v = param.to_velocity(res.samples)
        ratio = res.misfit_over_noise
        print(f"zeta {zeta:<6g} total variation {total_variation(v):.3f}  misfit/noise "
              f"{ratio.min():.1f}-{ratio.max():.1f}")


if __name__ == "__main__":
    main([float(z) for z in sys.argv[1:]] or [0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0])
