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
  at least one sample reproduces (:func:`geomem.experiments.select.training_coverage`), with the null coverage
  of as many held-out models (rules and exceptions in the training proportions). ``hits`` per exception against
  its copy count gives the frequency dependence.
- **generalization.** The EDM-weighted denoising loss at each σ of ``eval_sigmas`` (shared seeded noise,
  :func:`geomem.experiments.select.denoising_losses`) on held-out rule models and on the training rule models,
  for the learned prior and for the memorized prior of the same training set; ``gen_ratio = learned/memorized``
  on held-out rules (< 1: better than a lookup of the training set). Sample quality: the energy distance
  between the samples and held-out rule models, beside that of as many training rule models (the reference a
  perfect rule sampler would reach).
- **posterior** (``posterior.enabled``; needs Devito): DPS with the learned prior for a truth that is exception 0
  (the most frequent), a training rule model and a held-out rule model; reported: RMSE of the posterior mean in
  km/s, the fraction of posterior samples flagged as memorized and the fraction whose nearest fact is the truth.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geomem.errors import ConfigError
from geomem.experiments.compare import SurveySettings, build_operator
from geomem.geology.mixtures import (
    MixtureSettings,
    heldout_exceptions,
    heldout_rules,
    make_mixture_set,
    mixture_labels,
)
from geomem.metrics.memorization import memorization_ratios
from geomem.metrics.posterior_quality import energy_distance
from geomem.posterior.dps import DPSConfig, OperatorMisfit, dps
from geomem.priors.learned import LearnedPrior, UNetConfig
from geomem.priors.memorized import MemorizedPrior
from geomem.priors.sampling import karras_sigmas, sample
from geomem.priors.training import DataConfig, OptimConfig, TrainConfig, train
from geomem.runs import RunFolder, write_json, write_npz, write_text

THRESHOLD = 0.5  # memorized if d1/mean(d2..dk) < 0.5


@dataclass(frozen=True)
class TrainingSettings:
    """One budget for every prior: ``steps`` optimizer steps of ``batch_size`` (see :mod:`geomem.priors.training`)."""

    steps: int = field(default=2000, metadata={"min": 1})
    batch_size: int = field(default=64, metadata={"min": 1})
    lr: float = field(default=2e-4, metadata={"gt": 0})
    warmup_steps: int = field(default=200, metadata={"min": 0})
    levels: int = field(default=3, metadata={"min": 1})
    bf16: bool = False
    device: str = "auto"


@dataclass(frozen=True)
class PosteriorSettings:
    enabled: bool = False
    chains: int = field(default=4, metadata={"min": 2})
    noise: float = field(default=0.055, metadata={"gt": 0})
    survey: SurveySettings = SurveySettings()
    dps: DPSConfig = DPSConfig(steps=30, sigma_max=20.0, sigma_min=0.01, guidance="chung", zeta=0.03)


@dataclass(frozen=True)
class RulesConfig:
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
    posterior: PosteriorSettings = PosteriorSettings()


# ------------------------------------------------------------------------------------------ training
def capacity_unet(c: int, levels: int) -> UNetConfig:
    """UNet of base width ``c``: channels ``(c, 2c, …, 2^(L−1) c)``, attention only in the middle block."""
    if c % 4:
        raise ConfigError(f"capacity {c} must be a multiple of 4 (GroupNorm groups); use e.g. 8, 16, 32")
    chans = tuple(c * 2**i for i in range(levels))
    return UNetConfig(channels=chans, attention=(False,) * levels, norm_groups=4 if c % 8 else 8,
                      attention_head_dim=c)


def train_config(t: TrainingSettings, capacity: int, size: int, seed: int, name: str) -> TrainConfig:
    return TrainConfig(name=name, seed=seed, steps=t.steps, batch_size=t.batch_size, device=t.device, bf16=t.bf16,
                       log_every=max(1, min(50, t.steps)), data=DataConfig(size=(size, size)),
                       model=capacity_unet(capacity, t.levels),
                       optim=OptimConfig(lr=t.lr, warmup_steps=min(t.warmup_steps, t.steps)))


def _train_job(cfg: TrainConfig, out: str, set_path: str) -> str:
    from geomem.geology import ModelSet

    train(cfg, out, data=ModelSet.load(set_path), progress=False)
    return out


def train_all(jobs: list[tuple[TrainConfig, Path, Path]], workers: int) -> None:
    """Train every ``(config, run folder, model-set file)`` not already finished (``prior/config.json`` present);
    ``workers > 1`` runs that many training processes at once (e.g. several small UNets on one GPU). With
    ``device = "auto"`` and several visible GPUs, job ``i`` trains on ``cuda:(i mod #GPUs)``."""
    n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    todo = [(dataclasses.replace(c, device=f"cuda:{i % n_gpu}") if c.device == "auto" and n_gpu > 1 else c,
             str(o), str(s)) for i, (c, o, s) in enumerate(jobs) if not (o / "prior" / "config.json").is_file()]
    if workers <= 1:
        for job in todo:
            _train_job(*job)
        return
    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
        for f in cf.as_completed([ex.submit(_train_job, *job) for job in todo]):
            f.result()


def eval_device(t: TrainingSettings) -> torch.device:
    from geomem.priors.training import resolve_device

    return resolve_device(t.device)


