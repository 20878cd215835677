"""Rules and exceptions (``geomem rules``): what priors of several capacities keep of a structured rule and of
repeated unstructured exceptions (after Farné, Boncoraglio & Zdeborová, the rules-and-facts model).

For every exception fraction ε, power-law exponent α (frequency of the exceptions, see
:mod:`geomem.geology.mixtures`) and capacity ``c`` (a UNet with channels ``(c, 2c, 4c, …)``), one prior is
trained on the mixture with the same optimizer-step budget, then scored against the set's distinct **facts**
(every rule model and copy 0 of every exception; near-copies are folded into their exception so a repeated
exception is not "un-memorized" by the ratio test just because its copies crowd ``d_2``):

- **memorization by kind.** ``n_samples`` unconditional samples (Heun, ``sample_steps``); each sample's nearest
  fact, its ratio ``r = d_1/mean(d_2..d_k)`` and flag ``r < 0.5``. ``memorized_exception`` is the flagged fraction
  of the samples whose nearest fact is an exception, ``memorized_rule`` the same for rule facts. Nulls: the
  flagged fraction of held-out exception-family models (``null_exception``) and of held-out rule models
  (``null_rule``) against the same facts. ``coverage_*``: the fraction of distinct exceptions / rule models that
  at least one sample reproduces (:func:`geomem.workflow.selection.training_coverage`), with the null coverage
  of as many held-out models (rules and exceptions in the training proportions). ``hits`` per exception against
  its copy count gives the frequency dependence.
- **generalization.** The EDM-weighted denoising loss at each σ of ``eval_sigmas`` (shared seeded noise,
  :func:`geomem.workflow.selection.denoising_losses`) on held-out rule models and on the training rule models,
  for the learned prior and for the memorized prior of the same training set; ``gen_ratio = learned/memorized``
  on held-out rules (< 1: better than a lookup of the training set). Sample quality: the energy distance
  between the samples and held-out rule models, beside that of as many training rule models (the reference a
  perfect rule sampler would reach).
- **posterior** (``posterior.enabled``; needs Devito): DPS with the learned prior for a truth that is exception 0
  (the most frequent), a training rule model and a held-out rule model; reported: RMSE of the posterior mean in
  km/s, the fraction of posterior samples flagged as memorized and the fraction whose nearest fact is the truth.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geomem.config import Settings
from geomem.errors import ConfigError
from geomem.geology.mixtures import (
    MixtureSettings,
    heldout_exceptions,
    heldout_rules,
    make_mixture_set,
    mixture_labels,
)
from geomem.metrics.memorization import memorization_ratios
from geomem.metrics.posterior_quality import energy_distance
from geomem.priors.learned import LearnedPrior
from geomem.runs import RunFolder, write_json, write_text
from geomem.workflow.scoring import THRESHOLD, FactPosteriorSettings, fact_posterior_scores, markdown_table
from geomem.workflow.selection import generalization, training_coverage
from geomem.workflow.tables import table_header, table_row
from geomem.workflow.training import (
    TrainingSettings,
    capacity_unet,
    eval_device,
    prior_samples,
    train_all,
    train_config,
)


@dataclass(frozen=True)
class RulesConfig(Settings):
    """Settings of ``geomem rules`` (TOML tables ``mixture``, ``training``, ``posterior``)."""

    epsilons: tuple[float, ...] = (0.05, 0.2)
    alphas: tuple[float, ...] = (1.0,)
    capacities: tuple[int, ...] = (16, 32)
    n_samples: int = field(default=128, metadata={"min": 2})
    sample_steps: int = field(default=30, metadata={"min": 2})
    n_heldout: int = field(default=64, metadata={"min": 2})
    eval_sigmas: tuple[float, ...] = (0.1, 0.5)
    workers: int = field(default=0, metadata={"min": 0})
    seed: int = 0
    mixture: MixtureSettings = MixtureSettings(n=400, n_exceptions=10, perturbation=0.01)
    training: TrainingSettings = TrainingSettings()
    posterior: FactPosteriorSettings = FactPosteriorSettings()


# ------------------------------------------------------------------------------------------ scores
def memorization_by_kind(samples: np.ndarray, facts: np.ndarray, fact_kind: np.ndarray, fact_copies: np.ndarray,
                         held_rules: np.ndarray, held_exc: np.ndarray, eps_share: float, seed: int) -> dict[str, Any]:
    """Rates by kind of nearest fact, nulls, coverage and hits per exception (module docstring)."""
    r = memorization_ratios(samples, facts)
    flag = r.ratio_k < THRESHOLD
    near_exc = fact_kind[r.nearest] == "exception"

    def frac(mask):
        return float(flag[mask].mean()) if mask.any() else float("nan")

    null_r = memorization_ratios(held_rules, facts).ratio_k < THRESHOLD
    null_e = memorization_ratios(held_exc, facts).ratio_k < THRESHOLD
    _, covered, hits = training_coverage(samples, facts, THRESHOLD)
    rng = np.random.default_rng(seed)
    n_e = int(round(eps_share * len(samples)))
    pool = np.concatenate([held_exc[rng.choice(len(held_exc), n_e)],
                           held_rules[rng.choice(len(held_rules), len(samples) - n_e)]])
    _, null_cov, _ = training_coverage(pool, facts, THRESHOLD)
    is_e = fact_kind == "exception"
    return {
        "sample_exception_share": float(near_exc.mean()),
        "memorized_exception": frac(near_exc), "n_near_exception": int(near_exc.sum()),
        "memorized_rule": frac(~near_exc), "n_near_rule": int((~near_exc).sum()),
        "null_exception": float(null_e.mean()), "null_rule": float(null_r.mean()),
        "coverage_exception": float(covered[is_e].mean()) if is_e.any() else float("nan"),
        "coverage_rule": float(covered[~is_e].mean()),
        "null_coverage_exception": float(null_cov[is_e].mean()) if is_e.any() else float("nan"),
        "null_coverage_rule": float(null_cov[~is_e].mean()),
        "exception_copies": fact_copies[is_e].tolist(), "exception_hits": hits[is_e].tolist(),
        "nearest": r.nearest, "ratio_k": r.ratio_k,
    }


# ------------------------------------------------------------------------------------------ pipeline
def grid(config: RulesConfig) -> list[tuple[float, float]]:
    return [(e, a) for e in config.epsilons for a in config.alphas]


def set_tag(eps: float, alpha: float) -> str:
    return f"eps{eps:g}_a{alpha:g}"


def run_rules(config: RulesConfig, out: str | Path, progress: bool = True) -> dict:
    """Build the sets, train every prior (cached), score them; write ``metrics.json``, ``table.md`` and figures."""
    t0 = time.time()
    if not config.epsilons or not config.capacities:
        raise ConfigError("give at least one epsilon and one capacity")
    for c in config.capacities:
        capacity_unet(c, config.training.levels)
    run = RunFolder(out, config=config, seed=config.seed)
    sets, jobs = {}, []
    for eps, alpha in grid(config):
        s = dataclasses.replace(config.mixture, epsilon=eps, alpha=alpha)
        tag = set_tag(eps, alpha)
        path = run.path / "sets" / f"{tag}.npz"
        ms = make_mixture_set(s)
        ms.save(path)
        sets[tag] = (s, ms)
        for c in config.capacities:
            cfg = train_config(config.training, c, s.size, config.seed, f"{tag}_c{c}")
            jobs.append((cfg, run.path / "priors" / f"{tag}_c{c}", path))
    train_all(jobs, config.workers)
    device = eval_device(config.training)
    rows, results = [], {}
    for (eps, alpha), tag in zip(grid(config), sets, strict=True):
        s, ms = sets[tag]
        x = ms.normalized()
        lab = mixture_labels(ms)
        facts_idx = lab.facts()
        copies = lab.copies(facts_idx)
        hr = heldout_rules(s, config.n_heldout)
        he = heldout_exceptions(s, config.n_heldout)
        hr_x, he_x = hr.normalized(), he.normalized()
        rules_train = x[lab.is_rule][: config.n_heldout]
        for c in config.capacities:
            prior = LearnedPrior.from_pretrained(run.path / "priors" / f"{tag}_c{c}" / "prior", device=device)
            smp = prior_samples(prior, run.path / f"samples_{tag}_c{c}.npz", config.n_samples, config.sample_steps,
                                config.seed, device)
            mem = memorization_by_kind(smp, x[facts_idx], lab.kind[facts_idx], copies, hr_x, he_x, eps,
                                       config.seed)
            gen = generalization(prior, x, rules_train, hr_x, config.eval_sigmas, config.seed, device)
            quality = {"energy_samples_heldout": energy_distance(smp, hr_x),
                       "energy_train_rules_heldout": energy_distance(rules_train, hr_x)}
            key = f"{tag}_c{c}"
            res = {"epsilon": eps, "alpha": alpha, "capacity": c,
                   "parameters": sum(p.numel() for p in prior.unet.parameters()),
                   "memorization": {k: v for k, v in mem.items() if k not in ("nearest", "ratio_k")},
                   "generalization": gen, "quality": quality}
            if config.posterior.enabled:
                prior_cpu = LearnedPrior.from_pretrained(run.path / "priors" / key / "prior")
                i_exc = facts_idx[lab.is_exception[facts_idx]]
                truths = {"rule_heldout": hr.models[0], "rule_train": ms.models[0]}
                if len(i_exc):
                    truths = {"exception": ms.models[i_exc[0]], **truths}
                res["posterior"] = fact_posterior_scores(prior_cpu, ms, facts_idx, truths, config.posterior,
                                                         config.seed)
            run.write_arrays(f"nearest_{key}.npz", nearest=mem["nearest"], ratio_k=mem["ratio_k"])
            results[key] = res
            rows.append(table_row(res, config.eval_sigmas))
    metrics = {"results": results, "header": table_header(config.eval_sigmas), "rows": rows,
               "wall_time_s": time.time() - t0, "device": str(device)}
    write_json(run.path / "metrics.json", metrics)
    write_text(run.path / "table.md", markdown_table(metrics["header"], rows))
    from geomem.report.rules_figures import rules_figures

    rules_figures(metrics, run.path / "figures")
    return metrics
