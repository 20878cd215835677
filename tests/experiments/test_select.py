"""Loss-based selection: the σ-averaged loss against closed forms, the three rules on planted duplicates (exact and
near) and planted outliers, the written set's record of what was dropped, training coverage by brute force, and
`geomem select` end to end on a tiny config."""

import numpy as np
import pytest
import torch

from geomem.errors import GeomemError
from geomem.geology import ModelSet
from geomem.geology.mixtures import MixtureSettings, make_mixture_set, mixture_labels
from geomem.priors.memorized import MemorizedPrior
from geomem.workflow.selection import (
    RuleSettings,
    ScoreSettings,
    cap_clusters,
    clusters,
    denoising_losses,
    drop_highest,
    keep_budget,
    select,
    selected_set,
    training_coverage,
)


class Zero:
    model_shape = (1, 8, 8)
    sigma_data = 0.5

    def __call__(self, x, sigma):
        return torch.zeros_like(x)


class Identity(Zero):
    def __call__(self, x, sigma):
        return x


@pytest.fixture(scope="module")
def planted():
    """10 distinct rule models, then 3 exceptions with 4 near-copies each (perturbation 0.005, well inside the
    0.02 clustering threshold)."""
    s = MixtureSettings(n=22, size=16, epsilon=12 / 22, n_exceptions=3, perturbation=0.005)
    return make_mixture_set(s)


def test_loss_closed_forms():
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    st = ScoreSettings(sigma_lo=0.1, sigma_hi=2.0, n_sigmas=3, n_draws=2, seed=3)
    sig = np.geomspace(0.1, 2.0, 3)
    lam = (sig**2 + 0.25) / (sig * 0.5) ** 2
    # D = 0: ℓ_n = mean_k λ(σ_k) ‖x_n‖² / d, whatever the noise
    want = lam.mean() * (x.astype(np.float64) ** 2).reshape(5, -1).mean(1)
    np.testing.assert_allclose(denoising_losses(Zero(), x, st), want, rtol=1e-6)
    # D = identity: ℓ_n = mean_{k,m} λ(σ_k) σ_k² ‖ε_km‖² / d, the same for every model (shared noise draws)
    eps = torch.randn((3, 2, 1, 8, 8), generator=torch.Generator().manual_seed(3)).double()
    want_id = np.mean([lam[k] * sig[k] ** 2 * float((eps[k, m] ** 2).mean()) for k in range(3) for m in range(2)])
    got = denoising_losses(Identity(), x, st)
    np.testing.assert_allclose(got, want_id, rtol=1e-5)
    # a memorized prior of one model denoises anything to that model: its loss is 0
    one = MemorizedPrior(torch.from_numpy(x[:1]).double())
    assert denoising_losses(one, x[:1], st)[0] < 1e-10


def test_memorized_prior_scores_a_planted_outlier_highest(planted):
    x = planted.normalized()
    lab = mixture_labels(planted)
    rules = x[lab.is_rule]
    prior = MemorizedPrior(torch.from_numpy(rules[:8]).double())
    scored = np.concatenate([rules, x[lab.is_exception][:1]])  # 8 seen, 2 unseen rules, 1 unseen GRF
    lo = denoising_losses(prior, scored, ScoreSettings(n_sigmas=4, n_draws=1))
    assert np.argmax(lo) == len(scored) - 1
    assert lo[:8].max() < lo[8:].min()
    assert drop_highest(lo, 1 / len(lo)).keep.tolist() == [True] * 10 + [False]


def test_drop_highest_planted_outliers():
    lo = 1 + 0.01 * np.random.default_rng(1).standard_normal(20)
    lo[[3, 7]] = [10.0, 9.0]
    sel = drop_highest(lo, 0.1)
    assert sorted(np.nonzero(~sel.keep)[0]) == [3, 7]
    assert "among the 2 highest" in sel.reasons[3] and sel.reasons[0] == ""
    assert drop_highest(lo, 0.0).keep.all()
    tie = drop_highest(np.ones(4), 0.25)  # ties: the higher index is dropped
    assert tie.keep.tolist() == [True, True, True, False]


def test_clusters_find_planted_duplicates(planted):
    x = planted.normalized()
    lab = mixture_labels(planted)
    c = clusters(x, 0.02)
    for e in range(3):
        assert len(set(c[lab.exception_id == e])) == 1
    assert len(set(c[lab.is_rule])) == 10  # distinct rule models stay singletons
    assert len(np.unique(c)) == 13
    # exact duplicates: distance 0
    dup = np.concatenate([x[:3], x[:1], x[:1]])
    assert clusters(dup, 1e-6).tolist() == [0, 1, 2, 0, 0]


def test_cap_clusters_flattens_frequencies(planted):
    x = planted.normalized()
    lab = mixture_labels(planted)
    lo = np.arange(len(x), dtype=float)[::-1].copy()  # later copies have lower loss
    sel = cap_clusters(lo, x, 0.02, cap=2)
    assert sel.keep[lab.is_rule].all()
    for e in range(3):
        idx = np.nonzero(lab.exception_id == e)[0]
        assert sel.keep[idx].tolist() == [False, False, True, True]  # the two lowest-loss copies stay
    assert "near-duplicate" in sel.reasons[np.nonzero(~sel.keep)[0][0]]


