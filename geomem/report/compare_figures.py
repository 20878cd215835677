"""Figures of ``geomem compare``: posterior grids, memorized samples beside their nearest training models,
and data-misfit curves along the reverse process. Velocities in km/s, distances in m."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure


def _extent(shape: tuple[int, int], spacing: float) -> tuple[float, float, float, float]:
    nz, nx = shape
    return (0.0, nx * spacing, nz * spacing, 0.0)


def posterior_grid(truth: np.ndarray | None, samples: Mapping[str, np.ndarray], spacing: float, vmin: float,
                   vmax: float, title: str) -> Figure:
    """One row per posterior: mean, pointwise std, |mean − truth|; the truth in a first row of its own.

    ``truth`` ``(1, nz, nx)`` km/s, or None for observed data (then no truth row and no error column);
    ``samples`` name → ``(S, 1, nz, nx)`` km/s.
    """
    names = list(samples)
    shape = np.asarray(next(iter(samples.values()))).shape[-2:]
    ext = _extent(shape, spacing)
    first = 0 if truth is None else 1
    ncols = 2 if truth is None else 3
    fig = Figure(figsize=(4.4 * ncols, 2.9 * (len(names) + first)), layout="constrained")
    axes = fig.subplots(len(names) + first, ncols, squeeze=False)
    stds = {k: np.asarray(v)[:, 0].std(0, ddof=1) for k, v in samples.items()}
    std_max = max(float(s.max()) for s in stds.values()) or 1e-6
    if truth is not None:
        t = np.asarray(truth)[0]
        errs = {k: np.abs(np.asarray(v)[:, 0].mean(0) - t) for k, v in samples.items()}
        err_max = max(float(e.max()) for e in errs.values()) or 1e-6
        im = axes[0, 0].imshow(t, extent=ext, vmin=vmin, vmax=vmax, cmap="viridis", aspect="auto")
        axes[0, 0].set_title("truth")
        fig.colorbar(im, ax=axes[0, 0], label="velocity (km/s)")
        axes[0, 1].axis("off")
        axes[0, 2].axis("off")
    for row, name in enumerate(names, start=first):
        s = np.asarray(samples[name])[:, 0]
        panels = [
            (s.mean(0), "viridis", vmin, vmax, "velocity (km/s)", f"{name}: mean of {len(s)} samples"),
            (stds[name], "magma", 0.0, std_max, "std (km/s)", f"{name}: pointwise std"),
        ]
        if truth is not None:
            panels.append((errs[name], "magma", 0.0, err_max, "|error| (km/s)", f"{name}: |mean − truth|"))
        for col, (img, cmap, lo, hi, label, ttl) in enumerate(panels):
            ax = axes[row, col]
            im = ax.imshow(img, extent=ext, vmin=lo, vmax=hi, cmap=cmap, aspect="auto")
            ax.set_title(ttl, fontsize=10)
            fig.colorbar(im, ax=ax, label=label)
    for ax in axes.ravel():
        if ax.has_data():
            ax.set_xlabel("horizontal distance (m)")
            ax.set_ylabel("depth (m)")
    fig.suptitle(title)
    return fig


def memorized_pairs(samples: np.ndarray, nearest: np.ndarray, ratio_k: np.ndarray, nearest_index: np.ndarray,
                    spacing: float, vmin: float, vmax: float, title: str, n_show: int = 4) -> Figure:
    """The ``n_show`` samples with the smallest ``d1/mean(d2..dk)`` (top row) above their nearest training
    models (bottom row). ``samples``, ``nearest``: ``(S, 1, nz, nx)`` km/s."""
    order = np.argsort(ratio_k)[:n_show]
    fig = Figure(figsize=(3.2 * len(order) + 1.2, 6.0), layout="constrained")
    axes = fig.subplots(2, len(order), squeeze=False)
    ext = _extent(samples.shape[-2:], spacing)
    im = None
    for col, i in enumerate(order):
        for row, (img, label) in enumerate(((samples[i, 0], f"sample {i}\nratio_k = {ratio_k[i]:.3f}"),
                                            (nearest[i, 0], f"nearest training model #{nearest_index[i]}"))):
            ax = axes[row, col]
            im = ax.imshow(img, extent=ext, vmin=vmin, vmax=vmax, cmap="viridis", aspect="auto")
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("x (m)")
            ax.set_ylabel("depth (m)")
    fig.colorbar(im, ax=axes, label="velocity (km/s)", shrink=0.8)
    fig.suptitle(title)
    return fig


def misfit_curves(histories: Mapping[str, tuple[np.ndarray, np.ndarray]], noise_level: float, title: str) -> Figure:
    """Data misfit of every chain along the sampler's schedule: ``{name: (levels (K,), misfits (K, chains))}``
    with the noise level (DPS: σ of the reverse process; split Gibbs: the coupling width ρ) decreasing to the
    right, and the noise level ``γ√m`` marked."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    for (name, (levels, hist)), color in zip(histories.items(), colors, strict=False):
        for j in range(hist.shape[1]):
            ax.plot(levels, hist[:, j], color=color, alpha=0.5, linewidth=0.9, label=name if j == 0 else None)
    ax.axhline(noise_level, color="k", linestyle="--", label=r"noise level $\gamma\sqrt{m}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("noise level of the sampler's schedule, σ or ρ (normalized units)")
    ax.set_ylabel(r"data misfit $\|y - F(x)\|$ (data units)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig
