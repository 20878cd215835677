"""Loss-based training-set selection (after Ye, Feldman & Talwar, "Cram less to fit more").

**Score.** Each model ``x_n`` (normalized coordinates, ``(N, 1, nz, nx)``) gets its σ-averaged EDM-weighted
denoising loss under a prior ``D``:

    ℓ_n = (1/(K M)) Σ_k Σ_m λ(σ_k) ‖D(x_n + σ_k ε_km, σ_k) − x_n‖² / (nz · nx),   λ(σ) = (σ² + σ_d²)/(σ σ_d)²

over a fixed grid ``σ_k = geomspace(sigma_lo, sigma_hi, K)`` and ``M`` noise draws ``ε_km`` drawn once from
``torch.Generator().manual_seed(seed)`` and shared by every model (common random numbers: differences between
models come from the models, not from the noise). ``σ_d`` is the prior's ``sigma_data`` (0.5 when it has none).
This is the training objective of :mod:`geomem.priors.training` at fixed σ instead of random σ.

**Rules** (each takes the loss vector, so it can be tested exactly; ties broken by the lower index):

- ``drop_highest``: drop the ``ceil(fraction · N)`` models with the highest loss (outliers the prior fits worst).
- ``cap_clusters``: cluster near-duplicates — connected components of the graph with an edge where the geology
  distance ``d(a, b) = ‖a − b‖ / (√(nz nx) · 2)`` (RMS difference as a fraction of the velocity range; the
  range is 2 in normalized coordinates) is below ``threshold`` — and keep the ``cap`` lowest-loss members of each
  cluster (flattens the frequencies of repeated facts).
- ``budget``: cluster as above, take each cluster's lowest-loss member as its representative, keep the
  ``budget`` representatives with the lowest loss and drop everything else (a budget of distinct models: the
  easiest facts first, as Ye et al. select the lowest-loss examples to fit the capacity).

**Memorized rate over the training set** (:func:`training_coverage`): training model ``n`` counts as reproduced
when at least one unconditional sample ``s`` has ``n`` as its nearest training model with
``ratio_k(s) = d_1/mean(d_2..d_k) < 0.5`` (k = min(50, N)); the rate is (#reproduced)/N. Its null replaces the
samples by as many held-out models of the same kind (a generator that never saw the set).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from geomem.errors import ConfigError, ShapeError, ValueRangeError
from geomem.geology.distances import close_pairs
from geomem.metrics.memorization import memorization_ratios

SELECTION_RULES = ("drop_highest", "cap_clusters", "budget")


@dataclass(frozen=True)
class ScoreSettings:
    """σ grid and noise draws of the denoising-loss score."""

    sigma_lo: float = field(default=0.02, metadata={"gt": 0})
    sigma_hi: float = field(default=5.0, metadata={"gt": 0})
    n_sigmas: int = field(default=8, metadata={"min": 1})
    n_draws: int = field(default=2, metadata={"min": 1})
    seed: int = 0
    batch_size: int = field(default=64, metadata={"min": 1})


@dataclass(frozen=True)
class RuleSettings:
    """Which rule and its parameters (module docstring)."""

    rule: str = field(default="cap_clusters", metadata={"choices": SELECTION_RULES})
    fraction: float = field(default=0.1, metadata={"min": 0, "max": 1})
    threshold: float = field(default=0.05, metadata={"gt": 0})
    cap: int = field(default=1, metadata={"min": 1})
    budget: int = field(default=100, metadata={"min": 1})


@torch.no_grad()
def denoising_losses(denoiser, x: np.ndarray | torch.Tensor, settings: ScoreSettings = ScoreSettings(),
                     device: str | torch.device = "cpu") -> np.ndarray:
    """``ℓ_n`` of every model (module docstring), float64 ``(N,)``."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ShapeError(f"models must have shape (N, 1, nz, nx) in normalized coordinates, got {tuple(x.shape)}")
    if not settings.sigma_lo <= settings.sigma_hi:
        raise ValueRangeError(f"need sigma_lo <= sigma_hi, got {settings.sigma_lo} > {settings.sigma_hi}")
    sigmas = np.geomspace(settings.sigma_lo, settings.sigma_hi, settings.n_sigmas)
    gen = torch.Generator().manual_seed(settings.seed)
    eps = torch.randn((len(sigmas), settings.n_draws, *x.shape[1:]), generator=gen)
    sd = float(getattr(denoiser, "sigma_data", 0.5))
    d = x.shape[2] * x.shape[3]
    total = torch.zeros(len(x), dtype=torch.float64)
    for start in range(0, len(x), settings.batch_size):
        x0 = x[start:start + settings.batch_size].to(device)
        for k, s in enumerate(sigmas):
            lam = (s**2 + sd**2) / (s * sd) ** 2
            for m in range(settings.n_draws):
                den = denoiser(x0 + float(s) * eps[k, m].to(device), float(s))
                err = ((den.double() - x0.double()) ** 2).flatten(1).sum(1) / d
                total[start:start + len(x0)] += lam * err.cpu()
    return (total / (len(sigmas) * settings.n_draws)).numpy()


