"""Toy operators: closed-form values, adjointness, Taylor tests, finite-difference Jacobians, bad input."""

import numpy as np
import pytest

from geomem.errors import ShapeError, ValueRangeError
from geomem.physics.operator import ForwardOperator, dottest, taylor_test
from geomem.physics.toy import Cubic1D, MatrixOperator, Quadratic2D

OPS = [
    (Cubic1D(), np.array([0.7])),
    (Quadratic2D(), np.array([0.8, -1.3])),
    (MatrixOperator(np.random.default_rng(0).standard_normal((4, 3))), np.array([0.2, -0.5, 1.1])),
]


def test_closed_form_values():
    np.testing.assert_allclose(Cubic1D().forward(np.array([2.0])), [2.0 + 0.3 * 8.0])
    np.testing.assert_allclose(Quadratic2D().forward(np.array([2.0, -1.0])), [2.0 - 0.6, -1.0 + 0.8])
    A = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    np.testing.assert_allclose(MatrixOperator(A).forward(np.array([1.0, -1.0])), [-1.0, -1.0, -1.0])
    batch = np.array([[0.0, 1.0], [2.0, -1.0]])
    np.testing.assert_allclose(Quadratic2D().forward(batch), [[0.0, 1.0], [1.4, -0.2]])


@pytest.mark.parametrize("op, m0", OPS)
def test_jacobian_adjoint_taylor_and_finite_differences(op, m0):
    assert isinstance(op, ForwardOperator)
    J = op.jacobian(m0)
    assert dottest(J)[2] < 1e-13
    rng = np.random.default_rng(1)
    d_obs = op.forward(m0 + 0.3 * rng.standard_normal(m0.shape))
    dm = rng.standard_normal(m0.shape)
    res = taylor_test(lambda m: op.misfit_and_gradient(m, d_obs, 0.3), m0, dm, steps=2.0 ** -np.arange(2, 10))
    assert res["slope1"] > 1.9 or res["first"].max() < 1e-10  # linear operators: remainder is round-off
    h = 1e-6
    fd = np.stack([(op.forward(m0 + h * e) - op.forward(m0 - h * e)) / (2 * h) for e in np.eye(m0.size)], axis=1)
    np.testing.assert_allclose(J.to_dense(), fd, rtol=1e-7, atol=1e-8)


def test_bad_input():
    with pytest.raises(ShapeError, match="shape"):
        Quadratic2D().forward(np.zeros(3))
    with pytest.raises(ShapeError, match="one model"):
        Cubic1D().jacobian(np.zeros((2, 1)))
    with pytest.raises(ValueRangeError, match="NaN"):
        Cubic1D().forward(np.array([np.nan]))
    with pytest.raises(ShapeError, match="matrix"):
        MatrixOperator(np.zeros(3))
