"""Shared test settings: serial Devito, a non-interactive matplotlib backend, float64 where it matters."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import geomem  # noqa: E402,F401  (applies the environment defaults)
