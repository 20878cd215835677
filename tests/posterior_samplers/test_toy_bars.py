"""The issue's toy bars for the best sampler (SMC, default settings, 400 chains), scored against exact posteriors
(geomem.posterior.validation), averaged over the seeds of `geomem validate-samplers` (0, 1000, 2000).

Measured (docs/posterior.md, commit 1c2c082): TV 0.019 ± 0.010 (linear4d), 0.026 ± 0.008 (cubic1d),
0.042 ± 0.016 (quadratic2d, iid floor 0.043); coverage 0.900 ± 0.011 (linear_gaussian, seed 0: 0.892)."""

import numpy as np
import pytest
import torch

from geomem.experiments.validate_samplers import toy_config
from geomem.posterior.sample import sample_posterior
from geomem.posterior.validation import score, toy_problem

pytestmark = pytest.mark.slow
SEEDS = (0, 1000, 2000)


def smc_scores(name):
    p = toy_problem(name)
    out = []
    for seed in SEEDS:
        res = sample_posterior(p.prior, p.likelihood, "smc", 400, toy_config("smc", p.sigma), seed=seed,
                               dtype=torch.float64)
        assert res.info["ess"] > 100  # the weights did not collapse
        out.append(score(res, p))
    return out


@pytest.mark.parametrize("name, tv_bar", [("linear4d", 0.05), ("cubic1d", 0.05), ("quadratic2d", 0.05)])
def test_smc_mode_weights_and_misfit_on_memorized_toys(name, tv_bar):
    scores = smc_scores(name)
    assert np.mean([s["tv"] for s in scores]) <= tv_bar
    for s in scores:
        assert s["misfit_ratio"] == pytest.approx(1.0, abs=0.05)
        assert s["gradients_per_sample"] <= 2000


def test_smc_coverage_on_the_linear_gaussian_problem():
    p = toy_problem("linear_gaussian")
    res = sample_posterior(p.prior, p.likelihood, "smc", 400, toy_config("smc", p.sigma), seed=0,
                           dtype=torch.float64)
    s = score(res, p)
    assert 0.85 <= s["coverage"] <= 0.95
    assert s["misfit_ratio"] == pytest.approx(1.0, abs=0.05)


def test_dps_as_shipped_misses_the_cubic_posterior():
    """The heuristic the issue starts from: DPS's mode weights are far from the exact ones (TV 0.23)."""
    p = toy_problem("cubic1d")
    res = sample_posterior(p.prior, p.likelihood, "dps", 400, toy_config("dps", p.sigma), seed=0,
                           dtype=torch.float64)
    assert score(res, p)["tv"] > 0.15
