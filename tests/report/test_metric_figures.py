"""Metric figures carry their units, thresholds, nulls and colour bars."""

from types import SimpleNamespace

import numpy as np
import pytest

from geomem.errors import ShapeError, ValueRangeError
from geomem.report.metric_figures import calibration_plot, posterior_panels, ratio_histograms


def test_ratio_histograms_show_nulls_and_thresholds(small_results):
    report = small_results[0]
    fig = ratio_histograms(report)
    ax12, axk = fig.axes
    assert "d_1/d_2" in ax12.get_xlabel() and "dimensionless" in axk.get_xlabel()
    labels = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    assert sum("null" in s for s in labels) == 4  # held-out and leave-one-out in both panels
    assert any("threshold d1/d2 < 1/3" in s for s in labels)
    thresholds = sorted(line.get_xdata()[0] for line in axk.get_lines())
    assert thresholds == pytest.approx([0.5, 0.7])
    assert all("rate" in s for s in labels if "n=" in s)
    with pytest.raises(ValueRangeError, match="null"):
        ratio_histograms(SimpleNamespace(nulls={}))


def test_calibration_plot_axes(small_results):
    cal = small_results[3]
    fig = calibration_plot(cal)
    left, right = fig.axes
    assert "(km/s)" in left.get_xlabel() and "(km/s)" in left.get_ylabel()
    x, y = left.get_lines()[-1].get_data()
    np.testing.assert_array_equal(x, cal.bin_std)
    np.testing.assert_array_equal(y, cal.bin_abs_error)
    np.testing.assert_array_equal(right.get_lines()[-1].get_ydata(), cal.coverage)


def test_posterior_panels_have_colour_bars_in_km_per_s(small_results):
    _, truth, summary, _ = small_results
    fig = posterior_panels(truth, summary, spacing=(5.0, 10.0))
    images = [ax for ax in fig.axes if ax.get_images()]
    colourbars = [ax for ax in fig.axes if not ax.get_images()]
    assert len(images) == 4 and len(colourbars) == 4
    assert all("(km/s)" in cb.get_ylabel() for cb in colourbars)
    assert all(ax.get_xlabel() == "horizontal distance (m)" and ax.get_ylabel() == "depth (m)" for ax in images)
    assert images[0].get_images()[0].get_extent() == [0.0, 200.0, 120.0, 0.0]  # nx·dx, nz·dz, depth down
    with pytest.raises(ShapeError):
        posterior_panels(truth[:-1], summary)
    with pytest.raises(ValueRangeError):
        posterior_panels(truth, summary, spacing=(0.0, 1.0))
