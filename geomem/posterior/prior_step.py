"""The prior step of split Gibbs and SMC: a draw of ``x ~ p(x | z)`` where ``z = x + ρ ε``.

The prior is ``p_{σ₀}`` (the denoiser's prior at its bandwidth ``σ₀``), so ``z`` is a draw of the prior at
level ``s = √(σ₀² + ρ²)`` and

- :class:`~geomem.priors.memorized.MemorizedPrior` (exact): ``p(x | z) = Σ_n r_n N(x; m_n, τ² I)`` with
  ``r_n = responsibilities(z, s)`` (component log-weights included), ``m_n = (ρ² x_n + σ₀² z)/s²`` and
  ``τ = ρ σ₀ / s``: pick ``n`` with the chain's uniform number (inverse CDF), then ``x = m_n + τ ε``;
- a prior with an exact ``posterior_draw(z, rho, sigma0, eps)`` method (:class:`GaussianPrior`) uses it;
- any other :class:`~geomem.priors.denoiser.Denoiser` (a learned network): reverse diffusion from ``s`` down
  to ``σ₀`` started at ``z``, ``steps`` ancestral steps on a geometric schedule
  ``x ← D + (s'²/s²)(x − D) + s' √(1 − s'²/s²) ε`` with ``D = D(x, s)`` — the exact Gaussian bridge of the
  variance-exploding process given ``x₀ = D``; exact in the limit of many steps when ``D`` is the true
  denoiser, approximate otherwise (one denoiser call per step for all chains).

``mode="diffusion"`` forces the reverse diffusion for any prior (it is how the tests check that path against
the exact draws).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from geomem.errors import ValueRangeError
from geomem.posterior.chains import ChainNoise
from geomem.priors.denoiser import Denoiser, sigma_column
from geomem.priors.memorized import MemorizedPrior

PRIOR_STEP_MODES = ("auto", "diffusion")


class GaussianPrior(Denoiser):
    """Isotropic Gaussian prior ``N(μ, τ² I)``: ``D(x, σ) = μ + τ²/(τ² + σ²) (x − μ)`` (exact).

    The prior of the linear-Gaussian validation problem, whose posterior is known in closed form.
    """

    def __init__(self, mean: np.ndarray | torch.Tensor, std: float):
        self.mean = torch.as_tensor(np.asarray(mean, dtype=np.float64))
        if not (math.isfinite(float(std)) and float(std) > 0):
            raise ValueRangeError(f"std must be finite and > 0, got {std}")
        self.std = float(std)
        self.model_shape = tuple(self.mean.shape)

    def denoise(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        s = sigma_column(sigma, x)
        mu = self.mean.to(device=x.device, dtype=x.dtype)
        return mu + self.std**2 / (self.std**2 + s**2) * (x - mu)

    def posterior_draw(self, z: torch.Tensor, rho: float, sigma0: float, eps: torch.Tensor) -> torch.Tensor:
        """Exact draw of ``x ~ p_{σ₀}(x) N(z; x, ρ²I)``: prior ``N(μ, (τ² + σ₀²) I)`` times a Gaussian."""
        v = self.std**2 + sigma0**2
        mu = self.mean.to(device=z.device, dtype=z.dtype)
        mean = mu + v / (v + rho**2) * (z - mu)
        return mean + math.sqrt(v * rho**2 / (v + rho**2)) * eps


def _memorized_draw(prior: MemorizedPrior, z: torch.Tensor, rho: float, sigma0: float,
                    noise: ChainNoise) -> torch.Tensor:
    s2 = sigma0**2 + rho**2
    r = prior.responsibilities(z, math.sqrt(s2)).double().cpu().numpy()
    cdf = np.cumsum(r, axis=1)
    u = noise.uniform() * cdf[:, -1]
    idx = np.minimum((cdf < u[:, None]).sum(1), r.shape[1] - 1)
    xn = prior.train[torch.from_numpy(idx).to(prior.device)].to(device=z.device, dtype=z.dtype)
    mean = (rho**2 * xn + sigma0**2 * z) / s2
    eps = noise.normal()
    return mean + (rho * sigma0 / math.sqrt(s2)) * eps if sigma0 > 0 else mean


def _diffusion_draw(prior: Denoiser, z: torch.Tensor, rho: float, sigma0: float, steps: int,
                    noise: ChainNoise) -> torch.Tensor:
    s_top = math.sqrt(sigma0**2 + rho**2)
    floor = sigma0 if sigma0 > 0 else 1e-3 * s_top
    sig = np.geomspace(s_top, floor, int(steps) + 1)
    x = z
    for s, s_next in zip(sig[:-1], sig[1:], strict=True):
        d = prior.denoise(x, float(s)).detach()
        ratio = s_next / s
        x = d + ratio**2 * (x - d) + s_next * math.sqrt(max(1.0 - ratio**2, 0.0)) * noise.normal()
    if sigma0 == 0:  # the prior at bandwidth 0: its final denoised estimate
        x = prior.denoise(x, float(floor)).detach()
    return x


def denoising_posterior_draw(prior: Denoiser, z: torch.Tensor, rho: float, sigma0: float, noise: ChainNoise,
                             mode: str = "auto", steps: int = 20) -> torch.Tensor:
    """One draw of ``x ~ p_{σ₀}(x) N(z; x, ρ² I)`` per chain (module docstring), shape of ``z``."""
    if mode not in PRIOR_STEP_MODES:
        raise ValueRangeError(f"prior step mode must be one of {PRIOR_STEP_MODES}, got {mode!r}")
    if not rho > 0 or sigma0 < 0:
        raise ValueRangeError(f"need rho > 0 and sigma0 >= 0, got rho={rho}, sigma0={sigma0}")
    if mode == "auto" and isinstance(prior, MemorizedPrior):
        return _memorized_draw(prior, z, rho, sigma0, noise)
    if mode == "auto" and hasattr(prior, "posterior_draw"):
        return prior.posterior_draw(z, rho, sigma0, noise.normal())
    return _diffusion_draw(prior, z, rho, sigma0, steps, noise)
