"""Exact posterior sampling under the memorized prior, at any scale: N forward solves, no gradients.

Prior: the memorized mixture of training models ``x_1 … x_N`` (component weights ``π_n``, uniform by default).
In the σ → 0 limit it is ``Σ_n π_n δ(x − x_n)`` and its posterior is the lookup

    p(x | y) = Σ_n w_n δ(x − x_n),     w_n ∝ π_n exp(−‖y − F(x_n)‖² / 2γ²)

computed from the cached forward data ``F(x_n)`` (N solves, shared by every chain). The diffusion view of the
same thing: the posterior noised to level σ is ``Σ_n w_n N(x; x_n, σ² I)`` — a
:class:`~geomem.priors.memorized.MemorizedPrior` with ``log_weights = log w`` — whose denoiser is the exact
posterior denoiser ``Σ_n softmax_n(log w_n − ‖x − x_n‖²/2σ²) x_n``; any unconditional sampler run on it draws
this posterior. Here the mixture is sampled directly: chain ``i`` picks ``n`` with its own uniform number
(inverse CDF of ``w``) and returns ``x_n + σ ε`` (``σ = config.sigma``; 0 returns the training models).

The σ_min approximation. For a prior of finite bandwidth σ the exact posterior is
``∝ N(y; F(x), γ²I) Σ_n π_n N(x; x_n, σ²I)``: each component is reweighted by the likelihood *across* its
width and contracted in the directions the data constrain. The lookup replaces ``F(x)`` by ``F(x_n)`` inside a
component, which is exact as σ → 0 and accurate while the data cannot resolve a move of size σ
(``σ ‖J_n‖ ≪ γ``; beyond that see :class:`~geomem.posterior.linearized.LinearizedPosterior` and
``sigma_crit``). So with ``sigma = 0`` these are exact draws of the σ → 0 memorized posterior (the FWI
reference of ``geomem validate-samplers``); with ``sigma > 0`` they are that posterior noised to σ, which
is *not* the posterior under ``p_σ`` when the data resolve σ.

Cost: N forward solves in total (``forwards_per_sample = N / chains``), plus one per chain when ``sigma > 0``
(the final misfits); with ``sigma = 0`` the misfits come from the cached ``F(x_n)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from geomem.config import Settings
from geomem.errors import ValueRangeError
from geomem.posterior.chains import ChainNoise, check_pair, finish
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.result import PosteriorSamples
from geomem.priors.memorized import MemorizedPrior


@dataclass(frozen=True)
class ExactConfig(Settings):
    """``sigma``: width added to the drawn training model (0: the training model itself)."""

    sigma: float = field(default=0.0, metadata={"min": 0})


def memorized_posterior_log_weights(prior: MemorizedPrior, likelihood: Likelihood,
                                    F_train: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(log w (N,) normalized, F_train)``: the lookup posterior's log-weights, prior weights included.
    ``F_train`` ``(N, *data_shape)`` is computed (N forward solves) unless given."""
    if F_train is None:
        F_train = likelihood.forward_data(prior.train)
    logits = likelihood.data_log_likelihood(F_train)
    if prior.log_weights is not None:
        logits = logits + prior.log_weights.double().cpu().numpy()
    m = np.max(logits)
    return logits - (m + np.log(np.sum(np.exp(logits - m)))), F_train


def exact_memorized(
    prior: MemorizedPrior,
    likelihood: Likelihood,
    chains: int,
    config: ExactConfig = ExactConfig(),
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    F_train: np.ndarray | None = None,
) -> PosteriorSamples:
    """``chains`` exact draws of the memorized-prior posterior (module docstring); chain ``i`` uses seed
    ``seed + i``. ``component_weights`` holds the exact ``w``; ``info["F_train"]`` is not kept (pass
    ``F_train`` to reuse cached forward data)."""
    model_shape = check_pair(prior, likelihood)
    if not isinstance(prior, MemorizedPrior):
        raise ValueRangeError(f"the exact sampler needs a MemorizedPrior, got {type(prior).__name__}; "
                              "use split_gibbs or smc for a learned prior")
    if not isinstance(config, ExactConfig):
        raise ValueRangeError(f"config must be an ExactConfig, got {type(config).__name__}")
    started, g0, f0 = time.time(), likelihood.n_gradient, likelihood.n_forward
    log_w, F_train = memorized_posterior_log_weights(prior, likelihood, F_train)
    w = np.exp(log_w)
    noise = ChainNoise(seed, chains, model_shape, dtype, device)
    cdf = np.cumsum(w)
    idx = np.minimum(np.searchsorted(cdf, noise.uniform() * cdf[-1], side="right"), len(w) - 1)
    x = prior.train[torch.from_numpy(idx).to(prior.device)].to(device=device, dtype=dtype)
    info = {"sigma": config.sigma, "indices": idx.tolist(), "seeds": noise.seeds,
            "effective_modes": float(np.exp(-np.sum(w * np.where(w > 0, log_w, 0.0))))}
    if config.sigma > 0:
        x = x + config.sigma * noise.normal()
        result = finish("exact", x, likelihood, np.zeros(chains, bool), started, g0, f0, info=info)
    else:
        misfit = np.sqrt(likelihood.data_sq_misfit(F_train))[idx]
        info.update(method="exact", chains=chains, gradients_per_sample=0.0,
                    forwards_per_sample=(likelihood.n_forward - f0) / chains, wall_time_s=time.time() - started)
        result = PosteriorSamples("exact", x.double().cpu().numpy(), misfit, likelihood.gamma, likelihood.n_data,
                                  info=info)
    result.component_weights = w
    return result
