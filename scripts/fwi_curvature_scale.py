"""The white-residual Gauss–Newton curvature estimate on FWI against the step the samplers accept (docs/posterior.md).

    python scripts/fwi_curvature_scale.py [PRIOR=n50]

Held-out problem of `validate-samplers` (64², 5 shots, 5.5 % noise). For two chains at σ = 5, 0.5 and 0.05 the
prior's denoised estimate ``x̂₀ = D(σ ε, σ)`` is formed and ``curvature_terms`` (``(∇φ)² M / 2φ`` per pixel) evaluated
there; printed: φ, the largest and the median pixel. Compare with ``1/h``, ``h`` the step size the MALA and HMC moves
settle at (4–5·10⁻⁷ in the logs of docs/posterior.md, so ``1/h`` ≈ 2·10⁶).
"""

import sys

import torch

from geomem.experiments.validate_samplers import fwi_truth_problem
from geomem.posterior.mala import curvature_terms
from geomem.priors.learned import LearnedPrior
from geomem.workflow.priors import resolve_prior_folder

prior = LearnedPrior.from_pretrained(resolve_prior_folder(sys.argv[1] if len(sys.argv) > 1 else "n50"))
_, _, lik = fwi_truth_problem("heldout:0")
g = torch.Generator().manual_seed(0)
for s in (5.0, 0.5, 0.05):
    x0 = prior.denoise(s * torch.randn(2, *lik.model_shape, generator=g), s).detach().double()
    phi, grad = lik.misfit_and_gradient(x0)
    h = curvature_terms(lik, phi, grad).flatten(1)
    print(f"sigma {s}: phi {phi.numpy().round(-3)}, largest pixel {h.max(1).values.numpy()}, "
          f"median pixel {h.median(1).values.numpy()}")
