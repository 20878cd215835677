"""geomem.priors: the denoiser protocol and the exact memorized (Gaussian-mixture) prior."""

from geomem.priors.denoiser import Denoiser, sigma_column
from geomem.priors.memorized import MemorizedPrior

__all__ = ["Denoiser", "MemorizedPrior", "sigma_column"]
