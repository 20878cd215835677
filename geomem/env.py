"""Environment defaults for the ``geomem`` program, and keeping Devito quiet inside the library.

:func:`apply_defaults` is called by the command-line program (:func:`geomem.cli.main`) before Devito or
diffusers load — never at import, so a notebook or another program importing geomem keeps its own settings:

- Devito logs at WARNING (it prints a line per operator run otherwise);
- Devito runs serially (``DEVITO_LANGUAGE=C``): on small machines OpenMP was no faster and under load much
  slower; parallelism over shots and chains is done with processes (Dask) instead;
- Hugging Face libraries run offline (geomem itself never asks a hub for anything: priors load from local
  files only).

Values already present in the environment win, so a user can still opt in to OpenMP or another cache.
:func:`quiet_devito` lowers Devito's own log level to WARNING when geomem builds an operator, unless the user
set ``DEVITO_LOGGING``.
"""

from __future__ import annotations

import os

DEFAULTS: dict[str, str] = {
    "DEVITO_LOGGING": "WARNING",
    "DEVITO_LANGUAGE": "C",
    "HF_HUB_OFFLINE": "1",
    "DIFFUSERS_OFFLINE": "1",
}


def apply_defaults() -> None:
    """Set every default that the environment does not already define (the CLI calls this)."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)


def quiet_devito() -> None:
    """Devito's log level to WARNING, unless ``DEVITO_LOGGING`` chooses one."""
    if "DEVITO_LOGGING" not in os.environ:
        from devito import configuration

        configuration["log-level"] = "WARNING"
