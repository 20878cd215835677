"""Posteriors by kind, each returned as a :class:`~geomem.posterior.result.PosteriorSamples`.

- ``lookup``: the σ → 0 likelihood-weighted lookup of the training models (``chains`` draws of a training
  model with probability ``w_n``; needs only the cached ``F(x_n)``);
- ``linearized``: the closed-form linearized mixture under the memorized prior of width σ, matrix-free, on
  the components with the largest lookup weights (at most ``components``, each with weight ≥ ``min_weight``,
  the best always kept);
- ``memorized``: the exact posterior under the memorized prior (:func:`~geomem.posterior.exact.exact_memorized`:
  lookup weights from the cached ``F(x_n)``, draws noised to the bandwidth σ_min of the comparison — the validated
  reference of ``geomem validate-samplers``);
- ``learned``: the sampler ``SamplerSettings.method`` with a learned prior (by default ``annealed`` started from 32
  importance-resampled prior draws, 40 likelihood gradients per sample: the lowest misfit of the samplers measured at
  that budget, docs/posterior.md, "Which sampler when"; not converged — no sampler reached the FWI posterior with a
  learned prior at CPU budgets).

Every posterior can be cached under a content key (:func:`geomem.workflow.cache.cached`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geomem.config import Settings
from geomem.posterior.annealed import AnnealedConfig
from geomem.posterior.dps import DPSConfig
from geomem.posterior.exact import ExactConfig, exact_memorized
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.lookup import lookup_weights
from geomem.posterior.matrix_free import MatrixFreeLinearizedPosterior
from geomem.posterior.result import PosteriorSamples
from geomem.posterior.sample import sample_posterior
from geomem.posterior.smc import SMCConfig
from geomem.posterior.split_gibbs import SplitGibbsConfig
from geomem.priors.memorized import MemorizedPrior
from geomem.workflow.cache import cached

#: samplers a recipe may use with a learned prior (the exact sampler needs the memorized prior)
LEARNED_SAMPLERS = ("split_gibbs", "smc", "annealed", "dps")


@dataclass(frozen=True)
class SamplerSettings(Settings):
    """The posterior sampler of a recipe (TOML table ``[sampler]``, one sub-table per method).

    ``method`` draws the learned-prior posterior; the memorized prior always gets the exact sampler at the same
    σ_min (the chosen method's ``sigma_min``), which is also the bandwidth of the linearized mixture. Defaults are
    CPU-sized (tens of likelihood gradients per sample): not converged for FWI (docs/posterior.md).

    Default: ``annealed`` (DAPS style), 8 levels × 4 MALA steps = 40 likelihood gradients per sample, started from
    ``prior_draws = 32`` unconditional prior draws (8 Heun steps each) resampled by their likelihood, annealed from
    ``start_sigma = 2``: 32 forward solves shared by the chains. Chosen by ``scripts/sampler_budget.sh`` (FWI 64²,
    held-out truth, shipped priors N = 50 and 1000, 8 chains, 2-core CPU): mean misfit/noise 3.64 / 3.45 against
    4.92 / 4.54 for split Gibbs at 41 gradients (8 levels × 4 MALA + 2 sweeps, the previous default, kept below)
    and 5.25 / 5.01 for the same annealed sampler without the start, in less wall time (split Gibbs's reverse-
    diffusion prior steps cost 20 network calls per level). For a training-model truth split Gibbs fitted better
    (2.70 / 3.04 against 3.38 / 3.61, ``geomem compare``, 8 chains): set ``method = "split_gibbs"`` there.
    """

    method: str = field(default="annealed", metadata={"choices": LEARNED_SAMPLERS})
    split_gibbs: SplitGibbsConfig = SplitGibbsConfig(levels=8, mala_steps=4, final_sweeps=2)
    smc: SMCConfig = SMCConfig(burn_in=1, max_levels=8, mala_steps=4, final_sweeps=1)
    annealed: AnnealedConfig = AnnealedConfig(steps=8, mala_steps=4, prior_draws=32, draw_steps=8, start_sigma=2.0)
    dps: DPSConfig = DPSConfig(steps=16)

    @property
    def config(self):
        return getattr(self, self.method)

    @property
    def sigma_min(self) -> float:
        return float(self.config.sigma_min)


@dataclass(frozen=True)
class LinearizedSettings(Settings):
    components: int = field(default=2, metadata={"min": 1})  # at most this many components ...
    min_weight: float = field(default=1e-3, metadata={"min": 0, "max": 1})  # ... with lookup weight >= this
    rank: int = field(default=4, metadata={"min": 0})
    cg_tol: float = field(default=1e-6, metadata={"gt": 0})
    cg_maxiter: int = field(default=10, metadata={"min": 1})


def lookup_posterior(lik: Likelihood, train_x: np.ndarray, F_train: np.ndarray, chains: int,
                     rng: np.random.Generator) -> PosteriorSamples:
    """``chains`` draws of the lookup posterior (training models with probability ``w_n``)."""
    n = len(train_x)
    w = lookup_weights(F_train[:n], lik)
    picks = rng.choice(n, size=chains, p=w)
    misfit = np.linalg.norm((F_train[picks] - lik.y).reshape(chains, -1), axis=1)
    return PosteriorSamples("lookup", train_x[picks], misfit, lik.gamma, lik.n_data, component_weights=w,
                            info={"forwards_per_sample": 0.0, "gradients_per_sample": 0.0})


def linearized_posterior(lik: Likelihood, train_x: np.ndarray, F_train: np.ndarray, sigma: float,
                         s: LinearizedSettings, chains: int, rng: np.random.Generator,
                         lookup_w: np.ndarray) -> PosteriorSamples:
    """``chains`` draws of the matrix-free linearized mixture on the leading lookup components."""
    n = len(train_x)
    order = np.argsort(lookup_w)[::-1][: s.components]
    order = order[(lookup_w[order] >= s.min_weight) | (np.arange(len(order)) == 0)]  # keep the best
    post = MatrixFreeLinearizedPosterior.fit(lik, train_x, sigma, indices=order, rank=s.rank, cg_tol=s.cg_tol,
                                             cg_maxiter=s.cg_maxiter, forward_train=F_train)
    xs, _ = post.sample(chains, rng)
    weights = np.zeros(n)
    weights[post.indices] = post.weights
    stats = post.stats
    return PosteriorSamples("linearized", xs, lik.residual_norm(xs), lik.gamma, lik.n_data, component_weights=weights,
                            info={"born_actions": stats["born_actions"], "adjoint_actions": stats["adjoint_actions"],
                                  "logdet_tail_bound": stats["logdet_tail_bound_max"]})


def sampled_posterior(prior, lik: Likelihood, chains: int, settings: SamplerSettings, seed: int,
                      F_train: np.ndarray | None = None, device="cpu") -> PosteriorSamples:
    """The posterior with ``prior``: exact (lookup weights from ``F_train`` when given, draws noised to σ_min) for
    a memorized prior, the sampler ``settings.method`` for any other prior."""
    if isinstance(prior, MemorizedPrior):
        return exact_memorized(prior, lik, chains, ExactConfig(sigma=settings.sigma_min), seed=seed,
                               F_train=F_train)
    return sample_posterior(prior, lik, settings.method, chains, settings.config, seed=seed, device=device)


def cached_posterior(path: Path, key: str, method: str, compute) -> PosteriorSamples:
    """``compute()`` once per content ``key``; the result is stored at ``path`` and read back as it was."""
    arrays = cached(path, key, lambda: compute().to_arrays())
    return PosteriorSamples.from_arrays(arrays, method)
