"""Figures of the stylized experiment (paper Fig. 1), drawn from the arrays of ``stylized.npz`` alone.

- ``stylized_1d.png``: one panel per σ with the prior ``p_σ(x)``, the likelihood ``N(y; F(x), γ²)``
  (rescaled to unit area for display), the exact posterior and the linearized mixture with and
  without the log-determinant in its weights; training models as ticks.
- ``stylized_2d.png``: rows σ, columns prior / likelihood / exact / linearized posterior (filled contours);
  training models as open circles so that the spikes at small σ stay visible inside them.
- ``stylized_2d_zoom.png``: exact and linearized posterior around the heaviest component at the smallest σ.
- ``effective_modes.png``: ``exp(H(w))`` against σ (log axis) for each N, exact (solid) and linearized
  (dashed), with ``σ_crit`` as dotted vertical lines.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from geomem.report import save_figure


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path, dpi=130)


def _unit_area(f: np.ndarray, x: np.ndarray) -> np.ndarray:
    return f / np.trapezoid(f, x)


def plot_1d(a: dict, path: Path) -> Path:
    sigmas = np.asarray(a["sigmas"])
    x = a["1d_grid"]
    fig = Figure(figsize=(4.6 * len(sigmas), 3.8), layout="constrained")
    axes = fig.subplots(1, len(sigmas), squeeze=False)
    for k, (ax, s) in enumerate(zip(axes[0], sigmas, strict=True)):
        ax.plot(x, a[f"1d_prior_{k}"], color="0.55", lw=1.2, label="prior $p_\\sigma(x)$")
        lik = _unit_area(a[f"1d_likelihood_{k}"], x)
        ax.plot(x, lik, color="tab:green", lw=1.2, ls=":", label="likelihood (unit area)")
        ax.plot(x, a[f"1d_exact_{k}"], color="k", lw=2.0, label="exact posterior")
        ax.plot(x, a[f"1d_linearized_{k}"], color="tab:red", lw=1.3, ls="--", label="linearized (log-det)")
        ax.plot(
            x, a[f"1d_linearized_nologdet_{k}"], color="tab:blue", lw=1.1, ls="-.", label="linearized (no log-det)"
        )
        ax.plot(a["1d_train"], np.zeros_like(a["1d_train"]), "v", color="tab:orange", ms=7, label="training models")
        ax.set_title(f"$\\sigma$ = {s:g}")
        ax.set_xlabel("model $x$")
        ax.set_xlim(x[0], x[-1])
    axes[0, 0].set_ylabel("density")
    axes[0, 0].legend(fontsize=8, loc="upper left")
    fig.suptitle("1-D stylized problem: $F(x) = x + 0.3x^3$, y = 0")
    return _save(fig, path)


def plot_2d(a: dict, path: Path) -> Path:
    sigmas = np.asarray(a["sigmas"])
    g = a["2d_axis"]
    names = [("prior", "prior $p_\\sigma$"), ("likelihood", "likelihood"), ("exact", "exact posterior"),
             ("linearized", "linearized posterior")]
    fig = Figure(figsize=(13, 3.2 * len(sigmas)), layout="constrained")
    axes = fig.subplots(len(sigmas), 4, squeeze=False)
    for k, s in enumerate(sigmas):
        for j, (key, title) in enumerate(names):
            ax = axes[k, j]
            field = a[f"2d_{key}_{k}"]
            ax.contourf(g, g, field.T, levels=20, cmap="viridis")
            ax.plot(*a["2d_train"].T, "o", mfc="none", mec="w", ms=9, mew=1.0)
            ax.plot(*a["2d_truth"], "*", color="tab:red", ms=10)
            ax.set_aspect("equal")
            ax.set_title(f"{title}, $\\sigma$ = {s:g}", fontsize=9)
            ax.set_xlabel("$x_1$")
            ax.set_ylabel("$x_2$")
    fig.suptitle("2-D stylized problem: training models (○), truth (★); thin spikes at small σ: see the zoom")
    return _save(fig, path)


def plot_2d_zoom(a: dict, path: Path) -> Path:
    z1, z2 = a["2d_zoom_x1"], a["2d_zoom_x2"]
    ex, li = a["2d_zoom_exact"], a["2d_zoom_linearized"]
    levels = np.linspace(0, max(ex.max(), li.max()), 12)[1:]
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, field, title in ((axes[0], ex, "exact posterior"), (axes[1], li, "linearized posterior")):
        cs = ax.contourf(z1, z2, field.T, levels=np.concatenate([[0], levels]), cmap="viridis")
        ax.contour(z1, z2, ex.T, levels=levels, colors="w", linewidths=0.6)
        train = a["2d_train"]
        inside = (train[:, 0] >= z1[0]) & (train[:, 0] <= z1[-1]) & (train[:, 1] >= z2[0]) & (train[:, 1] <= z2[-1])
        ax.plot(*train[inside].T, "x", color="tab:red", ms=9, mew=2, label="training model")
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
        ax.set_title(f"{title}, $\\sigma$ = {float(a['2d_zoom_sigma']):g}", fontsize=10)
        fig.colorbar(cs, ax=ax, shrink=0.8, label="density")
    axes[1].legend(fontsize=8, title="white lines: exact", title_fontsize=8)
    return _save(fig, path)


def plot_effective_modes(a: dict, path: Path) -> Path:
    sig = a["modes_sigmas"]
    fig = Figure(figsize=(7, 4.6), layout="constrained")
    ax = fig.subplots()
    for i, n in enumerate(np.asarray(a["modes_n_train"])):
        color = matplotlib.colormaps["viridis"](i / max(1, len(a["modes_n_train"]) - 1))
        ax.plot(sig, a[f"modes_exact_{n}"], color=color, lw=2, label=f"N = {n}")
        ax.plot(sig, a[f"modes_linearized_{n}"], color=color, lw=1.2, ls="--")
        ax.axvline(float(a[f"modes_sigma_crit_{n}"]), color=color, ls=":", lw=1.2)
    ax.plot([], [], color="k", lw=2, label="exact (grid)")
    ax.plot([], [], color="k", lw=1.2, ls="--", label="linearized")
    ax.plot([], [], color="k", lw=1.2, ls=":", label="$\\sigma_{crit}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("prior bandwidth $\\sigma$")
    ax.set_ylabel("effective number of modes $\\exp H(w)$")
    ax.set_title("Effective posterior modes, N models evenly spaced on [-3, 3]")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def draw_all(arrays: dict, folder: str | Path) -> list[Path]:
    """Draw every stylized figure from the arrays (a dict or a loaded ``stylized.npz``) into ``folder``."""
    folder = Path(folder)
    return [
        plot_1d(arrays, folder / "stylized_1d.png"),
        plot_2d(arrays, folder / "stylized_2d.png"),
        plot_2d_zoom(arrays, folder / "stylized_2d_zoom.png"),
        plot_effective_modes(arrays, folder / "effective_modes.png"),
    ]
