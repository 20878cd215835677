"""Memorization against training-set size N, training time and model capacity (``geomem sweep``).

One config drives nested training sets (the first N models of one model set, N ∈ ``train_sizes``; each smaller
set is a prefix of the larger), UNet capacities (base widths ``w``: a UNet of L levels has channels
``(w, 2w, …, 2^(L−1) w)``), and one prior per (N, w) trained with the same optimizer-step budget and the same
checkpoint steps (so the smallest set is seen most often). Then, per (N, w, checkpoint step):

- ``samples``: ``S`` unconditional samples (probability-flow ODE, :func:`geomem.priors.sampling.sample`) from the
  checkpoint's EMA weights, their nearest-neighbour ratios ``d1/d2`` and ``d1/mean(d2..dk)`` against the N training
  models, and the null ratios (held-out models against the same N; leave-one-out), so every rate
  ``p̂ = #{ratio < τ}/S`` (percentile-bootstrap interval) sits beside the rate a non-memorizing sampler would get;
- ``posteriors`` (the final checkpoint and those in ``posterior_steps``): DPS with the learned prior on noisy data
  ``y = F(v_truth) + ε`` of a held-out truth, and beside it the fully memorized counterpart of the same N — DPS
  with the exact memorized prior, the closed-form linearized mixture and the σ → 0 lookup — all scored by
  :func:`geomem.workflow.scoring.score_posteriors` (memorization rates with nulls, RMSE, calibration, misfit/noise).

Stages (``stages``): ``train`` (GPU when there is one) → ``samples`` (GPU or CPU, no PDE solves) → ``posteriors``
(Devito, CPU) → ``report`` (tables, figures, ``report.html``). Each stage reads the previous one's files, so the
stages can run on different machines: ``priors_dir`` points at a folder of training runs made elsewhere
(``<priors_dir>/n<N>_w<w>/checkpoints/step_XXXXXXX/ema.safetensors`` is all the sample and posterior stages read).
Finished pieces are kept and reused when the stage runs again.

Run folder (``out``)::

    config.toml, provenance.json, metrics.json, report.html, figures/
    train/n<N>_w<w>/                 geomem train run folders (unless priors_dir is set)
    samples/n<N>_w<w>_s<step>.npz    ratio records (+ the first few samples and their nearest models)
    samples/nulls_n<N>.npz           held-out and leave-one-out null records
    posteriors/n<N>_w<w>_s<step>.npz  posterior samples (velocity), their nearest models, misfits
    posteriors/metrics_n<N>_w<w>_s<step>.json  scores of the learned, memorized, linearized and lookup posteriors
    cache/                           forward data of the training models, cached DPS / linearized runs
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from geomem.config import Settings, to_dict
from geomem.errors import ConfigError, DataFileError
from geomem.geology import ModelSet
from geomem.metrics.memorization import MemorizationRatios, memorization_ratios, null_baselines, report_from_ratios
from geomem.priors.learned import UNetConfig
from geomem.priors.sampling import karras_sigmas, sample
from geomem.priors.training import DataConfig, OptimConfig, TrainConfig, resolve_device, train
from geomem.runs import RunFolder, write_json, write_npz
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
from geomem.workflow.priors import checkpoint_prior, checkpoints, memorized_prior, unet_of_width
from geomem.workflow.problem import ModelSetSettings, Problem, SurveySettings, load_model_set
from geomem.workflow.scoring import PRIMARY, score_posteriors

STAGES = ("train", "samples", "posteriors", "report")


@dataclass(frozen=True)
class CapacitySettings(Settings):
    """UNet capacities: one prior per base width ``w`` (channels ``w · 2^l`` at level ``l``)."""

    widths: tuple[int, ...] = field(default=(16, 32), metadata={"min": 1})
    levels: int = field(default=3, metadata={"min": 1})
    attention_last: bool = True
    layers_per_block: int = field(default=1, metadata={"min": 1})
    norm_groups: int = field(default=8, metadata={"min": 1})
    attention_head_dim: int = field(default=32, metadata={"min": 1})


@dataclass(frozen=True)
class SampleSettings(Settings):
    """Unconditional samples per (N, w, checkpoint): PF-ODE from ``sigma_max`` to ``sigma_min``."""

    n: int = field(default=256, metadata={"min": 2})
    steps: int = field(default=50, metadata={"min": 2})
    method: str = field(default="heun", metadata={"choices": ("euler", "heun", "stochastic")})
    sigma_min: float = field(default=0.005, metadata={"gt": 0})
    sigma_max: float = field(default=20.0, metadata={"gt": 0})
    batch_size: int = field(default=256, metadata={"min": 1})
    keep: int = field(default=8, metadata={"min": 0})
    device: str = "auto"


@dataclass(frozen=True)
class SweepConfig(Settings):
    """Settings of ``geomem sweep`` (TOML tables: model_set, capacity, train, samples, survey, sampler, linearized).

    ``train`` is a full :class:`TrainConfig` except ``name``, ``data`` and ``model``, which the sweep sets per
    (N, w) from ``model_set`` and ``capacity``.
    """

    train_sizes: tuple[int, ...] = field(default=(50, 200, 1000), metadata={"min": 3})
    stages: tuple[str, ...] = field(default=STAGES, metadata={"choices": STAGES})
    priors_dir: str = ""
    truth: str = "heldout:0"
    noise: float = field(default=0.055, metadata={"gt": 0})
    chains: int = field(default=4, metadata={"min": 2})
    seed: int = field(default=0, metadata={"min": 0})
    workers: int = field(default=-1, metadata={"min": -1})  # Dask worker processes; -1: serial on <= 2 cores
    n_boot: int = field(default=1000, metadata={"min": 10})
    #: checkpoint steps that also get DPS posteriors (the final checkpoint always does)
    posterior_steps: tuple[int, ...] = field(default=(), metadata={"min": 1})
    model_set: ModelSetSettings = ModelSetSettings()
    capacity: CapacitySettings = CapacitySettings()
    train: TrainConfig = TrainConfig(steps=3000, batch_size=64, checkpoint_steps=(250, 750, 1500), log_every=100,
                                     bf16=False, optim=OptimConfig(warmup_steps=300))
    samples: SampleSettings = SampleSettings()
    survey: SurveySettings = SurveySettings()
    sampler: SamplerSettings = SamplerSettings()
    linearized: LinearizedSettings = LinearizedSettings()


# ------------------------------------------------------------------------------------------ layout
def run_name(n: int, width: int) -> str:
    return f"n{n}_w{width}"


def grid(config: SweepConfig) -> list[tuple[int, int]]:
    """Every (N, w) pair of the sweep, N ascending then w ascending."""
    return [(n, w) for n in sorted(config.train_sizes) for w in sorted(config.capacity.widths)]


def training_root(config: SweepConfig, out: Path) -> Path:
    return Path(config.priors_dir) if config.priors_dir else Path(out) / "train"


def unet_config(cap: CapacitySettings, width: int) -> UNetConfig:
    """Channels ``(w, 2w, …)``, attention only at the coarsest level (and diffusers' middle block)."""
    return unet_of_width(width, cap.levels, cap.attention_last, cap.layers_per_block, cap.norm_groups,
                         cap.attention_head_dim)


def train_config(config: SweepConfig, n: int, width: int) -> TrainConfig:
    """The :class:`TrainConfig` of prior (N, w): the sweep's training recipe on the first N models."""
    s = config.model_set
    data = DataConfig(family=s.family, n=n, size=(s.size, s.size), spacing=s.spacing, seed=s.seed, vmin=s.vmin,
                      vmax=s.vmax, path=s.path)
    return dataclasses.replace(config.train, name=run_name(n, width), data=data,
                               model=unet_config(config.capacity, width))


def check_config(config: SweepConfig, only: str | None = None) -> None:
    """Refuse settings that cannot give a sweep (or a ``--run`` outside it), before any work."""
    if not config.train_sizes:
        raise ConfigError("train_sizes is empty; give at least one training-set size N (e.g. train_sizes = [50])")
    names = [run_name(n, w) for n, w in grid(config)]
    if only is not None and only not in names:
        raise ConfigError(f"--run {only!r} is not in this sweep; choose one of {', '.join(names)}")
    if len(set(config.train_sizes)) != len(config.train_sizes):
        raise ConfigError(f"train_sizes {list(config.train_sizes)} has repeats; give each N once")
    if max(config.train_sizes) > config.model_set.heldout_start:
        raise ConfigError(f"the largest N ({max(config.train_sizes)}) overlaps the held-out pool that starts at model "
                          f"{config.model_set.heldout_start}; raise model_set.heldout_start and model_set.n")
    if not config.capacity.widths:
        raise ConfigError("capacity.widths is empty; give at least one UNet base width")
    if any(s > config.train.steps for s in config.train.checkpoint_steps):
        raise ConfigError(f"train.checkpoint_steps {list(config.train.checkpoint_steps)} go past train.steps "
                          f"({config.train.steps}); drop the later ones")
    extra = sorted(set(config.posterior_steps) - set(config.train.checkpoint_steps) - {config.train.steps})
    if extra:
        raise ConfigError(f"posterior_steps {extra} are not checkpoint steps; choose from train.checkpoint_steps "
                          f"{list(config.train.checkpoint_steps)} (the final step always gets posteriors)")


def _run_dirs(config: SweepConfig, out: Path, only: str | None) -> list[tuple[int, int, Path]]:
    root = training_root(config, out)
    pairs = [(n, w, root / run_name(n, w)) for n, w in grid(config)]
    if only is not None:
        pairs = [p for p in pairs if run_name(p[0], p[1]) == only]
    return pairs


# ------------------------------------------------------------------------------------------ stages
def stage_train(config: SweepConfig, out: Path, ms: ModelSet, only: str | None = None,
                progress: bool = True, stop_at: int | None = None) -> dict:
    """Train every prior (or only ``only``) that has no final checkpoint yet; interrupted runs are resumed.

    ``stop_at``: stop each training after that step (checkpoint saved, schedule unchanged) so a later call resumes
    it, e.g. on another GPU; a prior already past it is left as it is."""
    done = {}
    for n, w, run_dir in _run_dirs(config, out, only):
        tcfg = train_config(config, n, w)
        have = [s for s, _ in checkpoints(run_dir)]
        if tcfg.steps not in have and not (stop_at is not None and have and max(have) >= stop_at):
            train(tcfg, run_dir, data=ms.subset(np.arange(n)), resume=bool(have), stop_at=stop_at,
                  progress=progress)
        metrics = run_dir / "metrics.json"
        done[run_name(n, w)] = json.loads(metrics.read_text()) if metrics.is_file() else {}
    return done


def stage_samples(config: SweepConfig, out: Path, ms: ModelSet, only: str | None = None,
                  progress: bool = True) -> None:
    """Unconditional samples of every checkpoint, scored against the training set (and the nulls per N)."""
    s = config.samples
    device = resolve_device(s.device)
    x_all = ms.normalized().astype(np.float64)
    folder = Path(out) / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    heldout = _heldout(config, x_all)
    sigmas = karras_sigmas(s.steps, s.sigma_min, s.sigma_max)
    for n, w, run_dir in _run_dirs(config, out, only):
        train_x = x_all[:n]
        nulls_path = folder / f"nulls_n{n}.npz"
        if not nulls_path.is_file():
            nulls = null_baselines(train_x, heldout)
            write_npz(nulls_path, **{k: v for g, r in nulls.items() for k, v in r.to_arrays(g).items()})
        ckpts = checkpoints(run_dir)
        if not ckpts:
            raise DataFileError(f"{run_dir} has no checkpoints; run the train stage first (or fix priors_dir)")
        for step, ckpt in ckpts:
            path = folder / f"{run_name(n, w)}_s{step}.npz"
            if path.is_file():
                continue
            t0 = time.perf_counter()
            prior = checkpoint_prior(run_dir, ckpt, device)
            prior.check_model_set(ms.family, ms.vmin, ms.vmax, tuple(ms.shape[1:]))
            with torch.no_grad():
                x = sample(prior, s.n, sigmas, s.method, generator=config.seed, device=device,
                           batch_size=s.batch_size).double()
            ratios = memorization_ratios(x, torch.as_tensor(train_x, device=x.device))
            x = x.cpu().numpy()
            keep = x[: s.keep]
            write_npz(path, step=step, wall_s=time.perf_counter() - t0, **ratios.to_arrays("samples"),
                      kept_normalized=keep, kept_velocity=ms.parameterization.to_velocity(keep),
                      kept_nearest=ms.models[ratios.nearest[: s.keep]])
            if progress:
                print(f"samples {run_name(n, w)} step {step}: {time.perf_counter() - t0:.1f} s", flush=True)


def _heldout(config: SweepConfig, x_all: np.ndarray) -> np.ndarray:
    start = config.model_set.heldout_start
    return x_all[start:][: config.model_set.n_heldout_null]


def stage_posteriors(config: SweepConfig, out: Path, progress: bool = True) -> None:
    """A posterior sampler with each learned prior at its posterior checkpoints and, per N, the memorized /
    linearized / lookup posteriors (computed once per N, cached by content), all scored."""
    out = Path(out)
    folder = out / "posteriors"
    folder.mkdir(parents=True, exist_ok=True)
    problem = Problem.build(config.model_set, config.survey)
    sizes = sorted(config.train_sizes)
    root = training_root(config, out)
    workers = None if config.workers < 0 else config.workers
    with dask_client(workers) as client:
        F_train = problem.forward_train(max(sizes), client, progress)
        t_idx, lik = problem.likelihood(config.truth, config.noise, config.seed, min(sizes), F_train, client)
        write_npz(folder / "truth.npz", velocity=problem.model_set.models[t_idx], y=lik.y, gamma=lik.gamma,
                  index=t_idx)
        base = {"models": problem.digest, "data": digest_array(lik.y), "gamma": lik.gamma,
                "survey": problem.operator_key(), "chains": config.chains, "seed": config.seed}
        for n in sizes:
            train_x = problem.train(n)
            nulls = null_baselines(train_x, problem.heldout_null)
            rng = np.random.default_rng([config.seed, n])
            shared = {"lookup": lookup_posterior(lik, train_x, F_train, config.chains, rng)}
            key = stage_key(kind="linearized", n=n, settings=to_dict(config.linearized), sigma=config.sampler.sigma_min,
                            **base)
            shared["linearized"] = cached_posterior(
                out / "cache" / f"linearized_n{n}.npz", key, "linearized",
                functools.partial(linearized_posterior, lik, train_x, F_train, config.sampler.sigma_min,
                                  config.linearized,
                                  config.chains, rng, shared["lookup"].component_weights))
            key = stage_key(kind="memorized", n=n, settings=to_dict(config.sampler), **base)
            shared["memorized"] = cached_posterior(
                out / "cache" / f"memorized_n{n}.npz", key, "memorized",
                functools.partial(sampled_posterior, memorized_prior(train_x), lik, config.chains, config.sampler,
                                  config.seed, F_train[:n]))
            for w in sorted(config.capacity.widths):
                run_dir = root / run_name(n, w)
                for step, ckpt in posterior_checkpoints(config, run_dir):
                    name = f"{run_name(n, w)}_s{step}"
                    key = stage_key(kind="learned", n=n, prior=digest_path(ckpt / "ema.safetensors"),
                                    settings=to_dict(config.sampler), **base)
                    learned = cached_posterior(
                        out / "cache" / f"learned_{name}.npz", key, "learned",
                        lambda run_dir=run_dir, ckpt=ckpt: sampled_posterior(
                            checkpoint_prior(run_dir, ckpt), lik, config.chains, config.sampler, config.seed))
                    posts = {**shared, "learned": learned}
                    ms = problem.model_set
                    scores, arrays = score_posteriors(posts, train_x, nulls, lik, config.n_boot, config.seed,
                                                      ms.vmax - ms.vmin)
                    velocities = {f"{k}__velocity": problem.parameterization.to_velocity(p.samples)
                                  for k, p in posts.items()}
                    misfits = {f"{k}__misfit": p.misfit for k, p in posts.items()}
                    write_npz(folder / f"{name}.npz", **velocities, **misfits, **arrays)
                    scores.update({"step": step, "width": w, "gamma": lik.gamma, "truth": config.truth})
                    write_json(folder / f"metrics_{name}.json", scores)


def posterior_checkpoints(config: SweepConfig, run_dir: Path) -> list[tuple[int, Path]]:
    """The checkpoints of one training run that get posteriors: those in ``posterior_steps`` and the final one."""
    ckpts = checkpoints(run_dir)
    if not ckpts:
        raise DataFileError(f"{run_dir} has no checkpoints; run the train stage first")
    want = set(config.posterior_steps) | {ckpts[-1][0]}
    missing = sorted(want - {s for s, _ in ckpts})
    if missing:
        raise DataFileError(f"{run_dir} has no checkpoint at step(s) {missing} (posterior_steps); rerun the train "
                            f"stage or drop them from posterior_steps")
    return [(s, c) for s, c in ckpts if s in want]


# ------------------------------------------------------------------------------------------ tables
def sample_rows(config: SweepConfig, out: Path) -> list[dict]:
    """One row per (N, w, step): every criterion's sample rate and null rates, with bootstrap intervals."""
    folder = Path(out) / "samples"
    rows = []
    for n, w in grid(config):
        nulls_path = folder / f"nulls_n{n}.npz"
        files = sorted(folder.glob(f"{run_name(n, w)}_s*.npz"), key=lambda p: int(p.stem.rsplit("_s", 1)[1]))
        if not files or not nulls_path.is_file():
            continue
        with np.load(nulls_path) as f:
            nulls_arr = {k: f[k] for k in f.files}
        nulls = {g: MemorizationRatios.from_arrays(nulls_arr, g) for g in ("heldout", "leave_one_out")}
        for path in files:
            with np.load(path) as f:
                arr = {k: f[k] for k in f.files}
            ratios = MemorizationRatios.from_arrays(arr, "samples")
            rep = report_from_ratios({"samples": ratios, **nulls}, config.n_boot, config.seed)
            rows.append({"n": n, "width": w, "step": int(arr["step"]), "n_samples": len(rep.samples),
                         "sample_wall_s": float(arr["wall_s"]), "memorization": rep.to_dict(),
                         "distinct_nearest": int(np.unique(rep.samples.nearest).size)})
    return rows


def posterior_rows(config: SweepConfig, out: Path) -> list[dict]:
    """One row per (N, w, checkpoint step, posterior kind) from the posterior stage's metrics files; the memorized,
    linearized and lookup posteriors depend on N only and get one row per N."""
    rows = []
    folder = Path(out) / "posteriors"
    for n, w in grid(config):
        paths = sorted(folder.glob(f"metrics_{run_name(n, w)}_s*.json"),
                       key=lambda p: int(p.stem.rsplit("_s", 1)[1]))
        for i, path in enumerate(paths):
            m = json.loads(path.read_text())
            for kind, mem in m["memorization"].items():
                if kind != "learned" and (w != min(config.capacity.widths) or i > 0):
                    continue
                q = m["quality"]["posteriors"][kind]
                rows.append({"n": n, "width": w, "step": m["step"], "posterior": kind,
                             "rates": mem["memorization"]["rates"][PRIMARY], "n_diverged": mem["n_diverged"],
                             "rmse": q["rmse"], "mean_std": q["mean_std"], "coverage@0.9": q["coverage@0.9"],
                             "misfit/noise": q.get("misfit/noise"), "distinct_nearest": q.get("distinct_nearest")})
    return rows


def training_rows(config: SweepConfig, out: Path) -> list[dict]:
    """Final loss, wall time and throughput of every training run (from its metrics.json, when present)."""
    rows = []
    root = training_root(config, out)
    for n, w in grid(config):
        path = root / run_name(n, w) / "metrics.json"
        steps = [s for s, _ in checkpoints(root / run_name(n, w))]
        m = json.loads(path.read_text()) if path.is_file() else _from_train_log(root / run_name(n, w))
        # the last step reached: the last checkpoint, or the log's when the checkpoints were not kept
        last = max(steps) if steps else m.get("last_step")
        rows.append({"n": n, "width": w, "checkpoints": steps, "last_step": last, "final_loss": m.get("final_loss"),
                     "wall_s": m.get("wall_s_this_process"), "parameters": m.get("parameters"),
                     "device": m.get("device"), "models_per_s": m.get("models_per_s_median"),
                     "finished": path.is_file()})
    return rows


def _from_train_log(run_dir: Path) -> dict:
    """Loss, wall time and median throughput of a training stopped before its end (no metrics.json), from its
    ``train_log.jsonl``; empty when there is no log."""
    log = run_dir / "train_log.jsonl"
    if not log.is_file():
        return {}
    recs = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not recs:
        return {}
    speeds = [r["models_per_s"] for r in recs if isinstance(r.get("models_per_s"), float) and
              np.isfinite(r["models_per_s"])]
    return {"final_loss": recs[-1]["loss"], "wall_s_this_process": recs[-1]["time_s"], "last_step": recs[-1]["step"],
            "models_per_s_median": float(np.median(speeds)) if speeds else None}


# ------------------------------------------------------------------------------------------ driver
def run_sweep(config: SweepConfig, out: str | Path, only: str | None = None, progress: bool = True,
              stop_at: int | None = None) -> dict:
    """Run the configured stages into run folder ``out``; return the metrics (also ``metrics.json``).
    ``stop_at``: the train stage stops each training after that step (see :func:`stage_train`)."""
    check_config(config, only)
    out = Path(out)
    ms = load_model_set(config.model_set)
    run = RunFolder(out, config=config, seed=config.seed)
    timings: dict[str, float] = {}
    for stage in STAGES:
        if stage not in config.stages:
            continue
        t0 = time.perf_counter()
        if stage == "train":
            stage_train(config, out, ms, only, progress, stop_at)
        elif stage == "samples":
            stage_samples(config, out, ms, only, progress)
        elif stage == "posteriors":
            stage_posteriors(config, out, progress)
        timings[stage] = time.perf_counter() - t0
    metrics = {"criterion": PRIMARY, "train_sizes": sorted(config.train_sizes),
               "widths": sorted(config.capacity.widths), "training": training_rows(config, out),
               "samples": sample_rows(config, out), "posteriors": posterior_rows(config, out),
               "stage_wall_s": timings, "device": str(resolve_device(config.samples.device))}
    if "report" in config.stages:
        from geomem.report.sweep_figures import write_report

        t0 = time.perf_counter()
        metrics["report"] = str(write_report(out, metrics))
        timings["report"] = time.perf_counter() - t0
    run.write_metrics(metrics, name="metrics.json" if only is None else f"metrics_{only}.json")
    return metrics
