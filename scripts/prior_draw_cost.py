#!/usr/bin/env python
"""Wall time of the unconditional prior draws behind the `annealed` sampler's importance-resampled start
(docs/posterior.md, "Which sampler when"): ``n`` draws of a shipped learned prior by the Heun sampler of
:func:`geomem.priors.sampling.sample` (Karras schedule from 80 to 0.01, as ``AnnealedConfig.draw_sigma_max`` /
``sigma_min``), for each number of Heun steps, on the CPU with one thread; prints seconds per draw and the
extrapolated cost of ``P`` draws.

    OMP_NUM_THREADS=1 python scripts/prior_draw_cost.py [n=8] [steps=8,32] [P=32,256]
"""

from __future__ import annotations

import sys
import time

import torch

from geomem.priors.learned import LearnedPrior
from geomem.priors.sampling import karras_sigmas, sample


def main(n: int = 8, steps: tuple[int, ...] = (8, 32), draws: tuple[int, ...] = (32, 256)) -> None:
    torch.set_num_threads(1)
    print("| prior | Heun steps | s per draw | " + " | ".join(f"P = {p}: s" for p in draws) + " |")
    print("|---|---|---|" + "---|" * len(draws))
    for name in ("n50", "n1000"):
        prior = LearnedPrior.from_pretrained(name)
        for k in steps:
            sigmas = karras_sigmas(k, 0.01, 80.0, 7.0)
            with torch.no_grad():
                t0 = time.perf_counter()
                sample(prior, n, sigmas, "heun", generator=0)
                per = (time.perf_counter() - t0) / n
            print(f"| {name} | {k} | {per:.2f} | " + " | ".join(f"{per * p:.0f}" for p in draws) + " |", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 8,
         tuple(int(s) for s in args[1].split(",")) if len(args) > 1 else (8, 32),
         tuple(int(s) for s in args[2].split(",")) if len(args) > 2 else (32, 256))
