"""Posterior quality metrics against closed forms and Gaussian cases with known calibration."""

import numpy as np
import pytest
from scipy import stats

from geomem.errors import ShapeError, ValueRangeError
from geomem.metrics import (
    calibration,
    compare_posteriors,
    comparison_rows,
    data_misfit_vs_noise,
    distinct_nearest,
    energy_distance,
    median_bandwidth,
    mmd,
    posterior_summary,
    ssim,
)


@pytest.fixture
def truth():
    rng = np.random.default_rng(0)
    z = np.linspace(0, 1, 48)[:, None]
    return 1.5 + 1.5 * z + 0.1 * rng.standard_normal((48, 40))  # km/s, (nz, nx)


def test_ssim_identical_is_one_and_noisy_is_less(truth):
    assert ssim(truth, truth, data_range=1.5) == pytest.approx(1.0, abs=1e-12)
    noisy = truth + 0.3 * np.random.default_rng(1).standard_normal(truth.shape)
    assert ssim(noisy, truth, data_range=1.5) < 0.9
    assert 0 < ssim(truth[:5, :5], truth[:5, :5], data_range=1.5) == pytest.approx(1.0)
    with pytest.raises(ShapeError):
        ssim(truth[:2, :2], truth[:2, :2], data_range=1.0)
    with pytest.raises(ValueRangeError):
        ssim(truth, truth, data_range=0.0)


def test_summary_closed_form(truth):
    a = 0.2
    samples = np.stack([truth + a, truth - a])[:, None]  # (2, 1, nz, nx)
    s = posterior_summary(samples, truth[None], data_range=1.5)
    np.testing.assert_allclose(s.mean, truth, atol=1e-14)
    np.testing.assert_allclose(s.std, a * np.sqrt(2.0), rtol=1e-12)  # Bessel: √((a² + a²)/1)
    assert s.rmse == pytest.approx(0.0, abs=1e-14) and s.ssim == pytest.approx(1.0)
    shifted = posterior_summary(np.stack([truth + 0.1, truth + 0.1, truth + 0.1]), truth, data_range=1.5)
    assert shifted.rmse == pytest.approx(0.1, rel=1e-12) and shifted.n_samples == 3
    assert shifted.std.max() < 1e-12


def gaussian_posterior(truth, scale_factor, n_samples=400, seed=2):
    """Samples of N(truth + δ, s²) with δ ~ N(0, s²): calibrated when scale_factor = 1."""
    rng = np.random.default_rng(seed)
    s = 0.05 + 0.45 * np.linspace(0, 1, truth.size).reshape(truth.shape)  # spatially varying std
    centre = truth + s * rng.standard_normal(truth.shape)
    return centre + scale_factor * s * rng.standard_normal((n_samples, *truth.shape)), s


def test_calibration_of_a_calibrated_gaussian(truth):
    samples, s = gaussian_posterior(truth, 1.0)
    cal = calibration(samples[:, None], truth, n_bins=8, levels=(0.5, 0.9, 0.95))
    np.testing.assert_allclose(cal.coverage, [0.5, 0.9, 0.95], atol=0.03)
    assert cal.bin_count.sum() == truth.size and len(cal.bin_std) == 8
    assert np.all(np.diff(cal.bin_std) > 0)
    # |mean − truth| ~ |N(0, s²(1 + 1/S))|, so E|error| = √(2/π) s √(1 + 1/S) in every bin
    expected = np.sqrt(2 / np.pi) * cal.bin_std * np.sqrt(1 + 1 / 400)
    np.testing.assert_allclose(cal.bin_abs_error, expected, rtol=0.15)


def test_calibration_detects_overconfidence(truth):
    samples, _ = gaussian_posterior(truth, 0.3)
    cal = calibration(samples, truth, levels=(0.9,))
    # truth − centre ~ N(0, s²) but the interval half-width is 1.645·0.3·s: P(|z| < 0.49) ≈ 0.38
    expected = 2 * stats.norm.cdf(stats.norm.ppf(0.95) * 0.3) - 1
    assert cal.coverage[0] == pytest.approx(expected, abs=0.03)
    assert np.all(cal.bin_abs_error > 2 * cal.bin_std)


def test_distinct_nearest():
    assert distinct_nearest(np.array([3, 3, 1, 7, 1])) == 3
    assert distinct_nearest(np.array([[2, 0], [2, 1], [5, 2]])) == 2
    with pytest.raises(ShapeError):
        distinct_nearest(np.array([0.5, 1.0]))


def test_energy_distance_hand_computed_and_scipy():
    a, b = np.array([0.0, 1.0]), np.array([3.0, 5.0])
    # E|X−Y| = (3+5+2+4)/4 = 3.5; V: E|X−X'| = 2/4, E|Y−Y'| = 4/4  → 7 − 0.5 − 1 = 5.5
    assert energy_distance(a, b) == pytest.approx(5.5, abs=1e-12)
    # U: E|X−X'| = 2/2, E|Y−Y'| = 4/2 → 7 − 1 − 2 = 4
    assert energy_distance(a, b, unbiased=True) == pytest.approx(4.0, abs=1e-12)
    rng = np.random.default_rng(3)
    u, v = rng.standard_normal(30), rng.standard_normal(20) + 0.5
    assert energy_distance(u, v) == pytest.approx(stats.energy_distance(u, v) ** 2, rel=1e-10)


