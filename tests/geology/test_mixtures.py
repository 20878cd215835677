"""Rules-and-exceptions sets: power-law copy counts against hand-computed values, labels that survive save/load and
subsetting, near-copies at the asked distance, held-out pools disjoint from the set, and bad settings refused."""

import numpy as np
import pytest

from geomem.errors import ConfigError, DataFileError, GeomemError
from geomem.geology import ModelSet, make_model_set
from geomem.geology.mixtures import (
    MixtureSettings,
    heldout_exceptions,
    heldout_rules,
    make_mixture_set,
    mixture_labels,
    power_law_copies,
    subset_mixture,
)

TINY = dict(n=20, size=16, epsilon=0.3, n_exceptions=3)


def test_power_law_copies_by_hand():
    # 16 extra copies ∝ (1, 1/2, 1/3, 1/4)/(25/12) = (7.68, 3.84, 2.56, 1.92): floors (7, 3, 2, 1) = 13, the three
    # left go to the largest remainders (.92, .84, .68) = exceptions 3, 1, 0; plus one copy each
    assert power_law_copies(4, 20, 1.0).tolist() == [9, 5, 3, 3]
    assert power_law_copies(4, 20, 0.0).tolist() == [5, 5, 5, 5]
    assert power_law_copies(3, 3, 2.0).tolist() == [1, 1, 1]
    c = power_law_copies(50, 400, 1.5)
    assert c.sum() == 400 and c.min() >= 1 and np.all(np.diff(c) <= 0)


def test_mixture_counts_and_labels():
    s = MixtureSettings(alpha=1.0, **TINY)
    ms = make_mixture_set(s)
    lab = mixture_labels(ms)
    assert len(ms) == 20 and lab.is_rule.sum() == 14 and lab.is_exception.sum() == 6
    copies = ms.meta["mixture"]["copies"]
    assert copies == power_law_copies(3, 6, 1.0).tolist()
    for i, c in enumerate(copies):
        assert (lab.exception_id == i).sum() == c
        assert sorted(lab.copy_index[lab.exception_id == i]) == list(range(c))
    # the rule models are the first 14 models of the family (the same stream as make_model_set)
    ref = make_model_set("curvefault", 14, (16, 16), seed=0)
    np.testing.assert_array_equal(ms.models[:14], ref.models)
    # exact copies when perturbation = 0
    for i in range(3):
        block = ms.models[lab.exception_id == i]
        assert np.all(block == block[0])
    assert len(lab.facts()) == 14 + 3
    # copy count per fact: 1 for each rule model, the planted count for each exception
    assert lab.copies(lab.facts()).tolist() == [1] * 14 + copies


def test_near_copies_are_at_the_asked_distance():
    s = MixtureSettings(perturbation=0.02, **TINY)
    ms = make_mixture_set(s)
    lab = mixture_labels(ms)
    base = ms.models[(lab.exception_id == 0) & (lab.copy_index == 0)][0]
    others = ms.models[(lab.exception_id == 0) & (lab.copy_index > 0)]
    d = np.sqrt(((others - base) ** 2).mean(axis=(1, 2, 3))) / (s.vmax - s.vmin)
    assert np.all(d > 0.01) and np.all(d <= 0.02 + 1e-6)  # clipping can only shrink it
    assert len(np.unique(others.reshape(len(others), -1), axis=0)) == len(others)
    again = make_mixture_set(s)
    np.testing.assert_array_equal(ms.models, again.models)  # seeded


def test_labels_survive_save_load_and_subset(tmp_path):
    ms = make_mixture_set(MixtureSettings(alpha=0.5, **TINY))
    back = ModelSet.load(ms.save(tmp_path / "mix.npz"))
    np.testing.assert_array_equal(mixture_labels(back).exception_id, mixture_labels(ms).exception_id)
    sub = subset_mixture(back, [0, 15, 19])
    lab = mixture_labels(sub)
    assert lab.kind.tolist() == ["rule", "exception", "exception"]
    np.testing.assert_array_equal(sub.models, ms.models[[0, 15, 19]])
    with pytest.raises(DataFileError, match="subset_mixture"):
        mixture_labels(ms.subset([0, 1]))  # ModelSet.subset keeps the full-length labels


def test_heldout_pools_are_fresh():
    s = MixtureSettings(**TINY)
    ms = make_mixture_set(s)
    hr, he = heldout_rules(s, 4), heldout_exceptions(s, 4)
    flat = ms.models.reshape(len(ms), -1)
    for pool in (hr, he):
        d = np.abs(pool.models.reshape(len(pool), -1)[:, None] - flat[None]).max(-1)
        assert d.min() > 0.01


@pytest.mark.parametrize("bad", [dict(exception_family="curvefault"), dict(epsilon=1.0), dict(n_exceptions=7),
                                 dict(vmin=5.0)])
def test_bad_settings(bad):
    with pytest.raises(GeomemError):
        make_mixture_set(MixtureSettings(**{**TINY, **bad}))


def test_epsilon_zero_is_a_plain_rule_set():
    ms = make_mixture_set(MixtureSettings(n=6, size=16, epsilon=0.0))
    assert mixture_labels(ms).is_rule.all()
    with pytest.raises(ConfigError):
        power_law_copies(0, 3, 1.0)
