"""``geomem validate-samplers``: score every posterior sampler against exact posteriors and write the table."""

from __future__ import annotations

from pathlib import Path

import typer

from geomem.config import load_config, parse_override


def register(app: typer.Typer) -> None:
    @app.command("validate-samplers")
    def validate_samplers(
        config: Path = typer.Option(None, "--config", "-c", help="TOML settings "
                                    "(data/configs/validate_samplers*.toml)."),
        out: Path = typer.Option(Path("runs/validate_samplers"), "--out", "-o", help="Run folder."),
        workers: int = typer.Option(None, "--workers", help="Dask processes for the FWI "
                                     "chains' PDE solves (0: serial)."),
        device: str = typer.Option(None, "--device", help="Device of the learned priors' networks (cpu, cuda)."),
        overrides: list[str] = typer.Argument(None, help="key=value settings, e.g. toys.chains=100 fwi.enabled=false"),
    ) -> None:
        """Run the toy problems (exact answers known), the linear-Gaussian problem and FWI with the memorized prior
        (exact reference: the memorized posterior from N forward solves) for every sampler; write metrics.json and
        table.md (TV to the exact mode weights, misfit/noise, coverage, PDE solves per sample, wall time)."""
        from geomem.experiments.validate_samplers import ValidateConfig, run_validate

        values = dict(parse_override(o) for o in overrides or [])
        if workers is not None:
            values["fwi.workers"] = workers
        if device is not None:
            values["fwi.device"] = device
        cfg = load_config(ValidateConfig, config, values)
        metrics = run_validate(cfg, out)
        typer.echo(metrics["table"])
        typer.echo(f"run folder: {out}")
