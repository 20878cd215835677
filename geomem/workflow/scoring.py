"""Scoring posteriors against a training set: memorization rates beside their nulls, posterior quality, tables.

Every memorization rate is reported with its null baselines (held-out models of the same family against the
same training set; leave-one-out within it) and percentile-bootstrap intervals drawn in a fixed order, so a
report redrawn from a run folder shows the same rates. ``PRIMARY`` is the criterion of the tables; every
criterion of :data:`geomem.metrics.memorization.DEFAULT_CRITERIA` is kept in ``metrics.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geomem.config import Settings
from geomem.metrics.memorization import (
    PRIMARY_CRITERION,
    MemorizationRatios,
    memorization_ratios,
    nearest_neighbours,
    per_sample_record,
    report_from_ratios,
)
from geomem.metrics.posterior_quality import compare_posteriors, data_misfit_vs_noise, energy_distance
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.modes import effective_modes
from geomem.posterior.result import PosteriorSamples
from geomem.workflow.posteriors import SamplerSettings, sampled_posterior
from geomem.workflow.problem import SurveySettings, build_operator

#: the criterion of every table (memorized if d1 / mean(d2..dk) < 0.5) and its threshold
PRIMARY = PRIMARY_CRITERION.name
THRESHOLD = PRIMARY_CRITERION.threshold
KIND_ORDER = ("learned", "memorized", "linearized", "lookup")
PAIRS = (("learned", "memorized"), ("memorized", "lookup"), ("learned", "lookup"))


def score_posteriors(
    posteriors: dict[str, PosteriorSamples],
    train_x: np.ndarray,
    nulls: dict[str, MemorizationRatios],
    likelihood: Likelihood,
    n_boot: int,
    seed: int,
    data_range: float,
    F_train: np.ndarray | None = None,
) -> tuple[dict, dict]:
    """Metrics (JSON) and arrays (npz) of every posterior for one (truth, N).

    With the training data ``F_train``, each sample's record also holds the data-space distance
    ``‖F(x) − F(x_nn)‖`` to its nearest training model (one forward solve per sample).
    """
    param = likelihood.parameterization
    train_v = param.to_velocity(train_x)
    weights = {k: p.component_weights for k, p in posteriors.items() if p.component_weights is not None}
    valid = {k: p.valid() for k, p in posteriors.items()}
    velocities = {k: param.to_velocity(p.samples) for k, p in valid.items()}
    scores: dict = {}
    arrays: dict = {}
    for kind, post in valid.items():
        ratios = memorization_ratios(post.samples, train_x)
        rep = report_from_ratios({"samples": ratios, **nulls}, n_boot, seed)
        data_dist = None
        if F_train is not None:
            F_s = likelihood.forward_data(post.samples)
            data_dist = np.linalg.norm((F_s - F_train[ratios.nearest]).reshape(len(F_s), -1), axis=1)
            arrays[f"{kind}__data_distance"] = data_dist
        scores[kind] = {"memorization": rep.to_dict(), "summary_table": rep.summary_table(),
                        "n_diverged": int(posteriors[kind].diverged.sum()),
                        "records": per_sample_record(ratios, lookup_weights=weights.get("lookup"),
                                                     linearized_weights=weights.get("linearized"),
                                                     data_distances=data_dist),
                        "cost": {k: v for k, v in post.info.items() if k.endswith("_per_sample")}}
        arrays.update(ratios.to_arrays(f"{kind}__samples"))
        arrays[f"{kind}__kept"] = ~posteriors[kind].diverged
        arrays[f"{kind}__nearest_velocity"] = train_v[ratios.nearest]
    for g, r in nulls.items():
        arrays.update(r.to_arrays(f"null__{g}"))
    misfits = {k: p.misfit for k, p in valid.items()}
    if likelihood.truth is not None:
        quality = compare_posteriors(velocities, param.to_velocity(likelihood.truth), data_range=data_range,
                                     train=train_v, residual_norms=misfits, noise_std=likelihood.gamma,
                                     n_data=likelihood.n_data, pairs=PAIRS)
    else:  # observed data: no truth, so only the truth-free numbers
        quality = {
            "posteriors": {k: {"n_samples": float(len(v)), "mean_std": float(np.mean(np.std(v, axis=0, ddof=1))),
                               "distinct_nearest": float(len(np.unique(nearest_neighbours(v, train_v)[1]))),
                               "misfit/noise": float(np.median(data_misfit_vs_noise(misfits[k], likelihood.gamma,
                                                                                     likelihood.n_data)))}
                           for k, v in velocities.items()},
            "energy_distance": {f"{a} <-> {b}": energy_distance(velocities[a], velocities[b])
                                for a, b in PAIRS if a in velocities and b in velocities},
        }
    metrics = {"n_train": len(train_x), "memorization": scores, "quality": quality}
    if "lookup" in weights:
        w = weights["lookup"]
        metrics["lookup_effective_modes"] = float(effective_modes(w))
        metrics["lookup_top"] = [[int(i), float(w[i])] for i in np.argsort(w)[::-1][:5]]
    if "linearized" in posteriors:
        info = posteriors["linearized"].info
        metrics["linearized_stats"] = {k: float(info[k]) for k in ("born_actions", "adjoint_actions",
                                                                   "logdet_tail_bound") if k in info}
    return metrics, arrays


def fmt_rate(r: dict, digits: int = 3) -> str:
    return f"{r['rate']:.{digits}f} [{r['low']:.{digits}f}, {r['high']:.{digits}f}]"


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured markdown table (cells written with ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class FactPosteriorSettings(Settings):
    """Posteriors of a mixture set's priors (``geomem rules`` / ``select``): off by default (needs Devito)."""

    enabled: bool = False
    chains: int = field(default=4, metadata={"min": 2})
    noise: float = field(default=0.055, metadata={"gt": 0})
    survey: SurveySettings = SurveySettings()
    sampler: SamplerSettings = SamplerSettings()


def fact_posterior_scores(prior, ms, facts_idx: np.ndarray, truths: dict[str, np.ndarray], p: FactPosteriorSettings,
                          seed: int) -> dict[str, Any]:
    """The configured posterior sampler with ``prior`` for each truth (velocity ``(1, nz, nx)``; data noise seeded by
    ``[seed, position of the truth]``): RMSE of the mean, the memorized fraction against the set's facts and the
    fraction whose nearest fact is the truth."""
    op = build_operator(ms, p.survey)
    param = ms.parameterization
    facts = ms.normalized()[facts_idx].astype(np.float64)
    out = {}
    for i, (name, v_true) in enumerate(truths.items()):
        lik = Likelihood.from_truth(op, v_true, p.noise, param, seed=[seed, i])
        post = sampled_posterior(prior, lik, p.chains, p.sampler, seed)
        v = param.to_velocity(post.samples)
        r = memorization_ratios(post.samples, facts)
        truth_fact = np.nonzero(np.all(np.isclose(facts.reshape(len(facts), -1), lik.truth.reshape(1, -1)),
                                       axis=1))[0]
        out[name] = {"rmse_kms": float(np.sqrt(np.mean((v.mean(0) - v_true) ** 2))),
                     "memorized": float(np.mean(r.ratio_k < THRESHOLD)),
                     "nearest_is_truth": (float(np.mean(r.nearest == truth_fact[0])) if len(truth_fact) else None),
                     "misfit_over_noise": float(np.median(post.misfit_over_noise)),
                     "n_diverged": int(post.diverged.sum())}
    return out
