"""Matrix-free linearized posterior against closed forms (linear operator) and the IS reference."""

import numpy as np
import pytest
from scipy.special import logsumexp

from geomem.errors import ShapeError, ValueRangeError
from geomem.physics.toy import MatrixOperator
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.matrix_free import MatrixFreeLinearizedPosterior, importance_reference


def exact_linear_mixture(A, train, y, sigma, gamma):
    """Closed form of p(x|y) ∝ N(y; Ax, γ²I) Σ N(x; x_n, σ²I), written independently (dense, data space)."""
    m = A.shape[0]
    C = sigma**2 * A @ A.T + gamma**2 * np.eye(m)
    Cinv = np.linalg.inv(C)
    _, logdet = np.linalg.slogdet(C)
    logw, means = [], []
    for xn in train:
        r = y - A @ xn
        logw.append(-0.5 * r @ Cinv @ r - 0.5 * logdet)
        means.append(xn + sigma**2 * A.T @ Cinv @ r)
    logw = np.array(logw)
    cov = sigma**2 * np.eye(A.shape[1]) - sigma**4 * A.T @ Cinv @ A
    return np.exp(logw - logsumexp(logw)), np.array(means), cov


@pytest.fixture
def problem():
    rng = np.random.default_rng(1)
    d, m, N = 12, 7, 6
    A = rng.standard_normal((m, d)) / np.sqrt(d)
    train = rng.standard_normal((N, d))
    y = A @ (0.7 * train[0] + 0.3 * train[1]) + 0.05 * rng.standard_normal(m)
    return MatrixOperator(A), train, y


@pytest.mark.parametrize("sigma", [0.05, 0.3, 1.0])
def test_full_rank_equals_closed_form(problem, sigma):
    op, train, y = problem
    gamma = 0.2
    post = MatrixFreeLinearizedPosterior.fit(Likelihood(op, y, gamma), train, sigma, rank=op.model_shape[0],
                                             cg_tol=1e-13)
    w, means, cov = exact_linear_mixture(op.A, train, y, sigma, gamma)
    np.testing.assert_allclose(post.weights, w, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(post.means, means, rtol=1e-8, atol=1e-10)
    v = np.random.default_rng(0).standard_normal(op.model_shape[0])
    for n in range(len(train)):
        np.testing.assert_allclose(post.covariance_action(n, v), cov @ v, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(post.pointwise_std(n), np.sqrt(np.diag(cov)), rtol=1e-9)


def test_truncation_error_decays_with_rank_and_is_bounded(problem):
    op, train, y = problem
    sigma, gamma = 0.5, 0.2
    full = MatrixFreeLinearizedPosterior.fit(Likelihood(op, y, gamma), train, sigma, rank=12, cg_tol=1e-13)
    errors = []
    for rank in (1, 3, 5, 7):
        post = MatrixFreeLinearizedPosterior.fit(Likelihood(op, y, gamma), train, sigma, rank=rank, cg_tol=1e-13)
        err = max(abs(c.logdet - f.logdet) for c, f in zip(post.components, full.components, strict=True))
        bound = max(c.logdet_tail_bound for c in post.components)
        assert err <= bound + 1e-9
        errors.append(err)
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-8  # rank 7 = rank of A (m = 7)


def test_sampling_matches_moments(problem):
    op, train, y = problem
    post = MatrixFreeLinearizedPosterior.fit(Likelihood(op, y, 0.2), train, 0.3, rank=12, cg_tol=1e-13)
    x, which = post.sample(40000, rng=3)
    freq = np.bincount(which, minlength=len(train)) / len(which)
    np.testing.assert_allclose(freq, post.weights, atol=0.01)
    np.testing.assert_allclose(x.mean(0), post.mean(), atol=0.02)


def test_importance_reference_recovers_exact_posterior_for_linear_operator(problem):
    op, train, y = problem
    sigma, gamma = 0.3, 0.2
    lik = Likelihood(op, y, gamma)
    post = MatrixFreeLinearizedPosterior.fit(lik, train, sigma, rank=12, cg_tol=1e-13)
    ref = importance_reference(post, lik, train, 4000, rng=5)
    # the proposal is the exact posterior here, so the weights are uniform and the ESS is the sample size
    assert ref["ess"] == pytest.approx(4000, rel=1e-6)


def test_bad_input(problem):
    op, train, y = problem
    with pytest.raises(ValueRangeError):
        MatrixFreeLinearizedPosterior.fit(Likelihood(op, y, 0.2), train, 0.0)
    with pytest.raises(ValueRangeError):
        MatrixFreeLinearizedPosterior.fit(Likelihood(op, y, -1.0), train, 0.1)
    with pytest.raises(ShapeError):
        MatrixFreeLinearizedPosterior.fit(Likelihood(op, y[:-1], 0.2), train, 0.1)
    with pytest.raises(ShapeError):
        MatrixFreeLinearizedPosterior.fit(Likelihood(op, y, 0.2), train[:, :-1], 0.1)
