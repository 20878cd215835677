"""The finite-σ tilt: a sampler at bandwidth σ_min against the σ → 0 memorized posterior (issue 16, docs/posterior.md).

A linear problem built like the held-out FWI case: d = 32 unknowns, M = 512 data (d ≪ M), a decaying spectrum
(singular values 40 · 0.85^i), four training models far apart, a truth off the training set so that the exact
σ → 0 posterior is training model 0 with misfit/noise 3.15. Under the σ-wide memorized prior the posterior on that
component is the Gaussian of :func:`~geomem.posterior.linearized.linearized_component` (exact for a linear
operator): at σ = 0.03 (largest σ²λ/γ² = 1.4) its expected misfit/noise is 2.56, 18 % below the σ → 0 value — the
finite-σ effect that made the held-out FWI row miss the bar's 2 % — and at σ = 0.001 it is within 0.3 %.
"""

import numpy as np
import pytest
import torch

from geomem.config import load_config
from geomem.errors import ValueRangeError
from geomem.experiments.validate_samplers import ValidateConfig
from geomem.physics.toy import MatrixOperator
from geomem.posterior.annealed import AnnealedConfig
from geomem.posterior.exact import sigma_tilt
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.linearized import linearized_component
from geomem.posterior.sample import sample_posterior
from geomem.priors.memorized import MemorizedPrior

SIGMA_WIDE, SIGMA_SMALL = 0.03, 0.001


