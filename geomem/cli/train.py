"""``geomem train`` (fit a diffusion prior) and ``geomem sample`` (unconditional samples beside their nearest
training models), for learned priors and the exact memorized prior alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from geomem.config import load_config, parse_override
from geomem.errors import ConfigError


@dataclass(frozen=True)
class SampleConfig:
    prior: str = ""
    model_set: str = ""
    n: int = field(default=16, metadata={"min": 1})
    steps: int = field(default=50, metadata={"min": 2})
    method: str = field(default="heun", metadata={"choices": ("euler", "heun", "stochastic")})
    sigma_min: float = field(default=0.005, metadata={"gt": 0})
    sigma_max: float = field(default=20.0, metadata={"gt": 0})
    rho: float = field(default=7.0, metadata={"gt": 0})
    s_churn: float = field(default=0.0, metadata={"min": 0})
    seed: int = 0
    batch_size: int = field(default=64, metadata={"min": 1})
    device: str = "auto"
    allow_other_set: bool = False  # use a learned prior with a model set other than its training set, deliberately


def training_set_of(prior_meta: dict, model_set: str | None):
    """The training models of a prior: the first ``n`` models of ``model_set`` (a saved set) if given, else the
    set regenerated from the prior's recorded family / size / spacing / seed / velocity range."""
    from geomem.geology import ModelSet, make_model_set

    n = prior_meta.get("n")
    if model_set:
        ms = ModelSet.load(model_set)
    else:
        need = ("family", "n", "size", "seed", "vmin", "vmax", "spacing")
        missing = [k for k in need if prior_meta.get(k) is None]
        if missing:
            raise ConfigError(f"the prior does not record its model set ({', '.join(missing)}); pass --model-set")
        ms = make_model_set(family=prior_meta["family"], n=n, size=tuple(prior_meta["size"]),
                            spacing=prior_meta["spacing"], seed=prior_meta["seed"], vmin=prior_meta["vmin"],
                            vmax=prior_meta["vmax"])
    if n is not None and len(ms) > n:
        ms = ms.subset(list(range(n)))
    return ms