def test_budget_keeps_distinct_lowest_loss(planted):
    x = planted.normalized()
    lab = mixture_labels(planted)
    lo = np.linspace(1, 2, len(x))
    lo[lab.is_exception] = 0.1  # the exceptions are the easiest
    sel = keep_budget(lo, x, 0.02, budget=5)
    assert sel.keep.sum() == 5
    kept = sel.kept
    # one copy per exception (the first: ties go to the lower index) and the 2 lowest-loss rules
    assert set(lab.exception_id[kept][lab.is_exception[kept]]) == {0, 1, 2}
    assert kept[lab.is_rule[kept]].tolist() == [0, 1]
    dup = np.nonzero(lab.exception_id == 0)[0][1]
    assert sel.reasons[dup].startswith("near-duplicate of model")
    assert sel.reasons[5].startswith("over budget")


def test_selected_set_records_drops(planted, tmp_path):
    x = planted.normalized()
    lo = np.linspace(1, 2, len(x))
    sel = select(lo, x, RuleSettings(rule="cap_clusters", threshold=0.02, cap=1))
    out = selected_set(planted, sel, lo, source="planted")
    back = ModelSet.load(out.save(tmp_path / "sel.npz"))
    rec = back.meta["selection"]
    assert len(back) == 13 and rec["kept"] == sel.kept.tolist() and len(rec["dropped"]) == 9
    assert all(d["reason"] for d in rec["dropped"])
    assert mixture_labels(back).is_exception.sum() == 3
    with pytest.raises(GeomemError):
        selected_set(planted, drop_highest(lo[:5], 0.2), lo)
    with pytest.raises(GeomemError):
        drop_highest(np.array([1.0, np.nan]), 0.5)


def test_training_coverage_brute_force():
    rng = np.random.default_rng(0)
    train = rng.standard_normal((6, 1, 4, 4))
    samples = np.concatenate([train[[0, 0, 2]] + 1e-3 * rng.standard_normal((3, 1, 4, 4)),
                              rng.standard_normal((4, 1, 4, 4))])
    rate, rep, hits = training_coverage(samples, train)
    # brute force: nearest model and d1/mean(d2..d6) per sample
    d = np.linalg.norm((samples[:, None] - train[None]).reshape(7, 6, -1), axis=-1)
    ds = np.sort(d, 1)
    flag = ds[:, 0] / ds[:, 1:].mean(1) < 0.5
    want = np.bincount(d.argmin(1)[flag], minlength=6)
    np.testing.assert_array_equal(hits, want)
    assert hits[0] >= 2 and hits[2] >= 1 and rate == pytest.approx((want > 0).mean())


def test_select_cli_tiny(tmp_path):
    """`geomem select` end to end: the selected set drops exactly the planted extra copies, both priors are scored."""
    import json

    from geomem.cli import main

    out = tmp_path / "sel"
    assert main(["select", "-c", "data/configs/select_tiny.toml", "-o", str(out), "score_steps=4", "training.steps=6",
              "n_samples=6", "sample_steps=4", "posterior.enabled=false"]) == 0
    full, chosen = ModelSet.load(out / "full.npz"), ModelSet.load(out / "selected.npz")
    lab = mixture_labels(full)
    assert len(chosen) == lab.is_rule.sum() + 3  # one copy of each of the 3 exceptions
    rec = chosen.meta["selection"]
    assert len(rec["dropped"]) == lab.is_exception.sum() - 3 and all("near-duplicate" in d["reason"]
                                                                     for d in rec["dropped"])
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["results"]) == {"full", "selected"}
    assert m["results"]["selected"]["n_train"] == len(chosen)
    assert m["results"]["full"]["distinct_facts_in_train"] == m["results"]["selected"]["distinct_facts_in_train"]
    assert main(["select", "-c", "data/configs/select_tiny.toml", "-o", str(tmp_path / "bad"), "rule.rule=nope"]) == 2

    # a rerun on the same folder (how the CPU adds posteriors to a GPU run) reuses the priors, the selection scores
    # and the drawn samples: no training, scoring or sampling happens, and the memorization numbers are identical
    import geomem.experiments.select as select_mod
    import geomem.workflow.training as training_mod

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed a finished piece")

    from geomem.priors.learned import LearnedPrior

    load = LearnedPrior.from_pretrained

    def load_but_not_the_scorer(directory, *args, **kwargs):
        if "score" in str(directory):
            refuse()
        return load(directory, *args, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(LearnedPrior, "from_pretrained", load_but_not_the_scorer)
    mp.setattr(training_mod, "sample", refuse)
    mp.setattr(training_mod, "train", refuse)
    try:
        assert main(["select", "-c", "data/configs/select_tiny.toml", "-o", str(out), "score_steps=4",
                     "training.steps=6", "n_samples=6", "sample_steps=4", "posterior.enabled=false"]) == 0
    finally:
        mp.undo()
    again = json.loads((out / "metrics.json").read_text())
    for name in ("full", "selected"):
        for key in ("memorized_rate_train", "reproduced_train_models", "facts_reproduced", "n_train"):
            assert again["results"][name][key] == m["results"][name][key]
    # other sample settings are not served from the stale file
    with pytest.raises(AssertionError, match="recomputed"):
        with pytest.MonkeyPatch.context() as mp2:
            mp2.setattr(training_mod, "sample", refuse)
            from geomem.config import load_config

            select_mod.run_select(load_config(select_mod.SelectConfig, "data/configs/select_tiny.toml", {
                "score_steps": 4, "training.steps": 6, "n_samples": 7, "sample_steps": 4}), out)
