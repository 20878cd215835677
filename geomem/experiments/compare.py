"""The main job: learned versus memorized posteriors for FWI, with memorization metrics (``geomem compare``).

For every training-set size N (one per learned prior, plus any memorized-only sizes), every truth (a
held-out model and a training model by default) and noisy data ``y = F(v_truth) + ε`` (γ = noise × RMS,
:meth:`geomem.workflow.problem.Problem.likelihood`), it computes four posteriors over the same σ_min —
``learned`` (the ``[sampler]`` method with the learned prior trained on the first N models), ``memorized`` (the
exact posterior under the memorized prior of those N models, drawn at σ_min), ``linearized`` (closed-form mixture) and
``lookup`` (σ → 0) — and scores each (:func:`geomem.workflow.scoring.score_posteriors`): memorization with
held-out and leave-one-out nulls, RMSE/SSIM, calibration, misfit/noise, energy distances.

Every cached stage is keyed by the contents of what it read (model set, prior weights, observed data) and
its settings, so an interrupted run continues where it stopped and a changed input is recomputed, never
reused. :mod:`geomem.report.compare_report` draws the figures and ``report.html`` from the folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geomem.config import Settings, to_dict
from geomem.errors import ConfigError
from geomem.metrics.memorization import null_baselines
from geomem.priors.training import resolve_device
from geomem.runs import RunFolder, write_npz
from geomem.workflow.cache import digest_array, digest_path, stage_key
from geomem.workflow.parallel import dask_client
from geomem.workflow.posteriors import (
    LinearizedSettings,
    SamplerSettings,
    cached_posterior,
    linearized_posterior,
    lookup_posterior,
    sampled_posterior,
)
from geomem.workflow.priors import SHIPPED, learned_prior, memorized_prior, resolve_prior_folder, training_size
from geomem.workflow.problem import ModelSetSettings, Problem, SurveySettings
from geomem.workflow.scoring import score_posteriors


@dataclass(frozen=True)
class CompareConfig(Settings):
    """Settings of ``geomem compare`` (TOML tables: ``model_set``, ``survey``, ``sampler``, ``linearized``)."""

    priors: tuple[str, ...] = SHIPPED
    train_sizes: tuple[int, ...] = ()
    truths: tuple[str, ...] = ("heldout:0", "train:0")
    data: str = ""  # observed shots (physics/observed.py: .npz of geomem model, SEG-Y, .npy); replaces the truths
    gamma: float = field(default=0.0, metadata={"min": 0})  # noise std of the observed data (required with data)
    noise: float = field(default=0.055, metadata={"gt": 0})
    chains: int = field(default=4, metadata={"min": 2})
    seed: int = field(default=0, metadata={"min": 0})
    workers: int = field(default=-1, metadata={"min": -1})  # Dask worker processes; -1: serial on <= 2 cores
    n_boot: int = field(default=1000, metadata={"min": 10})
    allow_other_set: bool = False  # use learned priors with models other than their training set, deliberately
    device: str = "auto"  # the learned priors' networks: "auto" (a GPU when there is one), "cpu", "cuda[:k]"
    model_set: ModelSetSettings = ModelSetSettings()
    survey: SurveySettings = SurveySettings()
    # CPU-sized default (the main job must finish in minutes on 2 cores): few chains and steps; the learned prior's
    # sampler is annealed with an importance-resampled start, 40 gradients per sample (SamplerSettings)
    sampler: SamplerSettings = SamplerSettings()
    linearized: LinearizedSettings = LinearizedSettings()


def load_priors(config: CompareConfig, problem: Problem) -> dict[int, tuple[str, object | None]]:
    """``{N: (name, learned prior or None)}``; each learned prior is checked against the model set."""
    priors: dict[int, tuple[str, object | None]] = {}
    device = resolve_device(config.device)
    for spec in config.priors:
        prior = learned_prior(spec, problem.model_set, device, allow_other_set=config.allow_other_set)
        priors[training_size(prior, spec)] = (spec, prior)
    for n in config.train_sizes:
        priors.setdefault(int(n), ("memorized", None))
    if not priors:
        raise ConfigError("nothing to compare: give learned priors (priors = [...]) or memorized sizes (train_sizes)")
    for n in priors:
        problem.train(n)  # refuses a set that overlaps the held-out pool
    return dict(sorted(priors.items()))


def run_compare(config: CompareConfig, out: str | Path, progress: bool = True) -> dict:
    """Run the comparison into run folder ``out``; return the metrics (also in ``metrics.json``)."""
    t_start = time.time()
    if not config.data and not config.truths:
        raise ConfigError('nothing to compare: give truths (e.g. truths = ["heldout:0"]) or observed data (data = ...)')
    problem = Problem.build(config.model_set, config.survey)
    priors = load_priors(config, problem)
    sizes = list(priors)
    if config.data:  # check the data before any long work
        problem.observed(config.data, config.gamma)
    run = RunFolder(out, config=config, seed=config.seed)
    ms = problem.model_set
    metrics: dict = {"sizes": sizes, "truths": {}, "model_set": {"family": ms.family, "n": len(ms),
                     "shape": list(ms.shape), "vmin": ms.vmin, "vmax": ms.vmax}, "sigma": config.sampler.sigma_min,
               "sampler": config.sampler.method}
    nulls = {n: null_baselines(problem.train(n), problem.heldout_null) for n in sizes}
    workers = None if config.workers < 0 else config.workers
    with dask_client(workers) as client:
        F_train = problem.forward_train(max(sizes), client, progress)
        for spec, t_idx, lik in observations(config, problem, F_train, min(sizes), client):
            tag = spec.replace(":", "")
            write_npz(run.path / f"truth_{tag}.npz", y=lik.y, gamma=lik.gamma, index=t_idx,
                      **({"velocity": ms.models[t_idx]} if t_idx >= 0 else {}))
            metrics["truths"][spec] = {"index": t_idx, "gamma": lik.gamma, "sizes": {}}
            for n, (name, learned) in priors.items():
                posts = posteriors_for_size(config, problem, lik, n, name, learned, F_train, run.path / "cache" / tag)
                scores, arrays = score_posteriors(posts, problem.train(n), nulls[n], lik, config.n_boot, config.seed,
                                                  ms.vmax - ms.vmin, F_train[:n])
                histories = {f"{k}__{a}": v for k, p in posts.items() if p.history is not None
                             for a, v in (("history", p.history), ("levels", schedule(p)))}
                velocities = {f"{k}__velocity": problem.parameterization.to_velocity(p.samples)
                              for k, p in posts.items()}
                write_npz(run.path / f"samples_{tag}_n{n}.npz", **velocities,
                          **{f"{k}__misfit": p.misfit for k, p in posts.items()}, **histories, **arrays)
                scores["sampler_info"] = {k: sampler_summary(p.info) for k, p in posts.items() if p.info}
                metrics["truths"][spec]["sizes"][str(n)] = scores
    metrics["wall_time_s"] = time.time() - t_start
    run.write_metrics(metrics)
    from geomem.report.compare_report import write_report

    metrics["report"] = str(write_report(run.path))
    return metrics


SAMPLER_SUMMARY = ("gradients_per_sample", "forwards_per_sample", "wall_time_s", "ess", "min_ess", "start_ess",
                   "select_after", "select_beta", "select_ess", "select_lineages", "ancestors")


def sampler_summary(info: dict) -> dict:
    """The entries of a sampler's ``info`` that say what it cost and how much its weights or selections kept
    (effective sample sizes, lineages): small, JSON-able, copied into ``metrics.json``."""
    return {k: np.asarray(info[k]).tolist() for k in SAMPLER_SUMMARY if k in info}


def schedule(post) -> np.ndarray:
    """The noise levels at which a sampler recorded its misfit history (DPS, annealed: σ; split Gibbs / SMC: ρ)."""
    return np.asarray(post.info.get("sigmas", post.info.get("rhos", np.arange(len(post.history)))), dtype=float)


def observations(config: CompareConfig, problem: Problem, F_train: np.ndarray, n_min: int, client):
    """``(spec, model index, Likelihood)`` per data set: the observed file (index −1), or every configured truth."""
    if config.data:
        return [("observed", -1, problem.observed(config.data, config.gamma, client))]
    return [(spec, *problem.likelihood(spec, config.noise, config.seed, n_min, F_train, client))
            for spec in config.truths]


def posteriors_for_size(config: CompareConfig, problem: Problem, lik, n: int, name: str, learned, F_train,
                        cache: Path) -> dict:
    """The four posteriors of one (data set, N), each cached in folder ``cache`` under a key of the contents and
    settings it depends on (a stale file is recomputed, never read)."""
    train = problem.train(n)
    base = {"models": problem.digest, "n": n, "data": digest_array(lik.y), "gamma": lik.gamma,
            "survey": problem.operator_key(), "chains": config.chains, "seed": config.seed}
    rng = np.random.default_rng([config.seed, n])
    out = {"lookup": lookup_posterior(lik, train, F_train, config.chains, rng)}
    sigma = config.sampler.sigma_min
    key = stage_key(kind="linearized", settings=to_dict(config.linearized), sigma=sigma, **base)
    out["linearized"] = cached_posterior(
        cache / f"linearized_n{n}.npz", key, "linearized",
        lambda: linearized_posterior(lik, train, F_train, sigma, config.linearized, config.chains, rng,
                                     out["lookup"].component_weights))
    kinds = {"memorized": ("memorized", memorized_prior(train))}
    device = resolve_device(config.device)
    if learned is not None:
        kinds["learned"] = (name, learned)
    for kind, (pname, prior) in kinds.items():
        weights = "exact" if kind == "memorized" else digest_path(resolve_prior_folder(pname))
        # a network on the GPU rounds differently from the CPU: its samples are cached apart (CPU keys unchanged)
        where = {} if kind == "memorized" or device.type == "cpu" else {"device": str(device)}
        key = stage_key(kind=kind, prior=weights, settings=to_dict(config.sampler), **base, **where)
        out[kind] = cached_posterior(
            cache / f"{kind}_n{n}.npz", key, kind,
            lambda prior=prior, dev=("cpu" if kind == "memorized" else device):
                sampled_posterior(prior, lik, config.chains, config.sampler, config.seed, F_train[:n], device=dev))
    return out
