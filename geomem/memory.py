"""Upfront memory estimates: refuse a job that cannot fit before allocating anything.

A size typed by mistake (``--n 10000000000000``, ``--size 1000000``) should be a one-line error naming the
estimate and the limit, not a ``MemoryError`` traceback or a machine swapping for minutes. The estimates are
lower bounds of the arrays a step must hold at once (e.g. ``n · nz · nx`` float32 models); the limit is the
memory the operating system reports as available now (``psutil``; ``/proc/meminfo`` ``MemAvailable`` or free
pages otherwise).
"""

from __future__ import annotations

import os

from geomem.errors import ValueRangeError


def available_bytes() -> int:
    """Memory available to a new allocation now, in bytes."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover  (psutil comes with Devito)
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def human(nbytes: float) -> str:
    """``nbytes`` with a binary-free SI unit (kB, MB, GB, TB, ...), 3 significant digits."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(nbytes) < 1000 or unit == "PB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    return f"{nbytes:.3g} PB"  # pragma: no cover


def check_fits(nbytes: float, what: str, change: str) -> None:
    """Raise :class:`ValueRangeError` when ``nbytes`` (an estimate for ``what``) exceeds the available memory;
    ``change`` says which setting to lower."""
    limit = available_bytes()
    if not nbytes <= limit:
        raise ValueRangeError(f"{what} needs at least {human(nbytes)} of memory, more than the {human(limit)} "
                              f"available; {change}")
