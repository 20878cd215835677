"""The model set: velocity models ``(N, 1, nz, nx)`` float32 in km/s with their metadata.

Priors work in the normalized coordinates ``x = (v − v_c)/v_h`` of :class:`Parameterization`, which
map the set's ``[vmin, vmax]`` onto ``[−1, 1]``. Splits are prefixes: ``split(n_train)`` takes the first
``n_train`` models for training, so the training sets of 50, 200 and 1000 of one set are nested.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from geomem.errors import ConfigError, ShapeError, ValueRangeError
from geomem.geology import storage
from geomem.geology.distances import nearest_neighbour_distances
from geomem.geology.generator import check_arguments, check_size, generate_models
from geomem.geology.parameterization import Parameterization
from geomem.memory import check_fits

DEFAULT_MODEL_SET = dict(family="curvefault", n=1200, size=(64, 64), spacing=10.0, seed=0, vmin=1.5, vmax=4.5)


class ModelSet:
    """Velocity models ``models`` ``(N, 1, nz, nx)`` float32 (km/s) on a grid of ``spacing`` m, all within
    ``[vmin, vmax]``; ``family`` and ``seed`` say where they came from (``seed`` is ``None`` for imported
    models); ``meta`` is a JSON-compatible dict of extra information."""

    def __init__(
        self, models: np.ndarray, family: str, seed: int | None, spacing: float, vmin: float, vmax: float,
        meta: dict[str, Any] | None = None,
    ):
        models = np.asarray(models)
        if models.ndim != 4 or models.shape[1] != 1 or len(models) == 0:
            raise ShapeError(f"models must have shape (N, 1, nz, nx) with N >= 1, got {models.shape}")
        if not np.isfinite(models).all():
            raise ValueRangeError("models contain NaN or infinite velocities; remove or fill them")
        if not (np.isfinite(spacing) and spacing > 0):
            raise ConfigError(f"spacing must be a positive grid spacing in m, got {spacing!r}")
        self.parameterization = Parameterization(float(vmin), float(vmax))
        lo, hi = float(models.min()), float(models.max())
        tol = 1e-6 * (vmax - vmin)
        if lo < vmin - tol or hi > vmax + tol:
            raise ValueRangeError(
                f"velocities span [{lo:.4g}, {hi:.4g}] km/s, outside vmin={vmin}, vmax={vmax}; widen [vmin, vmax]"
            )
        self.models = models.astype(np.float32, copy=False)
        self.family = str(family)
        self.seed = None if seed is None else int(seed)
        self.spacing = float(spacing)
        self.vmin, self.vmax = float(vmin), float(vmax)
        self.meta = dict(meta or {})

    def __len__(self) -> int:
        return len(self.models)

    def __repr__(self) -> str:
        return (f"ModelSet(family={self.family!r}, n={len(self)}, shape={self.shape}, seed={self.seed}, "
                f"spacing={self.spacing} m, v=[{self.vmin}, {self.vmax}] km/s)")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one model, ``(1, nz, nx)``."""
        return tuple(self.models.shape[1:])  # type: ignore[return-value]

    def normalized(self) -> np.ndarray:
        """Models in normalized coordinates ``x = (v − v_c)/v_h`` ∈ [−1, 1], ``(N, 1, nz, nx)`` float32."""
        return self.parameterization.to_normalized(self.models).astype(np.float32)

    def _with(self, models: np.ndarray, **meta: Any) -> ModelSet:
        return ModelSet(models, self.family, self.seed, self.spacing, self.vmin, self.vmax,
                        {**copy.deepcopy(self.meta), **meta})

    def subset(self, indices) -> ModelSet:
        """The models at ``indices`` (a sequence of ints, a slice or a boolean mask), same metadata."""
        if isinstance(indices, slice):
            picked = self.models[indices]
        else:
            idx = np.asarray(indices)
            if idx.dtype == bool:
                if idx.shape != (len(self),):
                    raise ShapeError(f"a boolean mask must have length {len(self)}, got shape {idx.shape}")
                idx = np.nonzero(idx)[0]
            if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
                raise ShapeError("indices must be a 1-D sequence of integers, a slice or a boolean mask")
            if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
                raise ShapeError(f"indices must lie in [0, {len(self)}), got [{idx.min()}, {idx.max()}]")
            picked = self.models[idx]
        return self._with(picked)

    def split(self, n_train: int, n_heldout: int | None = None) -> tuple[ModelSet, ModelSet]:
        """``(train, heldout)``: the first ``n_train`` models, then the next ``n_heldout`` (default: the rest)."""
        if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or not 1 <= n_train < len(self):
            raise ConfigError(f"n_train must be an integer in [1, {len(self) - 1}] for a set of {len(self)}, "
                              f"got {n_train!r}")
        rest = len(self) - n_train
        n_heldout = rest if n_heldout is None else n_heldout
        if isinstance(n_heldout, bool) or not isinstance(n_heldout, (int, np.integer)) or not 1 <= n_heldout <= rest:
            raise ConfigError(f"n_heldout must be an integer in [1, {rest}] after {n_train} training models, "
                              f"got {n_heldout!r}")
        return (self._with(self.models[:n_train], split="train"),
                self._with(self.models[n_train:n_train + n_heldout], split="heldout", heldout_start=int(n_train)))

    def nearest_neighbour_distances(self, reference: ModelSet | None = None) -> tuple[np.ndarray, np.ndarray]:
        """RMS distance of each model to its nearest neighbour (in ``reference``, or leave-one-out within
        this set) as a fraction of ``vmax − vmin``, and the neighbour's index."""
        ref = None if reference is None else reference.models
        return nearest_neighbour_distances(self.models, ref, scale=self.vmax - self.vmin)

    def header(self) -> dict[str, Any]:
        return dict(family=self.family, seed=self.seed, spacing=self.spacing, vmin=self.vmin, vmax=self.vmax,
                    meta=self.meta)

    def save(self, path: str | Path) -> Path:
        """Write the set to ``path`` (``.npz`` or ``.zarr``), atomically."""
        return storage.save(path, self.models, self.header())

    @classmethod
    def load(cls, path: str | Path) -> ModelSet:
        """Read a set written by :meth:`save`."""
        models, h = storage.load(path)
        return cls(models, h["family"], h["seed"], h["spacing"], h["vmin"], h["vmax"], h.get("meta"))


def make_model_set(
    family: str = "curvefault", n: int = 1200, size: int | tuple[int, int] = (64, 64), spacing: float = 10.0,
    seed: int = 0, vmin: float = 1.5, vmax: float = 4.5, difficulty: str = "A", min_distance: float = 0.01,
    progress: bool = False,
) -> ModelSet:
    """Generate ``n`` models of ``family`` (see :mod:`geomem.geology.families`); model ``i`` depends only on
    ``(family, difficulty, size, seed, vmin, vmax, i)``, and no two models are closer than ``min_distance``."""
    shape = check_size(size)
    check_arguments(family, n, seed, difficulty, vmin, vmax, spacing)
    check_fits(2.0 * n * shape[0] * shape[1] * 4, f"{n} models of {shape[0]}×{shape[1]} (float32, with a working copy)",
               "lower n or size")
    models, info = generate_models(family, n, shape, seed, vmin, vmax, difficulty, min_distance, progress)
    meta = dict(difficulty=difficulty, min_distance=min_distance, redrawn=info["redrawn"])
    return ModelSet(models, family, seed, spacing, vmin, vmax, meta)
