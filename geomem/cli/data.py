"""``geomem data`` subcommands: make a model set, draw a gallery of one, import user models.

    geomem data make --family curvefault --n 1000 --size 64 --seed 0 --out sets/cf.npz [--run runs/cf]
    geomem data show sets/cf.npz --out cf.png [--n 16 --ncols 4 --start 0]
    geomem data import model.sgy --size 64 --spacing 10 --out sets/user.npz
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import typer

from geomem.config import load_config
from geomem.errors import ConfigError
from geomem.geology.families import DIFFICULTIES, FAMILIES
from geomem.geology.storage import check_suffix


@dataclass(frozen=True)
class DataMakeConfig:
    """Settings of ``geomem data make`` (TOML keys of the same names; flags override the file)."""

    family: str = field(default="curvefault", metadata={"choices": tuple(FAMILIES)})
    difficulty: str = field(default="A", metadata={"choices": DIFFICULTIES})
    n: int = field(default=1200, metadata={"min": 1})
    size: tuple[int, ...] = (64, 64)
    spacing: float = field(default=10.0, metadata={"gt": 0})
    seed: int = field(default=0, metadata={"min": 0})
    vmin: float = field(default=1.5, metadata={"gt": 0})
    vmax: float = field(default=4.5, metadata={"gt": 0})
    min_distance: float = field(default=0.01, metadata={"min": 0})


def parse_size(text: str) -> list[int]:
    """``"64"`` → ``[64, 64]``; ``"64,128"`` or ``"64x128"`` → ``[64, 128]`` (nz, nx)."""
    parts = text.lower().replace("x", ",").split(",")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--size must be an integer or nz,nx (e.g. 64 or 64,128), got {text!r}") from None
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) < 2:
        raise ConfigError(f"--size must be at least 2 cells on each side (e.g. 64 or 64,128), got {text!r}")
    return dims


def make(
    out: Path = typer.Option(..., "--out", help="model-set file to write (.npz small, .zarr large)"),
    family: str | None = typer.Option(None, help=f"one of {', '.join(FAMILIES)}"),
    n: int | None = typer.Option(None, help="number of models"),
    size: str | None = typer.Option(None, help="cells: 64 or nz,nx"),
    seed: int | None = typer.Option(None, help="seed (model i depends only on the seed and i)"),
    difficulty: str | None = typer.Option(None, help="A (easier) or B (harder)"),
    spacing: float | None = typer.Option(None, help="grid spacing in m"),
    vmin: float | None = typer.Option(None, help="lowest velocity, km/s"),
    vmax: float | None = typer.Option(None, help="highest velocity, km/s"),
    min_distance: float | None = typer.Option(None, help="smallest RMS distance between models, fraction of range"),
    config: Path | None = typer.Option(None, help="TOML file with these settings"),
    run: Path | None = typer.Option(None, help="also write a run folder (config, metrics, gallery) here"),
) -> None:
    """Generate a seeded set of velocity models and write it atomically."""
    from geomem.geology.modelset import make_model_set

    check_suffix(out)
    flags = dict(family=family, n=n, seed=seed, difficulty=difficulty, spacing=spacing, vmin=vmin, vmax=vmax,
                 min_distance=min_distance, size=None if size is None else parse_size(size))
    cfg = load_config(DataMakeConfig, config, {k: v for k, v in flags.items() if v is not None})
    if len(cfg.size) != 2:
        raise ConfigError(f"size must be two integers [nz, nx], got {list(cfg.size)}")
    if cfg.vmin >= cfg.vmax:
        raise ConfigError(f"vmin ({cfg.vmin}) must be smaller than vmax ({cfg.vmax})")
    start = time.perf_counter()
    ms = make_model_set(cfg.family, cfg.n, tuple(cfg.size), cfg.spacing, cfg.seed, cfg.vmin, cfg.vmax,
                        cfg.difficulty, cfg.min_distance, progress=True)
    elapsed = time.perf_counter() - start
    ms.save(out)
    typer.echo(f"wrote {out}: {ms} in {elapsed:.2f} s")
    if run is not None:
        _write_run(run, cfg, ms, out, elapsed)


def _write_run(path: Path, cfg: DataMakeConfig, ms, out: Path, elapsed: float) -> None:
    from geomem.report.models import save_gallery
    from geomem.runs import RunFolder

    folder = RunFolder(path, config=cfg, seed=cfg.seed)
    d = ms.nearest_neighbour_distances()[0] if len(ms) > 1 else np.zeros(0)
    nn = {"min": float(d.min()), "median": float(np.median(d)), "max": float(d.max())} if len(d) else None
    folder.write_metrics({
        "model_set": str(out), "n": len(ms), "shape": list(ms.shape), "seconds": elapsed,
        "velocity_km_s": {"min": float(ms.models.min()), "mean": float(ms.models.mean()),
                          "max": float(ms.models.max())},
        "nearest_neighbour_distance": nn, "redrawn": ms.meta["redrawn"],
    })
    save_gallery(ms, folder.figure("gallery.png"))
    typer.echo(f"run folder {path}")


def show(
    model_set: Path = typer.Argument(..., help="model-set file (.npz or .zarr)"),
    out: Path = typer.Option(..., "--out", help="gallery image to write (.png, .pdf or .svg)"),
    n: int = typer.Option(16, help="number of models to draw"),
    start: int = typer.Option(0, help="index of the first model drawn"),
    ncols: int = typer.Option(4, help="panels per row"),
) -> None:
    """Draw a gallery of a model set (axes in m, colour bar in km/s)."""
    from geomem.geology.modelset import ModelSet
    from geomem.report.models import save_gallery

    ms = ModelSet.load(model_set)
    if n < 1 or not 0 <= start < len(ms):
        raise ConfigError(f"--n must be >= 1 and --start within [0, {len(ms)}), got n={n}, start={start}")
    save_gallery(ms, out, indices=range(start, min(start + n, len(ms))), ncols=ncols)
    typer.echo(f"wrote {out}")


def import_(
    source: Path = typer.Argument(..., help=".npy or SEG-Y (.sgy, .segy) file of velocities"),
    out: Path = typer.Option(..., "--out", help="model-set file to write (.npz or .zarr)"),
    size: str | None = typer.Option(None, help="resample to 64 or nz,nx cells (default: as stored)"),
    spacing: float = typer.Option(10.0, help="grid spacing of the result in m"),
    units: str = typer.Option("auto", help="auto, km/s or m/s"),
    vmin: float | None = typer.Option(None, help="lowest velocity of the set, km/s (default: data minimum)"),
    vmax: float | None = typer.Option(None, help="highest velocity of the set, km/s (default: data maximum)"),
    clip: bool = typer.Option(False, help="clip to [vmin, vmax] instead of rejecting values outside"),
) -> None:
    """Import user velocity models into a model set, resampled to the target grid."""
    from geomem.geology.io import import_models

    check_suffix(out)
    ms = import_models(source, None if size is None else tuple(parse_size(size)), spacing, vmin, vmax, units, clip)
    ms.save(out)
    typer.echo(f"wrote {out}: {ms}")


def register(app: typer.Typer) -> None:
    data = typer.Typer(help="Velocity-model sets: generate, draw, import.", no_args_is_help=True)
    data.command("make")(make)
    data.command("show")(show)
    data.command("import")(import_)
    app.add_typer(data, name="data")