@dataclass
class Selection:
    """Outcome of a rule: ``keep`` (N,) bool, ``reasons`` ("" for kept models), ``cluster`` (N,) int (−1: none)."""

    rule: str
    params: dict[str, Any]
    keep: np.ndarray
    reasons: list[str]
    cluster: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        return np.nonzero(self.keep)[0]

    def dropped_records(self, losses: np.ndarray) -> list[dict[str, Any]]:
        return [{"index": int(i), "loss": float(losses[i]), "cluster": int(self.cluster[i]), "reason": self.reasons[i]}
                for i in np.nonzero(~self.keep)[0]]


def _check_losses(losses: Any) -> np.ndarray:
    lo = np.asarray(losses, dtype=np.float64)
    if lo.ndim != 1 or lo.size == 0:
        raise ShapeError(f"losses must be a non-empty 1-D vector, got shape {lo.shape}")
    if not np.all(np.isfinite(lo)):
        raise ValueRangeError("losses contain NaN or inf; rescore the set with a prior that returns finite values")
    return lo


def _rank(losses: np.ndarray) -> np.ndarray:
    """Indices by increasing loss, ties to the lower index."""
    return np.lexsort((np.arange(len(losses)), losses))


def drop_highest(losses: Any, fraction: float) -> Selection:
    lo = _check_losses(losses)
    if not 0 <= fraction < 1:
        raise ValueRangeError(f"fraction must be in [0, 1), got {fraction}")
    n_drop = math.ceil(fraction * len(lo))
    order = _rank(lo)
    keep = np.ones(len(lo), bool)
    reasons = [""] * len(lo)
    for r, i in enumerate(order[len(lo) - n_drop:]):
        keep[i] = False
        reasons[i] = f"loss {lo[i]:.4g} among the {n_drop} highest of {len(lo)} (rank {len(lo) - n_drop + r + 1})"
    return Selection("drop_highest", {"fraction": fraction}, keep, reasons, np.full(len(lo), -1))


