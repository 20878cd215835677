#!/usr/bin/env python
"""Rerun single chains of a held-out learned-prior posterior (docs/posterior.md) with other annealed settings.

    python scripts/learned_chain_study.py PRIOR --seeds 9 12 [--set sigma_max=20 ...]
    python scripts/learned_chain_study.py --summary LOG [LOG ...]    (the last run of each seed in saved output)

The problem is the one of `geomem validate-samplers` (FWI 64², 5 shots, 5.5 % noise, held-out truth #1000, data
noise seed 0: `fwi_truth_problem`); the sampler is `annealed` with the settings of the 40 × 40 learned-prior runs
(`steps = 40`, `mala_steps = 40`, no start) changed by ``--set key=value``. Chain i of a 16-chain run uses seed
``seed + i`` whatever the batch, so ``--seeds 9 12`` reruns chains 9 and 12 alone (the network sees a batch of one:
its rounding may differ from the batch of 16). Prints each chain's misfit/noise (and MALA step factor) at every
fifth level and at the end;
``--summary`` reads such printed lines back and gives mean, median, range and the count ≤ 1.2 over the seeds.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
from pathlib import Path

from geomem.config import load_config, parse_override
from geomem.experiments.validate_samplers import fwi_truth_problem
from geomem.posterior import sample_posterior
from geomem.posterior.annealed import AnnealedConfig
from geomem.workflow.priors import resolve_prior_folder


def summary(logs: list[str]) -> None:
    final = {}
    for log in logs:
        for line in Path(log).read_text().splitlines():
            if m := re.match(r"seed (\d+) .*: misfit/noise ([\d.]+);", line):
                final[int(m.group(1))] = float(m.group(2))
    v = list(final.values())
    print(f"{len(v)} chains (seeds {sorted(final)}): mean misfit/noise {statistics.mean(v):.2f}, median "
          f"{statistics.median(v):.2f}, range {min(v):.2f}–{max(v):.2f}, {sum(x <= 1.2 for x in v)} ≤ 1.2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prior", nargs="?")
    ap.add_argument("--seeds", type=int, nargs="+")
    ap.add_argument("--set", nargs="*", default=[], help="AnnealedConfig overrides, key=value")
    ap.add_argument("--summary", nargs="+", metavar="LOG", help="summarize saved output instead of running")
    args = ap.parse_args()
    if args.summary:
        return summary(args.summary)
    if not (args.prior and args.seeds):
        ap.error("give PRIOR and --seeds (or --summary LOG ...)")
    from geomem.priors.learned import LearnedPrior

    prior = LearnedPrior.from_pretrained(resolve_prior_folder(args.prior))
    _, _, lik = fwi_truth_problem("heldout:0")
    cfg = load_config(AnnealedConfig, None, {"steps": 40, "mala_steps": 40, **dict(map(parse_override, args.set))})
    scale = lik.gamma * math.sqrt(lik.n_data)
    for seed in args.seeds:
        post = sample_posterior(prior, lik, "annealed", 1, cfg, seed=seed)
        h = post.history[:, 0] / scale
        sig = post.info["sigmas"]
        cs = post.info["step_factors"]
        path = " ".join(f"{sig[k]:.3g}:{h[k]:.2f}(c {cs[k]:.2g})" for k in range(0, len(h), 5))
        print(f"seed {seed} {args.set}: misfit/noise {post.misfit[0] / scale:.3f}; by level "
              f"σ:misfit/noise(step factor) {path}; {post.info['wall_time_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
