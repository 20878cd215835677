"""geomem: memorization in diffusion priors for seismic full-waveform inversion.

Importing the package sets the environment defaults of :mod:`geomem.env` (serial Devito, Devito logging
at WARNING, a per-user compile cache, offline Hugging Face libraries) before Devito or diffusers load.
"""

from geomem.env import apply_defaults as _apply_defaults

_apply_defaults()

from geomem.errors import GeomemError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["GeomemError", "__version__"]
