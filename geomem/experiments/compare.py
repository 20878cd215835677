"""The main job: learned versus memorized posteriors for FWI, with memorization metrics (``geomem compare``).

For every training-set size N (one per learned prior, plus any memorized-only sizes), every truth (a
held-out model and a training model by default) and noisy data ``y = F(v_truth) + ε``, ``ε ~ N(0, γ²I)``
with ``γ = noise × RMS(F(v_truth))``, it computes four posteriors over the same σ_min:

- ``learned``: DPS with the learned prior trained on the first N models (when one is given);
- ``memorized``: DPS with the exact memorized prior of the same N models;
- ``linearized``: the closed-form linearized mixture under the memorized prior (matrix-free, on the
  components with the largest lookup weights);
- ``lookup``: the σ → 0 likelihood-weighted lookup of the training models.

and scores each: memorization ratios against the training set with held-out and leave-one-out nulls,
RMSE/SSIM of the mean, calibration, distinct nearest training models, data misfit against the noise, and
the energy distance between learned and memorized samples. Everything lands in one run folder; stages
already present there (matching the same config) are reused, so an interrupted run continues where it
stopped. :mod:`geomem.experiments.compare_report` draws the figures and ``report.html`` from the folder.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from geomem.config import load_toml, to_dict
from geomem.errors import ConfigError, DataFileError, ShapeError
from geomem.geology import ModelSet, make_model_set
from geomem.metrics.memorization import (
    DEFAULT_CRITERIA,
    MemorizationRatios,
    MemorizationReport,
    bootstrap_rate,
    memorization_ratios,
    nearest_neighbours,
    null_baselines,
    per_sample_record,
)
from geomem.metrics.posterior_quality import compare_posteriors, data_misfit_vs_noise, energy_distance
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry
from geomem.physics.faults import BoundedClient
from geomem.physics.parallel import local_client, resolve_client
from geomem.posterior.dps import DPSConfig, OperatorMisfit, dps
from geomem.posterior.lookup import lookup_weights
from geomem.posterior.matrix_free import MatrixFreeLinearizedPosterior
from geomem.posterior.modes import effective_modes
from geomem.priors.learned import LearnedPrior
from geomem.priors.memorized import MemorizedPrior
from geomem.priors.sampling import karras_sigmas
from geomem.runs import RunFolder, write_npz

DEFAULT_PRIORS = ("data/priors/n50", "data/priors/n1000")
POSTERIOR_KINDS = ("learned", "memorized", "linearized", "lookup")


@dataclass(frozen=True)
class ModelSetSettings:
    """The model set: a saved file (``path``), or generated from the family settings (the default)."""

    path: str = ""
    family: str = "curvefault"
    n: int = field(default=1200, metadata={"min": 2})
    size: int = field(default=64, metadata={"min": 8})
    spacing: float = field(default=10.0, metadata={"gt": 0})
    seed: int = 0
    vmin: float = field(default=1.5, metadata={"gt": 0})
    vmax: float = field(default=4.5, metadata={"gt": 0})
    heldout_start: int = field(default=1000, metadata={"min": 1})
    n_heldout_null: int = field(default=100, metadata={"min": 1})


@dataclass(frozen=True)
class SurveySettings:
    """Acquisition: a surface line of sources and a receiver per column (``physics.Geometry.surface``)."""

    n_src: int = field(default=5, metadata={"min": 1})
    f0: float = field(default=15.0, metadata={"gt": 0})
    t_max: float = field(default=1000.0, metadata={"gt": 0})
    space_order: int = field(default=8, metadata={"choices": (2, 4, 6, 8, 10, 12)})
    nbl: int = field(default=20, metadata={"min": 0})
    geometry: str = ""  # a TOML file with src = [[x, z], ...] and rec = [[x, z], ...] in m; replaces the line


@dataclass(frozen=True)
class LinearizedSettings:
    components: int = field(default=2, metadata={"min": 1})  # at most this many components ...
    min_weight: float = field(default=1e-3, metadata={"min": 0, "max": 1})  # ... with lookup weight >= this
    rank: int = field(default=4, metadata={"min": 0})
    cg_tol: float = field(default=1e-6, metadata={"gt": 0})
    cg_maxiter: int = field(default=10, metadata={"min": 1})


@dataclass(frozen=True)
class CompareConfig:
    """Settings of ``geomem compare`` (TOML tables: ``model_set``, ``survey``, ``dps``, ``linearized``)."""

    priors: tuple[str, ...] = DEFAULT_PRIORS
    train_sizes: tuple[int, ...] = ()
    truths: tuple[str, ...] = ("heldout:0", "train:0")
    data: str = ""  # observed shot records (.npy, recorded with [survey]); replaces the modelled truths
    gamma: float = field(default=0.0, metadata={"min": 0})  # noise std of the observed data (required with data)
    noise: float = field(default=0.055, metadata={"gt": 0})
    chains: int = field(default=4, metadata={"min": 2})
    seed: int = 0
    workers: int = field(default=2, metadata={"min": 0})
    n_boot: int = field(default=1000, metadata={"min": 10})
    model_set: ModelSetSettings = ModelSetSettings()
    survey: SurveySettings = SurveySettings()
    # CPU-sized defaults (the main job must finish in minutes on 2 cores): few chains and steps. DPS does not
    # reach the noise level at this budget; raise chains and dps.steps for converged posteriors (docs/posterior.md).
    # ζ = 0.03: the FWI Jacobian in normalized coordinates is large, and ζ ≥ 0.1 left high-wavenumber texture in
    # learned-prior samples (64², 16 steps: TV 0.15-0.49 against 0.06 unguided and 0.04 for the truth).
    dps: DPSConfig = DPSConfig(steps=16, sigma_max=20.0, sigma_min=0.01, guidance="chung", zeta=0.03)
    linearized: LinearizedSettings = LinearizedSettings()


# ------------------------------------------------------------------------------------------ inputs
def load_model_set(s: ModelSetSettings) -> ModelSet:
    if s.path:
        if not Path(s.path).exists():
            raise DataFileError(f"model set {s.path} does not exist; give an existing .npz/.zarr or leave path empty")
        ms = ModelSet.load(s.path)
    else:
        ms = make_model_set(family=s.family, n=s.n, size=(s.size, s.size), spacing=s.spacing, seed=s.seed,
                            vmin=s.vmin, vmax=s.vmax)
    if s.heldout_start >= len(ms):
        raise ConfigError(f"model_set.heldout_start ({s.heldout_start}) must be below the number of models "
                          f"({len(ms)}): models from there on are the held-out pool")
    return ms


def load_priors(config: CompareConfig, ms: ModelSet) -> dict[int, LearnedPrior | None]:
    """``{N: learned prior or None}``; each learned prior is checked against the model set it will be used on."""
    priors: dict[int, LearnedPrior | None] = {}
    for path in config.priors:
        if not (Path(path) / "config.json").is_file():
            raise DataFileError(f"prior folder {path} has no config.json; pass a folder written by `geomem train`")
        prior = LearnedPrior.from_pretrained(path)
        prior.check_model_set(ms.family, ms.vmin, ms.vmax, tuple(ms.shape[1:]))
        if tuple(prior.model_shape) != tuple(ms.shape):
            raise ShapeError(f"prior {path} takes models of shape {prior.model_shape}, the model set has {ms.shape}")
        n = int(prior.model_set.get("n", 0))
        if n < 2:
            raise ConfigError(f"prior {path} does not record its training-set size; it cannot be compared")
        priors[n] = prior
    for n in config.train_sizes:
        priors.setdefault(int(n), None)
    if not priors:
        raise ConfigError("nothing to compare: give learned priors (priors = [...]) or memorized sizes (train_sizes)")
    too_big = [n for n in priors if n > config.model_set.heldout_start]
    if too_big:
        raise ConfigError(f"training-set sizes {too_big} overlap the held-out pool that starts at model "
                          f"{config.model_set.heldout_start}; raise model_set.heldout_start or model_set.n")
    return dict(sorted(priors.items()))


def truth_index(spec: str, heldout_start: int, n_models: int, n_min: int) -> int:
    """``heldout:i`` → model ``heldout_start + i``; ``train:i`` → model ``i`` (in every nested training set)."""
    kind, _, idx = spec.partition(":")
    if kind not in ("heldout", "train") or not idx.isdigit():
        raise ConfigError(f"truth {spec!r} must look like 'heldout:<i>' or 'train:<i>'")
    i = int(idx)
    index = heldout_start + i if kind == "heldout" else i
    limit = n_models if kind == "heldout" else n_min
    if index >= limit:
        pool = "held-out pool" if kind == "heldout" else "smallest training set"
        raise ConfigError(f"truth {spec!r} points past the {pool}; use a smaller index")
    return index


def read_shot_records(path: Path, data_shape: tuple[int, ...]) -> np.ndarray:
    """Shot records ``(n_src, nt, n_rec)`` from ``.npy``, or from SEG-Y (``.sgy``/``.segy``) whose traces are
    ordered shot by shot, receiver by receiver (``n_src · n_rec`` traces of ``nt`` samples; headers ignored)."""
    if path.suffix.lower() in (".sgy", ".segy"):
        import segyio

        n_src, nt, n_rec = data_shape
        try:
            with segyio.open(str(path), "r", ignore_geometry=True) as f:
                traces = segyio.tools.collect(f.trace[:])
        except (OSError, RuntimeError, ValueError) as exc:
            raise DataFileError(f"{path} is not a readable SEG-Y file ({exc})") from None
        if traces.shape != (n_src * n_rec, nt):
            raise ShapeError(f"{path} holds {traces.shape[0]} traces of {traces.shape[1]} samples; the survey needs "
                             f"{n_src}·{n_rec} traces of {nt} samples (shot-major); match [survey] to the data")
        return traces.reshape(n_src, n_rec, nt).transpose(0, 2, 1)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataFileError(f"{path} is not a .npy array file ({exc})") from None


def load_observed(path: str | Path, data_shape: tuple[int, ...], gamma: float) -> np.ndarray:
    """Observed shot records (``.npy`` or SEG-Y), checked against the survey's data shape and for NaN."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"data file {path} does not exist; pass shot records (.npy or SEG-Y)")
    y = read_shot_records(path, tuple(data_shape))
    if y.shape != tuple(data_shape):
        raise ShapeError(f"data in {path} have shape {y.shape}, the survey records {tuple(data_shape)} "
                         "(n_src, nt, n_rec); match the [survey] settings to the data")
    if not np.all(np.isfinite(y)):
        raise DataFileError(f"data in {path} contain NaN or inf")
    if not gamma > 0:
        raise ConfigError("observed data need their noise standard deviation: set gamma > 0")
    return y.astype(np.float64)


