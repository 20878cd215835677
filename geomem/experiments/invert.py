"""``geomem invert``: posterior sampling for FWI with a learned or the memorized prior.

The memorized prior gets the exact posterior (drawn at σ_min), a learned prior the configured sampler
(``[sampler]``: ``annealed`` started from importance-resampled prior draws by default, see
:class:`~geomem.workflow.posteriors.SamplerSettings`). Data are either observed shot records (recorded with the
survey of the config, noise standard deviation ``gamma``) or synthesized from a truth of the model set
(:meth:`geomem.workflow.problem.Problem.likelihood`).
The prior is a shipped prior's name, a learned-prior folder, or ``memorized``: the exact memorized prior of
the first ``n_train`` models. The run folder gets the samples (velocity, prior coordinates), their misfits and
history, the diverged chains, ``metrics.json`` and figures. ``device`` places a learned prior's network (the
same setting as ``compare``: ``"auto"`` takes a CUDA GPU when there is one); the memorized prior and the Devito
solves stay on the CPU. A CPU run is the same as before the setting existed; a GPU run draws other numbers for
the same seed (the chains' noise is drawn on their device).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geomem.config import Settings
from geomem.metrics.posterior_quality import posterior_summary
from geomem.priors.training import resolve_device
from geomem.report import save_figure
from geomem.report.compare_figures import misfit_curves
from geomem.report.metric_figures import posterior_panels
from geomem.runs import RunFolder
from geomem.workflow.parallel import dask_client
from geomem.workflow.posteriors import SamplerSettings, sampled_posterior
from geomem.workflow.priors import load_prior
from geomem.workflow.problem import ModelSetSettings, Problem, SurveySettings


@dataclass(frozen=True)
class InvertConfig(Settings):
    """Settings of ``geomem invert`` (TOML tables ``model_set``, ``survey``, ``sampler``)."""

    prior: str = "n50"
    n_train: int = field(default=50, metadata={"min": 2})
    data: str = ""
    gamma: float = field(default=0.0, metadata={"min": 0})
    truth: str = "heldout:0"
    noise: float = field(default=0.055, metadata={"gt": 0})
    chains: int = field(default=8, metadata={"min": 1})
    seed: int = field(default=0, metadata={"min": 0})
    workers: int = field(default=-1, metadata={"min": -1})  # Dask worker processes; -1: serial on <= 2 cores
    allow_other_set: bool = False  # use a learned prior with models other than its training set, deliberately
    device: str = "auto"  # the learned prior's network: "auto" (a GPU when there is one), "cpu", "cuda[:k]"
    model_set: ModelSetSettings = ModelSetSettings()
    survey: SurveySettings = SurveySettings()
    sampler: SamplerSettings = SamplerSettings()


def run_invert(config: InvertConfig, out: str | Path) -> dict:
    """Sample the posterior into run folder ``out``; return the metrics (also in ``metrics.json``)."""
    device = resolve_device(config.device)  # a bad or absent device fails before any work
    problem = Problem.build(config.model_set, config.survey)
    ms = problem.model_set
    prior = load_prior(config.prior, ms, config.n_train, device, allow_other_set=config.allow_other_set)
    run = RunFolder(out, config=config, seed=config.seed)
    with dask_client(None if config.workers < 0 else config.workers) as client:
        if config.data:
            idx, lik = -1, problem.observed(config.data, config.gamma, client)
        else:
            idx, lik = problem.likelihood(config.truth, config.noise, config.seed, len(ms), client=client)
        post = sampled_posterior(prior, lik, config.chains, config.sampler, config.seed, device=device)
    velocity = problem.parameterization.to_velocity(post.samples)
    run.write_arrays("samples.npz", velocity=velocity, **post.to_arrays(), y=lik.y)
    ratio = post.misfit_over_noise
    metrics = {"gamma": lik.gamma, "n_chains": config.chains, "n_diverged": int(post.diverged.sum()),
               "misfit_over_noise": ratio.tolist(), "median_misfit_over_noise": float(np.median(ratio)),
               "gradients_per_sample": post.info["gradients_per_sample"],
               "device": "cpu" if config.prior == "memorized" else str(device)}
    kept = velocity[~post.diverged]
    if idx >= 0 and len(kept) >= 2:
        truth = ms.models[idx]
        summary = posterior_summary(kept, truth, data_range=ms.vmax - ms.vmin)
        metrics.update({k: float(v) for k, v in summary.scalars().items()})
        fig = posterior_panels(truth, summary, spacing=(ms.spacing, ms.spacing), title=f"posterior, {config.prior}")
        save_figure(fig, run.figure("posterior.png"), dpi=100)
    if post.history is not None:
        levels = np.asarray(post.info.get("sigmas", post.info.get("rhos", np.arange(len(post.history)))), dtype=float)
        fig = misfit_curves({config.prior: (levels, post.history)}, lik.gamma * np.sqrt(lik.n_data),
                            "data misfit along the sampler's schedule")
        save_figure(fig, run.figure("misfit.png"), dpi=100)
    run.write_metrics(metrics)
    return metrics
