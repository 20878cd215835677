"""Dense linearized mixture posterior: exact for linear operators, lookup limit as σ → 0, sampling."""

import math

import numpy as np
import pytest
import torch

from geomem.errors import ShapeError, ValueRangeError
from geomem.physics.toy import Cubic1D, MatrixOperator, Quadratic2D
from geomem.posterior import LinearizedPosterior, grid_posterior_1d, grid_posterior_2d, lookup_weights
from geomem.posterior.likelihood import Likelihood
from geomem.priors import MemorizedPrior

TRAIN_1D = np.array([-1.5, -0.4, 0.4, 1.2, 2.5])[:, None]
PENTAGON = 2.0 * np.stack([np.cos(2 * np.pi * np.arange(5) / 5), np.sin(2 * np.pi * np.arange(5) / 5)], 1)


def assert_matches_grid(lp, gp, atol=1e-10):
    np.testing.assert_allclose(lp.weights, gp.component_weights, rtol=0, atol=atol)
    np.testing.assert_allclose(lp.means, gp.component_means, rtol=0, atol=atol)
    np.testing.assert_allclose(lp.covariances, gp.component_covariances, rtol=0, atol=atol)
    np.testing.assert_allclose(lp.mean().ravel(), gp.mean, rtol=0, atol=atol)
    np.testing.assert_allclose(lp.covariance(), gp.covariance, rtol=0, atol=atol)


