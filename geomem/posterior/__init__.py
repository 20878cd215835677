"""geomem.posterior: the likelihood, posterior samplers and closed-form posteriors under the memorized prior.

Every posterior takes a :class:`Likelihood` (operator, observed data, noise level γ, parameterization) and
samplers return :class:`PosteriorSamples`.
"""

from geomem.posterior.annealed import AnnealedConfig, annealed
from geomem.posterior.dps import DPSConfig, dps
from geomem.posterior.exact import ExactConfig, exact_memorized
from geomem.posterior.grid import GridPosterior, grid_posterior, grid_posterior_1d, grid_posterior_2d
from geomem.posterior.likelihood import Likelihood, synthetic_data
from geomem.posterior.linearized import (
    LinearizedComponent,
    LinearizedPosterior,
    linearized_component,
    mixture_log_weights,
)
from geomem.posterior.lookup import lookup_log_weights, lookup_weights
from geomem.posterior.matrix_free import MatrixFreeLinearizedPosterior, importance_reference
from geomem.posterior.modes import effective_modes, sigma_crit
from geomem.posterior.result import PosteriorSamples
from geomem.posterior.sample import SAMPLERS, sample_posterior
from geomem.posterior.smc import SMCConfig, smc
from geomem.posterior.split_gibbs import SplitGibbsConfig, split_gibbs

__all__ = [
    "DPSConfig",
    "GridPosterior",
    "Likelihood",
    "LinearizedComponent",
    "LinearizedPosterior",
    "MatrixFreeLinearizedPosterior",
    "PosteriorSamples",
    "dps",
    "effective_modes",
    "grid_posterior",
    "grid_posterior_1d",
    "grid_posterior_2d",
    "importance_reference",
    "linearized_component",
    "lookup_log_weights",
    "lookup_weights",
    "mixture_log_weights",
    "sigma_crit",
    "synthetic_data",
    "AnnealedConfig", "ExactConfig", "SAMPLERS", "SMCConfig", "SplitGibbsConfig",
    "annealed", "exact_memorized", "sample_posterior", "smc", "split_gibbs",
]
