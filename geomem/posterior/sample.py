"""One entry point for every posterior sampler: ``sample_posterior(prior, likelihood, method=...)``.

``SAMPLERS`` maps a method name to ``(function, config class)``; every function has the signature
``(prior, likelihood, chains, config, seed, dtype=..., device=...) -> PosteriorSamples``.

=============== ==================================================================================
``exact``       exact draws of the σ → 0 memorized posterior (memorized prior only; N forward solves)
``split_gibbs`` annealed split Gibbs / PnP-DM: exact prior draws at level ρ, MALA on the likelihood
``smc``         SMC over the split-Gibbs family with importance weights and their ESS
``annealed``    DAPS-style decoupled annealing (Gaussian stand-in for p(x₀ | x_σ), MALA)
``dps``         diffusion posterior sampling (a heuristic; see :mod:`geomem.posterior.dps`)
=============== ==================================================================================

Which one to use when is in docs/posterior.md, with the validation table behind the choice.
"""

from __future__ import annotations

from typing import Any

import torch

from geomem.config import from_dict
from geomem.errors import ConfigError
from geomem.posterior.annealed import AnnealedConfig, annealed
from geomem.posterior.dps import DPSConfig, dps
from geomem.posterior.exact import ExactConfig, exact_memorized
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.result import PosteriorSamples
from geomem.posterior.smc import SMCConfig, smc
from geomem.posterior.split_gibbs import SplitGibbsConfig, split_gibbs
from geomem.priors.denoiser import Denoiser

SAMPLERS: dict[str, tuple[Any, type]] = {
    "exact": (exact_memorized, ExactConfig),
    "split_gibbs": (split_gibbs, SplitGibbsConfig),
    "smc": (smc, SMCConfig),
    "annealed": (annealed, AnnealedConfig),
    "dps": (dps, DPSConfig),
}


def sampler_config(method: str, values: dict | Any | None = None):
    """The config of ``method``: its defaults, a mapping of settings, or a config instance (checked)."""
    if method not in SAMPLERS:
        raise ConfigError(f"unknown posterior sampler {method!r}; choose one of {sorted(SAMPLERS)}")
    cls = SAMPLERS[method][1]
    if values is None:
        return cls()
    if isinstance(values, cls):
        return values
    if isinstance(values, dict):
        return from_dict(cls, values)
    raise ConfigError(f"config for {method!r} must be a {cls.__name__} or a mapping, got {type(values).__name__}")


def sample_posterior(
    prior: Denoiser,
    likelihood: Likelihood,
    method: str = "smc",
    chains: int = 16,
    config=None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> PosteriorSamples:
    """Run the sampler ``method`` with ``config`` (a config instance, a mapping of its settings, or ``None`` for
    the defaults) and return its :class:`PosteriorSamples`."""
    fn, _ = SAMPLERS[method] if method in SAMPLERS else (None, None)
    cfg = sampler_config(method, config)
    return fn(prior, likelihood, chains, cfg, seed, dtype=dtype, device=device)
