"""The ``geomem`` command-line program: typer commands only (parse, load a config, call one recipe).

One module per capability in this package registers its subcommand(s) (``register(app)``); a subcommand
parses its flags, loads a config, and calls one function in :mod:`geomem.experiments` (or another module).
The environment defaults of :mod:`geomem.env` (serial Devito, quiet logs, offline Hugging Face libraries)
are set here, for the program, before Devito or diffusers load — importing the library sets nothing.
A :class:`~geomem.errors.GeomemError` is printed as one line and exits with status 2; no traceback for a
user mistake.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading

import typer

from geomem.env import apply_defaults
from geomem.errors import GeomemError

#: modules of this package exposing ``register(app: typer.Typer)``
COMMAND_MODULES = ("data", "stylized", "model", "train", "compare", "invert", "rules", "select", "sweep", "validate")

app = typer.Typer(
    name="geomem",
    help="Memorization in diffusion priors for seismic full-waveform inversion.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v",
                                       help="Progress lines on stderr (e.g. one per level of the annealed sampler).")
          ) -> None:
    """Memorization in diffusion priors for seismic full-waveform inversion."""
    if verbose:
        log = logging.getLogger("geomem")
        if not log.handlers:  # main() may run several times in one process
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
            log.addHandler(handler)
        log.setLevel(logging.INFO)


@app.command()
def version() -> None:
    """Print the versions of geomem and the libraries it runs on."""
    import devito  # noqa: F401
    import diffusers  # noqa: F401
    import torch  # noqa: F401

    from geomem.runs import provenance

    for name, value in provenance()["versions"].items():
        typer.echo(f"{name:10s} {value}")


def _register() -> None:
    """Attach the subcommands of every capability (imported lazily to keep ``--help`` fast), once per process:
    repeated :func:`main` calls must not register every command again."""
    if getattr(app, "_geomem_registered", False):
        return
    for name in COMMAND_MODULES:
        importlib.import_module(f"geomem.cli.{name}").register(app)
    app._geomem_registered = True


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning a GeomemError into a one-line message and exit status 2.

    SIGTERM is handled like SIGINT (Ctrl-C): the command unwinds, temporary files of unfinished writes are
    removed, finished files stay, and the program prints ``Aborted! ...`` and exits with status 130. (``geomem train``
    catches both itself: it checkpoints, says so and exits 0.)"""
    apply_defaults()
    _register()
    in_main_thread = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        app(args=argv)
    except GeomemError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except SystemExit as exc:  # normal end of a typer command, --help, a usage error (2) or an interruption (130)
        if exc.code == 130:
            typer.echo("Aborted! (interrupted; finished files are kept, rerun to redo only what is missing)", err=True)
        return int(exc.code or 0)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, old_term)
    return 0


if __name__ == "__main__":
    sys.exit(main())
