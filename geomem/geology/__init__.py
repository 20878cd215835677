"""geomem.geology: velocity-model families, model sets (storage, normalization, splits) and import.

Public API::

    ModelSet, make_model_set, DEFAULT_MODEL_SET, FAMILIES, nearest_neighbour_distances,
    import_models, Parameterization
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
