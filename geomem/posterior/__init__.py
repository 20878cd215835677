"""geomem.posterior: posteriors under the memorized prior (lookup, linearized mixture, exact grid), modes."""

from geomem.posterior.grid import GridPosterior, grid_posterior, grid_posterior_1d, grid_posterior_2d
from geomem.posterior.linearized import (
    LinearizedComponent,
    LinearizedPosterior,
    linearized_component,
    mixture_log_weights,
)
from geomem.posterior.lookup import lookup_log_weights, lookup_weights
from geomem.posterior.modes import effective_modes, sigma_crit

__all__ = [
    "GridPosterior",
    "LinearizedComponent",
    "LinearizedPosterior",
    "effective_modes",
    "grid_posterior",
    "grid_posterior_1d",
    "grid_posterior_2d",
    "linearized_component",
    "lookup_log_weights",
    "lookup_weights",
    "mixture_log_weights",
    "sigma_crit",
]
