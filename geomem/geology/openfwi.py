"""Import of OpenFWI arrays: batched velocity models and shot data.

OpenFWI stores, per file, velocities ``(N, 1, 70, 70)`` in **m/s** (depth first, 10 m grid) and shot data
``(N, 5, 1000, 70)`` (shot, time sample at 1 ms, receiver), both float32 ``.npy``. geomem's layouts match
(models ``(N, 1, nz, nx)``, data ``(n_src, nt, n_rec)`` per model); the importer checks shapes, units and the
sample interval, converts velocities to km/s and returns a :class:`~geomem.geology.modelset.ModelSet`.
The matching survey is :meth:`geomem.physics.acquisition.Geometry.openfwi`. The data's amplitude scale and
source signature are OpenFWI's own: compare waveforms up to a scale, or invert OpenFWI data with a source
estimated from them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geomem.errors import DataFileError, ShapeError, ValueRangeError
from geomem.geology.modelset import ModelSet

#: OpenFWI's layouts (models per file N is free) and its sample interval in ms
VELOCITY_SHAPE = (1, 70, 70)
DATA_SHAPE = (5, 1000, 70)
SAMPLE_INTERVAL_MS = 1.0
SPACING_M = 10.0
#: plausible velocity range in m/s (water to fast carbonates, with margin)
M_PER_S_RANGE = (300.0, 10000.0)


def _load(source, what: str) -> tuple[np.ndarray, str]:
    """An array from a ``.npy`` path (memory-mapped: shapes are checked before reading) or an array."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise DataFileError(f"OpenFWI {what} file {path} does not exist")
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataFileError(f"{path} is not a readable .npy array ({exc})") from None
        name = str(path)
    else:
        arr, name = np.asarray(source), f"the {what} array"
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.number):
        raise DataFileError(f"{name} does not hold a numeric array (dtype {getattr(arr, 'dtype', '?')})")
    return arr, name


def _check_shape(arr: np.ndarray, per_item: tuple[int, ...], name: str, what: str) -> None:
    if arr.ndim != len(per_item) + 1 or tuple(arr.shape[1:]) != per_item or arr.shape[0] == 0:
        raise ShapeError(
            f"{name} has shape {arr.shape}; OpenFWI {what} are (N, {', '.join(map(str, per_item))}) with N >= 1"
        )


def import_openfwi_velocity(
    source, units: str = "m/s", vmin: float | None = None, vmax: float | None = None, family: str = "openfwi",
) -> ModelSet:
    """A :class:`ModelSet` (km/s, 10 m) from OpenFWI velocities ``(N, 1, 70, 70)`` (a ``.npy`` path or array).

    ``units`` is what the array holds: ``"m/s"`` (OpenFWI's) or ``"km/s"``; values outside the plausible range
    for those units (300–10000 m/s) are refused, since they mean the units are wrong. ``[vmin, vmax]``
    (km/s) defaults to the models' own range.
    """
    arr, name = _load(source, "velocity")
    _check_shape(arr, VELOCITY_SHAPE, name, "velocities")
    if units not in ("m/s", "km/s"):
        raise ValueRangeError(f"units must be 'm/s' (OpenFWI's) or 'km/s', got {units!r}")
    v = np.array(arr, dtype=np.float64)
    if not np.isfinite(v).all():
        raise ValueRangeError(f"{name} contains NaN or infinite velocities; remove those models")
    scale = 1.0 if units == "m/s" else 1000.0
    lo, hi = v.min() * scale, v.max() * scale
    if lo < M_PER_S_RANGE[0] or hi > M_PER_S_RANGE[1]:
        other = "km/s" if units == "m/s" else "m/s"
        raise ValueRangeError(
            f"{name} read as {units} spans [{lo:.4g}, {hi:.4g}] m/s, outside the plausible "
            f"[{M_PER_S_RANGE[0]:g}, {M_PER_S_RANGE[1]:g}] m/s; if the array holds {other}, pass units='{other}'"
        )
    v_kms = v * scale / 1000.0
    lo_k = float(v_kms.min()) if vmin is None else float(vmin)
    hi_k = float(v_kms.max()) if vmax is None else float(vmax)
    if hi_k <= lo_k:
        raise ValueRangeError(f"{name} has a constant velocity {lo_k:.4g} km/s; pass vmin and vmax explicitly")
    meta = {"source": name, "source_format": "openfwi", "source_units": units, "source_shape": list(arr.shape)}
    return ModelSet(v_kms.astype(np.float32), family, None, SPACING_M, lo_k, hi_k, meta)


def import_openfwi_data(source, sample_interval_ms: float = SAMPLE_INTERVAL_MS, geometry=None) -> np.ndarray:
    """Shot data ``(N, 5, 1000, 70)`` float32 from OpenFWI (a ``.npy`` path or array), checked.

    ``sample_interval_ms`` is the interval the data were recorded at (OpenFWI: 1 ms; its files do not store
    it). It must equal the survey's ``dt`` (``geometry``, default :meth:`Geometry.openfwi`), and the array's
    ``(n_src, nt, n_rec)`` must be the survey's; otherwise the message says what to resample or rebuild.
    """
    from geomem.physics.acquisition import Geometry

    geometry = Geometry.openfwi() if geometry is None else geometry
    arr, name = _load(source, "data")
    want = (geometry.n_src, geometry.nt, geometry.n_rec)
    _check_shape(arr, want, name, f"shot data for this survey (n_src, nt, n_rec) = {want}")
    if not (np.isfinite(sample_interval_ms) and sample_interval_ms > 0):
        raise ValueRangeError(f"sample_interval_ms must be a positive number of ms, got {sample_interval_ms}")
    if abs(sample_interval_ms - geometry.dt) > 1e-9 * geometry.dt:
        raise ValueRangeError(
            f"{name} is sampled at {sample_interval_ms:g} ms but the survey's dt is {geometry.dt:.6g} ms; resample "
            f"the data to {geometry.dt:.6g} ms or build the survey with time_step={sample_interval_ms:g}"
        )
    d = np.array(arr, dtype=np.float32)
    if not np.isfinite(d).all():
        raise ValueRangeError(f"{name} contains NaN or infinite samples; remove those records")
    silent = np.flatnonzero(~np.any(d.reshape(len(d), -1) != 0, axis=1))
    if silent.size:
        raise ValueRangeError(f"{name}: record(s) {silent[:5].tolist()} are all zeros; remove them")
    return d
