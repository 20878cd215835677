"""``geomem rules``: what priors of several capacities memorize of a rule family and of repeated exceptions."""

from __future__ import annotations

from pathlib import Path

import typer

from geomem.config import load_config, parse_override


def register(app: typer.Typer) -> None:
    @app.command("rules")
    def rules(
        config: Path = typer.Option(None, "--config", "-c", help="TOML settings (data/configs/rules_*.toml)."),
        out: Path = typer.Option(Path("runs/rules"), "--out", "-o", help="Run folder (finished priors are reused)."),
        workers: int = typer.Option(None, "--workers", help="Training processes at once (0 or 1: one at a time)."),
        overrides: list[str] = typer.Argument(None, help="key=value settings, e.g. epsilons=[0.1] training.steps=500"),
    ) -> None:
        """Train priors of several capacities on rules-and-exceptions sets (fraction ε of exceptions with power-law
        copy counts) and report, per ε, frequency and capacity: the memorized fraction of exceptions and of rule
        models beside their nulls, held-out generalization against the memorized prior, and (posterior.enabled)
        posteriors (posterior.sampler) for an exception and for rule-model truths."""
        from geomem.experiments.rules import RulesConfig, run_rules
        from geomem.workflow.scoring import markdown_table

        values = dict(parse_override(o) for o in overrides or [])
        if workers is not None:
            values["workers"] = workers
        cfg = load_config(RulesConfig, config, values)
        metrics = run_rules(cfg, out)
        typer.echo(markdown_table(metrics["header"], metrics["rows"]))
        typer.echo(f"run folder: {out}")
