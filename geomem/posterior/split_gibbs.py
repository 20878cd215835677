"""Split Gibbs / plug-and-play diffusion (PnP-DM style) posterior sampling with any prior and any operator.

Split the posterior ``p(x | y) ∝ p_{σ₀}(x) exp(−φ(x))`` with an auxiliary copy ``z`` of the model:

    π_ρ(x, z) ∝ p_{σ₀}(x) N(z; x, ρ² I) exp(−φ(z)),      φ(z) = ‖y − F(m(z))‖² / 2γ²  (the Likelihood's)

and alternate exact conditional moves of the two blocks:

- **prior step** ``x ~ p(x | z) ∝ p_{σ₀}(x) N(z; x, ρ²I)``: a denoising-posterior draw at level ρ
  (:func:`~geomem.posterior.prior_step.denoising_posterior_draw`: exact softmax draw for the memorized prior,
  reverse diffusion from ρ for a learned one);
- **likelihood step** ``z ~ p(z | x) ∝ exp(−φ(z) − ‖z − x‖²/2ρ²)``: ``mala_steps`` Metropolis-adjusted
  Langevin moves (:func:`~geomem.posterior.mala.mala_moves`), one likelihood gradient each.

Why ``z`` is returned. Integrating ``x`` out, the ``z``-marginal of ``π_ρ`` is exactly
``exp(−φ(z)) (p_{σ₀} ⊛ N(0, ρ²I))(z) = exp(−φ(z)) p_{√(σ₀²+ρ²)}(z)``: the posterior under the prior at
bandwidth ``√(σ₀² + ρ²)``, with no approximation. The sampler therefore sets ``σ₀ = √(σ_min² − ρ_min²)`` and
returns ``z`` at ``ρ_min``: at stationarity these are draws of the posterior under ``p_{σ_min}`` — the same
target as DPS and the closed forms at ``σ_min``.

Annealing. ρ goes down geometrically from ``rho_max`` to ``rho_min`` over ``levels`` levels (one prior step and
``mala_steps`` likelihood moves per level), then ``final_sweeps`` more sweeps at ``rho_min``. At large ρ the
components of a multimodal prior overlap and chains move between them; at small ρ they freeze. The mode
weights are therefore those of the level where chains stop switching — close to, not equal to, the exact
ones (``geomem validate-samplers`` measures the gap; :mod:`geomem.posterior.smc` corrects it with weights).

Cost per sample: ``1 + levels·mala_steps + final_sweeps·mala_steps`` likelihood gradients, one denoiser call
(exact draw) or ``prior_steps`` calls (reverse diffusion) per level for all chains at once, plus one forward
solve for the final misfit.
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
from geomem.posterior.prior_step import PRIOR_STEP_MODES, denoising_posterior_draw
from geomem.posterior.result import PosteriorSamples
from geomem.priors.denoiser import Denoiser


@dataclass(frozen=True)
class SplitGibbsConfig(Settings):
    """Settings of a split-Gibbs run (normalized model units for ρ and σ)."""

    levels: int = field(default=40, metadata={"min": 1})
    mala_steps: int = field(default=10, metadata={"min": 1})
    final_sweeps: int = field(default=10, metadata={"min": 0})
    rho_max: float = field(default=3.0, metadata={"gt": 0})
    rho_min: float = field(default=0.005, metadata={"gt": 0})
    sigma_min: float = field(default=0.01, metadata={"gt": 0})
    step_init: float = field(default=0.5, metadata={"gt": 0, "max": 1})
    adapt_rate: float = field(default=0.2, metadata={"min": 0})
    prior_step: str = field(default="auto", metadata={"choices": PRIOR_STEP_MODES})
    prior_steps: int = field(default=20, metadata={"min": 1})
    divergence_factor: float = field(default=1e3, metadata={"gt": 1})

    def __post_init__(self):
        super().__post_init__()
        if not self.rho_min < self.sigma_min:
            raise ValueRangeError(f"rho_min ({self.rho_min}) must be below sigma_min ({self.sigma_min}): the "
                                  "returned z targets the prior at √(σ₀² + ρ_min²) = sigma_min")
        if not self.rho_min <= self.rho_max:
            raise ValueRangeError(f"rho_min ({self.rho_min}) must not exceed rho_max ({self.rho_max})")

    @property
    def sigma0(self) -> float:
        """Bandwidth of the prior in the prior step, ``√(σ_min² − ρ_min²)``."""
        return math.sqrt(self.sigma_min**2 - self.rho_min**2)


def gibbs_sweep(prior: Denoiser, likelihood: Likelihood, state: LangevinState, rho: float, sigma0: float,
                noise: ChainNoise, mala_steps: int, adapt_rate: float, mode: str, prior_steps: int):
    """One prior step ``x ~ p(x | z)`` then ``mala_steps`` likelihood moves of ``z`` given ``x``: ``(x, state)``."""
    x = denoising_posterior_draw(prior, state.z, rho, sigma0, noise, mode, prior_steps)
    state = mala_moves(likelihood, state, x, rho, mala_steps, noise, adapt_rate)
    return x, state


def initial_state(prior: Denoiser, likelihood: Likelihood, noise: ChainNoise, rho: float, sigma0: float,
                  mode: str, prior_steps: int, step_init: float):
    """``x`` drawn from ``p(x | z₀)`` with ``z₀ = ρ ε`` (≈ a prior draw when ρ is large), and ``z = x``."""
    z0 = rho * noise.normal()
    x = denoising_posterior_draw(prior, z0, rho, sigma0, noise, mode, prior_steps)
    return x, LangevinState.start(likelihood, x, step_init)


def misfit_norm(likelihood: Likelihood, phi: torch.Tensor) -> np.ndarray:
    """``‖y − F‖ = γ √(2φ)`` per chain."""
    return likelihood.gamma * np.sqrt(2.0 * phi.detach().cpu().double().numpy())


def split_gibbs(
    prior: Denoiser,
    likelihood: Likelihood,
    chains: int,
    config: SplitGibbsConfig = SplitGibbsConfig(),
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> PosteriorSamples:
    """Run ``chains`` annealed split-Gibbs chains (module docstring); chain ``i`` uses seed ``seed + i``.

    Returns the ``z`` states at ``rho_min`` (``history``: ``‖y − F(z)‖`` after every level, per chain;
    ``info``: the ρ schedule, ``sigma0``, MALA acceptance rate).
    """
    model_shape = check_pair(prior, likelihood)
    if not isinstance(config, SplitGibbsConfig):
        raise ValueRangeError(f"config must be a SplitGibbsConfig, got {type(config).__name__}")
    started, g0, f0 = time.time(), likelihood.n_gradient, likelihood.n_forward
    noise = ChainNoise(seed, chains, model_shape, dtype, device)
    rhos = np.geomspace(config.rho_max, config.rho_min, config.levels)
    rhos = np.concatenate([rhos, np.full(config.final_sweeps, config.rho_min)])
    sigma0 = config.sigma0
    _, state = initial_state(prior, likelihood, noise, float(rhos[0]), sigma0, config.prior_step,
                             config.prior_steps, config.step_init)
    first = misfit_norm(likelihood, state.phi)
    history = np.zeros((len(rhos), chains))
    for k, rho in enumerate(rhos):
        _, state = gibbs_sweep(prior, likelihood, state, float(rho), sigma0, noise, config.mala_steps,
                               config.adapt_rate, config.prior_step, config.prior_steps)
        history[k] = misfit_norm(likelihood, state.phi)
    diverged = ~np.isfinite(history[-1])
    return finish("split_gibbs", state.z, likelihood, diverged, started, g0, f0,
                  info={"rhos": rhos.tolist(), "sigma0": sigma0, "sigma_min": config.sigma_min,
                        "acceptance": state.acceptance, "seeds": noise.seeds},
                  history=history, first_misfit=first, divergence_factor=config.divergence_factor)