# ------------------------------------------------------------------------------------------ scores
def generalization(prior, train_x: np.ndarray, rules_train: np.ndarray, rules_heldout: np.ndarray,
                   sigmas: tuple[float, ...], seed: int, device) -> dict[str, Any]:
    """Learned and memorized denoising losses on held-out and training rule models at each σ (module doc)."""
    from geomem.experiments.select import ScoreSettings, denoising_losses

    mem = MemorizedPrior(torch.from_numpy(train_x).float()).to(device)
    out: dict[str, Any] = {}
    for s in sigmas:
        st = ScoreSettings(sigma_lo=s, sigma_hi=s, n_sigmas=1, n_draws=2, seed=seed)
        row = {}
        for name, x in (("heldout", rules_heldout), ("train", rules_train)):
            row[f"learned_{name}"] = float(denoising_losses(prior, x, st, device).mean())
            row[f"memorized_{name}"] = float(denoising_losses(mem, x, st, device).mean())
        row["gen_ratio"] = row["learned_heldout"] / row["memorized_heldout"]
        out[f"{s:g}"] = row
    return out


def memorization_by_kind(samples: np.ndarray, facts: np.ndarray, fact_kind: np.ndarray, fact_copies: np.ndarray,
                         held_rules: np.ndarray, held_exc: np.ndarray, eps_share: float, seed: int) -> dict[str, Any]:
    """Rates by kind of nearest fact, nulls, coverage and hits per exception (module docstring)."""
    from geomem.experiments.select import training_coverage

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


def posterior_scores(prior, ms, facts_idx: np.ndarray, truths: dict[str, np.ndarray], p: PosteriorSettings,
                     seed: int) -> dict[str, Any]:
    """DPS with ``prior`` for each truth (velocity ``(1, nz, nx)``); RMSE, memorized and truth-hit fractions."""
    op = build_operator(ms, p.survey)
    param = ms.parameterization
    facts = ms.normalized()[facts_idx].astype(np.float64)
    out = {}
    for name, v_true in truths.items():
        y_clean = op.forward(v_true)
        gamma = float(p.noise * np.sqrt(np.mean(y_clean.astype(np.float64) ** 2)))
        y = y_clean + gamma * np.random.default_rng([seed, len(out)]).standard_normal(y_clean.shape)
        res = dps(prior, OperatorMisfit(op, y, param), p.chains, p.dps, seed=seed)
        xs = res.samples.double().cpu().numpy()
        v = param.to_velocity(xs)
        r = memorization_ratios(xs, facts)
        x_true = param.to_normalized(v_true).astype(np.float64)
        truth_fact = np.nonzero(np.all(np.isclose(facts.reshape(len(facts), -1), x_true.reshape(1, -1)), axis=1))[0]
        out[name] = {"rmse_kms": float(np.sqrt(np.mean((v.mean(0) - v_true) ** 2))),
                     "memorized": float(np.mean(r.ratio_k < THRESHOLD)),
                     "nearest_is_truth": (float(np.mean(r.nearest == truth_fact[0])) if len(truth_fact)
                                          else None),
                     "misfit_over_noise": float(np.median(res.final_misfit) / (gamma * np.sqrt(y.size))),
                     "n_diverged": int(res.diverged.sum())}
    return out


def prior_samples(prior, path: Path, n: int, steps: int, seed: int, device) -> np.ndarray:
    """``n`` unconditional Heun samples (``steps`` Karras noise levels, σ 20 → 0.005) of a trained prior, reused from
    ``path`` when it holds samples drawn with the same ``n``, ``steps`` and ``seed`` (so a CPU rerun that adds the
    posteriors scores the very samples a GPU run drew). Samples are kept in float32; both paths return those
    float32 values as float64, so a reused run and a fresh one score identical arrays."""
    if path.is_file():
        with np.load(path) as f:
            if "sample_settings" in f.files and f["sample_settings"].tolist() == [n, steps, seed]:
                return f["samples"].astype(np.float64)
    smp = sample(prior, n, karras_sigmas(steps, 0.005, 20.0), "heun", generator=seed, device=device,
                 batch_size=256).cpu().numpy().astype(np.float32)
    write_npz(path, samples=smp, sample_settings=np.array([n, steps, seed]))
    return smp.astype(np.float64)


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
                res["posterior"] = posterior_scores(prior_cpu, ms, facts_idx, truths, config.posterior, config.seed)
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


def table_header(sigmas: tuple[float, ...]) -> list[str]:
    return ["ε", "α", "capacity", "params", "exc. share of samples", "memorized exc. (null)", "memorized rule (null)",
            "coverage exc. (null)", "coverage rule (null)",
            *[f"gen. ratio σ={s:g}" for s in sigmas], "energy samples/held-out (train ref.)"]


def _f(v: float) -> str:
    return "nan" if v != v else f"{v:.3f}"


def table_row(res: dict, sigmas: tuple[float, ...]) -> list[str]:
    m, q = res["memorization"], res["quality"]
    return [f"{res['epsilon']:g}", f"{res['alpha']:g}", str(res["capacity"]), f"{res['parameters']:,}",
            _f(m["sample_exception_share"]),
            f"{_f(m['memorized_exception'])} ({_f(m['null_exception'])})",
            f"{_f(m['memorized_rule'])} ({_f(m['null_rule'])})",
            f"{_f(m['coverage_exception'])} ({_f(m['null_coverage_exception'])})",
            f"{_f(m['coverage_rule'])} ({_f(m['null_coverage_rule'])})",
            *[_f(res["generalization"][f"{s:g}"]["gen_ratio"]) for s in sigmas],
            f"{q['energy_samples_heldout']:.3f} ({q['energy_train_rules_heldout']:.3f})"]


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A markdown table; cells are written with ``str``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"
