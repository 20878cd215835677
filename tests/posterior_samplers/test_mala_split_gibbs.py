"""MALA and split-Gibbs moves leave their targets invariant (closed forms), the dispatcher's contract."""

import numpy as np
import pytest
import torch

from geomem.errors import ConfigError, ValueRangeError
from geomem.physics.toy import MatrixOperator
from geomem.posterior.chains import ChainNoise
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.mala import LangevinState, log_gaussian_ratio, mala_moves
from geomem.posterior.sample import SAMPLERS, sample_posterior, sampler_config
from geomem.posterior.smc import SMCConfig, ess_of, systematic_resample
from geomem.posterior.split_gibbs import SplitGibbsConfig, split_gibbs
from geomem.posterior.validation import _grid_reference, cubic1d, score


def test_mala_samples_the_gaussian_target_of_a_linear_likelihood():
    """U(z) = ‖y − Az‖²/2γ² + ‖z − a‖²/2r²: Gaussian with precision AᵀA/γ² + I/r² (exact mean and covariance)."""
    A = np.array([[1.0, 0.5], [0.0, 2.0]])
    y, gamma, a, r = np.array([0.3, -0.2]), 0.5, np.array([0.2, 0.1]), 0.4
    lik = Likelihood(MatrixOperator(A), y, gamma)
    prec = A.T @ A / gamma**2 + np.eye(2) / r**2
    cov = np.linalg.inv(prec)
    mean = cov @ (A.T @ y / gamma**2 + a / r**2)
    n = 2000
    noise = ChainNoise(0, n, (2,), torch.float64, "cpu")
    anchor = torch.tensor(a).expand(n, 2).contiguous()
    state = LangevinState.start(lik, anchor.clone(), 0.5)
    state = mala_moves(lik, state, anchor, r, 150, noise)
    z = state.z.numpy()
    assert 0.3 < state.acceptance < 0.85
    assert np.all(np.abs(z.mean(0) - mean) < 4 * np.sqrt(np.diag(cov) / n) + 0.005)
    np.testing.assert_allclose(np.cov(z.T), cov, rtol=0.1, atol=0.002)
    assert lik.n_gradient == n * 151


def test_split_gibbs_at_fixed_rho_draws_the_exact_posterior_at_sqrt_sigma0_sq_plus_rho_sq():
    """The z-marginal of π_ρ is the posterior under the prior at √(σ₀² + ρ²) (cubic problem, grid reference)."""
    base = cubic1d()
    sigma, rho = 0.5, 0.3
    ref = _grid_reference("cubic", base.likelihood, base.train, sigma, (np.linspace(-5, 5, 20001),))
    cfg = SplitGibbsConfig(levels=1, rho_max=rho, rho_min=rho, sigma_min=sigma, final_sweeps=60, mala_steps=5)
    res = split_gibbs(ref.prior, ref.likelihood, 400, cfg, seed=0, dtype=torch.float64)
    s = score(res, ref)
    assert s["tv"] < 0.05
    assert s["misfit_ratio"] == pytest.approx(1.0, abs=0.05)
    assert res.info["sigma0"] == pytest.approx(0.4)
    assert res.info["gradients_per_sample"] == 1 + 61 * 5


def test_smc_weights_helpers():
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    x = torch.zeros(2, 2, dtype=torch.float64)
    # log N(z; x, r'²) − log N(z; x, r²) in closed form (d = 2)
    expect = [-np.log(0.25), -0.5 * (1 / 0.25 - 1) - np.log(0.25)]
    np.testing.assert_allclose(log_gaussian_ratio(z, x, 1.0, 0.5), expect, rtol=1e-12)
    assert ess_of(np.zeros(10)) == pytest.approx(10)
    assert ess_of(np.array([0.0, -np.inf, -np.inf])) == pytest.approx(1)
    idx = systematic_resample(np.log([0.5, 0.25, 0.25, 1e-300]), np.random.default_rng(0))
    assert sorted(np.bincount(idx, minlength=4).tolist()) == [0, 1, 1, 2]


def test_dispatcher_names_configs_and_errors():
    assert set(SAMPLERS) == {"exact", "split_gibbs", "smc", "annealed", "dps"}
    assert sampler_config("smc", {"mala_steps": 3}).mala_steps == 3
    with pytest.raises(ConfigError, match="unknown posterior sampler"):
        sampler_config("langevin")
    with pytest.raises(ConfigError):
        sampler_config("smc", {"not_a_setting": 1})
    with pytest.raises(ValueRangeError, match="rho_min"):
        SMCConfig(rho_min=0.02, sigma_min=0.01)
    base = cubic1d()
    res = sample_posterior(base.prior, base.likelihood, "split_gibbs", 3,
                           {"levels": 2, "mala_steps": 1, "final_sweeps": 0, "sigma_min": 0.05, "rho_min": 0.02})
    assert res.method == "split_gibbs" and res.n_samples == 3
    with pytest.raises(ValueRangeError, match="SplitGibbsConfig"):
        split_gibbs(base.prior, base.likelihood, 2, SMCConfig())
