"""Gallery figure of velocity models: a grid of panels with axes in m and one colour bar in km/s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from geomem.errors import ConfigError, ShapeError
from geomem.runs import atomic_path


def gallery_figure(
    models: np.ndarray, spacing: float, vmin: float, vmax: float, indices=None, ncols: int = 4,
    title: str | None = None, cmap: str = "viridis",
) -> Figure:
    """Panels of ``models[indices]`` (``(N, 1, nz, nx)`` km/s) on a ``spacing`` m grid, one shared colour
    scale ``[vmin, vmax]`` km/s. ``indices`` defaults to the first ``min(N, 16)`` models."""
    models = np.asarray(models)
    if models.ndim != 4 or models.shape[1] != 1:
        raise ShapeError(f"models must have shape (N, 1, nz, nx), got {models.shape}")
    indices = list(range(min(len(models), 16))) if indices is None else [int(i) for i in indices]
    if not indices or min(indices) < 0 or max(indices) >= len(models):
        raise ConfigError(f"gallery indices must be a non-empty list within [0, {len(models)}), got {indices}")
    if ncols < 1:
        raise ConfigError(f"ncols must be >= 1, got {ncols}")
    nz, nx = models.shape[2:]
    ncols = min(ncols, len(indices))
    nrows = -(-len(indices) // ncols)
    panel_w = 2.4
    panel_h = panel_w * nz / nx
    fig = Figure(figsize=(panel_w * ncols + 1.4, panel_h * nrows + 0.9 + (0.3 if title else 0)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    extent = (0.0, nx * spacing, nz * spacing, 0.0)
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= len(indices):
            ax.set_axis_off()
            continue
        i = indices[k]
        image = ax.imshow(models[i, 0], extent=extent, vmin=vmin, vmax=vmax, cmap=cmap, aspect="equal",
                          interpolation="nearest")
        ax.set_title(f"#{i}", fontsize=9)
        ax.tick_params(labelsize=7)
        row, col = divmod(k, ncols)
        if col == 0:
            ax.set_ylabel("depth (m)", fontsize=8)
        else:
            ax.set_yticklabels([])
        if row == nrows - 1 or k + ncols >= len(indices):
            ax.set_xlabel("x (m)", fontsize=8)
        else:
            ax.set_xticklabels([])
    bar = fig.colorbar(image, ax=axes, shrink=0.9, pad=0.02)
    bar.set_label("velocity (km/s)")
    if title:
        fig.suptitle(title)
    return fig


def save_gallery(model_set, path: str | Path, indices=None, ncols: int = 4, title: str | None = None,
                 dpi: int = 120) -> Path:
    """Draw :func:`gallery_figure` of a :class:`~geomem.geology.ModelSet` and write it to ``path`` atomically."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ConfigError(f"gallery file {path} must end in .png, .pdf or .svg")
    if title is None:
        difficulty = model_set.meta.get("difficulty")
        title = f"{model_set.family}{' ' + difficulty if difficulty else ''}: {len(model_set)} models"
    fig = gallery_figure(model_set.models, model_set.spacing, model_set.vmin, model_set.vmax, indices, ncols, title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lower()[1:])
    return path
