"""Bad input to the acquisition and the acoustic operator: each a clear GeomemError (or warning) before any solve."""

import numpy as np
import pytest
from physics_helpers import SHAPE, SPACING, tiny_geometry

from geomem.errors import GeometryError, ShapeError, StabilityError, ValueRangeError
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry, critical_dt, laplacian_weights, ricker


@pytest.fixture(scope="module")
def op():
    # no PDE is solved in this file, so the Devito operators are never built
    return AcousticOperator(SHAPE, SPACING, tiny_geometry(), nbl=10)


def test_nan_velocity(op):
    v = np.full(op.model_shape, 2.0)
    v[0, 3, 4] = np.nan
    with pytest.raises(ValueRangeError, match="NaN"):
        op.forward(v)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_non_positive_velocity(op, bad):
    v = np.full(op.model_shape, 2.0)
    v[0, 0, 0] = bad
    with pytest.raises(ValueRangeError, match="> 0"):
        op.forward(v)


def test_velocity_above_bound(op):
    with pytest.raises(StabilityError, match="vmax_bound"):
        op.forward(np.full(op.model_shape, 4.6))


def test_source_outside_grid():
    with pytest.raises(GeometryError, match="source 1"):
        Geometry(SHAPE, (SPACING, SPACING), [[10.0, 10.0], [240.0, 10.0]], [[0.0, 10.0]])
    with pytest.raises(GeometryError, match="receiver 0"):
        Geometry(SHAPE, (SPACING, SPACING), [[10.0, 10.0]], [[10.0, -1.0]])


def test_few_points_per_wavelength_warns(op):
    geom = Geometry.surface(SHAPE, SPACING, n_src=1, t_max=100.0, f0=40.0)
    with pytest.warns(UserWarning, match="points per shortest wavelength"):
        geom.check_dispersion(1.5)
    with pytest.warns(UserWarning, match="1.88 grid points"):  # 1000 · 1.5 / (2 · 40 · 10)
        geom.check_dispersion(1.5)


def test_wrong_data_shapes(op):
    v = np.full(op.model_shape, 2.0)
    with pytest.raises(ShapeError, match="observed data"):
        op.misfit_and_gradient(v, np.zeros((1, 2, 3)), 1.0)
    with pytest.raises(ShapeError, match="velocity must have shape"):
        op.forward(np.full(SHAPE, 2.0))
    with pytest.raises(ShapeError):
        op.jacobian(v).rmatvec(np.zeros((1, 2, 3)))
    with pytest.raises(ValueRangeError, match="gamma"):
        op.misfit_and_gradient(v, np.zeros(op.data_shape), 0.0)


def test_geometry_mismatch_with_operator():
    with pytest.raises(ShapeError, match="geometry"):
        AcousticOperator((32, 32), SPACING, tiny_geometry())


def test_ricker_peak_and_zero_crossings():
    f0 = 15.0
    t0 = 1000.0 / f0
    assert ricker(f0, np.array([t0]))[0] == pytest.approx(1.0)
    # zeros at t0 ± 1/(π f √2)
    tz = t0 + 1000.0 / (np.pi * f0 * np.sqrt(2.0))
    assert ricker(f0, np.array([tz]))[0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueRangeError):
        ricker(-1.0, np.zeros(3))


def test_laplacian_weights_and_cfl():
    np.testing.assert_allclose(laplacian_weights(2), [-2.0, 1.0])
    np.testing.assert_allclose(laplacian_weights(4), [-5 / 2, 4 / 3, -1 / 12])
    # second order, 1-D-equivalent check in 2-D: dt_max = h / (v √2)
    assert critical_dt(2.0, (10.0, 10.0), 2) == pytest.approx(10.0 / (2.0 * np.sqrt(2.0)))
