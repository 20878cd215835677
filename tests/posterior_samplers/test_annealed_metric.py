"""The annealed sampler's MALA step options: the step carried as a size (``step_carry = "size"``), moves in the
metric of an estimated Gauss–Newton diagonal (``precondition``), more moves at the last level (the diagonal metric's
MALA against a closed-form Gaussian target is in test_mala_split_gibbs.py)."""

import importlib

import numpy as np
import pytest
import torch

from geomem.errors import ConfigError, ValueRangeError
from geomem.experiments.validate_samplers import toy_config
from geomem.physics.toy import MatrixOperator
from geomem.posterior.annealed import AnnealedConfig
from geomem.posterior.chains import ChainNoise
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.mala import LangevinState, curvature_terms, mala_moves
from geomem.posterior.sample import sample_posterior
from geomem.posterior.validation import toy_problem

annealed_module = importlib.import_module("geomem.posterior.annealed")  # the package exports a function of that name


def test_the_metric_must_be_positive_with_the_model_shape():
    lik = Likelihood(MatrixOperator(np.eye(2)), np.zeros(2), 1.0)
    state = LangevinState.start(lik, torch.zeros(4, 2, dtype=torch.float64), 0.5)
    noise = ChainNoise(0, 4, (2,), torch.float64, "cpu")
    for bad in (torch.ones(3, dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64)):
        with pytest.raises(ValueRangeError, match="precond must be positive"):
            mala_moves(lik, state, torch.zeros(4, 2, dtype=torch.float64), 0.5, 1, noise, precond=bad)


def test_curvature_terms_estimate_the_gauss_newton_diagonal_for_a_white_residual_of_any_size():
    """g = Aᵀε/γ² with ε white of size s: E[g² M/2φ] = diag(AᵀA)/γ², whatever s (20 000 draws, 3 % tolerance)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((400, 5)) * np.array([1.0, 3.0, 0.1, 10.0, 1.0])
    gamma = 0.2
    lik = Likelihood(MatrixOperator(A), np.zeros(400), gamma)
    for s in (gamma, 20 * gamma):
        eps = s * rng.standard_normal((20000, 400))
        grad = torch.tensor(eps @ A / gamma**2)
        phi = torch.tensor((eps**2).sum(1) / (2 * gamma**2))
        est = curvature_terms(lik, phi, grad).mean(0).numpy()
        np.testing.assert_allclose(est, np.diag(A.T @ A) / gamma**2, rtol=0.03)


def _recorded(monkeypatch):
    """Wrap the sampler's ``mala_moves`` to record, per level, the entry factor, r, moves and the metric."""
    calls = []
    inner = annealed_module.mala_moves

    def recorded(lik, state, anchor, r, steps, noise, adapt_rate, precond=None):
        calls.append({"c_in": float(state.c.max()), "r": float(r), "steps": int(steps), "precond": precond})
        out = inner(lik, state, anchor, r, steps, noise, adapt_rate, precond=precond)
        calls[-1]["c_out"] = float(out.c.max())
        return out

    monkeypatch.setattr(annealed_module, "mala_moves", recorded)
    return calls


def test_step_carry_size_scales_the_factor_by_the_ratio_of_widths(monkeypatch):
    calls = _recorded(monkeypatch)
    p = toy_problem("linear_gaussian")
    cfg = toy_config("annealed", p.sigma, {"steps": 12, "mala_steps": 3, "step_carry": "size"})
    res = sample_posterior(p.prior, p.likelihood, "annealed", 16, cfg, seed=0, dtype=torch.float64)
    for prev, cur in zip(calls[:-1], calls[1:], strict=True):
        assert cur["c_in"] == pytest.approx(min(1.0, prev["c_out"] * (prev["r"] / cur["r"]) ** 2), rel=1e-12)
    assert res.info["step_factors"] == pytest.approx([c["c_out"] for c in calls])
    assert len(res.info["acceptance"]) == 12


def test_last_level_preconditioned_with_its_own_moves(monkeypatch):
    calls = _recorded(monkeypatch)
    p = toy_problem("linear_gaussian")
    cfg = toy_config("annealed", p.sigma, {"steps": 6, "mala_steps": 3, "last_mala_steps": 7,
                                           "precondition": "last"})
    res = sample_posterior(p.prior, p.likelihood, "annealed", 16, cfg, seed=0, dtype=torch.float64)
    assert [c["steps"] for c in calls] == [3] * 5 + [7]
    assert all(c["precond"] is None for c in calls[:-1])
    last = calls[-1]
    assert last["c_in"] == cfg.step_init  # the factor starts afresh in the new metric
    assert bool((last["precond"] > 0).all() and (last["precond"] <= 1).all())
    assert res.info["gradients_per_sample"] == 5 * 4 + 8
    assert len(res.info["precond_spread"]) == 1


def test_step_options_that_contradict_each_other_are_refused():
    with pytest.raises(ValueRangeError, match="step_reset"):
        AnnealedConfig(step_reset=True, step_carry="size")
    with pytest.raises(ConfigError, match="precondition must be one of"):
        AnnealedConfig(precondition="diagonal")
