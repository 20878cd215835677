"""MALA and split-Gibbs moves leave their targets invariant (closed forms), the dispatcher's contract."""

import numpy as np
import pytest
import torch

from geomem.errors import ConfigError, ValueRangeError
from geomem.physics.toy import Cubic1D, MatrixOperator
from geomem.posterior.chains import ChainNoise
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.mala import LangevinState, mala_moves
from geomem.posterior.sample import SAMPLERS, sample_posterior, sampler_config
from geomem.posterior.smc import SMCConfig, ess_of, predicted_increment, systematic_resample, transport
from geomem.posterior.split_gibbs import SplitGibbsConfig, split_gibbs
from geomem.posterior.validation import _grid_reference, anchored_gaussian, cubic1d, score


def test_mala_samples_the_gaussian_target_of_a_linear_likelihood():
    """U(z) = ‖y − Az‖²/2γ² + ‖z − a‖²/2r²: Gaussian with precision AᵀA/γ² + I/r² (exact mean and covariance)."""
    A = np.array([[1.0, 0.5], [0.0, 2.0]])
    y, gamma, a, r = np.array([0.3, -0.2]), 0.5, np.array([0.2, 0.1]), 0.4
    lik, mean, cov = anchored_gaussian(A, y, gamma, a, r)
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


def test_diagonal_metric_mala_samples_the_gaussian_target(anchored_target):
    """U(z) = ‖y − Az‖²/2γ² + ‖z − a‖²/2r² is Gaussian (precision AᵀA/γ² + I/r²); a fixed diagonal metric P with a
    200× spread must leave it invariant: mean and covariance of 2000 chains after 200 moves."""
    t = anchored_target
    lik, mean, cov, n, r, anchor, precond = t.lik, t.mean, t.cov, t.n, t.r, t.anchor, t.metric
    state = LangevinState.start(lik, anchor.clone(), 0.5)
    assert float(precond.max() / precond.min()) > 200
    state = mala_moves(lik, state, anchor, r, 200, t.noise, precond=precond)
    z = state.z.numpy()
    assert 0.3 < state.acceptance < 0.85
    assert np.all(np.abs(z.mean(0) - mean) < 4 * np.sqrt(np.diag(cov) / n) + 1e-3)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)  # standard error of a sample covariance
    assert np.all(np.abs(np.cov(z.T) - cov) < 4 * se)


def test_tamed_mala_leaves_the_steep_tail_of_a_cubic_likelihood():
    """Chains started at z = 2.5, where φ = (z + 0.3z³ − 1)²/2γ² has gradient ≈ 450, reach the target
    U = φ + (z − 2.5)²/2r² (r = 3; mean and variance by quadrature on a fine grid). Untamed, the first drifts
    overshoot to |z| ~ 10³, proposals are rejected until the shared step factor has shrunk, and the mean after
    300 moves is 0.24 off (measured; the bound here is 0.06)."""
    lik = Likelihood(Cubic1D(0.3), np.array([1.0]), 0.3)
    a, r, n = 2.5, 3.0, 400
    grid = np.linspace(-3.0, 4.0, 70001)
    u = 0.5 * (grid + 0.3 * grid**3 - 1.0) ** 2 / 0.09 + 0.5 * (grid - a) ** 2 / r**2
    p = np.exp(-(u - u.min()))
    p /= p.sum()
    mean, var = p @ grid, p @ (grid - p @ grid) ** 2
    noise = ChainNoise(1, n, (1,), torch.float64, "cpu")
    anchor = torch.full((n, 1), a, dtype=torch.float64)
    state = mala_moves(lik, LangevinState.start(lik, anchor.clone(), 0.5), anchor, r, 300, noise)
    z = state.z[:, 0].numpy()
    assert abs(z.mean() - mean) < 5 * np.sqrt(var / n) + 0.01
    assert np.var(z) == pytest.approx(var, rel=0.3)


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


@pytest.mark.parametrize("a", [0.75, 0.9, 1.0])
def test_smc_transport_weight_is_the_ratio_of_extended_targets(a):
    """log π_ρ'(x, x + a(z − x)) + d log a − log π_ρ(x, z), Gaussian densities written out (the prior factor is the
    same on both sides), equals the transport increment; a = ρ'/ρ = 0.75 leaves only φ(z) − φ(x + a(z − x)).
    φ is quadratic here, so the first-order prediction misses exactly ½(1 − a)²‖A(z − x)‖²/γ²."""
    A = np.array([[1.0, 0.5, -0.3], [0.2, 2.0, 0.1]])
    lik = Likelihood(MatrixOperator(A), np.array([0.3, -0.2]), 0.5)
    rng = np.random.default_rng(3)
    x, z = torch.tensor(rng.standard_normal((5, 3))), torch.tensor(rng.standard_normal((5, 3)))
    rho, rho_new, d = 0.8, 0.6, 3
    state = LangevinState.start(lik, z, 0.5)
    n0 = lik.n_gradient
    q = ((z - x) ** 2).sum(1).numpy()
    moved, inc = transport(lik, state, x, q, rho, rho_new, a)

    def log_target(zz, rr):
        phi = 0.5 * (((zz.numpy() @ A.T) - lik.y) ** 2).sum(1) / lik.gamma**2
        return -0.5 * ((zz - x) ** 2).sum(1).numpy() / rr**2 - d * np.log(rr) - phi

    expect = log_target(moved.z, rho_new) + d * np.log(a) - log_target(z, rho)
    np.testing.assert_allclose(inc, expect, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(moved.z.numpy(), (x + a * (z - x)).numpy(), rtol=1e-14)
    np.testing.assert_allclose(moved.phi.numpy(), lik.misfit_and_gradient(moved.z)[0].numpy(), rtol=1e-12)
    assert lik.n_gradient - n0 == (0 if a == 1.0 else 5) + 5  # the check above costs 5
    miss = 0.5 * (1 - a) ** 2 * (((z - x).numpy() @ A.T) ** 2).sum(1) / lik.gamma**2
    g = (state.grad * (z - x)).sum(1).numpy()
    np.testing.assert_allclose(predicted_increment(q, g, d, rho, rho_new, a) - inc, miss, rtol=1e-10, atol=1e-12)


def test_smc_weights_helpers():
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
