"""Decoupled annealing posterior sampling (DAPS style) with any prior and any operator.

Over a decreasing schedule ``σ_0 > … > σ_{K−1} = σ_min`` (Karras spacing), each level ``k``:

1. ``x̂₀ = D(x_k, σ_k)`` (Tweedie; one denoiser call for all chains);
2. approximate ``p(x₀ | x_k, y) ∝ N(x₀; x̂₀, r_k² I) exp(−φ(x₀))`` — the denoising posterior replaced by a
   Gaussian of width ``r_k = σ_k τ / √(σ_k² + τ²)`` (the exact width for a Gaussian prior of scale ``τ``,
   ``tau``) — and sample it with ``mala_steps`` Metropolis-adjusted Langevin moves started at ``x̂₀``;
3. re-noise: ``x_{k+1} = x₀ + σ_{k+1} ε``.

The returned samples are the last ``x₀`` (at ``σ_min``, where ``r ≈ σ_min``). The Gaussian stand-in for
``p(x₀ | x_k)`` is the approximation: for a multimodal prior it ignores the other components, so the mode
weights are set by the Tweedie estimates at the levels where they switch — a heuristic, scored against exact
posteriors by ``geomem validate-samplers``.

Cost per sample: ``K (mala_steps + 1)`` likelihood gradients (one at each new ``x̂₀``), ``K`` denoiser calls.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from geomem.config import Settings
from geomem.errors import ValueRangeError
from geomem.posterior.chains import ChainNoise, check_pair, finish
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.mala import LangevinState, mala_moves
from geomem.posterior.result import PosteriorSamples
from geomem.posterior.split_gibbs import misfit_norm
from geomem.priors.denoiser import Denoiser
from geomem.priors.sampling import karras_sigmas


@dataclass(frozen=True)
class AnnealedConfig(Settings):
    """Settings of a DAPS-style run (normalized model units)."""

    steps: int = field(default=50, metadata={"min": 2})
    mala_steps: int = field(default=10, metadata={"min": 1})
    sigma_max: float = field(default=5.0, metadata={"gt": 0})
    sigma_min: float = field(default=0.01, metadata={"gt": 0})
    rho: float = field(default=7.0, metadata={"gt": 0})
    tau: float = field(default=0.5, metadata={"gt": 0})
    step_init: float = field(default=0.5, metadata={"gt": 0, "max": 1})
    adapt_rate: float = field(default=0.2, metadata={"min": 0})
    divergence_factor: float = field(default=1e3, metadata={"gt": 1})

    def __post_init__(self):
        super().__post_init__()
        if not self.sigma_min < self.sigma_max:
            raise ValueRangeError(f"sigma_min ({self.sigma_min}) must be below sigma_max ({self.sigma_max})")


def annealed(
    prior: Denoiser,
    likelihood: Likelihood,
    chains: int,
    config: AnnealedConfig = AnnealedConfig(),
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> PosteriorSamples:
    """Run ``chains`` DAPS-style chains (module docstring); chain ``i`` uses seed ``seed + i``."""
    model_shape = check_pair(prior, likelihood)
    if not isinstance(config, AnnealedConfig):
        raise ValueRangeError(f"config must be an AnnealedConfig, got {type(config).__name__}")
    started, g0, f0 = time.time(), likelihood.n_gradient, likelihood.n_forward
    sigmas = karras_sigmas(config.steps, config.sigma_min, config.sigma_max, config.rho).numpy()
    noise = ChainNoise(seed, chains, model_shape, dtype, device)
    x = float(sigmas[0]) * noise.normal()
    history = np.zeros((len(sigmas), chains))
    c = None
    first = None
    for k, s in enumerate(sigmas):
        s = float(s)
        x0_hat = prior.denoise(x, s).detach()
        state = LangevinState.start(likelihood, x0_hat, config.step_init)
        if first is None:
            first = misfit_norm(likelihood, state.phi)
        else:
            state.c = c
        r = s * config.tau / math.sqrt(s**2 + config.tau**2)
        state = mala_moves(likelihood, state, x0_hat, r, config.mala_steps, noise, config.adapt_rate)
        c = state.c
        history[k] = misfit_norm(likelihood, state.phi)
        x = state.z if k == len(sigmas) - 1 else state.z + float(sigmas[k + 1]) * noise.normal()
    return finish("annealed", x, likelihood, ~np.isfinite(history[-1]), started, g0, f0,
                  info={"steps": config.steps, "sigmas": sigmas.tolist(), "seeds": noise.seeds},
                  history=history, first_misfit=first, divergence_factor=config.divergence_factor)
