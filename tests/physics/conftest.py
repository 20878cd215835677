"""Shared tiny acoustic operators for the physics tests (built once per test session; Devito compiles once)."""

import numpy as np
import pytest
from physics_helpers import SHAPE, SPACING, tiny_geometry

from geomem.physics.acoustic import AcousticOperator


@pytest.fixture(scope="session")
def op64():
    return AcousticOperator(SHAPE, SPACING, tiny_geometry(), nbl=10, dtype=np.float64)


@pytest.fixture(scope="session")
def op32():
    return AcousticOperator(SHAPE, SPACING, tiny_geometry(), nbl=10, dtype=np.float32)
