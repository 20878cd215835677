"""A small memorization report and posterior, shared by the report tests."""

import numpy as np
import pytest

from geomem.metrics import calibration, memorization_report, posterior_summary


@pytest.fixture(scope="module")
def small_results():
    rng = np.random.default_rng(0)
    z = np.linspace(0.0, 1.0, 24)[:, None]
    train = 1.5 + 1.5 * z + 0.1 * rng.standard_normal((30, 1, 24, 20))
    heldout = 1.5 + 1.5 * z + 0.1 * rng.standard_normal((12, 1, 24, 20))
    samples = np.concatenate([train[:5] + 0.005 * rng.standard_normal((5, 1, 24, 20)), heldout[:5]])
    report = memorization_report(samples, train, heldout=heldout, n_boot=300, seed=0)
    truth = heldout[-1, 0]
    post = truth + 0.05 * rng.standard_normal((24, 20)) + 0.05 * rng.standard_normal((32, 24, 20))
    return report, truth, posterior_summary(post, truth, data_range=1.5), calibration(post, truth, n_bins=6)
