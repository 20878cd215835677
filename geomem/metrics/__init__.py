"""Memorization metrics (nearest-neighbour ratios with null baselines) and posterior quality metrics.

Every memorization rate comes with its nulls: held-out models scored against the same training set, and
leave-one-out within it.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> train, heldout = rng.standard_normal((20, 8)), rng.standard_normal((10, 8))
>>> copies = train[:5] + 1e-3 * rng.standard_normal((5, 8))  # near-copies of training models
>>> rep = memorization_report(copies, train, heldout=heldout)
>>> rates = rep.rates["d1/mean(d2..dk) < 0.5"]
>>> rates["samples"].rate, rates["heldout"].rate
(1.0, 0.1)
"""

from geomem.metrics.memorization import (
    DEFAULT_CRITERIA,
    Criterion,
    MemorizationRatios,
    MemorizationReport,
    RateInterval,
    bootstrap_rate,
    memorization_rates,
    memorization_ratios,
    memorization_report,
    nearest_neighbours,
    null_baselines,
    per_sample_record,
)
from geomem.metrics.posterior_quality import (
    Calibration,
    PosteriorSummary,
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

__all__ = [
    "DEFAULT_CRITERIA",
    "Calibration",
    "Criterion",
    "MemorizationRatios",
    "MemorizationReport",
    "PosteriorSummary",
    "RateInterval",
    "bootstrap_rate",
    "calibration",
    "compare_posteriors",
    "comparison_rows",
    "data_misfit_vs_noise",
    "distinct_nearest",
    "energy_distance",
    "median_bandwidth",
    "memorization_rates",
    "memorization_ratios",
    "memorization_report",
    "mmd",
    "nearest_neighbours",
    "null_baselines",
    "per_sample_record",
    "posterior_summary",
    "ssim",
]
