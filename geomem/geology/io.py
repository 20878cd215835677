"""Import of user velocity models from ``.npy`` and SEG-Y files, resampled to a target grid.

- ``.npy``: an array ``(nz, nx)``, ``(N, nz, nx)`` or ``(N, 1, nz, nx)`` (depth first).
- SEG-Y (``.sgy``/``.segy``, read with segyio, geometry ignored): one model whose traces are the
  columns, i.e. ``model[iz, ix] = trace[ix][iz]``.

Units: ``"km/s"``, ``"m/s"`` (divided by 1000), or ``"auto"``: values above 100 can only be m/s, so a
model whose maximum exceeds 100 is read as m/s, otherwise as km/s. After conversion every value must be
a finite velocity in (0, 20] km/s.

Resampling maps the whole model onto ``size = (nz, nx)`` cells (bilinear, anti-aliased when shrinking,
scikit-image ``resize``); the result is on a grid of ``spacing`` m. ``[vmin, vmax]`` defaults to the
models' own range; with ``clip=True`` the models are clipped to a given range instead of rejected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geomem.errors import DataFileError, ShapeError, ValueRangeError
from geomem.geology.generator import check_size
from geomem.geology.modelset import ModelSet
from geomem.memory import check_fits

SEGY_SUFFIXES = (".sgy", ".segy")
UNITS = ("auto", "km/s", "m/s")


def read_npy(path: Path) -> np.ndarray:
    """Models ``(N, 1, nz, nx)`` float64 from a ``.npy`` file."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataFileError(f"{path} is not a readable .npy array ({exc})") from None
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "fiu":
        raise DataFileError(f"{path} does not hold a real numeric array (dtype {getattr(data, 'dtype', '?')}); save "
                            f"velocities as floats")
    if data.ndim == 2:
        data = data[None, None]
    elif data.ndim == 3:
        data = data[:, None]
    elif data.ndim != 4 or data.shape[1] != 1:
        raise ShapeError(f"{path} holds shape {data.shape}; expected (nz, nx), (N, nz, nx) or (N, 1, nz, nx)")
    if data.size == 0:
        raise ShapeError(f"{path} holds an empty array of shape {data.shape}; it has no model to import")
    return data.astype(np.float64)


def read_segy(path: Path) -> np.ndarray:
    """One model ``(1, 1, nz, nx)`` float64 from a SEG-Y file (traces are columns)."""
    import segyio

    try:
        with segyio.open(str(path), "r", ignore_geometry=True) as f:
            traces = segyio.tools.collect(f.trace[:])
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataFileError(f"{path} is not a readable SEG-Y file ({exc})") from None
    if traces.ndim != 2 or min(traces.shape) < 2:
        raise ShapeError(
            f"{path} holds {traces.shape[0] if traces.ndim else 0} traces of {traces.shape[-1] if traces.ndim else 0} "
            f"samples; need at least 2 of each"
        )
    return traces.T[None, None].astype(np.float64)


def to_km_per_s(models: np.ndarray, units: str, source: Path) -> tuple[np.ndarray, str]:
    """Check values and convert to km/s; returns the models and the units they were read in."""
    bad = int((~np.isfinite(models)).sum())
    if bad:
        raise ValueRangeError(f"{source} contains {bad} NaN or infinite values; fill or remove them before importing")
    if units not in UNITS:
        raise ValueRangeError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
    if units == "auto":
        units = "m/s" if models.max() > 100 else "km/s"
    v = models / 1000.0 if units == "m/s" else models
    if v.min() <= 0 or v.max() > 20:
        raise ValueRangeError(
            f"{source} holds velocities in [{v.min():.4g}, {v.max():.4g}] km/s after reading it as {units}; "
            "velocities must lie in (0, 20] km/s (check units=)"
        )
    return v, units


def resample(models: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Each ``(nz, nx)`` model of ``(N, 1, nz, nx)`` resized onto ``size`` (bilinear; anti-aliased when shrinking)."""
    if models.shape[2:] == size:
        return models
    from skimage.transform import resize

    shrink = size[0] < models.shape[2] or size[1] < models.shape[3]
    return np.stack([resize(m[0], size, order=1, anti_aliasing=shrink, preserve_range=True, mode="edge")
                     for m in models])[:, None]


def import_models(
    path: str | Path, size: int | tuple[int, int] | None = None, spacing: float = 10.0, vmin: float | None = None,
    vmax: float | None = None, units: str = "auto", clip: bool = False, family: str = "imported",
) -> ModelSet:
    """A :class:`ModelSet` from a ``.npy`` or SEG-Y file, resampled to ``size`` (default: as stored)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"model file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        raw, fmt = read_npy(path), "npy"
    elif suffix in SEGY_SUFFIXES:
        raw, fmt = read_segy(path), "segy"
    else:
        raise DataFileError(f"{path}: import reads .npy or SEG-Y (.sgy, .segy) files, not '{path.suffix}'")
    v, read_units = to_km_per_s(raw, units, path)
    source_shape = list(v.shape[2:])
    if size is not None:
        nz, nx = check_size(size)
        check_fits(3.0 * len(v) * nz * nx * 8, f"resampling {len(v)} model(s) to {nz}×{nx} (float64)", "lower size")
        v = resample(v, (nz, nx))
    lo = float(v.min()) if vmin is None else float(vmin)
    hi = float(v.max()) if vmax is None else float(vmax)
    if hi <= lo:
        raise ValueRangeError(f"{path} has a constant velocity {lo:.4g} km/s; pass vmin and vmax explicitly")
    if clip:
        v = np.clip(v, lo, hi)
    meta = dict(source=str(path), source_format=fmt, source_shape=source_shape, source_units=read_units)
    return ModelSet(v.astype(np.float32), family, None, spacing, lo, hi, meta)
