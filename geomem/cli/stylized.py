"""``geomem stylized``: the stylized experiment of paper Fig. 1 (exact vs linearized posteriors).

    geomem stylized [--config data/configs/stylized.toml] [--out runs/stylized] [gamma=0.3 one_d.y=0.5 ...]
"""

from __future__ import annotations

from pathlib import Path

import typer

from geomem.config import parse_override


def stylized(
    overrides: list[str] | None = typer.Argument(None, help="settings as key=value, e.g. sigmas=[0.5,0.05]"),
    config: Path | None = typer.Option(None, "--config", help="TOML file with the settings"),
    out: Path = typer.Option(Path("runs/stylized"), "--out", help="run folder to write"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Prior, likelihood, exact and linearized posteriors of the 1-D and 2-D toy problems, effective modes."""
    from geomem.experiments.stylized import load_stylized_config, run_stylized

    cfg = load_stylized_config(config, dict(parse_override(o) for o in overrides or []))
    run = run_stylized(cfg, out, progress=progress)
    typer.echo(f"wrote {run.path} (metrics.json, stylized.npz, figures/)")


def register(app: typer.Typer) -> None:
    app.command("stylized")(stylized)
