"""Nearest-neighbour memorization metrics on cases with known answers."""

import numpy as np
import pytest
import torch

from geomem.errors import GeomemError, ShapeError, ValueRangeError
from geomem.metrics import (
    DEFAULT_CRITERIA,
    MemorizationReport,
    bootstrap_rate,
    memorization_rates,
    memorization_ratios,
    memorization_report,
    nearest_neighbours,
    null_baselines,
    per_sample_record,
)


def brute_force(samples, train, exclude_self=False):
    a = samples.reshape(samples.shape[0], -1)
    b = train.reshape(train.shape[0], -1)
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return d


@pytest.fixture
def family():
    """A well-separated family: i.i.d. Gaussian models in 1×16×16 (all pairwise distances ≈ √(2d))."""
    rng = np.random.default_rng(1)
    return rng.standard_normal((80, 1, 16, 16)), rng.standard_normal((30, 1, 16, 16)), rng


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 4096])
def test_chunked_nn_equals_brute_force(family, chunk_size):
    train, fresh, rng = family
    samples = np.concatenate([fresh, train[:5] + 0.1 * rng.standard_normal((5, 1, 16, 16))])
    dist, idx = nearest_neighbours(samples, train, k=6, chunk_size=chunk_size)
    full = brute_force(samples, train)
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :6], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1)[:, :6])
    assert dist.dtype == np.float64 and idx.dtype == np.int64


def test_near_copies_with_large_norms_are_accurate():
    """‖a‖² − 2a·b + ‖b‖² cancels catastrophically for near-copies of large vectors: those are recomputed."""
    rng = np.random.default_rng(7)
    train = 1000.0 + rng.standard_normal((20, 1, 8, 8))  # ‖x‖² ≈ 6.4e7
    jitter = 1e-6 * rng.standard_normal((3, 1, 8, 8))
    samples = train[[2, 5, 11]] + jitter
    dist, idx = nearest_neighbours(samples, train, k=2)
    np.testing.assert_array_equal(idx[:, 0], [2, 5, 11])
    exact = np.linalg.norm((samples - train[[2, 5, 11]]).reshape(3, -1), axis=1)  # exact differences (Sterbenz)
    np.testing.assert_allclose(dist[:, 0], exact, rtol=1e-12)
    np.testing.assert_allclose(dist[:, 0], np.linalg.norm(jitter.reshape(3, -1), axis=1), rtol=1e-6)
    np.testing.assert_allclose(dist, np.sort(brute_force(samples, train), axis=1)[:, :2], rtol=1e-9)


def test_leave_one_out_excludes_self(family):
    train, _, _ = family
    dist, idx = nearest_neighbours(train, train, k=3, chunk_size=9, exclude_self=True)
    assert not np.any(idx == np.arange(len(train))[:, None])
    full = brute_force(train, train, exclude_self=True)
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :3], atol=1e-12)
    # without exclusion every model is its own nearest neighbour at distance exactly 0
    d0, i0 = nearest_neighbours(train, train, k=1)
    np.testing.assert_array_equal(i0[:, 0], np.arange(len(train)))
    assert np.all(d0[:, 0] == 0.0)


def test_leave_one_out_finds_a_duplicate():
    rng = np.random.default_rng(2)
    train = rng.standard_normal((10, 5))
    train[7] = train[3]
    r = memorization_ratios(train, train, exclude_self=True)
    assert r.nearest[3] == 7 and r.nearest[7] == 3
    assert r.d1[3] == 0.0 and r.ratio_k[3] == 0.0
    assert r.k == 9  # min(50, N - 1)


def test_torch_input_matches_numpy(family):
    train, fresh, _ = family
    d_np, i_np = nearest_neighbours(fresh, train, k=4)
    d_t, i_t = nearest_neighbours(torch.from_numpy(fresh).float(), torch.from_numpy(train).float(), k=4,
                                  as_numpy=False)
    assert isinstance(d_t, torch.Tensor)
    np.testing.assert_array_equal(i_t.numpy(), i_np)
    np.testing.assert_allclose(d_t.numpy(), d_np, rtol=1e-6)


def test_exact_copy_jittered_copy_and_fresh_model(family):
    train, fresh, rng = family
    copy = train[[4]]
    jitter = train[[9]] + 0.02 * rng.standard_normal((1, 1, 16, 16))
    samples = np.concatenate([copy, jitter, fresh[:1]])
    r = memorization_ratios(samples, train)
    assert r.k == 50
    # exact copy: d1 = 0, both ratios 0, flagged by every criterion
    assert r.nearest[0] == 4 and r.d1[0] == 0.0 and r.ratio_12[0] == 0.0 and r.ratio_k[0] == 0.0
    # jittered copy: d1 ≈ 0.02·√256 = 0.32 against d2 ≈ √(2·257) ≈ 22.6, so ratio ≈ 0.014
    assert r.nearest[1] == 9 and r.ratio_k[1] < 0.05
    # fresh model: nearest distances all ≈ √(2·256) ≈ 22.6, ratios ≈ 1
    assert r.ratio_12[2] > 0.7 and r.ratio_k[2] > 0.7
    flags = {c.name: c.flags(r) for c in DEFAULT_CRITERIA}
    for f in flags.values():
        np.testing.assert_array_equal(f, [True, True, False])
    # ratio_k by hand from the brute-force distances
    d = np.sort(brute_force(samples, train), axis=1)
    np.testing.assert_allclose(r.ratio_k, d[:, 0] / d[:, 1:50].mean(axis=1), atol=1e-12)
    np.testing.assert_allclose(r.ratio_12[1:], d[1:, 0] / d[1:, 1], atol=1e-12)