def test_energy_distance_identical_zero_shifted_positive():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 1, 6, 6))
    assert energy_distance(x, x) == 0.0
    y = rng.standard_normal((40, 1, 6, 6))
    near = energy_distance(x, y)
    far = energy_distance(x, y + 1.0)
    assert far > near > 0 and far > 10 * abs(energy_distance(x, y, unbiased=True))
    with pytest.raises(ShapeError):
        energy_distance(x, y[:, :, :3])


def test_mmd_closed_form_and_median_bandwidth():
    h = 0.7
    assert mmd(np.array([0.0]), np.array([1.0]), bandwidth=h) == pytest.approx(2 - 2 * np.exp(-1 / (2 * h * h)))
    assert median_bandwidth(np.array([0.0, 1.0]), np.array([3.0])) == pytest.approx(2.0)  # distances 1, 3, 2
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 8))
    assert mmd(x, x) == pytest.approx(0.0, abs=1e-14)
    assert mmd(x, x + 2.0) > mmd(x, rng.standard_normal((50, 8))) > 0
    with pytest.raises(ValueRangeError):
        median_bandwidth(np.zeros((3, 2)), np.zeros((2, 2)))


def test_data_misfit_vs_noise():
    assert data_misfit_vs_noise([6.0], noise_std=0.5, n_data=144)[0] == pytest.approx(1.0)
    rng = np.random.default_rng(6)
    gamma, m = 0.05, 20000
    r = gamma * rng.standard_normal(m)
    assert data_misfit_vs_noise(np.linalg.norm(r), gamma, m) == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueRangeError):
        data_misfit_vs_noise([1.0], noise_std=0.0, n_data=3)
    with pytest.raises(ValueRangeError):
        data_misfit_vs_noise([-1.0], noise_std=1.0, n_data=3)


@pytest.mark.parametrize(
    "samples, truth",
    [
        (np.zeros((4, 2, 5, 5)), np.zeros((5, 5))),
        (np.zeros((1, 1, 5, 5)), np.zeros((5, 5))),
        (np.zeros((4, 1, 5, 5)), np.zeros((5, 6))),
        (np.zeros((4, 5)), np.zeros(5)),
    ],
)
def test_bad_shapes(samples, truth):
    with pytest.raises(ShapeError):
        posterior_summary(samples, truth, data_range=1.0)


def test_bad_calibration_settings(truth):
    samples, _ = gaussian_posterior(truth, 1.0, n_samples=10)
    with pytest.raises(ValueRangeError):
        calibration(samples, truth, levels=(1.0,))
    with pytest.raises(ValueRangeError):
        calibration(samples, truth, n_bins=0)
    with pytest.raises(ValueRangeError):
        calibration(np.full_like(samples, np.nan), truth)


def test_compare_posteriors_lookup_vs_spread(truth):
    """A lookup posterior made of 3 training copies has 3 distinct nearest models; set distances are exact."""
    rng = np.random.default_rng(8)
    train = truth + 0.2 * rng.standard_normal((10, *truth.shape))
    lookup = train[rng.integers(0, 3, size=40)][:, None]
    spread = (truth + 0.05 * rng.standard_normal((40, *truth.shape)))[:, None]
    res = compare_posteriors({"memorized": lookup, "learned": spread, "copy": spread}, truth, data_range=1.5,
                             train=train[:, None], residual_norms={"learned": [6.0, 6.0]}, noise_std=0.5,
                             n_data=144, pairs=[("learned", "memorized"), ("learned", "copy")])
    assert res["posteriors"]["memorized"]["distinct_nearest"] == 3
    assert res["posteriors"]["learned"]["distinct_nearest"] >= 1
    assert res["posteriors"]["learned"]["misfit/noise"] == pytest.approx(1.0)
    assert "misfit/noise" not in res["posteriors"]["memorized"]
    assert res["energy_distance"]["learned <-> copy"] == 0.0
    assert res["energy_distance"]["learned <-> memorized"] == pytest.approx(energy_distance(spread, lookup))
    assert res["posteriors"]["learned"]["rmse"] == pytest.approx(posterior_summary(spread, truth, 1.5).rmse)
    header, rows = comparison_rows(res)
    assert header[0] == "posterior" and "coverage@0.9" in header and len(rows) == 3
    col = header.index("misfit/noise")
    assert rows[1][col] == pytest.approx(1.0) and rows[0][col] == "n/a"
    with pytest.raises(ValueRangeError, match="noise_std"):
        compare_posteriors({"a": spread}, truth, 1.5, residual_norms={"a": [1.0]})