def clusters(x: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of ``d(a, b) < threshold`` (module docstring), labelled 0, 1, … in order of their
    first member; ``(N,)`` int."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ShapeError(f"models must have shape (N, 1, nz, nx), got {x.shape}")
    parent = np.arange(len(x))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in close_pairs(x, threshold, scale=2.0):
        a, b = find(int(i)), find(int(j))
        if a != b:
            parent[max(a, b)] = min(a, b)
    roots = np.array([find(i) for i in range(len(x))])
    _, label = np.unique(roots, return_inverse=True)
    return label.astype(np.int64)


def _losses_and_clusters(losses: Any, x: np.ndarray, threshold: float, name: str, value: int):
    """Checked losses, and cluster labels of ``x`` at ``threshold``; ``value`` (cap or budget) must be >= 1."""
    lo = _check_losses(losses)
    if len(x) != len(lo):
        raise ShapeError(f"{len(lo)} losses for {len(x)} models")
    if value < 1:
        raise ValueRangeError(f"{name} must be >= 1, got {value}")
    return lo, clusters(x, threshold)


def cap_clusters(losses: Any, x: np.ndarray, threshold: float, cap: int) -> Selection:
    lo, lab = _losses_and_clusters(losses, x, threshold, "cap", cap)
    keep = np.ones(len(lo), bool)
    reasons = [""] * len(lo)
    for c in np.unique(lab):
        members = np.nonzero(lab == c)[0]
        ranked = members[_rank(lo[members])]
        for i in ranked[cap:]:
            keep[i] = False
            reasons[i] = (f"near-duplicate: cluster {c} has {len(members)} models within distance {threshold}; "
                          f"kept the {cap} lowest-loss")
    return Selection("cap_clusters", {"threshold": threshold, "cap": cap}, keep, reasons, lab)


def keep_budget(losses: Any, x: np.ndarray, threshold: float, budget: int) -> Selection:
    lo, lab = _losses_and_clusters(losses, x, threshold, "budget", budget)
    reps = np.array([m[_rank(lo[m])[0]] for m in (np.nonzero(lab == c)[0] for c in np.unique(lab))])
    chosen = set(reps[_rank(lo[reps])][:budget].tolist())
    keep = np.zeros(len(lo), bool)
    reasons = []
    for i in range(len(lo)):
        rep = reps[lab[i]]
        if i in chosen:
            keep[i] = True
            reasons.append("")
        elif i != rep:
            reasons.append(f"near-duplicate of model {rep} (cluster {lab[i]}, lower loss)")
        else:
            reasons.append(f"over budget: cluster {lab[i]}'s loss {lo[i]:.4g} is not among the {budget} lowest of "
                           f"{len(reps)} distinct models")
    return Selection("budget", {"threshold": threshold, "budget": budget}, keep, reasons, lab)


def select(losses: Any, x: np.ndarray, s: RuleSettings) -> Selection:
    """Apply the rule named in ``s``."""
    if s.rule == "drop_highest":
        return drop_highest(losses, s.fraction)
    if s.rule == "cap_clusters":
        return cap_clusters(losses, x, s.threshold, s.cap)
    if s.rule == "budget":
        return keep_budget(losses, x, s.threshold, s.budget)
    raise ConfigError(f"selection rule must be one of {list(SELECTION_RULES)}, got {s.rule!r}")


def selected_set(ms, sel: Selection, losses: np.ndarray, source: str = ""):
    """The kept models as a new ModelSet (mixture labels subset alike) with ``meta["selection"]``: the rule, its
    parameters, the source, kept indices and every dropped model's index, loss, cluster and reason."""
    from geomem.geology.mixtures import subset_mixture

    if len(sel.keep) != len(ms):
        raise ShapeError(f"the selection covers {len(sel.keep)} models but the set has {len(ms)}")
    if not sel.keep.any():
        raise ValueRangeError("the rule dropped every model; loosen it (lower fraction, higher cap or budget)")
    out = subset_mixture(ms, sel.kept)
    out.meta["selection"] = {"rule": sel.rule, "params": sel.params, "source": source, "n_source": len(ms),
                             "kept": sel.kept.tolist(), "dropped": sel.dropped_records(np.asarray(losses))}
    return out


def training_coverage(samples: Any, train: Any, threshold: float = 0.5) -> tuple[float, np.ndarray, np.ndarray]:
    """``(rate, reproduced (N,) bool, hits (N,) int)``: training models reproduced by ``samples`` (module
    docstring); ``hits[n]`` counts the samples that reproduce model n."""
    r = memorization_ratios(samples, train)
    n = int(np.shape(train)[0])
    hits = np.bincount(r.nearest[r.ratio_k < threshold], minlength=n)
    return float((hits > 0).mean()), hits > 0, hits




# ------------------------------------------------------------------------------------------ experiment
# (imported here, not at the top: geomem.experiments.rules uses the scoring functions above)
from geomem.experiments.rules import (  # noqa: E402
    PosteriorSettings,
    TrainingSettings,
    capacity_unet,
    eval_device,
    generalization,
    markdown_table,
    posterior_scores,
    prior_samples,
    train_all,
    train_config,
)
from geomem.geology.mixtures import (  # noqa: E402
    MixtureSettings,
    heldout_rules,
    make_mixture_set,
    mixture_labels,
)


@dataclass(frozen=True)
class SelectConfig:
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
    posterior: PosteriorSettings = PosteriorSettings()


def run_select(config: SelectConfig, out, progress: bool = True) -> dict:
    """Score, select, train on the full and the selected sets with the same budget, compare (module docstring).

    Writes ``full.npz`` and ``selected.npz`` (model sets; the selected one records every dropped model and why),
    ``losses.npz`` (loss, keep, cluster per model), ``metrics.json``, ``table.md`` and the two priors.
    """
    import time
    from pathlib import Path

    from geomem.priors.learned import LearnedPrior
    from geomem.runs import RunFolder, write_json, write_npz, write_text

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
            res["posterior"] = posterior_scores(cpu_prior, full, facts_idx, truths, config.posterior, config.seed)
        results[name] = res
        rows.append(_row(name, res, config.eval_sigmas))
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
    from geomem.priors.learned import LearnedPrior

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


def _row(name: str, res: dict, sigmas) -> list[str]:
    post = res.get("posterior")
    rmse = ", ".join(f"{v['rmse_kms']:.3f}" for v in post.values()) if post else "not run"
    return [name, str(res["n_train"]), str(res["distinct_facts_in_train"]),
            f"{res['memorized_rate_train']:.3f} ({res['null_memorized_rate_train']:.3f})",
            str(res["reproduced_train_models"]), f"{res['facts_reproduced']} ({res['null_facts_reproduced']})",
            *[f"{res['generalization'][f'{s:g}']['gen_ratio']:.3f}" for s in sigmas], rmse]
