"""``geomem validate-samplers``: every posterior sampler scored against exact posteriors.

Toys (:mod:`geomem.posterior.validation`): the 4-D linear, 1-D cubic and 2-D quadratic memorized-prior problems
and the linear-Gaussian one, ``toys.chains`` chains each, every sampler with its defaults except the target
bandwidth (``sigma_min = σ`` of the problem; ``rho_min = σ/2`` for split Gibbs and SMC), repeated for
``toys.seeds`` seeds (``seed + 1000 k``). Columns (mean ± sd over seeds): assignment TV to the exact
nearest-model masses, misfit/noise and its ratio to the exact value, coverage of 90 % intervals, likelihood
gradients and forward solves per sample, wall time; the TV floor is the mean TV of ``chains`` iid exact draws
(the sampling noise of that column).

FWI (``fwi.enabled``): the survey and model set of ``geomem compare`` (:class:`~geomem.workflow.problem.Problem`;
curvefault 64², 5 shots), memorized
prior of the first ``fwi.n_train`` models, truths ``train:i`` / ``heldout:i`` with ``y = F(v) + ε`` at
``noise`` × RMS. The exact reference is :func:`~geomem.posterior.exact.exact_memorized` (N forward solves).
Scores: TV between the samples' nearest training models and the exact weights, chains on the truth's model
(nearest training model = the truth's index) with misfit/noise ≤ 1.05, misfit relative to the nearest training
model's own misfit, RMSE to the truth (km/s), PDE solves per sample. ``fwi.learned`` adds learned priors
(folders from ``geomem train``) on the held-out truth: misfit/noise, RMSE, coverage of the truth by the
pointwise 90 % intervals and the memorized fraction (``d1/d2 < 1/3`` to the prior's training set).
``workers`` > 1 runs each chain's PDE solves as a Dask task; ``device`` places the networks.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geomem.config import Settings, to_dict
from geomem.errors import ConfigError
from geomem.posterior.annealed import AnnealedConfig
from geomem.posterior.dps import DPSConfig
from geomem.posterior.exact import exact_memorized
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.sample import SAMPLERS, sample_posterior, sampler_config
from geomem.posterior.smc import SMCConfig
from geomem.posterior.split_gibbs import SplitGibbsConfig
from geomem.posterior.validation import TOY_PROBLEMS, score, toy_problem
from geomem.priors.memorized import MemorizedPrior
from geomem.runs import RunFolder
from geomem.workflow.cache import digest_array, digest_path, stage_key
from geomem.workflow.parallel import dask_client
from geomem.workflow.posteriors import cached_posterior
from geomem.workflow.problem import ModelSetSettings, Problem, SurveySettings
from geomem.workflow.tables import fwi_table, toy_table


@dataclass(frozen=True)
class ToySettings(Settings):
    problems: tuple[str, ...] = TOY_PROBLEMS
    chains: int = field(default=400, metadata={"min": 2})
    seeds: int = field(default=3, metadata={"min": 1})  # repeats (seeds seed, seed + 1000, ...): mean and spread


@dataclass(frozen=True)
class FWISettings(Settings):
    """FWI part; the sampler tables hold their FWI settings (CPU-sized defaults: see docs/posterior.md)."""

    enabled: bool = True
    chains: int = field(default=16, metadata={"min": 1})
    n_train: int = field(default=50, metadata={"min": 2})
    truths: tuple[str, ...] = ("train:0", "heldout:0")
    noise: float = field(default=0.055, metadata={"gt": 0})
    methods: tuple[str, ...] = ("split_gibbs", "smc")
    memorized: bool = True  # run the samplers with the memorized prior too (the exact reference always runs)
    learned: tuple[str, ...] = ()  # learned priors (shipped names n50, n1000 or folders), run on the held-out truths
    workers: int | None = None  # Dask processes for the chains' PDE solves (None: workflow's default)
    device: str = "cpu"
    model_set: ModelSetSettings = ModelSetSettings()
    survey: SurveySettings = SurveySettings()
    split_gibbs: SplitGibbsConfig = SplitGibbsConfig(levels=8, mala_steps=4, final_sweeps=2)
    smc: SMCConfig = SMCConfig(burn_in=1, max_levels=8, mala_steps=4, final_sweeps=1)
    annealed: AnnealedConfig = AnnealedConfig(steps=8, mala_steps=4)
    dps: DPSConfig = DPSConfig(steps=40)


@dataclass(frozen=True)
class ValidateConfig(Settings):
    """Settings of ``geomem validate-samplers`` (TOML tables ``toys``, ``fwi``, ``fwi.model_set``, ``fwi.survey``)."""

    methods: tuple[str, ...] = ("exact", "smc", "split_gibbs", "annealed", "dps")
    seed: int = 0
    toys: ToySettings = ToySettings()
    fwi: FWISettings = FWISettings()

    def __post_init__(self):
        super().__post_init__()
        for m in (*self.methods, *self.fwi.methods):
            if m not in SAMPLERS:
                raise ConfigError(f"unknown sampler {m!r} in methods; choose from {sorted(SAMPLERS)}")
        for p in self.toys.problems:
            if p not in TOY_PROBLEMS:
                raise ConfigError(f"unknown toy problem {p!r}; choose from {list(TOY_PROBLEMS)}")


def toy_config(method: str, sigma: float, extra: dict | None = None):
    """The sampler's defaults with the problem's target bandwidth (and ``rho_min = σ/2`` where it exists)."""
    values: dict[str, Any] = dict(extra or {})
    names = {f.name for f in dataclasses.fields(SAMPLERS[method][1])}
    if "sigma_min" in names:
        values.setdefault("sigma_min", sigma)
    if "rho_min" in names:
        values.setdefault("rho_min", sigma / 2)
    return sampler_config(method, values)


def tv_floor(weights: np.ndarray, chains: int, reps: int = 2000, seed: int = 0) -> float:
    """Mean TV between ``chains`` iid draws of ``weights`` and ``weights`` (the sampling noise of TV)."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(chains, weights / weights.sum(), size=reps) / chains
    return float(np.mean(0.5 * np.abs(counts - weights).sum(1)))


def _mean_rows(runs: list[dict]) -> dict:
    """One row from repeats of a sampler: numbers averaged, ``*_sd`` spreads for TV and misfit ratio."""
    row = dict(runs[-1])
    for key, value in runs[-1].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            row[key] = float(np.mean([r[key] for r in runs]))
    for key in ("tv", "misfit_ratio", "coverage"):
        if key in row:
            row[f"{key}_sd"] = float(np.std([r[key] for r in runs]))
            row[f"{key}_all"] = [r[key] for r in runs]
    row["seeds"] = len(runs)
    return row


def run_toys(config: ValidateConfig) -> list[dict]:
    rows = []
    for name in config.toys.problems:
        problem = toy_problem(name)
        floor = None if problem.cell_weights is None else tv_floor(problem.cell_weights, config.toys.chains)
        for method in config.methods:
            if method == "exact" and not isinstance(problem.prior, MemorizedPrior):
                continue
            cfg = toy_config(method, problem.sigma)
            runs = []
            for k in range(config.toys.seeds):
                res = sample_posterior(problem.prior, problem.likelihood, method, config.toys.chains, cfg,
                                       seed=config.seed + 1000 * k, dtype=torch.float64)
                runs.append(score(res, problem))
            rows.append({"problem": name, "sigma": problem.sigma, "tv_floor": floor, **_mean_rows(runs)})
    return rows


