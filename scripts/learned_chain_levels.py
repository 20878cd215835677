#!/usr/bin/env python
"""Per-chain summary of learned-prior posterior runs along the annealing (docs/posterior.md, issue #16).

    python scripts/learned_chain_levels.py CHAINS.npz [CHAINS.npz ...] [--sigma 0.18]

Each file holds one run's chains: ``misfit`` (final ‖y − F(x)‖ per chain), ``history`` (levels × chains, the same
per level), ``levels`` (σ per level), ``gamma`` and ``n_data`` (misfit/noise = misfit / (γ √n_data)); written for the
runs of docs/posterior.md under ``benchmarks/results/`` (``learned_chains.npz``, ``n1000_50k_chains.npz``). Prints
the final misfit/noise per chain, the range over the chains that are not stuck (final ≤ 2), how many of the level
changes raise a chain's misfit by more than 5 % (median and range over the chains), and every chain's misfit/noise
at the level closest to ``--sigma`` (with how many are ≤ 2 there).
"""

from __future__ import annotations

import argparse
import math

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--sigma", type=float, default=0.18)
    args = ap.parse_args()
    for path in args.files:
        z = np.load(path)
        scale = float(z["gamma"]) * math.sqrt(float(z["n_data"]))
        final, h, levels = z["misfit"] / scale, z["history"] / scale, z["levels"]
        free = final[final <= 2.0]
        rises = (np.diff(h, axis=0) > 0.05 * h[:-1]).sum(0)
        k = int(np.argmin(np.abs(np.log(levels / args.sigma))))
        print(f"{path}: {len(final)} chains, mean misfit/noise {final.mean():.2f}, median {np.median(final):.2f}, "
              f"{int((final <= 1.2).sum())} ≤ 1.2")
        print(f"  final per chain {np.round(final, 2).tolist()}")
        print(f"  not stuck (≤ 2): {len(free)} chains" + (f", {free.min():.2f}–{free.max():.2f}" if len(free) else ""))
        print(f"  rises > 5 % over {h.shape[0] - 1} level changes: median {np.median(rises):g}, "
              f"range {rises.min()}–{rises.max()}")
        print(f"  at σ = {levels[k]:.3g}: {np.round(h[k], 1).tolist()} ({int((h[k] <= 2.0).sum())} ≤ 2)")


if __name__ == "__main__":
    main()
