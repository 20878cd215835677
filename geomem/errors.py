"""Errors raised for user mistakes.

Every bad input (a NaN velocity, a wrong shape, a missing file, an unknown config key, a corrupt
checkpoint, ...) raises a subclass of :class:`GeomemError` whose message says what to change. The CLI
prints that one line and exits with status 2; it never shows a traceback for a user mistake.
"""

from __future__ import annotations


class GeomemError(Exception):
    """Base class of every error geomem raises on purpose for bad input or a bad state."""


class ConfigError(GeomemError):
    """A configuration file or a flag is wrong: unknown key, wrong type, out-of-range value."""


class ShapeError(GeomemError):
    """An array has the wrong rank or shape for the operation."""


class ValueRangeError(GeomemError):
    """A value is outside its allowed range (NaN, non-positive velocity, sigma <= 0, ...)."""


class GeometryError(GeomemError):
    """The acquisition geometry is inconsistent with the grid (a source outside it, ...)."""


class StabilityError(GeomemError):
    """A time step or a grid would make the wave-equation solver unstable or inaccurate."""


class DivergenceError(GeomemError):
    """A computation diverged: a NaN or infinite loss, weight or result (e.g. a learning rate far too large)."""


class DataFileError(GeomemError):
    """A file is missing, unreadable, truncated, or of the wrong format."""


class CheckpointError(DataFileError):
    """A checkpoint is missing, corrupt, truncated, or from an incompatible format version."""
