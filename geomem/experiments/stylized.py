"""The stylized experiment (paper Fig. 1): exact vs linearized posteriors under a memorized prior.

Three parts, all with data noise γ and prior bandwidths σ ∈ ``sigmas``:

1. 1-D, ``F(x) = x + a x³``, training models ``one_d.train``, data ``y``: prior ``p_σ``, likelihood
   ``N(y; F(x), γ²)``, the exact posterior (grid) and the linearized mixture (with and without the
   log-determinant in its weights) as curves.
2. 2-D, ``F(x) = [x₁ + b x₁x₂, x₂ + c x₁²]``, ``n_train`` models on a circle of radius ``radius`` at angles
   ``2πk/n``, truth ``truth_scale · x₀``, noise-free data ``y = F(truth)``: the same four densities on a
   grid, and a zoom around the heaviest component at the smallest σ.
3. Effective number of posterior modes ``exp(H(w))`` against σ (log-spaced, ``sigma_min`` to ``sigma_max``)
   for N models evenly spaced on ``[lo, hi]`` with the 1-D operator, from the exact component masses and
   from the linearized weights, with ``σ_crit = sqrt(δ γ / |F'(x*)|)``: δ the spacing, ``x*`` the model
   with the largest lookup weight.

Every component's weight, mean and standard deviation at every σ goes to ``metrics.json``; the curves
and grids go to ``stylized.npz`` so that :mod:`geomem.report.stylized_figures` can redraw every figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from geomem.config import load_config
from geomem.errors import ConfigError
from geomem.physics.toy import Cubic1D, Quadratic2D
from geomem.posterior import (
    Likelihood,
    LinearizedPosterior,
    effective_modes,
    grid_posterior,
    lookup_weights,
    sigma_crit,
)
from geomem.runs import RunFolder


@dataclass(frozen=True)
class OneDConfig:
    train: tuple[float, ...] = (-1.5, -0.4, 0.4, 1.2, 2.5)
    y: float = 0.0
    cubic: float = field(default=0.3, metadata={"min": 0.0})
    grid_min: float = -4.0
    grid_max: float = 4.0
    grid_points: int = field(default=4001, metadata={"min": 101})


@dataclass(frozen=True)
class TwoDConfig:
    n_train: int = field(default=5, metadata={"min": 1})
    radius: float = field(default=2.0, metadata={"gt": 0.0})
    truth_scale: float = 0.7
    b: float = 0.3
    c: float = 0.2
    extent: float = field(default=4.0, metadata={"gt": 0.0})
    grid_points: int = field(default=301, metadata={"min": 51})
    zoom_halfwidth: float = field(default=0.2, metadata={"gt": 0.0})
    zoom_points: int = field(default=201, metadata={"min": 51})


@dataclass(frozen=True)
class ModesConfig:
    n_train: tuple[int, ...] = field(default=(3, 5, 10, 20, 100), metadata={"min": 2})
    lo: float = -3.0
    hi: float = 3.0
    y: float = 0.0
    sigma_min: float = field(default=0.01, metadata={"gt": 0.0})
    sigma_max: float = field(default=5.0, metadata={"gt": 0.0})
    n_sigma: int = field(default=40, metadata={"min": 2})
    grid_points: int = field(default=8001, metadata={"min": 101})
    grid_pad: float = field(default=1.5, metadata={"min": 0.0})


@dataclass(frozen=True)
class StylizedConfig:
    gamma: float = field(default=0.3, metadata={"gt": 0.0})
    sigmas: tuple[float, ...] = field(default=(0.5, 0.3, 0.05), metadata={"gt": 0.0})
    one_d: OneDConfig = OneDConfig()
    two_d: TwoDConfig = TwoDConfig()
    modes: ModesConfig = ModesConfig()

    def __post_init__(self):
        if not self.sigmas:
            raise ConfigError("sigmas must list at least one prior bandwidth")
        if self.one_d.grid_min >= self.one_d.grid_max:
            raise ConfigError("one_d.grid_min must be smaller than one_d.grid_max")
        if len(self.one_d.train) == 0:
            raise ConfigError("one_d.train must list at least one training model")
        if self.modes.lo >= self.modes.hi or self.modes.sigma_min >= self.modes.sigma_max:
            raise ConfigError("modes needs lo < hi and sigma_min < sigma_max")


def _summary(lp: LinearizedPosterior) -> dict[str, Any]:
    return {
        "weights": lp.weights,
        "means": lp.means,
        "stds": lp.stds,
        "mean": lp.mean().ravel(),
        "std": np.sqrt(np.diag(lp.covariance())),
    }


def _exact_summary(gp) -> dict[str, Any]:
    return {
        "weights": gp.component_weights,
        "means": gp.component_means,
        "stds": np.sqrt(np.diagonal(gp.component_covariances, axis1=1, axis2=2)),
        "mean": gp.mean,
        "std": np.sqrt(np.diag(gp.covariance)),
        "log_evidence": gp.log_evidence,
        "grid_edge_relative_density": gp.edge_mass,
    }


def _compare(exact: dict, lin: dict, lin_nolog: dict) -> dict[str, float]:
    return {
        "weights_l1_linearized_vs_exact": float(np.abs(lin["weights"] - exact["weights"]).sum()),
        "weights_l1_no_logdet_vs_exact": float(np.abs(lin_nolog["weights"] - exact["weights"]).sum()),
        "means_maxabs_linearized_vs_exact": float(np.abs(lin["means"] - exact["means"]).max()),
    }


def run_1d(cfg: StylizedConfig) -> tuple[dict, dict]:
    c = cfg.one_d
    op = Cubic1D(c.cubic)
    train = np.asarray(c.train, dtype=float)[:, None]
    y = np.array([c.y])
    grid = np.linspace(c.grid_min, c.grid_max, c.grid_points)
    arrays: dict[str, np.ndarray] = {"1d_grid": grid, "1d_train": train[:, 0], "sigmas": np.asarray(cfg.sigmas)}
    lik = Likelihood(op, y, cfg.gamma)
    metrics: dict[str, Any] = {"lookup_weights": lookup_weights(op.forward(train), lik), "sigmas": {}}
    for k, s in enumerate(cfg.sigmas):
        gp = grid_posterior(lik, train, s, (grid,))
        lin = LinearizedPosterior.from_likelihood(lik, train, s, logdet=True)
        nolog = LinearizedPosterior.from_likelihood(lik, train, s, logdet=False)
        arrays[f"1d_prior_{k}"] = gp.prior
        arrays[f"1d_likelihood_{k}"] = gp.likelihood
        arrays[f"1d_exact_{k}"] = gp.density
        arrays[f"1d_linearized_{k}"] = np.exp(lin.log_density(grid[:, None]))
        arrays[f"1d_linearized_nologdet_{k}"] = np.exp(nolog.log_density(grid[:, None]))
        ex, li, nl = _exact_summary(gp), _summary(lin), _summary(nolog)
        metrics["sigmas"][repr(s)] = {"exact": ex, "linearized": li, "linearized_no_logdet": nl, **_compare(ex, li, nl)}
    return metrics, arrays


def pentagon(n: int, radius: float) -> np.ndarray:
    """``n`` points on a circle of ``radius`` at angles ``2πk/n``, shape (n, 2)."""
    ang = 2 * np.pi * np.arange(n) / n
    return radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)


def run_2d(cfg: StylizedConfig) -> tuple[dict, dict]:
    c = cfg.two_d
    op = Quadratic2D(c.b, c.c)
    train = pentagon(c.n_train, c.radius)
    truth = c.truth_scale * train[0]
    y = op.forward(truth)
    ax = np.linspace(-c.extent, c.extent, c.grid_points)
    arrays: dict[str, np.ndarray] = {"2d_axis": ax, "2d_train": train, "2d_truth": truth}
    lik = Likelihood(op, y, cfg.gamma)
    w_lookup = lookup_weights(op.forward(train), lik)
    metrics: dict[str, Any] = {"truth": truth, "y": y, "lookup_weights": w_lookup, "sigmas": {}}
    pts = np.stack([g.ravel() for g in np.meshgrid(ax, ax, indexing="ij")], axis=1)
    for k, s in enumerate(cfg.sigmas):
        gp = grid_posterior(lik, train, s, (ax, ax))
        lin = LinearizedPosterior.from_likelihood(lik, train, s, logdet=True)
        nolog = LinearizedPosterior.from_likelihood(lik, train, s, logdet=False)
        arrays[f"2d_prior_{k}"] = gp.prior
        arrays[f"2d_likelihood_{k}"] = gp.likelihood
        arrays[f"2d_exact_{k}"] = gp.density
        arrays[f"2d_linearized_{k}"] = np.exp(lin.log_density(pts)).reshape(gp.density.shape)
        ex, li, nl = _exact_summary(gp), _summary(lin), _summary(nolog)
        metrics["sigmas"][repr(s)] = {"exact": ex, "linearized": li, "linearized_no_logdet": nl, **_compare(ex, li, nl)}
        if k == int(np.argmin(cfg.sigmas)):
            centre = gp.component_means[int(np.argmax(gp.component_weights))]
            z1 = np.linspace(centre[0] - c.zoom_halfwidth, centre[0] + c.zoom_halfwidth, c.zoom_points)
            z2 = np.linspace(centre[1] - c.zoom_halfwidth, centre[1] + c.zoom_halfwidth, c.zoom_points)
            zoom = grid_posterior(lik, train, s, (z1, z2))
            zpts = np.stack([g.ravel() for g in np.meshgrid(z1, z2, indexing="ij")], axis=1)
            arrays["2d_zoom_x1"], arrays["2d_zoom_x2"] = z1, z2
            arrays["2d_zoom_sigma"] = np.array(s)
            # rescale the window's density to the full posterior's normalization
            arrays["2d_zoom_exact"] = zoom.density * np.exp(zoom.log_evidence - gp.log_evidence)
            arrays["2d_zoom_linearized"] = np.exp(lin.log_density(zpts)).reshape(zoom.density.shape)
    return metrics, arrays


def run_modes(cfg: StylizedConfig, progress: bool = True) -> tuple[dict, dict]:
    c = cfg.modes
    op = Cubic1D(cfg.one_d.cubic)
    lik = Likelihood(op, np.array([c.y]), cfg.gamma)
    sigmas = np.geomspace(c.sigma_min, c.sigma_max, c.n_sigma)
    grid = np.linspace(c.lo - c.grid_pad, c.hi + c.grid_pad, c.grid_points)
    arrays: dict[str, np.ndarray] = {"modes_sigmas": sigmas, "modes_n_train": np.asarray(c.n_train)}
    table: dict[str, Any] = {"sigmas": sigmas, "N": {}}
    bar = tqdm(total=len(c.n_train) * len(sigmas), desc="effective modes", disable=not progress)
    for n in c.n_train:
        train = np.linspace(c.lo, c.hi, n)[:, None]
        w_lookup = lookup_weights(op.forward(train), lik)
        x_star = train[int(np.argmax(w_lookup)), 0]
        delta = (c.hi - c.lo) / (n - 1)
        jac = float(abs(op.derivative(x_star)))
        lin_modes, exact_modes, edge = [], [], 0.0
        for s in sigmas:
            lin = LinearizedPosterior.from_likelihood(lik, train, s)
            gp = grid_posterior(lik, train, s, (grid,))
            lin_modes.append(effective_modes(lin.weights))
            exact_modes.append(effective_modes(gp.component_weights))
            edge = max(edge, gp.edge_mass)
            bar.update()
        arrays[f"modes_linearized_{n}"] = np.asarray(lin_modes)
        arrays[f"modes_exact_{n}"] = np.asarray(exact_modes)
        arrays[f"modes_sigma_crit_{n}"] = np.array(sigma_crit(delta, cfg.gamma, jac))
        arrays[f"modes_lookup_{n}"] = np.array(effective_modes(w_lookup))
        table["N"][str(n)] = {
            "effective_modes_linearized": lin_modes,
            "effective_modes_exact": exact_modes,
            "effective_modes_lookup": effective_modes(w_lookup),
            "sigma_crit": sigma_crit(delta, cfg.gamma, jac),
            "delta": delta,
            "jac_norm": jac,
            "x_star": x_star,
            "grid_edge_relative_density": edge,
        }
    bar.close()
    return table, arrays


def run_stylized(cfg: StylizedConfig, out: str | Path, progress: bool = True) -> RunFolder:
    """Run all three parts, write ``metrics.json``, ``stylized.npz`` and the figures into ``out``."""
    from geomem.report.stylized_figures import draw_all

    run = RunFolder(out, config=cfg)
    m1, a1 = run_1d(cfg)
    m2, a2 = run_2d(cfg)
    mm, am = run_modes(cfg, progress=progress)
    arrays = {**a1, **a2, **am}
    run.write_arrays("stylized.npz", **arrays)
    run.write_metrics({"gamma": cfg.gamma, "one_d": m1, "two_d": m2, "effective_modes": mm})
    draw_all(arrays, run.path / "figures")
    return run


def load_stylized_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> StylizedConfig:
    return load_config(StylizedConfig, path, overrides)
