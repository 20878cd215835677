"""Process-wide environment defaults, set in one place before Devito or torch is imported.

- Devito logs at WARNING (it prints a line per operator run otherwise).
- Devito runs serially (``DEVITO_LANGUAGE=C``): on small machines OpenMP was no faster and under load
  much slower; parallelism over shots and chains is done with processes (Dask) instead.
- Devito's compile cache is already per user: ``$TMPDIR/devito-jitcache-uid<UID>`` (Devito's own
  choice, see ``devito.tools.os_helper.make_tempdir``); we keep it and do not move it.
- Hugging Face libraries run offline: no code path may download weights at run time.

Values already present in the environment win, so a user can still opt in to OpenMP or another cache.
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
    """Set every default that the environment does not already define."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