def run_sample(cfg: SampleConfig, out: Path) -> dict:
    """Draw samples with the chosen prior; write samples.npz, metrics.json and figures/gallery.png."""
    import numpy as np
    import torch

    from geomem.geology import ModelSet
    from geomem.metrics.memorization import nearest_neighbours
    from geomem.priors.learned import LearnedPrior, check_training_set
    from geomem.priors.memorized import MemorizedPrior
    from geomem.priors.sampling import karras_sigmas, sample
    from geomem.priors.training import resolve_device
    from geomem.report.training import plot_gallery
    from geomem.runs import RunFolder

    device = resolve_device(cfg.device)
    if cfg.prior == "memorized":
        if not cfg.model_set:
            raise ConfigError("--prior memorized needs --model-set FILE (the training set of the mixture)")
        train_set = ModelSet.load(cfg.model_set)
        train_x = torch.as_tensor(train_set.normalized())
        prior = MemorizedPrior(train_x.to(device))
    else:
        if not cfg.prior:
            raise ConfigError("pass --prior DIR (a trained prior folder) or --prior memorized")
        prior = LearnedPrior.from_pretrained(cfg.prior, device=device)
        train_set = training_set_of(prior.model_set, cfg.model_set or None)
        prior.check_model_set(train_set.family, train_set.vmin, train_set.vmax, train_set.shape[1:])
        check_training_set(prior, train_set, cfg.allow_other_set, where=cfg.model_set or "the regenerated set")
        train_x = torch.as_tensor(train_set.normalized())
    run = RunFolder(out, cfg, seed=cfg.seed)
    sig = karras_sigmas(cfg.steps, cfg.sigma_min, cfg.sigma_max, cfg.rho)
    x = sample(prior, cfg.n, sig, cfg.method, generator=cfg.seed, s_churn=cfg.s_churn, device=device,
               batch_size=cfg.batch_size).cpu()
    dist, idx = nearest_neighbours(x.double(), train_x.double(), k=min(2, len(train_set)))
    dist, idx = np.asarray(dist), np.asarray(idx)
    par = train_set.parameterization
    v = par.to_velocity(x.numpy())
    nearest = train_set.models[idx[:, 0]]
    run.write_arrays("samples.npz", samples_normalized=x.numpy(), samples_velocity=v, nearest_index=idx,
                     nearest_distance=dist, nearest_velocity=nearest, sigmas=sig.numpy())
    plot_gallery(v, nearest, dist[:, 0], run.figure("gallery.png"), vmin=par.vmin, vmax=par.vmax)
    d1 = dist[:, 0]
    metrics = {"n": cfg.n, "prior": cfg.prior, "n_train": len(train_set),
               "nearest_distance_median": float(np.median(d1)), "nearest_distance_max": float(np.max(d1)),
               "rms_distance_to_nearest_median": float(np.median(d1) / np.sqrt(x[0].numel()))}
    if dist.shape[1] > 1:
        metrics["ratio_d1_d2_median"] = float(np.median(d1 / np.maximum(dist[:, 1], 1e-30)))
    run.write_metrics(metrics)
    return metrics


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        config: Path = typer.Option(..., "--config", help="TOML file, e.g. data/configs/train_n50.toml"),
        out: Path = typer.Option(None, "--out", help="run folder (default runs/train/<name>)"),
        resume: bool = typer.Option(False, "--resume", help="continue from the last checkpoint in --out"),
        progress: bool = typer.Option(True, "--progress/--no-progress"),
        overrides: list[str] = typer.Argument(None, help="key=value settings, e.g. steps=500 data.n=50"),
    ) -> None:
        """Train a diffusion prior (EDM-preconditioned UNet) on a model set; writes checkpoints and prior/."""
        from geomem.priors.training import TrainConfig
        from geomem.priors.training import train as run_train

        cfg = load_config(TrainConfig, config, dict(parse_override(o) for o in overrides or []))
        res = run_train(cfg, out or Path("runs/train") / cfg.name, resume=resume, progress=progress)
        state = "stopped (resume with --resume)" if res.interrupted else "done"
        typer.echo(f"{state}: step {res.steps_done}, loss {res.final_loss:.4g}, run folder {res.run}")

    @app.command("sample")
    def sample_cmd(
        prior: str = typer.Option(..., "--prior", help="a trained prior folder, or 'memorized'"),
        model_set: str = typer.Option("", "--model-set", help="training set file (.npz/.zarr)"),
        n: int = typer.Option(16, "--n"),
        steps: int = typer.Option(50, "--steps"),
        method: str = typer.Option("heun", "--method", help="euler | heun | stochastic"),
        sigma_min: float = typer.Option(0.005, "--sigma-min"),
        sigma_max: float = typer.Option(20.0, "--sigma-max"),
        seed: int = typer.Option(0, "--seed"),
        device: str = typer.Option("auto", "--device"),
        out: Path = typer.Option(Path("runs/sample"), "--out"),
        allow_other_set: bool = typer.Option(False, "--allow-other-set", help="use a learned prior with a model "
                                             "set whose models differ from its training set (deliberately)"),
    ) -> None:
        """Unconditional samples with their nearest training models, distances and a gallery figure."""
        from geomem.config import from_dict

        cfg = from_dict(SampleConfig, dict(prior=prior, model_set=model_set, n=n, steps=steps, method=method,
                                           sigma_min=sigma_min, sigma_max=sigma_max, seed=seed, device=device,
                                           allow_other_set=allow_other_set))
        m = run_sample(cfg, out)
        med = m["nearest_distance_median"]
        typer.echo(f"{n} samples in {out}; median distance to the nearest training model {med:.4g}")
