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

How large is the approximation? :func:`sigma_tilt` measures it for one component: the expected misfit of a draw of
``∝ N(x; x_n, σ² I) exp(−φ(x))`` (linearized) against the σ → 0 value ``‖y − F(x_n)‖``. It is the number to
quote wherever a sampler that targets the posterior at a finite ``sigma_min`` is scored against this reference.

Cost: N forward solves in total (``forwards_per_sample = N / chains``), plus one per chain when ``sigma > 0``
(the final misfits); with ``sigma = 0`` the misfits come from the cached ``F(x_n)``.
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
from geomem.posterior.matrix_free import MatrixFreeLinearizedPosterior
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


@dataclass(frozen=True)
class SigmaTilt:
    """Misfit/noise of one memorized component at bandwidth σ against its σ → 0 value (:func:`sigma_tilt`)."""

    sigma: float
    reference: float  # ‖y − F(x_n)‖/(γ√M): the σ → 0 posterior's misfit/noise on this component
    expected: tuple[float, float]  # bracket of E‖y − F(x)‖/(γ√M) under the linearized posterior at σ
    nonlinear_at_mean: float  # ‖y − F(x_n + μ)‖/(γ√M): the linearization checked at the mean
    mean_shift_rms: float  # ‖μ‖/√d (prior coordinates)
    cg_iterations: int
    cg_relative_residual: float

    @property
    def tilt(self) -> tuple[float, float]:
        """``expected`` relative to ``reference``, minus 1 (negative: the σ-posterior fits the data better)."""
        return self.expected[0] / self.reference - 1.0, self.expected[1] / self.reference - 1.0

    @property
    def largest_tilt(self) -> float:
        """``max |tilt|``: a bound on the relative misfit change from σ → 0 to σ."""
        return max(abs(t) for t in self.tilt)


def sigma_tilt(likelihood: Likelihood, x_n: np.ndarray, sigma: float, F_n: np.ndarray | None = None,
               cg_tol: float = 1e-8, cg_maxiter: int = 1000) -> SigmaTilt:
    """How far the posterior under a component of bandwidth ``sigma`` sits from its σ → 0 limit, in misfit.

    Component ``N(x; x_n, σ² I)`` (prior coordinates, ``x_n`` of ``likelihood.model_shape``; ``F_n = F(x_n)``
    if known). Linearized, ``F(x) ≈ F(x_n) + J δ``, its posterior is ``δ ~ N(μ, Σ)``, ``Σ = (σ⁻²I + γ⁻²JᵀJ)⁻¹``,
    ``μ = γ⁻² Σ Jᵀ r``, ``r = y − F(x_n)`` (:class:`MatrixFreeLinearizedPosterior`, CG for ``μ``; Born and
    adjoint-Born actions only), and

        E‖r − Jδ‖² = ‖r − Jμ‖² + tr(JΣJᵀ),   ‖r − Jμ‖² = γ² (rᵀC⁻¹r − ‖μ‖²/σ²),   C = σ²JJᵀ + γ²I,

    the second identity from the normal equations ``JᵀJμ = Jᵀr − γ²μ/σ²``. As ``0 ≤ tr(JΣJᵀ) =
    γ² Σ_i s_i/(1 + s_i) ≤ γ² min(d, M)`` (``s_i = σ²λ_i(JᵀJ)/γ²``), the expected misfit/noise of a draw lies in
    ``expected = (√(‖r − Jμ‖²/γ²M), √(‖r − Jμ‖²/γ²M + min(d, M)/M))``: below, ``E‖r − Jδ‖ ≥ ‖r − Jμ‖`` (the norm is
    convex); above, ``E‖r − Jδ‖ ≤ √(E‖r − Jδ‖²)``. The bracket is tight when ``d ≪ M`` (FWI: 4096 unknowns,
    325,120 data). Rigorous for a linear operator; for a nonlinear one it holds while the mean
    shift stays in the linear range, which ``nonlinear_at_mean`` (one forward solve) checks: where it differs
    from ``expected`` the linearization, not the prior width, is the story. Cost: one CG solve (one Born and one
    adjoint Born per iteration; fewer iterations at smaller σ).
    """
    x_n = np.asarray(x_n, dtype=np.float64)
    if tuple(x_n.shape) != likelihood.model_shape:
        raise ValueRangeError(f"x_n must have the likelihood's model shape {likelihood.model_shape}, "
                              f"got {tuple(x_n.shape)}")
    if F_n is None:
        F_n = likelihood.forward_data(x_n[None])[0]
    post = MatrixFreeLinearizedPosterior.fit(likelihood, x_n[None], sigma, rank=0, cg_tol=cg_tol,
                                             cg_maxiter=cg_maxiter, logdet=False,
                                             forward_train=np.asarray(F_n)[None])
    c = post.components[0]
    mu = c.mean - x_n.ravel()
    g2m = likelihood.gamma**2 * likelihood.n_data
    mean_sq = max(likelihood.gamma**2 * (c.quad - float(mu @ mu) / sigma**2), 0.0)
    d = mu.size
    expected = (math.sqrt(mean_sq / g2m), math.sqrt(mean_sq / g2m + min(d, likelihood.n_data) / likelihood.n_data))
    at_mean = float(likelihood.misfit_over_noise(c.mean.reshape(1, *likelihood.model_shape))[0])
    return SigmaTilt(float(sigma), c.residual_norm / math.sqrt(g2m), expected, at_mean,
                     float(np.sqrt(np.mean(mu**2))), c.cg_iterations, c.cg_relative_residual)
