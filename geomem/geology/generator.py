"""Seeded generation of a batch of velocity models, free of near-duplicates.

Model ``i`` of seed ``s`` is drawn from its own generator ``default_rng([s, c_f, i, a])`` (``c_f`` a
fixed code of the family, ``a`` the attempt), so it does not depend on how many models are asked for:
the first 50 models of a set of 1000 are the set of 50.

Near-duplicates are rejected in order: model ``i`` is the first attempt ``a = 0, 1, …`` whose draw is at
distance at least ``min_distance`` (RMS difference as a fraction of ``vmax − vmin``, see
:mod:`geomem.geology.distances`) from every accepted model ``j < i``. That rule only looks at earlier
models, so it keeps the prefix property; it guarantees that no two models of a set are closer than
``min_distance``.
"""

from __future__ import annotations

import zlib

import numpy as np

from geomem.errors import ConfigError, GeomemError
from geomem.geology.distances import close_pairs, is_close_to_any
from geomem.geology.families import DIFFICULTIES, FAMILIES
from geomem.geology.parameterization import Parameterization

MAX_ATTEMPTS = 100


def check_size(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``size`` as ``(nz, nx)``; an int means a square model. Each side must be an integer >= 2."""
    dims = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(dims) != 2 or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in dims):
        raise ConfigError(f"size must be an integer or two integers (nz, nx), got {size!r}")
    if min(dims) < 2:
        raise ConfigError(f"size must be at least 2 cells on each side, got {size!r}")
    return int(dims[0]), int(dims[1])


def check_arguments(
    family: str, n: int, seed: int, difficulty: str, vmin: float, vmax: float, spacing: float | None = None
) -> None:
    """Raise a :class:`ConfigError` (or ``ValueRangeError``) naming the first bad argument."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    if difficulty not in DIFFICULTIES:
        raise ConfigError(f"difficulty must be 'A' or 'B', got {difficulty!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"n (number of models) must be a positive integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if spacing is not None and not (isinstance(spacing, (int, float)) and np.isfinite(spacing) and spacing > 0):
        raise ConfigError(f"spacing must be a positive grid spacing in m, got {spacing!r}")
    Parameterization(float(vmin), float(vmax))


def draw_model(
    family: str, index: int, size: tuple[int, int], seed: int, vmin: float, vmax: float, difficulty: str,
    attempt: int = 0,
) -> np.ndarray:
    """Model ``index`` of ``seed`` (attempt ``attempt``): ``(nz, nx)`` float32 km/s, clipped to ``[vmin, vmax]``
    (the families stay inside by construction; the clip only absorbs rounding)."""
    rng = np.random.default_rng([seed, zlib.crc32(family.encode()), index, attempt])
    v = FAMILIES[family](rng, size[0], size[1], vmin, vmax, difficulty)
    return np.clip(v, vmin, vmax).astype(np.float32)


def generate_models(
    family: str, n: int, size: int | tuple[int, int] = (64, 64), seed: int = 0, vmin: float = 1.5,
    vmax: float = 4.5, difficulty: str = "A", min_distance: float = 0.01, progress: bool = False,
) -> tuple[np.ndarray, dict]:
    """``n`` models ``(n, 1, nz, nx)`` float32 (km/s) and a summary ``{"redrawn": [indices], ...}``."""
    shape = check_size(size)
    check_arguments(family, n, seed, difficulty, vmin, vmax)
    if not (np.isfinite(min_distance) and min_distance >= 0):
        raise ConfigError(f"min_distance must be >= 0, got {min_distance!r}")
    models = np.empty((n, shape[0], shape[1]), dtype=np.float32)
    indices = range(n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"{family} {difficulty}", unit="model", leave=False)
    for i in indices:
        models[i] = draw_model(family, i, shape, seed, vmin, vmax, difficulty)
    redrawn = _reject_near_duplicates(models, family, shape, seed, vmin, vmax, difficulty, min_distance)
    return models[:, None], {"redrawn": redrawn, "min_distance": min_distance}


def _reject_near_duplicates(models, family, shape, seed, vmin, vmax, difficulty, min_distance) -> list[int]:
    """Apply the in-order rejection rule in place; return the indices that were redrawn."""
    if min_distance == 0 or len(models) < 2:
        return []
    scale = vmax - vmin
    flagged = set(close_pairs(models, min_distance, scale)[:, 0].tolist())
    redrawn: list[int] = []
    for i in range(len(models)):
        # an attempt-0 draw can only clash with an earlier model that was itself redrawn, or one in `flagged`
        clash = i in flagged or is_close_to_any(models[i], models[redrawn], min_distance, scale)
        attempt = 0
        while clash:
            attempt += 1
            if attempt > MAX_ATTEMPTS:
                raise GeomemError(
                    f"family {family!r} gave no model {i} at distance >= {min_distance} from the earlier ones "
                    f"in {MAX_ATTEMPTS} attempts; lower min_distance or n"
                )
            models[i] = draw_model(family, i, shape, seed, vmin, vmax, difficulty, attempt)
            clash = is_close_to_any(models[i], models[:i], min_distance, scale)
        if attempt:
            redrawn.append(i)
    return redrawn