@pytest.mark.parametrize("sigma", [0.5, 0.3, 0.05])
def test_linear_1d_equals_exact_grid_posterior(sigma):
    op = MatrixOperator(np.array([[1.7]]))
    y = np.array([0.4])
    gp = grid_posterior_1d(Likelihood(op, y, 0.3), TRAIN_1D, sigma, np.linspace(-6, 6, 24001))
    assert gp.edge_mass < 1e-30
    lp = LinearizedPosterior.from_likelihood(Likelihood(op, y, 0.3), TRAIN_1D, sigma)
    assert_matches_grid(lp, gp)
    # the density itself, pointwise on the grid
    np.testing.assert_allclose(np.exp(lp.log_density(gp.axes[0][:, None])), gp.density, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("sigma", [0.5, 0.3])
def test_linear_2d_equals_exact_grid_posterior(sigma):
    op = MatrixOperator(np.array([[1.0, 0.4], [-0.3, 0.8]]))
    y = op.forward(0.7 * PENTAGON[0])
    ax = np.linspace(-4.5, 4.5, 601)
    gp = grid_posterior_2d(Likelihood(op, y, 0.3), PENTAGON, sigma, ax, ax)
    assert gp.edge_mass < 1e-20
    assert_matches_grid(LinearizedPosterior.from_likelihood(Likelihood(op, y, 0.3), PENTAGON, sigma), gp, atol=1e-9)


@pytest.mark.parametrize("d, m", [(6, 4), (3, 8)])  # data-space and model-space Cholesky
def test_linear_high_dim_equals_brute_force_density(d, m):
    rng = np.random.default_rng(d * 10 + m)
    op = MatrixOperator(rng.standard_normal((m, d)))
    train = rng.standard_normal((7, d))
    y = op.forward(train[2] + 0.3 * rng.standard_normal(d)) + 0.1 * rng.standard_normal(m)
    sigma, gamma = 0.4, 0.5
    lp = LinearizedPosterior.from_likelihood(Likelihood(op, y, gamma), train, sigma)
    # brute force: log p(x|y) = log N(y; A x, γ²I) + log p_σ(x) − log p(y), with p(y) a Gaussian mixture
    A = op.A
    log_py = -math.log(7) + np.logaddexp.reduce(
        [
            -0.5 * (y - A @ xn) @ np.linalg.solve(C, y - A @ xn) - 0.5 * np.linalg.slogdet(2 * np.pi * C)[1]
            for xn in train
            for C in [sigma**2 * A @ A.T + gamma**2 * np.eye(m)]
        ]
    )
    xs = train[rng.integers(0, 7, 20)] + 0.5 * rng.standard_normal((20, d))
    log_lik = -0.5 * np.sum((y - xs @ A.T) ** 2, 1) / gamma**2 - 0.5 * m * math.log(2 * math.pi * gamma**2)
    log_prior = MemorizedPrior(torch.from_numpy(train)).log_density(torch.from_numpy(xs), sigma).numpy()
    np.testing.assert_allclose(lp.log_density(xs), log_lik + log_prior - log_py, rtol=0, atol=1e-10)
    # both factorizations give the same mixture
    other = LinearizedPosterior.from_likelihood(Likelihood(op, y, gamma), train, sigma,
                                                space="model" if m <= d else "data")
    for a, b in [(lp.log_weights, other.log_weights), (lp.means, other.means), (lp.covariances, other.covariances)]:
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


def test_small_sigma_tends_to_lookup():
    op = Quadratic2D()
    y = op.forward(0.7 * PENTAGON[0])
    F = op.forward(PENTAGON)
    ref = lookup_weights(F, Likelihood.of_data(y, 0.3))
    errs = []
    for sigma in (1e-1, 1e-2, 1e-3, 1e-4):
        lp = LinearizedPosterior.from_likelihood(Likelihood(op, y, 0.3), PENTAGON, sigma)
        errs.append(np.abs(lp.weights - ref).max())
        assert np.abs(lp.means - PENTAGON).max() < 10 * sigma**2 / 0.3**2 * np.abs(F - y).max() + 1e-12
    assert errs[-1] < 1e-6 and all(a > b for a, b in zip(errs, errs[1:], strict=False))


def test_logdet_option_changes_weights_only():
    op = Cubic1D()
    a = LinearizedPosterior.from_likelihood(Likelihood(op, np.array([0.0]), 0.3), TRAIN_1D, 0.5, logdet=True)
    b = LinearizedPosterior.from_likelihood(Likelihood(op, np.array([0.0]), 0.3), TRAIN_1D, 0.5, logdet=False)
    np.testing.assert_array_equal(a.means, b.means)
    # without the log-determinant the weights are ∝ exp(−½ rᵀC⁻¹r) ... with it, also ∝ det(C)^(-1/2)
    ratio = (a.weights / b.weights) / (a.weights / b.weights)[0]
    np.testing.assert_allclose(ratio, np.exp(-0.5 * (a.logdets - a.logdets[0])), rtol=1e-12)
    assert np.abs(a.weights - b.weights).max() > 0.01  # visible at σ = 0.5 in the stylized problem


def test_samples_have_mixture_moments():
    op = Quadratic2D()
    lp = LinearizedPosterior.from_likelihood(Likelihood(op, op.forward(0.7 * PENTAGON[0]), 0.3), PENTAGON, 0.5)
    xs = lp.sample(200_000, rng=3)
    assert xs.shape == (200_000, 2)
    cov = lp.covariance()
    se = np.sqrt(np.diag(cov).max() / len(xs))
    np.testing.assert_allclose(xs.mean(0), lp.mean(), rtol=0, atol=5 * se)
    np.testing.assert_allclose(np.cov(xs.T), cov, rtol=0, atol=10 * np.abs(cov).max() / np.sqrt(len(xs)))
    np.testing.assert_array_equal(lp.sample(3, rng=1), lp.sample(3, rng=1))


def test_bad_input():
    op = Cubic1D()
    y = np.array([0.0])
    with pytest.raises(ValueRangeError, match="sigma"):
        LinearizedPosterior.from_likelihood(Likelihood(op, y, 0.3), TRAIN_1D, 0.0)
    with pytest.raises(ValueRangeError, match="gamma"):
        LinearizedPosterior.from_likelihood(Likelihood(op, y, -1.0), TRAIN_1D, 0.3)
    with pytest.raises(ShapeError, match="train"):
        LinearizedPosterior.from_likelihood(Likelihood(op, y, 0.3), TRAIN_1D[:, 0], 0.3)
    with pytest.raises(ShapeError, match="data shape"):
        LinearizedPosterior.from_likelihood(Likelihood(op, np.zeros(2), 0.3), TRAIN_1D, 0.3)
    with pytest.raises(ShapeError, match="jacobians"):
        LinearizedPosterior.from_likelihood(Likelihood(op, y, 0.3), TRAIN_1D, 0.3, jacobians=np.zeros((5, 2, 1)))
    with pytest.raises(ValueRangeError, match="NaN"):
        LinearizedPosterior.from_likelihood(Likelihood(op, np.array([np.nan]), 0.3), TRAIN_1D, 0.3)
    with pytest.raises(ShapeError, match="non-empty"):
        LinearizedPosterior.from_arrays(Likelihood.of_data(y, 0.3), np.zeros((0, 1)), np.zeros((0, 1)),
                                        np.zeros((0, 1, 1)), 0.3)
    with pytest.raises(ValueRangeError, match="space"):
        LinearizedPosterior.from_likelihood(Likelihood(op, y, 0.3), TRAIN_1D, 0.3, space="dense")
