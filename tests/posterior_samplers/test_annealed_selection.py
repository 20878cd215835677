"""The annealed sampler's likelihood-tempered selection (``select_levels``): the selection rule itself, the
lineage bookkeeping, and its effect against an exact posterior (quadratic2d toy, 400 chains, seeds 0 and 1000).

Measured with the defaults of ``geomem validate-samplers`` for ``annealed`` (50 levels × 10 MALA steps): TV to the
exact mode masses 0.314 / 0.243 without selection, 0.206 / 0.158 with ``select_levels = 3`` (misfit/noise over
the exact value 1.21 / 1.16 → 1.13 / 1.09). The heuristic moves the population towards the exact posterior here;
on the Gaussian problem it lowers the misfit below the exact value (0.94–0.96 of it), which is its bias
(docs/posterior.md, "Likelihood-tempered selection")."""

import numpy as np
import pytest
import torch

from geomem.errors import ValueRangeError
from geomem.experiments.validate_samplers import toy_config
from geomem.posterior.annealed import AnnealedConfig, tempered_selection
from geomem.posterior.sample import sample_posterior
from geomem.posterior.smc import ess_of
from geomem.posterior.validation import score, toy_problem


def test_selection_keeps_the_target_ess_with_the_largest_beta_and_drops_a_trapped_chain():
    rng = np.random.default_rng(0)
    phi = np.concatenate([rng.uniform(4000.0, 6000.0, 15), [40000.0]])  # chain 15: misfit ~3x the others'
    rows, beta, ess = tempered_selection(phi, 0.5, np.random.default_rng(1))
    assert 0 < beta < 1
    assert ess == pytest.approx(ess_of(-beta * phi)) and ess >= 8 * (1 - 1e-9)
    assert ess_of(-1.01 * beta * phi) < 8  # β is the largest that keeps the target
    assert 15 not in rows and len(rows) == 16
    assert np.all(np.diff(rows) >= 0)  # systematic resampling: ordered ancestors


def test_selection_keeps_every_chain_once_when_the_weights_are_flat():
    phi = np.full(8, 100.0)
    rows, beta, ess = tempered_selection(phi, 0.5, np.random.default_rng(0))
    assert beta == 1.0 and ess == pytest.approx(8.0)
    np.testing.assert_array_equal(rows, np.arange(8))


def test_diverged_chains_get_no_weight_and_all_diverged_keeps_the_chains():
    phi = np.array([1.0, np.nan, 2.0, np.inf])
    rows, _, _ = tempered_selection(phi, 0.5, np.random.default_rng(0))
    assert set(rows.tolist()) <= {0, 2}
    rows, beta, ess = tempered_selection(np.full(3, np.nan), 0.5, np.random.default_rng(0))
    np.testing.assert_array_equal(rows, np.arange(3))
    assert beta == 0.0 and ess == 3.0


def test_selection_levels_lie_inside_the_schedule():
    assert AnnealedConfig(steps=40, select_levels=3).selection_after == (9, 19, 29)
    assert AnnealedConfig(steps=40).selection_after == ()
    with pytest.raises(ValueRangeError, match="select_levels"):
        AnnealedConfig(steps=4, select_levels=4)


def test_lineages_follow_the_chains():
    p = toy_problem("quadratic2d")
    cfg = toy_config("annealed", p.sigma, {"steps": 8, "mala_steps": 2, "select_levels": 1})
    res = sample_posterior(p.prior, p.likelihood, "annealed", 64, cfg, seed=0, dtype=torch.float64)
    anc = np.asarray(res.info["ancestors"])
    (k,) = res.info["select_after"]
    assert res.info["select_lineages"] == [len(np.unique(anc))] and len(np.unique(anc)) < 64
    for a in np.unique(anc):  # copies of one chain share its history up to the selection
        cols = res.history[: k + 1, anc == a]
        np.testing.assert_array_equal(cols, np.repeat(cols[:, :1], cols.shape[1], axis=1))
    # after it they diverge (each copy keeps its own noise stream)
    shared = [a for a in np.unique(anc) if np.sum(anc == a) > 1]
    assert shared and any(len(np.unique(res.history[-1, anc == a])) > 1 for a in shared)
    np.testing.assert_allclose(res.history[-1], p.likelihood.residual_norm(res.samples), rtol=1e-9)


def test_selection_brings_the_quadratic_toy_closer_to_the_exact_posterior():
    p = toy_problem("quadratic2d")
    tv = {}
    for sel in (0, 3):
        cfg = toy_config("annealed", p.sigma, {"select_levels": sel})
        tv[sel] = np.mean([score(sample_posterior(p.prior, p.likelihood, "annealed", 400, cfg, seed=s,
                                                  dtype=torch.float64), p)["tv"] for s in (0, 1000)])
    # measured 0.28 → 0.18; the mean TV of 400 chains scatters by ~0.02 between seed pairs
    assert tv[3] < tv[0] - 0.05
