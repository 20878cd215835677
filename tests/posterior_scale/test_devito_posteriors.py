"""Posteriors with the Devito operator on a tiny grid: matrix-free linearized mixture against dense mode, and
DPS with the memorized prior landing on the training model that the lookup weights single out.

The matrix-free checks need a few hundred PDE solves per training model (the dense Jacobian, the full-rank
eigenpairs and CG); they take minutes on a loaded 2-core machine and are marked ``slow``
(``bash scripts/test.sh -m slow``)."""

import numpy as np
import pytest
import torch

from geomem.errors import ShapeError, ValueRangeError
from geomem.geology import make_model_set
from geomem.metrics.memorization import memorization_ratios
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry
from geomem.posterior.dps import DPSConfig, dps
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.linearized import LinearizedPosterior
from geomem.posterior.lookup import lookup_weights
from geomem.posterior.matrix_free import MatrixFreeLinearizedPosterior
from geomem.priors import MemorizedPrior

SHAPE = (10, 10)
SIGMA = 0.05  # km/s: the mixture lives in velocity here (no parameterization)


@pytest.fixture(scope="module")
def problem():
    geo = Geometry.surface(SHAPE, 10.0, n_src=2, t_max=200.0, f0=15.0, vmax_bound=4.5)
    op = AcousticOperator(SHAPE, 10.0, geo, nbl=6, dtype=np.float64)
    ms = make_model_set("curvefault", n=4, size=SHAPE, seed=3)
    y0 = op.forward(ms.models[1])
    gamma = 0.02 * float(np.sqrt(np.mean(y0**2)))
    y = y0 + gamma * np.random.default_rng(0).standard_normal(y0.shape)
    return op, ms, y, gamma


@pytest.fixture(scope="module")
def posteriors(problem):
    op, ms, y, gamma = problem
    train = ms.models[:2].astype(np.float64)
    dense = LinearizedPosterior.from_likelihood(Likelihood(op, y, gamma), train, SIGMA)
    full = MatrixFreeLinearizedPosterior.fit(Likelihood(op, y, gamma), train, SIGMA, rank=100, cg_tol=1e-13,
                                             cg_maxiter=500)
    return train, dense, full


@pytest.mark.slow
def test_matrix_free_equals_dense_at_full_rank(posteriors):
    train, dense, full = posteriors
    np.testing.assert_allclose(full.weights, dense.weights, rtol=1e-6, atol=1e-12)
    scale = np.abs(dense.means).max()
    assert np.abs(full.means.reshape(len(train), -1) - dense.means).max() / scale < 1e-6
    v = np.random.default_rng(1).standard_normal(SHAPE[0] * SHAPE[1])
    for n in range(len(train)):
        exact = dense.covariances[n] @ v
        approx = full.covariance_action(n, v.reshape(1, *SHAPE)).ravel()
        assert np.linalg.norm(approx - exact) / np.linalg.norm(exact) < 1e-6


@pytest.mark.slow
def test_truncation_error_decays_with_lanczos_rank(problem, posteriors):
    op, ms, y, gamma = problem
    train, _, full = posteriors
    errors = []
    for rank in (2, 8, 32):
        post = MatrixFreeLinearizedPosterior.fit(Likelihood(op, y, gamma), train, SIGMA, rank=rank, cg_tol=1e-13,
                                                 cg_maxiter=500)
        err = max(abs(c.logdet - f.logdet) for c, f in zip(post.components, full.components, strict=True))
        assert err <= max(c.logdet_tail_bound for c in post.components) + 1e-8
        errors.append(err)
    assert errors[0] > errors[1] > errors[2]


def test_dps_with_memorized_prior_lands_on_the_lookup_winner(problem):
    op, ms, y, gamma = problem
    x = ms.normalized().astype(np.float64)
    w = lookup_weights(op.forward(ms.models), Likelihood.of_data(y, gamma))
    prior = MemorizedPrior(torch.from_numpy(x).float())
    cfg = DPSConfig(steps=20, sigma_max=20.0, sigma_min=0.01, guidance="chung", zeta=1.0)
    res = dps(prior, Likelihood(op, y, gamma, ms.parameterization), 4, cfg, seed=0)
    ratios = memorization_ratios(res.samples, x)
    assert (ratios.ratio_k < 0.1).all()  # every chain ends on a training model ...
    assert (ratios.nearest == np.argmax(w)).all()  # ... the one the likelihood-weighted lookup picks
    assert np.median(res.misfit_over_noise) < 1.2  # and fits the data to the noise


def test_misfit_value_equals_the_misfit_of_the_gradient_call(problem):
    """``Likelihood.misfit`` (forward only, used for samplers' final misfit) is the φ of the gradient call,
    and φ carries the 1/γ² of the documented formula."""
    op, ms, y, gamma = problem
    x = torch.from_numpy(ms.parameterization.to_normalized(ms.models[[0, 2]])).double()
    lik = Likelihood(op, y, gamma, ms.parameterization)
    phi, _ = lik.misfit_and_gradient(x)
    np.testing.assert_allclose(lik.misfit(x), phi.numpy(), rtol=1e-12)
    r = op.forward(ms.models[0]) - y
    # 1e-6: the model went through to_normalized/to_velocity (rounding of the velocity at ~1e-16 relative
    # moves a misfit of 1e6 by ~1e-8 relative)
    np.testing.assert_allclose(phi[0].item(), 0.5 * np.sum(r**2) / gamma**2, rtol=1e-6)


@pytest.mark.slow
def test_dps_chains_on_dask_workers_equal_serial(problem):
    """One task per chain on two worker processes: the same samples and final misfits as the serial run."""
    from distributed import Client, LocalCluster

    from geomem.physics.faults import BoundedClient

    op, ms, y, gamma = problem
    prior = MemorizedPrior(torch.from_numpy(ms.parameterization.to_normalized(ms.models)).float())
    cfg = DPSConfig(steps=4, sigma_max=5.0, sigma_min=0.05, guidance="chung", zeta=0.5)
    lik = Likelihood(op, y, gamma, ms.parameterization)
    serial = dps(prior, lik, 3, cfg, seed=0)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        par = dps(prior, lik.with_client(BoundedClient(client)), 3, cfg, seed=0)
    np.testing.assert_array_equal(par.samples, serial.samples)  # same code per chain: bit for bit
    np.testing.assert_array_equal(par.misfit, serial.misfit)


def test_bad_input_before_any_pde_solve(problem):
    op, ms, y, gamma = problem
    with pytest.raises(ShapeError):
        Likelihood(op, y[:, :-1], gamma, ms.parameterization)
    with pytest.raises(ValueRangeError):
        MatrixFreeLinearizedPosterior.fit(Likelihood(op, y, 0.0), ms.models[:2], SIGMA)
    other = MemorizedPrior(torch.zeros(3, 1, 8, 8))
    with pytest.raises(ShapeError, match="operator expects"):
        dps(other, Likelihood(op, y, gamma, ms.parameterization), 2)
