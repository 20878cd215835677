"""``geomem invert``: posterior samples for FWI with a learned or the memorized prior."""

from __future__ import annotations

from pathlib import Path

import typer

from geomem.config import load_config, parse_override


def register(app: typer.Typer) -> None:
    @app.command("invert")
    def invert(
        config: Path = typer.Option(None, "--config", "-c", help="TOML settings (see geomem.experiments.invert)."),
        out: Path = typer.Option(Path("runs/invert"), "--out", "-o", help="Run folder to write."),
        prior: str = typer.Option(None, "--prior", help="A shipped prior (n50, n1000), a learned-prior folder, or "
                                  "'memorized' (the exact memorized prior of the first n_train models)."),
        data: Path = typer.Option(None, "--data", help="Observed shot records: the shots.npz of `geomem model` "
                                  "(survey checked), SEG-Y shot gathers (interval, counts and header coordinates "
                                  "checked; any trace order) or a .npy (n_src, nt, n_rec); needs gamma=<noise std>. "
                                  "Without it, data are modelled from the truth."),
        chains: int = typer.Option(None, "--chains", help="Number of chains."),
        overrides: list[str] = typer.Argument(None, help="key=value settings, e.g. sampler.method=dps "
                                              "sampler.dps.steps=50"),
    ) -> None:
        """Posterior sampling for acoustic FWI with Devito: the exact posterior for the memorized prior, the
        sampler table's method for a learned one (annealed with an importance-resampled start by default; see
        docs/posterior.md, "Which sampler when"); chains seeded, per-chain solves over Dask workers, samples, misfits
        and histories saved in the run folder."""
        from geomem.experiments.invert import InvertConfig, run_invert

        values = dict(parse_override(o) for o in overrides or [])
        for key, value in (("prior", prior), ("data", str(data) if data else None), ("chains", chains)):
            if value is not None:
                values[key] = value
        metrics = run_invert(load_config(InvertConfig, config, values), out)
        typer.echo(f"{metrics['n_chains']} chains ({metrics['n_diverged']} diverged); median misfit/noise "
                   f"{metrics['median_misfit_over_noise']:.2f}" + (f"; RMSE {metrics['rmse']:.3f} km/s"
                                                                   if "rmse" in metrics else ""))
        typer.echo(f"run folder: {out}")
