"""Figures for prior training and unconditional sampling: the loss curve, and samples beside their nearest
training models (the visual memorization check). Both redraw from arrays saved in the run folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geomem.report import save_figure


def _save(fig, path: str | Path) -> Path:
    return save_figure(fig, path, dpi=120)


def plot_loss_curve(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Training loss (log scale) and learning rate against optimizer step, from ``train_log.jsonl`` records."""
    from matplotlib.figure import Figure

    steps = np.array([r["step"] for r in records], dtype=float)
    loss = np.array([r["loss"] for r in records], dtype=float)
    lr = np.array([r["lr"] for r in records], dtype=float)
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.semilogy(steps, loss, color="C0", label="loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("denoising loss (EDM-weighted)")
    ax2 = ax.twinx()
    ax2.plot(steps, lr, color="C1", lw=1, label="learning rate")
    ax2.set_ylabel("learning rate")
    ax.set_title("training loss")
    fig.legend(loc="upper right")
    return _save(fig, path)


def plot_gallery(samples: np.ndarray, nearest: np.ndarray, distances: np.ndarray, path: str | Path,
                 vmin: float | None = None, vmax: float | None = None, max_cols: int = 8,
                 unit: str = "km/s") -> Path:
    """Samples (top row of each pair) above their nearest training models (bottom row), with the distance.

    ``samples`` and ``nearest`` are ``(B, 1, nz, nx)`` (velocity or normalized; ``unit`` labels the colour bar),
    ``distances`` ``(B,)`` is the Euclidean distance (in the normalized coordinates used for the search).
    """
    from matplotlib.figure import Figure

    b = min(len(samples), max_cols * 4)
    cols = min(max_cols, b)
    pairs = int(np.ceil(b / cols))
    lo = float(np.min(samples[:b])) if vmin is None else vmin
    hi = float(np.max(samples[:b])) if vmax is None else vmax
    fig = Figure(figsize=(1.6 * cols, 3.3 * pairs), layout="constrained")
    axes = fig.subplots(2 * pairs, cols, squeeze=False)
    im = None
    for k in range(pairs * cols):
        r, c = divmod(k, cols)
        top, bot = axes[2 * r, c], axes[2 * r + 1, c]
        for a in (top, bot):
            a.set_xticks([])
            a.set_yticks([])
        if k >= b:
            top.axis("off")
            bot.axis("off")
            continue
        im = top.imshow(samples[k, 0], vmin=lo, vmax=hi, cmap="viridis")
        bot.imshow(nearest[k, 0], vmin=lo, vmax=hi, cmap="viridis")
        top.set_title(f"sample {k}", fontsize=7)
        bot.set_title(f"nearest, d={float(distances[k]):.3g}", fontsize=7)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label=unit)
    return _save(fig, path)
