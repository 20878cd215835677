#!/usr/bin/env python
"""Rerun single chains of a held-out learned-prior posterior (docs/posterior.md) with other annealed settings.

    python scripts/learned_chain_study.py PRIOR --seeds 9 12 [--set sigma_max=20 ...]

The problem is the one of `geomem validate-samplers` (FWI 64², 5 shots, 5.5 % noise, held-out truth #1000, data
noise seed 0: `fwi_truth_problem`); the sampler is `annealed` with the settings of the 40 × 40 learned-prior runs
(`steps = 40`, `mala_steps = 40`, no start) changed by ``--set key=value``. Chain i of a 16-chain run uses seed
``seed + i`` whatever the batch, so ``--seeds 9 12`` reruns chains 9 and 12 alone (the network sees a batch of one:
its rounding may differ from the batch of 16). Prints each chain's misfit/noise at every fifth level and at the end.
"""

from __future__ import annotations

import argparse
import math

from geomem.config import load_config, parse_override
from geomem.experiments.validate_samplers import fwi_truth_problem
from geomem.posterior import sample_posterior
from geomem.posterior.annealed import AnnealedConfig
from geomem.workflow.priors import resolve_prior_folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prior")
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--set", nargs="*", default=[], help="AnnealedConfig overrides, key=value")
    args = ap.parse_args()
    from geomem.priors.learned import LearnedPrior

    prior = LearnedPrior.from_pretrained(resolve_prior_folder(args.prior))
    _, _, lik = fwi_truth_problem("heldout:0")
    cfg = load_config(AnnealedConfig, None, {"steps": 40, "mala_steps": 40, **dict(map(parse_override, args.set))})
    scale = lik.gamma * math.sqrt(lik.n_data)
    for seed in args.seeds:
        post = sample_posterior(prior, lik, "annealed", 1, cfg, seed=seed)
        h = post.history[:, 0] / scale
        sig = post.info["sigmas"]
        path = " ".join(f"{sig[k]:.3g}:{h[k]:.2f}" for k in range(0, len(h), 5))
        print(f"seed {seed} {args.set}: misfit/noise {post.misfit[0] / scale:.3f}; by level {path}", flush=True)


if __name__ == "__main__":
    main()