# ------------------------------------------------------------------------------------------ FWI
def _fwi_scores(res, lik: Likelihood, train_x: np.ndarray, F_train: np.ndarray, exact_w: np.ndarray,
                truth_index: int, param) -> dict:
    v = res.valid()
    out = {"method": res.method, "chains": res.n_samples, "diverged": int(res.diverged.sum()),
           "gradients_per_sample": res.info.get("gradients_per_sample"),
           "forwards_per_sample": res.info.get("forwards_per_sample"),
           "wall_time_s": res.info.get("wall_time_s"), "ess": float(res.info.get("ess", res.ess))}
    if v.n_samples == 0:
        return out
    w = np.full(v.n_samples, 1.0 / v.n_samples) if v.weights is None else v.weights
    nearest = v.nearest_training(train_x)
    freq = np.bincount(nearest, weights=w, minlength=len(train_x))
    mon = v.misfit_over_noise
    own = np.sqrt(lik.data_sq_misfit(F_train))[nearest]  # misfit of each sample's nearest training model
    rmse = np.sqrt(np.mean((param.to_velocity(v.samples) - param.to_velocity(lik.truth)[None]) ** 2,
                           axis=tuple(range(1, v.samples.ndim))))
    out.update(tv=float(0.5 * np.abs(freq - exact_w).sum()), misfit_over_noise=float(w @ mon),
               misfit_vs_nearest=float(w @ (v.misfit / own - 1.0)), rmse_kms=float(w @ rmse),
               top_models=[int(i) for i in np.argsort(freq)[::-1][:3]])
    if truth_index >= 0:
        out["on_truth"] = int(np.sum((nearest == truth_index) & (mon <= 1.05)))
    return out


def fwi_truth_problem(truth: str = "heldout:0", settings: FWISettings | None = None, seed: int = 0):
    """The FWI problem of one truth exactly as :func:`run_fwi` builds it (defaults of :class:`FWISettings`): returns
    ``(train, F_train, lik)`` — the ``n_train`` training models in prior coordinates ``(N, 1, nz, nx)``, their cached
    forward data and the :class:`Likelihood` of ``truth`` (noise seed ``seed``). For scripts that study one run's
    problem (scripts/heldout_*.py)."""
    f = settings or FWISettings()
    problem = Problem.build(f.model_set, f.survey)
    F_train = problem.forward_train(f.n_train)
    _, lik = problem.likelihood(truth, f.noise, seed, f.n_train, forward=F_train)
    return problem.train(f.n_train), F_train, lik


def _fwi_config(f: FWISettings, method: str):
    return getattr(f, method) if hasattr(f, method) else sampler_config(method)


def _posterior(cache: Path, name: str, method: str, key: dict, compute):
    """``compute()`` once per content key, cached under ``cache/<name>.npz`` (a rerun of an interrupted validation
    resumes after the last finished sampler run); progress lines on stdout."""
    t0 = time.time()
    print(f"validate-samplers FWI: {name} ...", flush=True)
    post = cached_posterior(cache / f"{name}.npz", stage_key(method=method, **key), method, compute)
    print(f"validate-samplers FWI: {name} done in {time.time() - t0:.0f} s "
          f"({post.info.get('gradients_per_sample', 0):.0f} gradients per sample)", flush=True)
    return post


