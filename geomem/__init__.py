"""geomem: memorization in diffusion priors for seismic full-waveform inversion.

The names a notebook needs import from here (loaded on first use, so ``import geomem`` is cheap and changes
nothing in the process: no environment variables, no plotting backend)::

    from geomem import make_model_set, MemorizedPrior, LearnedPrior, AcousticOperator, Likelihood, sample_posterior

>>> import geomem
>>> sorted(set(geomem.__all__) - set(dir(geomem)))  # every public name resolves
[]
"""

from __future__ import annotations

import importlib

from geomem.errors import GeomemError

__version__ = "0.1.0"

#: public name → module that defines it
_PUBLIC = {
    # geology
    "ModelSet": "geomem.geology", "make_model_set": "geomem.geology", "Parameterization": "geomem.geology",
    "import_models": "geomem.geology",
    # physics
    "AcousticOperator": "geomem.physics", "Geometry": "geomem.physics", "ForwardOperator": "geomem.physics",
    "dottest": "geomem.physics", "taylor_test": "geomem.physics",
    # priors
    "Denoiser": "geomem.priors", "MemorizedPrior": "geomem.priors", "LearnedPrior": "geomem.priors",
    # posterior
    "Likelihood": "geomem.posterior", "PosteriorSamples": "geomem.posterior", "sample_posterior": "geomem.posterior",
    "SAMPLERS": "geomem.posterior", "dps": "geomem.posterior",
    "DPSConfig": "geomem.posterior", "LinearizedPosterior": "geomem.posterior",
    "MatrixFreeLinearizedPosterior": "geomem.posterior", "lookup_weights": "geomem.posterior",
    "effective_modes": "geomem.posterior",
    # metrics
    "memorization_report": "geomem.metrics", "memorization_ratios": "geomem.metrics",
    "null_baselines": "geomem.metrics", "posterior_summary": "geomem.metrics",
}
__all__ = ["GeomemError", "__version__", *sorted(_PUBLIC)]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'geomem' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
