"""HMC trajectories leave the anchored Gaussian target invariant (closed form), relax an ill-conditioned one faster
per gradient than MALA (exact expected misfit), and the annealed sampler's options that use them."""

import numpy as np
import pytest
import torch

from geomem.errors import ConfigError, ValueRangeError
from geomem.physics.toy import MatrixOperator
from geomem.posterior.annealed import AnnealedConfig
from geomem.posterior.chains import ChainNoise
from geomem.posterior.hmc import hmc_moves
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.mala import LangevinState, mala_moves
from geomem.posterior.sample import sample_posterior
from geomem.posterior.validation import anchored_gaussian, toy_problem


@pytest.mark.parametrize("with_metric", [False, True])
def test_hmc_samples_the_gaussian_target_of_a_linear_likelihood(with_metric, anchored_target):
    """U(z) = ‖y − Az‖²/2γ² + ‖z − a‖²/2r² (precision AᵀA/γ² + I/r²): mean and covariance of 2000 chains after 100
    trajectories of 4 leapfrog steps, in the identity metric and in a diagonal one with a 200× spread."""
    t = anchored_target
    lik, mean, cov, n, anchor = t.lik, t.mean, t.cov, t.n, t.anchor
    state = LangevinState.start(lik, anchor.clone(), 0.01)
    state = hmc_moves(lik, state, anchor, t.r, 100, 4, t.noise, precond=t.metric if with_metric else None)
    z = state.z.numpy()
    assert 0.4 < state.acceptance < 0.9
    assert np.all(np.abs(z.mean(0) - mean) < 4 * np.sqrt(np.diag(cov) / n) + 1e-3)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)  # standard error of a sample covariance
    assert np.all(np.abs(np.cov(z.T) - cov) < 4 * se)
    assert lik.n_gradient == n * (1 + 100 * 4)


def test_hmc_relaxes_an_ill_conditioned_target_where_mala_does_not_at_the_same_gradient_budget():
    """Curvatures 1 … 10⁴ (50 directions, r = 1), chains started at the anchor 0, 400 gradients each. The exact
    mean misfit of the target is ‖y − Aμ‖² + tr(AΣAᵀ); HMC (L = 10) ends within 10 % of it, MALA (step set by the
    stiffest direction, a random walk in the weak ones) more than 50 % above it (measured: 1.0× and 2.4×)."""
    d = 50
    lam = np.logspace(0, 4, d)
    A = np.diag(np.sqrt(lam))
    y = np.random.default_rng(0).standard_normal(d) * np.sqrt(lam)
    lik, mean, cov = anchored_gaussian(A, y, 1.0, np.zeros(d), 1.0)
    exact = np.sum((y - A @ mean) ** 2) + np.trace(A @ cov @ A.T)
    n = 200
    anchor = torch.zeros(n, d, dtype=torch.float64)

    def mean_misfit(move):
        state = move(LangevinState.start(lik, anchor.clone(), 1e-4), ChainNoise(0, n, (d,), torch.float64, "cpu"))
        return float((((state.z.numpy() @ A.T) - y) ** 2).sum(1).mean())

    hmc = mean_misfit(lambda s, noise: hmc_moves(lik, s, anchor, 1.0, 40, 10, noise))
    mala = mean_misfit(lambda s, noise: mala_moves(lik, s, anchor, 1.0, 400, noise))
    assert abs(hmc / exact - 1) < 0.1
    assert mala / exact > 1.5


def test_hmc_rejects_bad_settings_with_what_to_change():
    lik = Likelihood(MatrixOperator(np.eye(2)), np.zeros(2), 1.0)
    state = LangevinState.start(lik, torch.zeros(4, 2, dtype=torch.float64), 0.5)
    noise = ChainNoise(0, 4, (2,), torch.float64, "cpu")
    anchor = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(ValueRangeError, match="leapfrog_steps must be"):
        hmc_moves(lik, state, anchor, 0.5, 1, 0, noise)
    with pytest.raises(ValueRangeError, match="precond must be positive"):
        hmc_moves(lik, state, anchor, 0.5, 1, 2, noise, precond=torch.ones(3, dtype=torch.float64))
    with pytest.raises((ConfigError, ValueRangeError), match="multiple of leapfrog_steps"):
        AnnealedConfig(moves="hmc", mala_steps=10, leapfrog_steps=4)


@pytest.mark.parametrize("chain_start", ["denoised", "carried"])
def test_annealed_with_hmc_counts_its_gradients_and_fits_the_linear_gaussian_problem(chain_start):
    """K levels of M gradients: K (M + 1) gradients per chain from the denoised start, K M + 1 carried (one at the
    first x̂₀ only). On the linear-Gaussian validation problem the chains' misfit/noise ends near the exact
    posterior's (within 15 %, 64 chains: the mean's standard error is ≈ 4.5 %; measured 1.02 and 0.98)."""
    problem = toy_problem("linear_gaussian")
    lik = problem.likelihood
    cfg = AnnealedConfig(steps=20, mala_steps=16, moves="hmc", leapfrog_steps=4, chain_start=chain_start)
    post = sample_posterior(problem.prior, lik, "annealed", 64, cfg, seed=0)
    per_chain = 20 * 17 if chain_start == "denoised" else 20 * 16 + 1
    assert post.info["gradients_per_sample"] == per_chain
    ratio = float(np.mean(lik.misfit_over_noise(post.samples))) / problem.misfit_over_noise
    assert abs(ratio - 1) < 0.15


def test_annealed_logs_one_progress_line_per_level_with_the_chains_misfit(caplog):
    """`geomem --verbose` shows the `geomem` logger's INFO lines: the annealed sampler writes one per level, whose
    last misfit/noise median is the median of the samples' own misfit/noise (the same quantity)."""
    problem = toy_problem("linear_gaussian")
    lik = problem.likelihood
    cfg = AnnealedConfig(steps=4, mala_steps=8, moves="hmc", leapfrog_steps=4)
    with caplog.at_level("INFO", logger="geomem.posterior.annealed"):
        post = sample_posterior(problem.prior, lik, "annealed", 8, cfg, seed=0)
    lines = [r.getMessage() for r in caplog.records if r.name == "geomem.posterior.annealed"]
    assert [ln.split(":")[0] for ln in lines] == [f"annealed level {k}/4" for k in range(1, 5)]
    last_median = float(lines[-1].split("misfit/noise median ")[1].split()[0])
    assert abs(last_median - float(np.median(lik.misfit_over_noise(post.samples)))) < 2e-3


def test_an_overflowing_trajectory_is_rejected_not_passed_to_the_likelihood():
    """The cubic toy's φ ~ z⁶ in float32 with the largest step (c = 1) from z = 3: leapfrog points overflow to
    inf/NaN, which the likelihood refuses (it raised before). Such trajectories are rejected, the chains stay at
    finite points, and each trajectory still costs L gradients."""
    lik = toy_problem("cubic1d").likelihood
    n, shape = 64, tuple(lik.model_shape)
    z = torch.full((n, *shape), 3.0, dtype=torch.float32)
    state = LangevinState.start(lik, z, 1.0)
    state = hmc_moves(lik, state, z.clone(), 1.0, 5, 8, ChainNoise(0, n, shape, torch.float32, "cpu"))
    assert state.proposed == 5 * n and state.accepted < state.proposed
    assert bool(torch.isfinite(state.z).all()) and bool(torch.isfinite(state.phi).all())
    assert lik.n_gradient == n * (1 + 5 * 8)
