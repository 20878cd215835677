"""The annealed sampler's last level run long, on the held-out FWI truth: does it reach the σ_min posterior?

    python scripts/heldout_final_level.py [--sigma 0.001] [--chains 4] [--moves 200] [--every 20]

At its last level ``annealed`` (geomem.posterior.annealed) starts every chain at ``x̂₀ = D(x, σ_min)``, which for the
memorized prior and a chain near training model 17 is model 17 itself, and runs MALA on
``φ(z) + ‖z − x̂₀‖²/2r²`` with ``r = σ_min τ/√(σ_min² + τ²)`` (τ = 0.5): for one isolated mode, the posterior under
the σ_min-wide prior. This script runs exactly those moves (``mala_moves``, step factor from 0.5, adapted as in the
sampler) from model 17 for ``--moves`` moves and prints the mean misfit/noise of the chains along the way, next to
the σ → 0 value and :func:`geomem.posterior.exact.sigma_tilt`'s bracket of the σ_min posterior's expected value
(valid at σ = 0.001, where the linearized and the nonlinear misfit at the mean agree to 0.3 %). Same problem as
``geomem validate-samplers`` (64², 5 shots, 5.5 % noise, N = 50, noise seed 0), float32 chains, serial Devito:
``chains × moves`` gradients.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from geomem.experiments.validate_samplers import fwi_truth_problem
from geomem.posterior.chains import ChainNoise
from geomem.posterior.exact import sigma_tilt
from geomem.posterior.mala import LangevinState, mala_moves


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma", type=float, default=0.001)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--moves", type=int, default=200)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--tau", type=float, default=0.5)
    args = ap.parse_args()

    train, F_train, lik = fwi_truth_problem("heldout:0")
    n = int(np.argmin(lik.data_sq_misfit(F_train)))
    t = sigma_tilt(lik, train[n], args.sigma, F_n=F_train[n])
    print(f"component {n}: sigma -> 0 misfit/noise {t.reference:.4f}; sigma {args.sigma:g}: expected "
          f"[{t.expected[0]:.4f}, {t.expected[1]:.4f}], nonlinear at the linearized mean {t.nonlinear_at_mean:.4f}",
          flush=True)
    anchor = torch.from_numpy(np.repeat(train[n][None], args.chains, 0)).float()
    r = args.sigma * args.tau / math.sqrt(args.sigma**2 + args.tau**2)
    noise = ChainNoise(0, args.chains, lik.model_shape, torch.float32, "cpu")
    state = LangevinState.start(lik, anchor, 0.5)
    norm = lik.gamma * math.sqrt(lik.n_data)
    t0 = time.time()
    for done in range(args.every, args.moves + 1, args.every):
        state = mala_moves(lik, state, anchor, r, args.every, noise)
        mon = np.sqrt(2.0 * state.phi.double().numpy()) * lik.gamma / norm
        print(f"moves {done:4d}: misfit/noise {mon.mean():.4f} (chains {np.round(mon, 4).tolist()}), "
              f"step factor {float(state.c.mean()):.3g}, acceptance {state.acceptance:.2f}, "
              f"{time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
