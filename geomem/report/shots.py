"""Shot-gather figure: one panel per shot, receivers (m) across, time (ms) down, a symmetric grey scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from geomem.errors import ShapeError
from geomem.runs import atomic_path


def shots_figure(
    data: np.ndarray, time_ms: np.ndarray, rec_x: np.ndarray, src_x: np.ndarray | None = None,
    clip_percentile: float = 99.0, title: str | None = None,
) -> Figure:
    """Panels of shot records ``data`` ``(n_src, nt, n_rec)`` against receiver position ``rec_x`` (m) and
    time ``time_ms``; colour clipped at the ``clip_percentile`` of ``|data|`` (one scale for all shots)."""
    data = np.asarray(data)
    if data.ndim != 3 or data.shape[1] != len(time_ms) or data.shape[2] != len(rec_x):
        raise ShapeError(f"shot records must be (n_src, nt={len(time_ms)}, n_rec={len(rec_x)}), got {data.shape}")
    n = data.shape[0]
    clip = float(np.percentile(np.abs(data), clip_percentile)) or 1.0
    fig = Figure(figsize=(2.3 * n + 1.0, 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n, sharey=True, squeeze=False)[0])
    extent = (float(rec_x[0]), float(rec_x[-1]), float(time_ms[-1]), float(time_ms[0]))
    image = None
    for s, ax in enumerate(axes):
        image = ax.imshow(data[s], cmap="gray", vmin=-clip, vmax=clip, aspect="auto", extent=extent)
        ax.set_xlabel("receiver x (m)")
        ax.set_title(f"shot {s}" + (f" (x = {src_x[s]:.0f} m)" if src_x is not None else ""), fontsize=9)
    axes[0].set_ylabel("time (ms)")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="amplitude")
    if title:
        fig.suptitle(title)
    return fig


def save_shots(path: str | Path, data, time_ms, rec_x, src_x=None, dpi: int = 120, **kwargs) -> Path:
    """Draw :func:`shots_figure` and write it to ``path`` atomically."""
    path = Path(path)
    fig = shots_figure(data, time_ms, rec_x, src_x, **kwargs)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lower()[1:] or "png")
    return path
