"""geomem.priors: the denoiser protocol, the exact memorized (Gaussian-mixture) prior, the learned (diffusers
UNet) prior, training and unconditional sampling.

``LearnedPrior`` (and what needs diffusers) load on first use.
"""

from geomem.priors.denoiser import Denoiser, sigma_column
from geomem.priors.memorized import MemorizedPrior
from geomem.priors.sampling import karras_sigmas, sample

_LAZY = {"LearnedPrior": "geomem.priors.learned", "UNetConfig": "geomem.priors.learned",
         "TrainConfig": "geomem.priors.training", "train": "geomem.priors.training"}

__all__ = ["Denoiser", "LearnedPrior", "MemorizedPrior", "TrainConfig", "UNetConfig", "karras_sigmas", "sample",
           "sigma_column", "train"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'geomem.priors' has no attribute {name!r}")