def build_operator(ms: ModelSet, s: SurveySettings) -> AcousticOperator:
    """The acoustic operator of the survey: a surface line (``Geometry.surface``) or the coordinates of
    ``s.geometry`` (TOML: ``src = [[x, z], ...]``, ``rec = [[x, z], ...]`` in m)."""
    shape = tuple(ms.shape[1:])
    if s.geometry:
        coords = load_toml(s.geometry)
        try:
            src, rec = (np.asarray(coords[k], dtype=float).reshape(-1, 2) for k in ("src", "rec"))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"geometry file {s.geometry} needs src = [[x, z], ...] and rec = [[x, z], ...] "
                              "(metres)") from None
        geometry = Geometry(shape, (ms.spacing, ms.spacing), src, rec, t_max=s.t_max, f0=s.f0,
                            vmax_bound=ms.vmax, space_order=s.space_order)
    else:
        geometry = Geometry.surface(shape, ms.spacing, n_src=s.n_src, t_max=s.t_max, f0=s.f0, vmax_bound=ms.vmax,
                                    space_order=s.space_order)
    return AcousticOperator(shape, ms.spacing, geometry, vmax_bound=ms.vmax, space_order=s.space_order, nbl=s.nbl)


@contextlib.contextmanager
def dask_client(workers: int, timeout_s: float = 600.0):
    """A Dask client: ``$GEOMEM_DASK_ADDRESS`` if set, a LocalCluster of ``workers`` processes, or none (0).

    The client is wrapped in :class:`~geomem.physics.faults.BoundedClient`: every wait is bounded, and a
    cluster that lost all its workers raises ``ClusterError`` instead of hanging.
    """
    external = resolve_client(None)
    if external is not None:
        yield BoundedClient(external, timeout_s=timeout_s)
        return
    if workers <= 1:
        yield None
        return
    client = local_client(workers)
    try:
        yield BoundedClient(client, timeout_s=timeout_s)
    finally:
        client.close()
        cluster = getattr(client, "cluster", None)
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------------------------------ stages
def config_hash(config: CompareConfig) -> str:
    """A short hash of the resolved settings (names the cache folder of a run)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(to_dict(config), sort_keys=True).encode()).hexdigest()[:12]


def _cached(path: Path, compute):
    """Load ``path`` (npz) if present, else compute a dict of arrays and write it atomically."""
    if path.is_file():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    arrays = compute()
    write_npz(path, **arrays)
    return arrays


def forward_all(op, models: np.ndarray, client) -> np.ndarray:
    """``F(v_n)`` for every model, models spread over the Dask workers (or serially), written into one
    preallocated array (no list of copies)."""
    out = np.empty((len(models), *op.data_shape), dtype=op.dtype)
    if client is None:
        for i, v in enumerate(models):
            out[i] = op.forward(v)
        return out
    ref = client.scatter(op, broadcast=True, hash=False)
    model_refs = client.scatter(list(models), hash=False)
    futures = client.map(lambda o, v: o.forward(v), [ref] * len(models), model_refs, pure=False)
    for i, fut in enumerate(futures):
        out[i] = client.gather([fut])[0]
        fut.release()
    return out


def run_compare(config: CompareConfig, out: str | Path, progress: bool = True) -> dict:
    """Run the comparison into run folder ``out``; return the metrics (also in ``metrics.json``)."""
    t_start = time.time()
    ms = load_model_set(config.model_set)
    priors = load_priors(config, ms)
    sizes = list(priors)
    n_max = max(sizes)
    param = ms.parameterization
    x_all = ms.normalized().astype(np.float64)
    heldout = x_all[config.model_set.heldout_start:][: config.model_set.n_heldout_null]
    truths = {spec: truth_index(spec, config.model_set.heldout_start, len(ms), min(sizes)) for spec in config.truths}
    op = build_operator(ms, config.survey)
    if config.data:  # check the data before any long work
        load_observed(config.data, op.data_shape, config.gamma)
    op.geometry.check_dispersion(ms.vmin)
    run = RunFolder(out, config=config, seed=config.seed)
    cache = run.path / "cache" / config_hash(config)  # a changed config never reuses stale stages
    cache.mkdir(parents=True, exist_ok=True)
    metrics: dict = {"sizes": sizes, "truths": {}, "model_set": {"family": ms.family, "n": len(ms),
                     "shape": list(ms.shape), "vmin": ms.vmin, "vmax": ms.vmax}, "sigma": config.dps.sigma_min}
    nulls = {n: null_baselines(x_all[:n], heldout) for n in sizes}
    sigmas = karras_sigmas(config.dps.steps, config.dps.sigma_min, config.dps.sigma_max, config.dps.rho).numpy()
    with dask_client(config.workers) as client:
        F_train = _cached(cache / f"forward_train_{n_max}.npz",
                          lambda: {"F": forward_all(op, ms.models[:n_max], client)})["F"]
        for spec, t_idx, v_true, y, gamma in observations(config, ms, op, F_train, truths):
            tag = spec.replace(":", "")
            write_npz(run.path / f"truth_{tag}.npz", y=y, gamma=gamma, index=t_idx,
                      **({"velocity": v_true} if v_true is not None else {}))
            metrics["truths"][spec] = {"index": t_idx, "gamma": gamma, "sizes": {}}
            for n in sizes:
                result = posteriors_for_size(config, op, client, priors[n], n, x_all, F_train, y, gamma, param,
                                              cache, tag, progress)
                samples_v = {k: param.to_velocity(v["x"]) for k, v in result.items()}
                scores, arrays = score_posteriors(config, result, samples_v, x_all[:n], nulls[n], v_true, y, gamma,
                                                  param, ms, op=op, F_train=F_train[:n])
                histories = {f"{k}__history": v["history"] for k, v in result.items() if "history" in v}
                write_npz(run.path / f"samples_{tag}_n{n}.npz", sigmas=sigmas,
                          **{f"{k}__velocity": s for k, s in samples_v.items()},
                          **{f"{k}__misfit": v["misfit"] for k, v in result.items()}, **histories, **arrays)
                metrics["truths"][spec]["sizes"][str(n)] = scores
    metrics["wall_time_s"] = time.time() - t_start
    run.write_metrics(metrics)
    from geomem.experiments.compare_report import write_report

    metrics["report"] = str(write_report(run.path))
    return metrics


def observations(config: CompareConfig, ms: ModelSet, op, F_train: np.ndarray, truths: dict[str, int]):
    """``(spec, model index, truth velocity, y, γ)`` per data set: the observed file (no truth, index −1), or
    each configured truth with ``y = F(v) + ε``, ``γ = noise × RMS(F(v))``, noise seeded by (seed, index)."""
    if config.data:
        return [("observed", -1, None, load_observed(config.data, op.data_shape, config.gamma), config.gamma)]
    out = []
    for spec, t_idx in truths.items():
        v_true = ms.models[t_idx]
        y_clean = np.asarray(F_train[t_idx] if t_idx < len(F_train) else op.forward(v_true), dtype=np.float64)
        gamma = float(config.noise * np.sqrt(np.mean(y_clean**2)))
        y = y_clean + gamma * np.random.default_rng([config.seed, t_idx]).standard_normal(y_clean.shape)
        out.append((spec, t_idx, v_true, y, gamma))
    return out


def posteriors_for_size(config, op, client, learned, n, x_all, F_train, y, gamma, param, cache, tag, progress):
    """Samples ``x`` (prior coordinates) and data misfits ``‖y − F(v(x))‖`` of every posterior for one N.

    DPS chains run on the Dask workers (one task per chain per step); the linearized components run
    serially in this process (their Born/adjoint actions are sequential, and per-shot Dask tasks cost more
    than they save on a few cores).
    """
    train = x_all[:n]
    S = config.chains
    out: dict[str, dict] = {}
    w = lookup_weights(F_train[:n], y, gamma)
    rng = np.random.default_rng([config.seed, n])
    picks = rng.choice(n, size=S, p=w)
    out["lookup"] = {"x": train[picks], "misfit": np.linalg.norm((F_train[picks] - y).reshape(S, -1), axis=1),
                     "weights": w}

    def linearized():
        order = np.argsort(w)[::-1][: config.linearized.components]
        order = order[(w[order] >= config.linearized.min_weight) | (np.arange(len(order)) == 0)]  # keep the best
        post = MatrixFreeLinearizedPosterior.fit(
            op, train, y, config.dps.sigma_min, gamma, parameterization=param, indices=order,
            rank=config.linearized.rank, cg_tol=config.linearized.cg_tol, cg_maxiter=config.linearized.cg_maxiter,
            forward_train=F_train,
        )
        xs, _ = post.sample(S, rng)
        weights = np.zeros(n)
        weights[post.indices] = post.weights
        misfit = np.array([np.linalg.norm(op.forward(param.to_velocity(x)) - y) for x in xs])
        stats = post.stats
        return {"x": xs, "misfit": misfit, "weights": weights, "born_actions": stats["born_actions"],
                "adjoint_actions": stats["adjoint_actions"], "logdet_tail_bound": stats["logdet_tail_bound_max"]}

    out["linearized"] = _cached(cache / f"linearized_{tag}_n{n}.npz", linearized)
    misfit = OperatorMisfit(op, y, param, client=client)
    priors = {"memorized": MemorizedPrior(torch.from_numpy(train).float())}
    if learned is not None:
        priors["learned"] = learned
    for kind, prior in priors.items():
        def run_dps(prior=prior, kind=kind):
            res = dps(prior, misfit, S, config.dps, seed=config.seed, progress=progress)
            return {"x": res.samples.double().numpy(), "misfit": res.final_misfit, "history": res.misfit_history,
                    "diverged": res.diverged, "denoised": res.denoised.double().numpy()}
        out[kind] = _cached(cache / f"dps_{kind}_{tag}_n{n}.npz", run_dps)
    return out


def rebuild_report(groups: dict, n_boot: int, seed: int) -> MemorizationReport:
    """A :class:`MemorizationReport` from ratio records (``{"samples": …, "heldout": …, "leave_one_out": …}``),
    with bootstrap draws in a fixed order so a report redrawn from the run folder shows identical rates."""
    gen = np.random.default_rng(seed)
    rates = {c.name: {g: bootstrap_rate(c.flags(r), n_boot=n_boot, rng=gen) for g, r in groups.items()}
             for c in DEFAULT_CRITERIA}
    nulls = {g: r for g, r in groups.items() if g != "samples"}
    return MemorizationReport(samples=groups["samples"], nulls=nulls, rates=rates)


def ratios_to_arrays(prefix: str, r: MemorizationRatios) -> dict[str, np.ndarray]:
    return {f"{prefix}__{k}": np.asarray(v) for k, v in r.to_dict().items()}


def ratios_from_arrays(arrays: dict, prefix: str) -> MemorizationRatios:
    head = prefix + "__"
    fields = {k[len(head):]: v for k, v in arrays.items() if k.startswith(head) and "__" not in k[len(head):]}
    return MemorizationRatios(**{k: (int(v) if k in ("k", "n_train") else v) for k, v in fields.items()})


def score_posteriors(config, result, samples_v, train_x, nulls, v_true, y, gamma, param, ms,
                     op=None, F_train=None) -> tuple[dict, dict]:
    """Metrics (JSON) and arrays (npz) of every posterior for one (truth, N).

    With the operator and the training data ``F_train``, each sample's record also holds the data-space
    distance ``‖F(x) − F(x_nn)‖`` to its nearest training model (one forward solve per sample).
    """
    n = len(train_x)
    weights = {"lookup": result["lookup"]["weights"], "linearized": result["linearized"]["weights"]}
    scores: dict = {}
    arrays: dict = {}
    for kind, res in result.items():
        keep = ~res["diverged"].astype(bool) if "diverged" in res else np.ones(len(res["x"]), bool)
        ratios = memorization_ratios(res["x"][keep], train_x)
        rep = rebuild_report({"samples": ratios, **nulls}, config.n_boot, config.seed)
        data_dist = None
        if op is not None and F_train is not None:
            F_s = np.asarray(op.forward(samples_v[kind][keep]), dtype=np.float64)
            data_dist = np.linalg.norm((F_s - F_train[ratios.nearest]).reshape(len(F_s), -1), axis=1)
            arrays[f"{kind}__data_distance"] = data_dist
        scores[kind] = {"memorization": rep.to_dict(), "summary_table": rep.summary_table(),
                        "n_diverged": int((~keep).sum()),
                        "records": per_sample_record(ratios, lookup_weights=weights["lookup"],
                                                     linearized_weights=weights["linearized"],
                                                     data_distances=data_dist)}
        arrays.update(ratios_to_arrays(f"{kind}__samples", ratios))
        arrays[f"{kind}__kept"] = keep
        arrays[f"{kind}__nearest_velocity"] = param.to_velocity(train_x[ratios.nearest])
    for g, r in nulls.items():
        arrays.update(ratios_to_arrays(f"null__{g}", r))
    pairs = (("learned", "memorized"), ("memorized", "lookup"), ("learned", "lookup"))
    if v_true is not None:
        quality = compare_posteriors(
            {k: samples_v[k] for k in result}, v_true, data_range=ms.vmax - ms.vmin,
            train=param.to_velocity(train_x), residual_norms={k: result[k]["misfit"] for k in result},
            noise_std=gamma, n_data=int(y.size), pairs=pairs,
        )
    else:  # observed data: no truth, so only the truth-free numbers
        quality = {
            "posteriors": {k: {"n_samples": float(len(samples_v[k])),
                               "mean_std": float(np.mean(np.std(samples_v[k], axis=0, ddof=1))),
                               "distinct_nearest": float(len(np.unique(
                                   nearest_neighbours(samples_v[k], param.to_velocity(train_x))[1]))),
                               "misfit/noise": float(np.median(data_misfit_vs_noise(result[k]["misfit"], gamma,
                                                                                     int(y.size))))}
                           for k in result},
            "energy_distance": {f"{a} <-> {b}": energy_distance(samples_v[a], samples_v[b])
                                for a, b in pairs if a in result and b in result},
        }
    metrics = {
        "n_train": n,
        "memorization": scores,
        "quality": quality,
        "lookup_effective_modes": float(effective_modes(weights["lookup"])),
        "lookup_top": [[int(i), float(weights["lookup"][i])] for i in np.argsort(weights["lookup"])[::-1][:5]],
        "linearized_stats": {k: float(result["linearized"][k]) for k in ("born_actions", "adjoint_actions",
                                                                         "logdet_tail_bound")},
    }
    return metrics, arrays
