"""``geomem invert``: diffusion posterior sampling for FWI with a learned or the memorized prior.

Data are either observed shot records (:mod:`geomem.physics.observed`: the ``.npz`` written by ``geomem model``,
whose stored survey must match the config's; SEG-Y shot gathers, checked and sorted by their headers; or a bare
``.npy`` ``(n_src, nt, n_rec)``; noise standard deviation ``gamma``) or synthesized from a truth of the model set
(``y = F(v) + ε``, ``γ = noise × RMS(F(v))``). The prior is a learned-prior folder, or ``memorized``: the
exact memorized prior of the first ``n_train`` models of the model set. The run folder gets the samples
(velocity, prior coordinates, their Tweedie estimates), the misfit history of every chain, the diverged
chains, ``metrics.json`` and figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from geomem.errors import ConfigError, DataFileError
from geomem.experiments.compare import (
    ModelSetSettings,
    SurveySettings,
    build_operator,
    dask_client,
    load_model_set,
    truth_index,
)
from geomem.metrics.posterior_quality import data_misfit_vs_noise, posterior_summary
from geomem.physics.observed import read_observed
from geomem.posterior.dps import DPSConfig, OperatorMisfit, dps
from geomem.priors.learned import LearnedPrior
from geomem.priors.memorized import MemorizedPrior
from geomem.report import save_figure
from geomem.report.compare_figures import misfit_curves
from geomem.report.metric_figures import posterior_panels
from geomem.runs import RunFolder


@dataclass(frozen=True)
class InvertConfig:
    """Settings of ``geomem invert`` (TOML tables ``model_set``, ``survey``, ``dps``)."""

    prior: str = "data/priors/n50"
    n_train: int = field(default=50, metadata={"min": 2})
    data: str = ""
    gamma: float = field(default=0.0, metadata={"min": 0})
    truth: str = "heldout:0"
    noise: float = field(default=0.055, metadata={"gt": 0})
    chains: int = field(default=8, metadata={"min": 1})
    seed: int = field(default=0, metadata={"min": 0})
    workers: int = field(default=2, metadata={"min": 0})
    model_set: ModelSetSettings = ModelSetSettings()
    survey: SurveySettings = SurveySettings()
    dps: DPSConfig = DPSConfig(steps=30, sigma_max=20.0, sigma_min=0.01, guidance="chung", zeta=0.03)


def load_prior(config: InvertConfig, ms):
    """The prior: a learned-prior folder (checked against the model set) or the memorized prior of N models."""
    if config.prior == "memorized":
        if config.n_train > len(ms):
            raise ConfigError(f"n_train = {config.n_train} but the model set has {len(ms)} models")
        return MemorizedPrior(torch.from_numpy(ms.normalized()[: config.n_train]))
    path = Path(config.prior)
    if not (path / "config.json").is_file():
        raise DataFileError(f"prior folder {path} has no config.json; pass a folder written by `geomem train` "
                            "or prior = \"memorized\"")
    prior = LearnedPrior.from_pretrained(path)
    prior.check_model_set(ms.family, ms.vmin, ms.vmax, tuple(ms.shape[1:]))
    return prior


def observed_data(config: InvertConfig, op, ms) -> tuple[np.ndarray, float, np.ndarray | None]:
    """``(y, γ, truth velocity or None)`` from the data file or from the configured truth."""
    if config.data:
        if not config.gamma > 0:
            raise ConfigError("observed data need their noise standard deviation: set gamma > 0")
        return read_observed(config.data, op.geometry), float(config.gamma), None
    idx = truth_index(config.truth, config.model_set.heldout_start, len(ms), len(ms))
    v = ms.models[idx]
    y0 = np.asarray(op.forward(v), dtype=np.float64)
    gamma = config.gamma or float(config.noise * np.sqrt(np.mean(y0**2)))
    y = y0 + gamma * np.random.default_rng([config.seed, idx]).standard_normal(y0.shape)
    return y, gamma, v


def run_invert(config: InvertConfig, out: str | Path, progress: bool = True) -> dict:
    ms = load_model_set(config.model_set)
    prior = load_prior(config, ms)
    op = build_operator(ms, config.survey)
    y, gamma, truth = observed_data(config, op, ms)
    param = ms.parameterization
    run = RunFolder(out, config=config, seed=config.seed)
    with dask_client(config.workers) as client:
        res = dps(prior, OperatorMisfit(op, y, param, client=client), config.chains, config.dps, seed=config.seed,
                  progress=progress)
    x = res.samples.double().numpy()
    velocity = param.to_velocity(x)
    run.write_arrays("samples.npz", velocity=velocity, x=x, denoised=res.denoised.double().numpy(),
                     misfit_history=res.misfit_history, final_misfit=res.final_misfit, diverged=res.diverged,
                     sigmas=res.sigmas, seeds=np.asarray(res.seeds), y=y, gamma=gamma)
    ratio = data_misfit_vs_noise(res.final_misfit, gamma, y.size)
    metrics = {"gamma": gamma, "n_chains": config.chains, "n_diverged": int(res.diverged.sum()),
               "misfit_over_noise": ratio.tolist(), "median_misfit_over_noise": float(np.median(ratio))}
    kept = velocity[~res.diverged]
    if truth is not None and len(kept) >= 2:
        summary = posterior_summary(kept, truth, data_range=ms.vmax - ms.vmin)
        metrics.update({k: float(v) for k, v in summary.scalars().items()})
        fig = posterior_panels(truth, summary, spacing=(ms.spacing, ms.spacing), title=f"DPS posterior, {config.prior}")
        save_figure(fig, run.figure("posterior.png"), dpi=100)
    fig = misfit_curves({config.prior: res.misfit_history}, res.sigmas, gamma * np.sqrt(y.size),
                        "DPS data misfit along the reverse process")
    save_figure(fig, run.figure("misfit.png"), dpi=100)
    run.write_metrics(metrics)
    return metrics
