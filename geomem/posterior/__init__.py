"""geomem.posterior: the likelihood, posterior samplers and closed-form posteriors under the memorized prior.

Every posterior takes a :class:`Likelihood` (operator, observed data, noise level γ, parameterization) and
samplers return :class:`PosteriorSamples`.
"""

from geomem.posterior.dps import DPSConfig, dps
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
]
