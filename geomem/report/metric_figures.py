"""Figures of the metrics: ratio histograms beside their nulls, calibration, posterior mean/std/error.

All functions return a ``matplotlib.figure.Figure`` (no pyplot state), with labelled axes and units:
ratios are dimensionless, velocities and their std/errors in km/s (or the unit passed), distances in m.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from geomem.errors import ShapeError, ValueRangeError
from geomem.metrics.memorization import MemorizationReport
from geomem.metrics.posterior_quality import Calibration, PosteriorSummary

_NULL_STYLES = {"heldout": ("tab:green", "-", "held-out vs train (null)"),
                "leave_one_out": ("tab:gray", "--", "leave-one-out in train (null)")}

_STATISTICS = (("ratio_12", r"$d_1/d_2$ (dimensionless)"),
               ("ratio_k", r"$d_1/\mathrm{mean}(d_2..d_k)$ (dimensionless)"))


def ratio_histograms(report: MemorizationReport, bins: int = 40) -> Figure:
    """Histograms of both ratios for the samples and every null, with each criterion's threshold marked.

    The legend gives each group's rate at the first threshold of that panel, so no rate appears without
    its null.
    """
    if not report.nulls:
        raise ValueRangeError("ratio histograms need at least one null baseline")
    fig = Figure(figsize=(11, 5.6), layout="constrained")
    axes = fig.subplots(1, 2)
    edges = np.linspace(0.0, 1.0, bins + 1)
    groups = {"samples": report.samples, **report.nulls}
    for ax, (stat, label) in zip(axes, _STATISTICS, strict=True):
        crits = [c for c in report.criteria if c.statistic == stat]
        first = crits[0].name if crits else None
        for g, ratios in groups.items():
            rate = f", rate {report.rates[first][g]}" if first else ""
            values = np.clip(getattr(ratios, stat), 0.0, 1.0)
            if g == "samples":
                ax.hist(values, bins=edges, density=True, color="tab:blue", alpha=0.55,
                        label=f"samples (n={len(ratios)}){rate}")
            else:
                color, linestyle, name = _NULL_STYLES.get(g, ("tab:purple", "-.", f"{g} (null)"))
                ax.hist(values, bins=edges, density=True, histtype="step", linewidth=1.8, color=color,
                        linestyle=linestyle, label=f"{name} (n={len(ratios)}){rate}")
        for c, style in zip(crits, ("--", ":", "-."), strict=False):
            ax.axvline(c.threshold, color="tab:red", linestyle=style, linewidth=1.4, label=f"threshold {c.name}")
        ax.set_xlabel(label)
        ax.set_ylabel("probability density (per unit ratio)")
        ax.set_xlim(0.0, 1.0)
        ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    fig.suptitle(f"Nearest-neighbour ratios, N = {report.samples.n_train} training models "
                 f"(k = {report.samples.k}); rates with {100 * report.level:.0f}% bootstrap intervals")
    return fig


def calibration_plot(cal: Calibration, unit: str = "km/s", title: str | None = None) -> Figure:
    """Left: binned pointwise std against mean |error| with the diagonal and the Gaussian line
    ``|error| = √(2/π) std``. Right: observed coverage of central credible intervals against nominal."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    top = 1.05 * float(max(cal.bin_std.max(), cal.bin_abs_error.max(), 1e-12))
    line = np.array([0.0, top])
    ax1.plot(line, line, color="k", linewidth=1, label="|error| = std")
    ax1.plot(line, np.sqrt(2 / np.pi) * line, color="k", linestyle="--", linewidth=1,
             label=r"calibrated Gaussian: $\sqrt{2/\pi}$ std")
    ax1.plot(cal.bin_std, cal.bin_abs_error, "o-", color="tab:blue", label="binned pixels")
    ax1.set_xlim(0, top)
    ax1.set_ylim(0, top)
    ax1.set_xlabel(f"pointwise posterior std ({unit})")
    ax1.set_ylabel(f"mean |posterior mean − truth| ({unit})")
    ax1.legend(fontsize=8)
    ax2.plot([0, 1], [0, 1], color="k", linewidth=1, label="ideal")
    ax2.plot(cal.levels, cal.coverage, "s-", color="tab:orange", label="observed")
    ax2.set_xlim(0, 1)
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("nominal level of central credible interval")
    ax2.set_ylabel("fraction of pixels whose truth is covered")
    ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def posterior_panels(
    truth: np.ndarray,
    summary: PosteriorSummary,
    spacing: Sequence[float] = (10.0, 10.0),
    unit: str = "km/s",
    title: str | None = None,
) -> Figure:
    """Truth, posterior mean, pointwise std and |mean − truth|, each with a colour bar in ``unit``.

    ``truth`` is ``(nz, nx)`` (or ``(1, nz, nx)``); ``spacing = (dz, dx)`` in m sets the axes (depth down).
    """
    t = np.asarray(truth, dtype=np.float64)
    if t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    if t.shape != summary.mean.shape:
        raise ShapeError(f"truth {t.shape} and posterior mean {summary.mean.shape} must have the same shape")
    dz, dx = (float(s) for s in spacing)
    if not (dz > 0 and dx > 0):
        raise ValueRangeError(f"grid spacing (dz, dx) must be > 0 m, got {spacing}")
    nz, nx = t.shape
    extent = (0.0, nx * dx, nz * dz, 0.0)
    vmin, vmax = float(min(t.min(), summary.mean.min())), float(max(t.max(), summary.mean.max()))
    panels = [
        ("truth", t, "viridis", (vmin, vmax), f"velocity ({unit})"),
        (f"posterior mean (RMSE {summary.rmse:.3g} {unit}, SSIM {summary.ssim:.3f})", summary.mean, "viridis",
         (vmin, vmax), f"velocity ({unit})"),
        (f"pointwise std ({summary.n_samples} samples)", summary.std, "magma", (0.0, None), f"std ({unit})"),
        ("|posterior mean − truth|", np.abs(summary.mean - t), "magma", (0.0, None), f"|error| ({unit})"),
    ]
    fig = Figure(figsize=(12, 8.2), layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, (name, img, cmap, (lo, hi), cbar_label) in zip(axes.ravel(), panels, strict=True):
        im = ax.imshow(img, extent=extent, cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("horizontal distance (m)")
        ax.set_ylabel("depth (m)")
        fig.colorbar(im, ax=ax, label=cbar_label)
    if title:
        fig.suptitle(title)
    return fig
