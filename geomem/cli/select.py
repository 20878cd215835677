"""``geomem select``: loss-based training-set selection, and priors trained on the full and the selected sets."""

from __future__ import annotations

from pathlib import Path

import typer

from geomem.config import load_config, parse_override


def register(app: typer.Typer) -> None:
    @app.command("select")
    def select_(
        config: Path = typer.Option(None, "--config", "-c", help="TOML settings (data/configs/select_*.toml)."),
        out: Path = typer.Option(Path("runs/select"), "--out", "-o", help="Run folder (finished priors are reused)."),
        score_prior: str = typer.Option(None, "--score-prior", help="A trained prior folder to score the set with "
                                        "(default: train one for score_steps)."),
        workers: int = typer.Option(None, "--workers", help="Training processes at once (0 or 1: one at a time)."),
        overrides: list[str] = typer.Argument(None, help="key=value settings, e.g. rule.rule=budget rule.budget=100"),
    ) -> None:
        """Score every model by its σ-averaged denoising loss, select a subset (drop the highest-loss models, cap
        near-duplicates per cluster, or keep a budget of distinct models), write it as a model set that records what
        was dropped and why, then train priors on the full and the selected sets with the same budget and compare
        how many training models each reproduces, held-out generalization and (posterior.enabled) posteriors."""
        from geomem.experiments.select import SelectConfig, run_select
        from geomem.workflow.scoring import markdown_table

        values = dict(parse_override(o) for o in overrides or [])
        if workers is not None:
            values["workers"] = workers
        if score_prior is not None:
            values["score_prior"] = score_prior
        cfg = load_config(SelectConfig, config, values)
        metrics = run_select(cfg, out)
        s = metrics["selection"]
        typer.echo(f"{s['rule']} {s['params']}: kept {s['n_kept']}, dropped {s['n_dropped']} "
                   f"({s['dropped_exceptions']} exceptions, {s['dropped_rules']} rule models); selected set: "
                   f"{out / 'selected.npz'}")
        typer.echo(markdown_table(metrics["header"], metrics["rows"]))
