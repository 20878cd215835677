"""DPS with the memorized prior on a linear operator, scored against the exact posterior mixture.

For ``F(x) = A x`` and the memorized prior of width σ the exact posterior is the Gaussian mixture of
:class:`~geomem.posterior.linearized.LinearizedPosterior` (exact for a linear operator). DPS is a heuristic:
the scores below are what each guidance rule measured at these settings (float64, fixed seeds); they are
pinned so that a change in behaviour shows, and reported in docs/posterior.md.
"""

import numpy as np
import pytest
import torch

from geomem.errors import ShapeError, ValueRangeError
from geomem.physics.toy import MatrixOperator
from geomem.posterior.dps import DPSConfig, OperatorMisfit, dps
from geomem.posterior.linearized import LinearizedPosterior
from geomem.posterior.scoring import score_against_mixture
from geomem.priors import MemorizedPrior

SIGMA = GAMMA = 0.2

#: measured scores (assignment TV distance, RMS mean error, within-component spread ratio)
PINNED = {
    "chung": ({"zeta": 0.2}, 0.406, 0.364, 1.702),
    "likelihood": ({"likelihood_scale": 1.0}, 0.374, 0.321, 1.474),
    "normalized": ({"eta": 0.05}, 0.550, 0.439, 1.372),
}


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    d, m, N = 8, 4, 5
    A = rng.standard_normal((m, d)) / np.sqrt(d)
    train = rng.standard_normal((N, d))
    y = A @ (0.5 * train[0] + 0.5 * train[1]) + GAMMA * rng.standard_normal(m)
    op = MatrixOperator(A)
    exact = LinearizedPosterior.from_operator(op, train, y, SIGMA, GAMMA)
    return op, train, y, exact


def test_unguided_sampler_draws_the_exact_prior(problem):
    """With zero guidance the stochastic sampler is exact for the memorized prior (no heuristic involved)."""
    _, train, _, _ = problem
    prior = MemorizedPrior(torch.tensor(train))

    def zero(x):
        return torch.zeros(len(x), dtype=x.dtype), torch.zeros_like(x)

    cfg = DPSConfig(steps=50, sigma_min=SIGMA, sigma_max=5.0, guidance="chung", zeta=0.0)
    res = dps(prior, zero, 2000, cfg, seed=0, dtype=torch.float64)
    score = score_against_mixture(res.samples.numpy(), np.full(5, 0.2), train, SIGMA**2 * np.eye(8))
    assert score["assignment_tv"] < 0.04
    assert score["within_std_ratio"] == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("rule", sorted(PINNED))
def test_guidance_rules_scored_against_exact_posterior(problem, rule):
    op, train, y, exact = problem
    params, tv, mean_err, spread = PINNED[rule]
    cfg = DPSConfig(steps=40, sigma_min=SIGMA, sigma_max=5.0, guidance=rule, **params)
    res = dps(MemorizedPrior(torch.tensor(train)), OperatorMisfit(op, y), 500, cfg, seed=0, dtype=torch.float64)
    assert not res.diverged.any()
    score = score_against_mixture(res.samples.numpy(), exact.weights, exact.means, exact.covariances[0])
    assert score["assignment_tv"] == pytest.approx(tv, abs=0.02)
    assert score["mean_error"] == pytest.approx(mean_err, abs=0.02)
    assert score["within_std_ratio"] == pytest.approx(spread, abs=0.03)
    # every rule still puts most samples on the component that carries the exact posterior mass
    assert np.argmax(score["assignment_freq"]) == np.argmax(exact.weights)
    assert res.misfit_history.shape == (40, 500)


def test_chains_are_reproducible_whatever_the_batch(problem):
    op, train, y, _ = problem
    prior = MemorizedPrior(torch.tensor(train))
    cfg = DPSConfig(steps=10, sigma_min=SIGMA, sigma_max=5.0)
    big = dps(prior, OperatorMisfit(op, y), 4, cfg, seed=7, dtype=torch.float64)
    small = dps(prior, OperatorMisfit(op, y), 2, cfg, seed=9, dtype=torch.float64)
    torch.testing.assert_close(big.samples[2:], small.samples, rtol=0, atol=0)


def test_divergent_chains_are_flagged_and_excluded(problem):
    op, train, y, _ = problem
    cfg = DPSConfig(steps=10, sigma_min=SIGMA, sigma_max=5.0, guidance="chung", zeta=1e6, divergence_factor=10.0)
    res = dps(MemorizedPrior(torch.tensor(train)), OperatorMisfit(op, y), 4, cfg, seed=0, dtype=torch.float64)
    assert res.diverged.all()
    assert len(res.valid_samples()) == 0


def test_bad_input_before_any_solve(problem):
    op, train, y, _ = problem
    prior = MemorizedPrior(torch.tensor(train))
    with pytest.raises(ShapeError):
        OperatorMisfit(op, y[:-1])
    with pytest.raises(ValueRangeError):
        OperatorMisfit(op, np.full_like(y, np.nan))
    with pytest.raises(ShapeError):
        dps(MemorizedPrior(torch.zeros(3, 5, dtype=torch.float64)), OperatorMisfit(op, y), 2)
    with pytest.raises(ValueRangeError):
        dps(prior, OperatorMisfit(op, y), 0)
