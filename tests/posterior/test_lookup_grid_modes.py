"""Lookup weights, the exact grid posterior for nonlinear operators, effective modes and σ_crit."""

import math

import numpy as np
import pytest
from scipy.integrate import quad

from geomem.errors import ShapeError, ValueRangeError
from geomem.physics.toy import Cubic1D, Quadratic2D
from geomem.posterior import (
    effective_modes,
    grid_posterior,
    grid_posterior_1d,
    lookup_log_weights,
    lookup_weights,
    sigma_crit,
)
from geomem.posterior.likelihood import Likelihood

TRAIN_1D = np.array([-1.5, -0.4, 0.4, 1.2, 2.5])


def test_lookup_weights_closed_form_and_tiny_gamma():
    F = np.array([[0.0], [1.0], [-2.0]])
    w = lookup_weights(F, Likelihood.of_data(np.array([0.5]), 0.5))
    e = np.exp(-np.array([0.25, 0.25, 6.25]) / 0.5)
    np.testing.assert_allclose(w, e / e.sum(), rtol=1e-14)
    w_tiny = lookup_weights(F, Likelihood.of_data(np.array([0.4]), 1e-4))  # exp underflows without log-sum-exp
    assert np.all(np.isfinite(w_tiny)) and w_tiny[0] == pytest.approx(1.0) and w_tiny.sum() == pytest.approx(1.0)
    assert lookup_log_weights(F, Likelihood.of_data(np.array([0.4]), 1e-4))[1] < -1e5


def test_grid_posterior_1d_nonlinear_matches_adaptive_quadrature():
    op, y, sigma, gamma = Cubic1D(), np.array([0.0]), 0.3, 0.3
    gp = grid_posterior_1d(Likelihood(op, y, gamma), TRAIN_1D, sigma, np.linspace(-5, 5, 8001))

    def joint(x):
        prior = np.mean(np.exp(-0.5 * (x - TRAIN_1D) ** 2 / sigma**2)) / math.sqrt(2 * math.pi * sigma**2)
        return prior * math.exp(-0.5 * (x + 0.3 * x**3) ** 2 / gamma**2) / math.sqrt(2 * math.pi * gamma**2)

    z = quad(joint, -5, 5, epsabs=1e-14, points=list(TRAIN_1D))[0]
    mean = quad(lambda x: x * joint(x), -5, 5, epsabs=1e-14, points=list(TRAIN_1D))[0] / z
    var = quad(lambda x: (x - mean) ** 2 * joint(x), -5, 5, epsabs=1e-14, points=list(TRAIN_1D))[0] / z
    assert gp.log_evidence == pytest.approx(math.log(z), abs=1e-9)
    assert gp.mean[0] == pytest.approx(mean, abs=1e-9)
    assert gp.covariance[0, 0] == pytest.approx(var, abs=1e-9)
    assert gp.component_weights.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(gp.component_weights @ gp.component_means, gp.mean, atol=1e-12)
    assert np.trapezoid(gp.prior, gp.axes[0]) == pytest.approx(1.0, abs=1e-9)


def test_grid_posterior_2d_mass_and_shape():
    op = Quadratic2D()
    train = 2.0 * np.stack([np.cos(2 * np.pi * np.arange(5) / 5), np.sin(2 * np.pi * np.arange(5) / 5)], 1)
    y = op.forward(0.7 * train[0])
    x1, x2 = np.linspace(-4, 4, 201), np.linspace(-4, 4, 161)
    gp = grid_posterior(Likelihood(op, y, 0.3), train, 0.3, (x1, x2))
    assert gp.density.shape == (201, 161)
    w = np.outer(np.gradient(x1), np.gradient(x2))
    assert np.sum(gp.density * w) == pytest.approx(1.0, abs=1e-3)
    i, j = np.unravel_index(np.argmax(gp.density), gp.density.shape)
    assert np.hypot(x1[i] - train[0, 0], x2[j] - train[0, 1]) < 1.0  # posterior peaks near the truth's model


def test_effective_modes_and_sigma_crit():
    assert effective_modes(np.array([1.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert effective_modes(np.full(7, 1 / 7)) == pytest.approx(7.0)
    p = np.array([0.5, 0.25, 0.25])
    assert effective_modes(p) == pytest.approx(math.exp(-(0.5 * math.log(0.5) + 0.5 * math.log(0.25))))
    assert sigma_crit(0.5, 0.3, 2.0) == pytest.approx(math.sqrt(0.075))
    with pytest.raises(ValueRangeError, match="sum to 1"):
        effective_modes(np.array([0.5, 0.2]))
    with pytest.raises(ValueRangeError, match="gamma"):
        sigma_crit(0.5, 0.0, 1.0)


def test_bad_input():
    with pytest.raises(ShapeError, match="predicted data must be"):
        lookup_weights(np.zeros((3, 2)), Likelihood.of_data(np.zeros(3), 0.3))
    with pytest.raises(ValueRangeError, match="gamma"):
        lookup_weights(np.zeros((3, 1)), Likelihood.of_data(np.zeros(1), 0.0))
    with pytest.raises(ValueRangeError, match="empty"):
        lookup_weights(np.zeros((0, 1)), Likelihood.of_data(np.zeros(1), 0.3))
    with pytest.raises(ValueRangeError, match="NaN"):
        lookup_weights(np.array([[np.nan]]), Likelihood.of_data(np.zeros(1), 0.3))
    with pytest.raises(ShapeError, match="model shape"):
        grid_posterior(Likelihood(Quadratic2D(), np.zeros(2), 0.3), TRAIN_1D, 0.3, (np.linspace(-1, 1, 5),))
    with pytest.raises(ValueRangeError, match="increasing"):
        grid_posterior_1d(Likelihood(Cubic1D(), np.zeros(1), 0.3), TRAIN_1D, 0.3, np.array([1.0, 0.0, 2.0]))
    with pytest.raises(ValueRangeError, match="sigma"):
        grid_posterior_1d(Likelihood(Cubic1D(), np.zeros(1), 0.3), TRAIN_1D, -0.3, np.linspace(-1, 1, 5))