def run_fwi(config: ValidateConfig, out: Path) -> dict:
    """The FWI memorized-prior (and optional learned-prior) validation; see the module docstring."""
    from geomem.metrics.memorization import nearest_neighbours

    f = config.fwi
    problem = Problem.build(f.model_set, f.survey)
    param = problem.parameterization
    x_all = problem.x
    train_x = problem.train(f.n_train)
    prior = MemorizedPrior(torch.from_numpy(train_x))
    result: dict = {"truths": {}, "n_train": f.n_train, "chains": f.chains}
    with dask_client(f.workers) as client:
        t0 = time.time()
        F_train = problem.forward_train(f.n_train, client)
        result["forward_train_s"] = time.time() - t0
        for spec in f.truths:
            idx, lik = problem.likelihood(spec, f.noise, config.seed, f.n_train, forward=F_train, client=client)
            base = {"models": problem.digest, "n": f.n_train, "data": digest_array(lik.y), "gamma": lik.gamma,
                    "survey": problem.operator_key(), "chains": f.chains, "seed": config.seed}
            exact = exact_memorized(prior, lik, f.chains, seed=config.seed, F_train=F_train)
            exact.info["forwards_per_sample"] = f.n_train / f.chains  # the shared F(x_n), computed above
            w = exact.component_weights
            rows = [_fwi_scores(exact, lik, train_x, F_train, w, idx if idx < f.n_train else -1, param)]
            for method in f.methods if f.memorized else ():
                cfg = _fwi_config(f, method)
                res = _posterior(Path(out) / "cache", f"{spec.replace(':', '')}_memorized_{method}", method,
                                 {**base, "prior": "memorized", "config": to_dict(cfg)},
                                 lambda method=method, cfg=cfg, lik=lik: sample_posterior(
                                     prior, lik, method, f.chains, cfg, seed=config.seed))
                rows.append(_fwi_scores(res, lik, train_x, F_train, w, idx if idx < f.n_train else -1, param))
            best = int(np.argmax(w))
            best_mon = float(np.sqrt(lik.data_sq_misfit(F_train[best:best + 1])[0])
                             / (lik.gamma * math.sqrt(lik.n_data)))
            result["truths"][spec] = {"index": idx, "gamma": lik.gamma, "exact_top": best,
                                   "exact_top_weight": float(w[best]), "exact_top_misfit_over_noise": best_mon,
                                   "rows": rows}
            if idx >= f.n_train:
                for path in f.learned:
                    result["truths"][spec].setdefault("learned", []).append(
                        _learned_row(path, lik, config, f, x_all, param, nearest_neighbours, out, base, spec))
    return result


def _learned_row(path, lik, config, f, x_all, param, nearest_neighbours, out, base, spec) -> dict:
    from geomem.priors.learned import LearnedPrior
    from geomem.workflow.priors import resolve_prior_folder

    prior = LearnedPrior.from_pretrained(path, device=f.device)
    n = int(prior.model_set.get("n", 0))
    rows = {}
    for method in f.methods:
        if method == "exact":
            continue
        cfg = _fwi_config(f, method)
        res = _posterior(Path(out) / "cache", f"{spec.replace(':', '')}_learned_n{n}_{method}", method,
                         {**base, "prior": digest_path(resolve_prior_folder(path)), "config": to_dict(cfg)},
                         lambda method=method, cfg=cfg: sample_posterior(prior, lik, method, f.chains, cfg,
                                                                         seed=config.seed, device=f.device))
        v = res.valid()
        vel = param.to_velocity(v.samples)
        truth = param.to_velocity(lik.truth)
        lo, hi = np.quantile(vel, 0.05, axis=0), np.quantile(vel, 0.95, axis=0)
        d, _ = nearest_neighbours(v.samples, x_all[:n], k=2)
        rows[method] = {"misfit_over_noise": float(np.mean(v.misfit_over_noise)),
                        "rmse_kms": float(np.sqrt(np.mean((vel.mean(0) - truth) ** 2))),
                        "coverage90": float(np.mean((truth >= lo) & (truth <= hi))),
                        "memorized_fraction": float(np.mean(d[:, 0] / d[:, 1] < 1 / 3)),
                        "gradients_per_sample": res.info["gradients_per_sample"],
                        "wall_time_s": res.info["wall_time_s"], "diverged": int(res.diverged.sum()),
                        "ess": float(res.info.get("ess", res.ess))}
    return {"prior": str(path), "n": n, "methods": rows}


def run_validate(config: ValidateConfig, out: str | Path) -> dict:
    """Run the validation into run folder ``out``; returns the metrics (also ``metrics.json``, ``table.md``)."""
    t0 = time.time()
    run = RunFolder(out, config=config, seed=config.seed)
    metrics: dict = {"toys": run_toys(config) if config.toys.problems else []}
    text = "## Toy problems\n\n" + toy_table(metrics["toys"]) if metrics["toys"] else ""
    if config.fwi.enabled:
        metrics["fwi"] = run_fwi(config, run.path)
        text += "\n## FWI, memorized prior\n\n" + fwi_table(metrics["fwi"])
    metrics["wall_time_s"] = time.time() - t0
    run.write_metrics(metrics)
    (run.path / "table.md").write_text(text)
    metrics["table"] = text
    return metrics
