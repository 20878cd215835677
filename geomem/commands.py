"""Registry of CLI subcommands: one small module per capability adds its commands here."""

from __future__ import annotations

import importlib

import typer

#: modules exposing ``register(app: typer.Typer)``; each capability appends its own
COMMAND_MODULES: list[str] = []
COMMAND_MODULES.append("geomem.geology.commands")
COMMAND_MODULES.append("geomem.experiments.stylized_cli")
COMMAND_MODULES.append("geomem.physics.model_cli")
COMMAND_MODULES.append("geomem.priors.train_cli")
COMMAND_MODULES.append("geomem.experiments.compare_cli")
COMMAND_MODULES.append("geomem.experiments.invert_cli")
COMMAND_MODULES.append("geomem.experiments.rules_cli")
COMMAND_MODULES.append("geomem.experiments.select_cli")
COMMAND_MODULES.append("geomem.experiments.sweep_cli")


def register(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
COMMAND_MODULES.append("geomem.experiments.validate_cli")
