"""geomem.posterior: the likelihood, posterior samplers and closed-form posteriors under the memorized prior.

Every posterior takes a :class:`Likelihood` (operator, observed data, noise level γ, parameterization) and
samplers return :class:`PosteriorSamples`. A linear toy problem, where the linearized mixture is exact:

>>> import numpy as np, torch
>>> from geomem.physics.toy import MatrixOperator
>>> from geomem.priors import MemorizedPrior
>>> rng = np.random.default_rng(0)
>>> train = rng.uniform(-1, 1, (4, 3))                       # four training models
>>> op = MatrixOperator(rng.standard_normal((2, 3)))
>>> lik = Likelihood(op, y=op.forward(train[1]), gamma=0.05)  # noise-free data of model 1
>>> exact = LinearizedPosterior.from_likelihood(lik, train, sigma=0.05)
>>> exact.weights.round(3), lookup_weights(op.forward(train), lik).round(3)
(array([0., 1., 0., 0.]), array([0., 1., 0., 0.]))
>>> post = dps(MemorizedPrior(torch.tensor(train)), lik, chains=8, seed=0, dtype=torch.float64,
...            config=DPSConfig(steps=30, sigma_min=0.05, sigma_max=5.0, guidance="likelihood"))
>>> np.bincount(post.nearest_training(train), minlength=4)   # every chain on model 1
array([0, 8, 0, 0])
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
