"""``geomem sweep``: memorization against training-set size, training time and UNet capacity."""

from __future__ import annotations

from pathlib import Path

import typer

from geomem.config import load_config, parse_override


def register(app: typer.Typer) -> None:
    @app.command("sweep")
    def sweep(
        config: Path = typer.Option(None, "--config", "-c", help="TOML settings, e.g. data/configs/sweep_tiny.toml "
                                    "(defaults: the full sweep, N = 50/200/1000, widths 16/32)."),
        out: Path = typer.Option(Path("runs/sweep"), "--out", "-o", help="Run folder (finished pieces are reused)."),
        stage: list[str] = typer.Option(None, "--stage", help="Run only these stages (repeat): train, samples, "
                                        "posteriors, report. Training and sampling want a GPU; posteriors run "
                                        "Devito on the CPU."),
        run: str = typer.Option(None, "--run", help="Train / sample only this prior, e.g. n50_w16 (to run the "
                                "priors as parallel processes)."),
        priors_dir: Path = typer.Option(None, "--priors-dir", help="Folder of training runs made elsewhere "
                                        "(<dir>/n<N>_w<w>/checkpoints/...) instead of <out>/train."),
        stop_at: int = typer.Option(None, "--stop-at", min=1, help="Stop each training after this step (checkpoint "
                                    "saved, schedule unchanged); a later call resumes it, e.g. on another GPU."),
        progress: bool = typer.Option(True, "--progress/--no-progress"),
        overrides: list[str] = typer.Argument(None, help="key=value settings, e.g. train.steps=500 chains=4"),
    ) -> None:
        """Train one prior per (N, width) with the same step budget, then score unconditional samples of every
        checkpoint and posteriors (the sampler table) of the final ones (beside the memorized prior's) with
        memorization nulls."""
        from geomem.experiments.sweep import SweepConfig, run_sweep

        values = dict(parse_override(o) for o in overrides or [])
        if stage:
            values["stages"] = list(stage)
        if priors_dir is not None:
            values["priors_dir"] = str(priors_dir)
        cfg = load_config(SweepConfig, config, values)
        metrics = run_sweep(cfg, out, only=run, progress=progress, stop_at=stop_at)
        _print_tables(metrics)
        if "report" in metrics:
            typer.echo(f"report: {metrics['report']}")


def _print_tables(metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from geomem.report.sweep_figures import posterior_table, sample_table

    console = Console(width=max(Console().width, 160))
    for title, (header, rows) in (("unconditional samples", sample_table(metrics)),
                                  ("posteriors on the held-out truth", posterior_table(metrics))):
        if not rows:
            continue
        table = Table(title=f"geomem sweep: {title}")
        for h in header:
            table.add_column(h, overflow="fold")
        for r in rows:
            table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r))
        console.print(table)
