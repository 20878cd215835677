"""geomem.geology: velocity-model families, model sets (storage, normalization, splits) and import.

Public API::

    ModelSet, make_model_set, DEFAULT_MODEL_SET, FAMILIES, nearest_neighbour_distances,
    import_models, Parameterization

>>> import numpy as np
>>> ms = make_model_set("flatvel", n=5, size=16, seed=0)  # velocities in km/s, (n, 1, nz, nx)
>>> len(ms), ms.shape, (ms.vmin, ms.vmax)
(5, (1, 16, 16), (1.5, 4.5))
>>> ms.parameterization.to_velocity(np.array([-1.0, 0.0, 1.0]))  # prior coordinates -> km/s
array([1.5, 3. , 4.5])
"""

from geomem.geology.distances import nearest_neighbour_distances
from geomem.geology.families import DIFFICULTIES, FAMILIES
from geomem.geology.io import import_models
from geomem.geology.modelset import DEFAULT_MODEL_SET, ModelSet, make_model_set
from geomem.geology.openfwi import import_openfwi_data, import_openfwi_velocity
from geomem.geology.parameterization import Parameterization

__all__ = [
    "DEFAULT_MODEL_SET", "DIFFICULTIES", "FAMILIES", "ModelSet", "Parameterization", "import_models",
    "import_openfwi_data", "import_openfwi_velocity", "make_model_set", "nearest_neighbour_distances",
]
