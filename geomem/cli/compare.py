"""``geomem compare``: learned versus memorized posteriors on the embedded default or your own inputs."""

from __future__ import annotations

from pathlib import Path

import typer

from geomem.config import load_config, parse_override


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare(
        config: Path = typer.Option(None, "--config", "-c", help="TOML settings (defaults: the embedded job)."),
        out: Path = typer.Option(Path("runs/compare"), "--out", "-o", help="Run folder to write (reused stages "
                                 "of an interrupted run with the same settings are kept)."),
        prior: list[str] = typer.Option(None, "--prior", help="A learned-prior folder (repeat for several); "
                                        "replaces the shipped priors."),
        model_set: Path = typer.Option(None, "--model-set", help="A saved model set (.npz/.zarr) instead of the "
                                       "generated default; its first N models are each prior's training set."),
        workers: int = typer.Option(None, "--workers", help="Dask worker processes for the PDE solves (0: serial)."),
        overrides: list[str] = typer.Argument(None, help="key=value settings, e.g. "
                                              "sampler.annealed.steps=20 chains=4"),
    ) -> None:
        """Is my learned prior's posterior just a lookup of its training set? Samples the posterior with each learned
        prior (the sampler table: annealed with an importance-resampled start by default) and the exact posterior
        under the memorized prior of the same training set, adds the closed-form linearized and lookup posteriors,
        scores them all with memorization metrics beside their nulls, and writes report.html."""
        from geomem.experiments.compare import CompareConfig, run_compare

        values = dict(parse_override(o) for o in overrides or [])
        if prior:
            values["priors"] = list(prior)
        if model_set is not None:
            values["model_set.path"] = str(model_set)
        if workers is not None:
            values["workers"] = workers
        cfg = load_config(CompareConfig, config, values)
        metrics = run_compare(cfg, out)
        _print_summary(metrics)
        typer.echo(f"report: {metrics['report']}")


def _print_summary(metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from geomem.report.compare_report import summary_rows

    header, rows = summary_rows(metrics)
    keep = [0, 1, 2, 3, 4, 5, 6, 11]  # truth, N, posterior, rate, two nulls, RMSE, misfit/noise
    table = Table(title="geomem compare (memorized: d1/mean(d2..dk) < 0.5, 95% bootstrap CI)")
    for j in keep:
        table.add_column(header[j].split(" (")[0] if j == 3 else header[j], overflow="fold")
    for r in rows:
        table.add_row(*(str(r[j]) for j in keep))
    Console(width=max(Console().width, 140)).print(table)