def linear_mixture(scale=40.0):
    """``(likelihood, train (4, 32), A)``; singular values ``scale · 0.85^i``."""
    rng = np.random.default_rng(16)
    d, m, gamma = 32, 512, 1.0
    U, _ = np.linalg.qr(rng.standard_normal((m, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    A = U @ np.diag(scale * 0.85 ** np.arange(d)) @ V.T
    train = 3.0 * rng.standard_normal((4, d))
    e = rng.standard_normal(d)
    e *= 3.0 * np.sqrt(m) * gamma / np.linalg.norm(A @ e)
    y = A @ (train[0] + e) + gamma * rng.standard_normal(m)
    return Likelihood(MatrixOperator(A), y, gamma), train, A


@pytest.fixture(scope="module")
def problem():
    return linear_mixture()


def exact_misfit(problem, sigma, draws=40_000):
    """E‖y − Ax‖/(γ√M) under the exact posterior on component 0 at bandwidth σ (Monte Carlo of the closed form)."""
    lik, train, A = problem
    c = linearized_component(train[0], A @ train[0], A, lik.y, sigma, lik.gamma)
    x = np.random.default_rng(3).multivariate_normal(c.mean, c.covariance, size=draws)
    return float(np.mean(np.linalg.norm(lik.y - x @ A.T, axis=1)) / (lik.gamma * np.sqrt(lik.n_data)))


def annealed_misfit(problem, sigma, mala_steps, chains=64, step_reset=False):
    """Mean misfit/noise of the annealed sampler with the FWI validation's start and schedule, and the chains'
    nearest training models."""
    lik, train, _ = problem
    cfg = AnnealedConfig(steps=10, mala_steps=mala_steps, sigma_min=sigma, prior_draws=256, start_sigma=2.0,
                         step_reset=step_reset)
    res = sample_posterior(MemorizedPrior(torch.from_numpy(train)), lik, "annealed", chains, cfg, seed=0,
                           dtype=torch.float64)
    return float(np.mean(res.misfit_over_noise)), res.nearest_training(train)


def test_sigma_tilt_brackets_the_closed_form_expected_misfit(problem):
    lik, train, A = problem
    for sigma in (SIGMA_WIDE, SIGMA_SMALL):
        t = sigma_tilt(lik, train[0], sigma)
        mc = exact_misfit(problem, sigma)
        assert t.expected[0] - 1e-3 <= mc <= t.expected[1] + 1e-3
        # linear operator: the misfit at the mean is the bracket's lower end (the normal-equation identity)
        assert t.nonlinear_at_mean == pytest.approx(t.expected[0], rel=1e-6)
        assert t.reference == pytest.approx(np.linalg.norm(lik.y - A @ train[0]) / np.sqrt(lik.n_data), rel=1e-12)
    assert sigma_tilt(lik, train[0], SIGMA_WIDE).largest_tilt > 0.15
    assert sigma_tilt(lik, train[0], SIGMA_SMALL).largest_tilt < 0.005
    with pytest.raises(ValueRangeError, match="model shape"):
        sigma_tilt(lik, train[0][:5], SIGMA_SMALL)


def test_annealed_draws_the_finite_sigma_posterior(problem):
    """At σ_min = 0.03 the converged sampler's misfit is the σ-posterior's (closed form), not the σ → 0 value:
    the 18 % gap is the target's, not a sampler error."""
    exact = exact_misfit(problem, SIGMA_WIDE)
    mon, nearest = annealed_misfit(problem, SIGMA_WIDE, mala_steps=30)
    assert np.all(nearest == 0)
    assert mon == pytest.approx(exact, rel=0.005)


def test_small_sigma_min_meets_the_two_percent_bar_and_a_wide_one_does_not(problem):
    """With σ_min chosen by ``sigma_tilt`` (< 0.5 %), the FWI validation's budget (10 levels × 10 MALA steps) puts
    every chain on the exact posterior's model with misfit within 2 % of its σ → 0 value; the same sampler at the
    wide σ_min misses by the finite-σ tilt (> 2 %), which is what this test catches if it comes back."""
    lik, train, _ = problem
    reference = sigma_tilt(lik, train[0], SIGMA_SMALL).reference
    mon, nearest = annealed_misfit(problem, SIGMA_SMALL, mala_steps=10)
    assert np.all(nearest == 0)
    assert abs(mon / reference - 1) <= 0.02
    wide, _ = annealed_misfit(problem, SIGMA_WIDE, mala_steps=10)
    assert abs(wide / reference - 1) > 0.02


def test_a_stiff_likelihood_stalls_the_carried_step_and_a_reset_step_reaches_the_posterior():
    """Singular values ×5 (largest σ²λ/γ² at the upper levels ~10⁵, as in FWI): with the MALA step factor carried
    from those levels the last level barely moves and the misfit stays ~3 % above the σ = 0.003 posterior's (the
    FWI row's under-convergence); with ``step_reset`` the same 10 moves reach it."""
    stiff = linear_mixture(scale=200.0)
    exact = exact_misfit(stiff, 0.003)
    carried, _ = annealed_misfit(stiff, 0.003, mala_steps=10)
    reset, nearest = annealed_misfit(stiff, 0.003, mala_steps=10, step_reset=True)
    assert np.all(nearest == 0)
    assert carried / exact - 1 > 0.02
    assert reset == pytest.approx(exact, rel=0.005)


@pytest.mark.slow
def test_the_fwi_validation_config_keeps_the_held_out_tilt_below_half_a_percent():
    """The committed FWI validation of ``annealed`` (data/configs/validate_samplers_annealed_fwi.toml) runs at a
    σ_min whose finite-σ tilt on the held-out truth's exact model is < 0.5 % (measured 0.2 % at 1e-4; 44 % at the
    default 0.01). Full-size Devito problem: ~10 s with the forward cache warm, ~30 s cold."""
    from geomem.workflow.problem import Problem

    cfg = load_config(ValidateConfig, "data/configs/validate_samplers_annealed_fwi.toml")
    f = cfg.fwi
    assert "heldout:0" in f.truths and f.methods == ("annealed",)
    problem = Problem.build(f.model_set, f.survey)
    F_train = problem.forward_train(f.n_train)
    _, lik = problem.likelihood("heldout:0", f.noise, cfg.seed, f.n_train, forward=F_train)
    n = int(np.argmin(lik.data_sq_misfit(F_train)))
    t = sigma_tilt(lik, problem.train(f.n_train)[n], f.annealed.sigma_min, F_n=F_train[n])
    assert t.largest_tilt < 0.005
    assert t.nonlinear_at_mean == pytest.approx(t.expected[0], rel=1e-3)
