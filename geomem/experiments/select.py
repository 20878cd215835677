"""``geomem select``: loss-based training-set selection (after Ye, Feldman & Talwar, "Cram less to fit more").

A rules-and-exceptions mixture is scored by a partly trained prior's denoising loss, a selection rule
(:mod:`geomem.workflow.selection`: drop the highest losses, cap near-duplicate clusters, or keep a budget of
distinct models) picks a training set, and priors trained with the same budget on the full and the selected
sets are compared: the rate at which their samples reproduce training models (beside a held-out null), facts
reproduced, generalization (denoising loss against the memorized prior on held-out rule models) and, optionally,
posteriors.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geomem.config import Settings
from geomem.errors import ConfigError
from geomem.geology.mixtures import MixtureSettings, heldout_rules, make_mixture_set, mixture_labels
from geomem.priors.learned import LearnedPrior
from geomem.runs import RunFolder, write_json, write_npz, write_text
from geomem.workflow.scoring import FactPosteriorSettings, fact_posterior_scores, markdown_table
from geomem.workflow.selection import (
    RuleSettings,
    ScoreSettings,
    denoising_losses,
    generalization,
    select,
    selected_set,
    training_coverage,
)
from geomem.workflow.tables import selection_row
from geomem.workflow.training import (
    TrainingSettings,
    capacity_unet,
    eval_device,
    prior_samples,
    train_all,
    train_config,
)


@dataclass(frozen=True)
class SelectConfig(Settings):
    """Settings of ``geomem select`` (TOML tables ``mixture``, ``training``, ``score``, ``rule``, ``posterior``).

    The model set is a rules-and-exceptions mixture (planted power-law duplicates by default; held-out rule
    models come from the same rule stream). The score prior is the same UNet trained for ``score_steps`` on the
    full set (a partly trained prior), or a saved prior at ``score_prior``.
    """

    score_prior: str = ""
    score_steps: int = field(default=500, metadata={"min": 1})
    capacity: int = field(default=16, metadata={"min": 4})
    n_samples: int = field(default=128, metadata={"min": 2})
    sample_steps: int = field(default=30, metadata={"min": 2})
    n_heldout: int = field(default=64, metadata={"min": 2})
    n_truths: int = field(default=2, metadata={"min": 1})
    eval_sigmas: tuple[float, ...] = (0.1, 0.5)
    workers: int = field(default=0, metadata={"min": 0})
    seed: int = 0
    mixture: MixtureSettings = MixtureSettings(n=400, epsilon=0.5, n_exceptions=20, alpha=1.5, perturbation=0.005)
    training: TrainingSettings = TrainingSettings()
    score: ScoreSettings = ScoreSettings()
    rule: RuleSettings = RuleSettings(rule="cap_clusters", threshold=0.02, cap=2)
    posterior: FactPosteriorSettings = FactPosteriorSettings()


def run_select(config: SelectConfig, out, progress: bool = True) -> dict:
    """Score, select, train on the full and the selected sets with the same budget, compare (module docstring).

    Writes ``full.npz`` and ``selected.npz`` (model sets; the selected one records every dropped model and why),
    ``losses.npz`` (loss, keep, cluster per model), ``metrics.json``, ``table.md`` and the two priors.
    """
    t0 = time.time()
    capacity_unet(config.capacity, config.training.levels)
    run = RunFolder(out, config=config, seed=config.seed)
    full = make_mixture_set(config.mixture)
    full.save(run.path / "full.npz")
    x = full.normalized()
    device = eval_device(config.training)
    size = config.mixture.size
    if config.score_prior:
        if not (Path(config.score_prior) / "config.json").is_file():
            raise ConfigError(f"score_prior {config.score_prior} has no config.json; give a `geomem train` prior "
                              f"folder or leave it empty")
        score_dir = Path(config.score_prior)
    else:
        tcfg = dataclasses.replace(train_config(config.training, config.capacity, size, config.seed, "score"),
                                   steps=config.score_steps)
        train_all([(tcfg, run.path / "priors" / "score", run.path / "full.npz")], 0)
        score_dir = run.path / "priors" / "score" / "prior"
    losses = _scores(run.path / "losses.npz", score_dir, x, config.score, device)
    sel = select(losses, x, config.rule)
    chosen = selected_set(full, sel, losses, source=str(run.path / "full.npz"))
    chosen.save(run.path / "selected.npz")
    write_npz(run.path / "losses.npz", loss=losses, keep=sel.keep, cluster=sel.cluster,
              score_key=_score_key(score_dir, config.score))
    jobs = [(train_config(config.training, config.capacity, size, config.seed, name), run.path / "priors" / name,
             run.path / f"{name}.npz") for name in ("full", "selected")]
    train_all(jobs, config.workers)

    lab = mixture_labels(full)
    facts_idx = lab.facts()
    fact_of = _fact_index(lab, facts_idx)
    hr = heldout_rules(config.mixture, config.n_heldout + config.n_truths)
    hr_x = hr.normalized()[: config.n_heldout]
    results, rows = {}, []
    for name, ms in (("full", full), ("selected", chosen)):
        prior = LearnedPrior.from_pretrained(run.path / "priors" / name / "prior", device=device)
        tx = ms.normalized()
        smp = prior_samples(prior, run.path / f"samples_{name}.npz", config.n_samples, config.sample_steps,
                            config.seed, device)
        rate, _, hits = training_coverage(smp, tx)
        null_rate, _, _ = training_coverage(hr_x[: config.n_samples], tx)
        _, fact_cov, _ = training_coverage(smp, x[facts_idx])
        _, null_fact_cov, _ = training_coverage(hr_x[: config.n_samples], x[facts_idx])
        kept_facts = np.unique(fact_of[sel.kept]) if name == "selected" else np.arange(len(facts_idx))
        rules_train = tx[mixture_labels(ms).is_rule][: config.n_heldout]
        res = {"n_train": len(ms), "distinct_facts_in_train": int(len(kept_facts)),
               "memorized_rate_train": rate, "null_memorized_rate_train": null_rate,
               "reproduced_train_models": int((hits > 0).sum()),
               "facts_reproduced": int(fact_cov.sum()), "null_facts_reproduced": int(null_fact_cov.sum()),
               "generalization": generalization(prior, tx, rules_train, hr_x, config.eval_sigmas, config.seed,
                                                device)}
        if config.posterior.enabled:
            cpu_prior = LearnedPrior.from_pretrained(run.path / "priors" / name / "prior")
            truths = {f"heldout_{i}": hr.models[config.n_heldout + i] for i in range(config.n_truths)}
            res["posterior"] = fact_posterior_scores(cpu_prior, full, facts_idx, truths, config.posterior, config.seed)
        results[name] = res
        rows.append(selection_row(name, res, config.eval_sigmas))
    header = ["training set", "N", "distinct facts", "memorized rate over train (null)", "train models reproduced",
              "facts of the full set reproduced (null)", *[f"gen. ratio σ={s:g}" for s in config.eval_sigmas],
              "posterior RMSE km/s (held-out truths)"]
    metrics = {"selection": {"rule": sel.rule, "params": sel.params, "n_kept": int(sel.keep.sum()),
                             "n_dropped": int((~sel.keep).sum()),
                             "dropped_exceptions": int((~sel.keep & lab.is_exception).sum()),
                             "dropped_rules": int((~sel.keep & lab.is_rule).sum())},
               "results": results, "header": header, "rows": rows, "wall_time_s": time.time() - t0,
               "device": str(device)}
    write_json(run.path / "metrics.json", metrics)
    write_text(run.path / "table.md", markdown_table(header, rows))
    return metrics


def _score_key(score_dir, settings: ScoreSettings) -> str:
    return json.dumps({"prior": str(score_dir), **dataclasses.asdict(settings)}, sort_keys=True)


def _scores(path, score_dir, x: np.ndarray, settings: ScoreSettings, device) -> np.ndarray:
    """Per-model denoising losses, reused from ``path`` when it was scored by the same prior with the same settings:
    a rerun (e.g. on the CPU, to add the posteriors) then selects exactly the set the priors were trained on."""
    if path.is_file():
        with np.load(path) as f:
            if "score_key" in f.files and str(f["score_key"]) == _score_key(score_dir, settings) \
                    and len(f["loss"]) == len(x):
                return f["loss"]
    return denoising_losses(LearnedPrior.from_pretrained(score_dir, device=device), x, settings, device)


def _fact_index(lab, facts_idx: np.ndarray) -> np.ndarray:
    """For every model of a mixture, the position in ``facts_idx`` of its fact (copies map to copy 0)."""
    pos = {int(i): k for k, i in enumerate(facts_idx)}
    first = {int(lab.exception_id[i]): int(i) for i in facts_idx if lab.is_exception[i]}
    return np.array([pos[i] if lab.is_rule[i] else pos[first[int(lab.exception_id[i])]] for i in range(len(lab.kind))])
