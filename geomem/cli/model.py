"""``geomem model``: shot records of a velocity model with the Devito acoustic operator.

    geomem model --velocity v.npy --out runs/shots [--n-src 5 --f0 15 --t-max 1000 --spacing 10
                  --depth 10 --vmax-bound 4.5 --nbl 20 --float64 --dask-address tcp://...]

``v.npy`` holds ``(nz, nx)`` or ``(1, nz, nx)`` velocities in km/s. The run folder gets ``config.toml``,
``shots.npz`` in the observed-data contract of :mod:`geomem.physics.observed` (``data`` ``(n_src, nt, n_rec)``
with its survey: ``dt_ms``, ``vmax_bound``, ``t_max_ms``, ``f0_hz``, coordinates, ...; plus ``time_ms`` and
``velocity``), ``metrics.json`` and ``figures/shots.png``. ``shots.npz`` can be passed to ``geomem invert --data``
when the survey matches (same grid, spacing, ``--vmax-bound`` = the model set's vmax, ``f0``, ``t_max``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import typer

from geomem.config import load_config
from geomem.errors import DataFileError, ShapeError
from geomem.memory import check_fits


@dataclass(frozen=True)
class ModelConfig:
    """Settings of ``geomem model`` (TOML keys of the same names; flags override the file)."""

    spacing: float = field(default=10.0, metadata={"gt": 0})
    n_src: int = field(default=5, metadata={"min": 1})
    depth: float = field(default=10.0, metadata={"min": 0})
    f0: float = field(default=15.0, metadata={"gt": 0})
    t_max: float = field(default=1000.0, metadata={"gt": 0})
    vmax_bound: float = field(default=4.5, metadata={"gt": 0})
    space_order: int = field(default=8, metadata={"min": 2})
    nbl: int = field(default=20, metadata={"min": 0})
    dtype: str = field(default="float32", metadata={"choices": ("float32", "float64")})
    dask_address: str = ""


def load_velocity(path: Path) -> np.ndarray:
    """A ``(1, nz, nx)`` float64 velocity from a ``.npy`` file of shape ``(nz, nx)`` or ``(1, nz, nx)``."""
    if not path.is_file() or path.suffix != ".npy":
        raise DataFileError(f"velocity file {path} must be an existing .npy file of (nz, nx) km/s")
    try:
        v = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(f"cannot read {path} as a NumPy array ({exc}); save it with numpy.save") from None
    if v.dtype.kind not in "fiu":
        raise DataFileError(f"velocity in {path} must be real numbers (km/s), got dtype {v.dtype}")
    if v.ndim == 2:
        v = v[None]
    if v.ndim != 3 or v.shape[0] != 1:
        raise ShapeError(f"velocity in {path} must be (nz, nx) or (1, nz, nx), got {v.shape}")
    return v.astype(np.float64)


def memory_estimate(cfg: ModelConfig, shape: tuple[int, int]) -> float:
    """Bytes that must fit at once (a lower bound): the shots ``n_src · nt · n_rec``, three time levels of the
    padded wavefield ``(nz + 2 nbl)(nx + 2 nbl)``, the receiver traces and the coordinates; ``nt`` from the
    time step of ``vmax_bound`` (one receiver per column)."""
    from geomem.physics.acquisition import CFL_SAFETY, critical_dt

    item = 8 if cfg.dtype == "float64" else 4
    dt = CFL_SAFETY * critical_dt(cfg.vmax_bound, (cfg.spacing, cfg.spacing), cfg.space_order)
    nt = cfg.t_max / dt + 2 if dt > 0 else float("inf")
    nz, nx = shape
    padded = (nz + 2.0 * cfg.nbl) * (nx + 2.0 * cfg.nbl)
    return item * (cfg.n_src * nt * nx + 3 * padded + 2 * nt * nx) + 16.0 * (cfg.n_src + nx)


def model(
    velocity: Path = typer.Option(..., "--velocity", help=".npy file of (nz, nx) velocities in km/s"),
    out: Path = typer.Option(..., "--out", help="run folder to write"),
    spacing: float | None = typer.Option(None, help="grid spacing in m"),
    n_src: int | None = typer.Option(None, help="number of surface sources"),
    depth: float | None = typer.Option(None, help="source and receiver depth in m"),
    f0: float | None = typer.Option(None, help="Ricker peak frequency in Hz"),
    t_max: float | None = typer.Option(None, help="recording time in ms"),
    vmax_bound: float | None = typer.Option(None, help="velocity bound (km/s) that fixes the time step"),
    nbl: int | None = typer.Option(None, help="absorbing layer width in grid points"),
    float64: bool = typer.Option(False, "--float64", help="simulate in float64"),
    dask_address: str | None = typer.Option(None, help="Dask scheduler address (default: $GEOMEM_DASK_ADDRESS)"),
    config: Path | None = typer.Option(None, help="TOML file with these settings"),
) -> None:
    """Simulate shot records of a velocity model and draw them."""
    from geomem.physics.acoustic import AcousticOperator
    from geomem.physics.acquisition import Geometry
    from geomem.physics.observed import save_observed
    from geomem.physics.parallel import ShotParallel
    from geomem.report.shots import save_shots
    from geomem.runs import RunFolder

    flags = dict(spacing=spacing, n_src=n_src, depth=depth, f0=f0, t_max=t_max, vmax_bound=vmax_bound, nbl=nbl,
                 dtype="float64" if float64 else None, dask_address=dask_address)
    cfg = load_config(ModelConfig, config, {k: v for k, v in flags.items() if v is not None})
    v = load_velocity(velocity)
    shape = v.shape[1:]
    check_fits(memory_estimate(cfg, shape), f"modelling {cfg.n_src} shots on a {shape[0]}×{shape[1]} grid",
               "lower --n-src, --t-max, --nbl or raise --spacing")
    geom = Geometry.surface(shape, cfg.spacing, cfg.n_src, cfg.depth, cfg.t_max, cfg.f0, cfg.vmax_bound,
                            cfg.space_order)
    op = AcousticOperator(shape, cfg.spacing, geom, cfg.vmax_bound, cfg.space_order, cfg.nbl, np.dtype(cfg.dtype))
    op.check_velocity(v)
    folder = RunFolder(out, config=cfg)  # before simulating: an unwritable --out fails now, not after the work
    runner = ShotParallel(op, cfg.dask_address or None)
    start = time.perf_counter()
    with typer.progressbar(length=1, label=f"{geom.n_src} shots, {geom.nt} steps") as bar:
        data = runner.forward(v)
        bar.update(1)
    elapsed = time.perf_counter() - start
    save_observed(folder.file("shots.npz"), data, geom, time_ms=geom.time, velocity=v)
    folder.write_metrics({
        "shape": list(shape), "n_src": geom.n_src, "n_rec": geom.n_rec, "nt": geom.nt, "dt_ms": geom.dt,
        "seconds": elapsed, "seconds_per_shot": elapsed / geom.n_src, "max_abs_amplitude": float(np.abs(data).max()),
        "dask": runner.client is not None,
    })
    save_shots(folder.figure("shots.png"), data, geom.time, geom.rec_coords[:, 0], geom.src_coords[:, 0],
               title=f"{velocity.name}: {shape[0]}×{shape[1]} at {cfg.spacing:g} m, {cfg.f0:g} Hz")
    typer.echo(f"wrote {out} ({geom.n_src} shots × {geom.nt} samples × {geom.n_rec} receivers, {elapsed:.2f} s)")


def register(app: typer.Typer) -> None:
    app.command(name="model")(model)