def test_zero_over_zero_ratio_is_memorized():
    train = np.zeros((4, 3))
    train[2:] = [[1.0, 0, 0], [0, 5.0, 0]]  # models 0 and 1 are identical
    r = memorization_ratios(train[:1], train)
    assert r.d1[0] == 0.0 and r.d2[0] == 0.0 and r.ratio_12[0] == 0.0


def test_bootstrap_interval_coverage():
    """The 95% percentile interval of Bernoulli(p) flags covers p in ~95% of repetitions."""
    rng = np.random.default_rng(3)
    p, n, reps = 0.3, 200, 1000
    flags = rng.random((reps, n)) < p
    covered = 0
    for row in flags:
        ci = bootstrap_rate(row, n_boot=1000, level=0.95, rng=rng)
        assert ci.low <= ci.rate <= ci.high
        covered += ci.low <= p <= ci.high
    assert 0.90 <= covered / reps <= 0.99


def test_bootstrap_rate_values_and_errors():
    ci = bootstrap_rate(np.array([1, 1, 0, 0]), rng=0)
    assert ci.rate == 0.5 and ci.n == 4 and 0.0 <= ci.low < 0.5 < ci.high <= 1.0
    wide = bootstrap_rate(np.arange(40) % 2 == 0, rng=0)
    narrow = bootstrap_rate(np.arange(4000) % 2 == 0, rng=0)
    assert narrow.high - narrow.low < 0.2 * (wide.high - wide.low)
    assert bootstrap_rate(np.arange(40) % 2 == 0, rng=5) == bootstrap_rate(np.arange(40) % 2 == 0, rng=5)
    for bad in ([], [[True]], [0.5, 1.0]):
        with pytest.raises(GeomemError):
            bootstrap_rate(np.array(bad))
    with pytest.raises(ValueRangeError):
        bootstrap_rate([True], level=1.5)


def test_report_shows_rates_with_nulls(family):
    train, fresh, _ = family
    samples = np.concatenate([train[:6], fresh[:4]])
    rep = memorization_report(samples, train[:60], heldout=fresh[10:], n_boot=500, seed=0)
    assert set(rep.nulls) == {"heldout", "leave_one_out"}
    assert rep.rates["d1/mean(d2..dk) < 0.5"]["samples"].rate == pytest.approx(0.6)
    # a well-separated family: nulls are zero at this N
    assert rep.rates["d1/mean(d2..dk) < 0.7"]["heldout"].rate == 0.0
    assert rep.rates["d1/mean(d2..dk) < 0.7"]["leave_one_out"].rate == 0.0
    table = rep.summary_table()
    header, rows = rep.summary_rows()
    assert len(header) == 4 and "heldout" in header[2] and "leave_one_out" in header[3]
    for c, row in zip(DEFAULT_CRITERIA, rows, strict=True):
        assert row[0] == c.name and len(row) == 4
        assert row[0] in table
    out = rep.to_dict()
    assert set(out["rates"]["d1/d2 < 1/3"]) == {"samples", "heldout", "leave_one_out"}
    with pytest.raises(ValueRangeError, match="null baseline"):
        MemorizationReport(samples=rep.samples, nulls={}, rates=rep.rates)


def test_nulls_are_high_at_small_n():
    """At N = 3 in 2-D even fresh models of the same family often pass the ratio test."""
    rng = np.random.default_rng(4)
    train = rng.standard_normal((3, 2))
    nulls = null_baselines(train, heldout=rng.standard_normal((2000, 2)))
    rates = memorization_rates(nulls["heldout"], rng=0)
    assert rates["d1/mean(d2..dk) < 0.7"].rate > 0.2
    assert nulls["leave_one_out"].k == 2


def test_per_sample_record(family):
    train, fresh, _ = family
    samples = np.concatenate([train[[3]], fresh[:2]])
    r = memorization_ratios(samples, train)
    w = np.arange(80, dtype=float) / np.arange(80).sum()
    recs = per_sample_record(r, lookup_weights=w, linearized_weights=2 * w, data_distances=[0.0, 1.0, 2.0])
    assert [rec["nearest"] for rec in recs] == list(r.nearest)
    assert recs[0]["lookup_weight"] == w[3] and recs[0]["linearized_weight"] == 2 * w[3]
    assert recs[2]["data_distance"] == 2.0 and recs[0]["d1"] == 0.0 and recs[0]["d1/d2 < 1/3"] is True
    with pytest.raises(ShapeError, match="one weight per training model"):
        per_sample_record(r, lookup_weights=w[:5])
    with pytest.raises(ShapeError, match="one per sample"):
        per_sample_record(r, data_distances=[1.0])


@pytest.mark.parametrize(
    "call, err",
    [
        (lambda: nearest_neighbours(np.zeros((2, 3)), np.zeros((4, 5))), ShapeError),
        (lambda: nearest_neighbours(np.full((2, 3), np.nan), np.zeros((4, 3))), ValueRangeError),
        (lambda: nearest_neighbours(np.zeros((2, 3)), np.zeros((4, 3)), k=5), ValueRangeError),
        (lambda: nearest_neighbours(np.zeros((2, 3)), np.zeros((4, 3)), k=4, exclude_self=True), ShapeError),
        (lambda: nearest_neighbours(np.zeros((2, 3)), np.zeros((4, 3)), chunk_size=0), ValueRangeError),
        (lambda: memorization_ratios(np.zeros((2, 3)), np.zeros((1, 3))), ValueRangeError),
        (lambda: memorization_ratios(np.zeros((0, 3)), np.zeros((4, 3))), ShapeError),
    ],
)
def test_bad_input_raises(call, err):
    with pytest.raises(err):
        call()
