"""Observed shot records: one documented file contract, written by ``geomem model``, read by ``invert``/``compare``.

**The contract (``.npz``, format 1).** :func:`save_observed` writes, and :func:`load_observed` reads and checks:

=================  ===========================  =================================================================
key                shape / type                 meaning
=================  ===========================  =================================================================
``data``           ``(n_src, nt, n_rec)``       pressure at every receiver of every shot, float32 or float64
``dt_ms``          scalar                       time step in ms (``t_n = n dt``, ``n = 0 … nt − 1``)
``vmax_bound``     scalar                       the velocity bound (km/s) that fixed ``dt`` (CFL, see ``acquisition``)
``t_max_ms``       scalar                       recording time in ms
``f0_hz``          scalar                       Ricker peak frequency in Hz
``space_order``    scalar                       spatial order of the simulation
``shape``          ``(2,)``                     ``(nz, nx)`` of the grid the survey lives on
``spacing_m``      ``(2,)``                     ``(dz, dx)`` in m
``src_coords``     ``(n_src, 2)``               source ``(x, z)`` in m from the top-left grid node
``rec_coords``     ``(n_rec, 2)``               receiver ``(x, z)`` in m
``format``         scalar                       :data:`FORMAT_VERSION`
=================  ===========================  =================================================================

:meth:`Observed.check_survey` compares a file's survey with the one a run builds (grid, spacing, sources,
receivers, ``f0``, ``dt``, ``nt``) and refuses any difference with a message naming the setting to change, so
data recorded with another time step, band or layout are never inverted as if they matched.

**SEG-Y shot gathers** (``.sgy``/``.segy``, :func:`read_segy_shots`): one trace per (shot, receiver), any trace
order. Checked against the run's survey: the sample count (``nt``) and the sample interval (binary header
``Interval`` and trace header bytes 117–118, in µs; must equal ``dt`` to 0.5 µs — SEG-Y stores whole µs), no
recording delay (bytes 109–110), the trace count (``n_src · n_rec``), and the coordinates: ``SourceX`` (bytes
73–76) and ``GroupX`` (81–84) scaled by ``SourceGroupScalar`` (71–72; negative = divide), converted from feet
when the binary header's ``MeasurementSystem`` (3255–3256) is 2, must equal the survey's source and receiver
``x`` up to one common shift (field coordinates need not start at 0) within a quarter of a grid spacing.
Traces are then **sorted by those coordinates** into ``(n_src, nt, n_rec)``, so receiver-major or shuffled
files are read correctly; a file without coordinates (all zero) is refused. ``z`` and ``f0`` are not in a
SEG-Y file and are not checked.

**Plain ``.npy``** arrays ``(n_src, nt, n_rec)`` are still read, but only their shape can be checked: they
carry no survey. Prefer the ``.npz`` contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geomem.errors import ConfigError, DataFileError, GeomemError, ShapeError
from geomem.physics.acquisition import Geometry

FORMAT_VERSION = 1
KIND = "geomem.observed"
_FEET = 0.3048
_SPACE_ORDERS = (2, 4, 6, 8, 10, 12, 14, 16)
_KEYS = ("data", "dt_ms", "vmax_bound", "t_max_ms", "f0_hz", "space_order", "shape", "spacing_m", "src_coords",
         "rec_coords", "format")


@dataclass(frozen=True)
class Observed:
    """Shot records with the survey that recorded them (module docstring for the fields and units)."""

    data: np.ndarray
    geometry: Geometry
    path: Path | None = None

    @property
    def dt(self) -> float:
        return self.geometry.dt

    def check_survey(self, survey: Geometry) -> None:
        """Refuse data recorded with a survey other than ``survey`` (the one the run simulates)."""
        g, where = self.geometry, self.path or "the observed data"
        diffs = []
        if g.shape != survey.shape or not np.allclose(g.spacing, survey.spacing, rtol=1e-9):
            diffs.append(f"grid {g.shape} at {g.spacing} m vs {survey.shape} at {survey.spacing} m (model set size "
                         f"and spacing, or geomem model --spacing)")
        if not math.isclose(g.f0, survey.f0, rel_tol=1e-9):
            diffs.append(f"f0 {g.f0:g} Hz vs {survey.f0:g} Hz (survey.f0, or geomem model --f0)")
        if not math.isclose(g.dt, survey.dt, rel_tol=1e-9):
            diffs.append(f"dt {g.dt:.6g} ms (vmax_bound {g.vmax_bound:g} km/s, space_order {g.space_order}) vs "
                         f"{survey.dt:.6g} ms (vmax bound {survey.vmax_bound:g} km/s = the model set's vmax; rerun "
                         f"geomem model --vmax-bound {survey.vmax_bound:g})")
        elif g.nt != survey.nt:
            diffs.append(f"{g.nt} vs {survey.nt} time samples (t_max {g.t_max:g} vs {survey.t_max:g} ms: survey.t_max,"
                         f" or geomem model --t-max)")
        for name, a, b in (("source", g.src_coords, survey.src_coords), ("receiver", g.rec_coords, survey.rec_coords)):
            if a.shape != b.shape or not np.allclose(a, b, atol=1e-6):
                diffs.append(f"{name} positions differ ({len(a)} vs {len(b)} {name}s; survey.n_src / "
                             f"survey.geometry, or geomem model --n-src/--depth)")
        if diffs:
            raise ConfigError(f"{where} was recorded with another survey: " + "; ".join(diffs))


def save_observed(path: str | Path, shots: np.ndarray, geometry: Geometry, **extra: np.ndarray) -> Path:
    """Write shot records ``(n_src, nt, n_rec)`` with their survey (``dt``, its ``vmax_bound``, ...) to ``path``
    (``.npz``, atomically). ``dt`` and ``vmax_bound`` are those of ``geometry``, so they cannot disagree.
    ``extra`` arrays (e.g. ``velocity``, ``time_ms``) are stored beside them and ignored by the reader."""
    from geomem.runs import write_npz

    shots = np.asarray(shots)
    want = (geometry.n_src, geometry.nt, geometry.n_rec)
    if shots.shape != want:
        raise ShapeError(f"shots have shape {shots.shape}, the geometry records {want} (n_src, nt, n_rec)")
    path = Path(path)
    if path.suffix != ".npz":
        raise DataFileError(f"observed data are written as .npz; got {path}")
    return write_npz(path, data=shots, dt_ms=geometry.dt, vmax_bound=geometry.vmax_bound, t_max_ms=geometry.t_max,
                     f0_hz=geometry.f0, space_order=geometry.space_order, shape=np.asarray(geometry.shape),
                     spacing_m=np.asarray(geometry.spacing), src_coords=geometry.src_coords,
                     rec_coords=geometry.rec_coords, format=FORMAT_VERSION, kind=KIND, **extra)


def load_observed(path: str | Path) -> Observed:
    """Read a file written by :func:`save_observed`; every field checked (types, shapes, finite, ``dt``
    consistent with ``vmax_bound``). Raises :class:`DataFileError`/:class:`ShapeError` naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"observed data file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _KEYS if k not in z.files]
            if missing:
                raise DataFileError(f"{path} is not a geomem observed-data file (missing {', '.join(missing)}); "
                                    f"write it with geomem.physics.observed.save_observed or geomem model")
            f = {k: z[k] for k in _KEYS}
            odd = [k for k in _KEYS if k not in ("data", "kind") and f[k].dtype.kind not in "fiu"]
            if odd:
                raise DataFileError(f"{path}: field {odd[0]} must hold real numbers, got dtype {f[odd[0]].dtype}")
    except (OSError, ValueError, EOFError) as exc:
        raise DataFileError(f"{path} is not a readable .npz file ({exc})") from None
    try:
        version = int(f["format"])
        if version > FORMAT_VERSION:
            raise DataFileError(f"{path} has observed-data format {version}, newer than this geomem reads; upgrade")
        scalars = {k: float(f[k]) for k in ("dt_ms", "vmax_bound", "t_max_ms", "f0_hz")}
        order = int(f["space_order"])
        if order not in _SPACE_ORDERS:
            raise DataFileError(f"{path}: space_order must be one of {list(_SPACE_ORDERS)}, got {order}")
        geometry = Geometry(tuple(int(n) for n in f["shape"]), tuple(float(h) for h in f["spacing_m"]),
                            np.asarray(f["src_coords"], dtype=np.float64),
                            np.asarray(f["rec_coords"], dtype=np.float64),
                            t_max=scalars["t_max_ms"], f0=scalars["f0_hz"], vmax_bound=scalars["vmax_bound"],
                            space_order=order)
    except DataFileError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataFileError(f"{path}: a survey field has the wrong type or shape ({exc})") from None
    except GeomemError as exc:  # from Geometry: the stored survey is not a valid one
        raise DataFileError(f"{path}: the stored survey is invalid ({exc})") from None
    if not math.isclose(scalars["dt_ms"], geometry.dt, rel_tol=1e-9):
        raise DataFileError(f"{path}: dt_ms = {scalars['dt_ms']:g} does not follow from vmax_bound = "
                            f"{scalars['vmax_bound']:g} km/s (dt = {geometry.dt:g} ms); the file was edited or "
                            f"written by another tool")
    data = f["data"]
    if data.dtype.kind != "f":
        raise DataFileError(f"{path}: data must be floating point, got {data.dtype}")
    want = (geometry.n_src, geometry.nt, geometry.n_rec)
    if data.shape != want:
        raise ShapeError(f"{path}: data have shape {data.shape}, its survey records {want} (n_src, nt, n_rec)")
    if not np.all(np.isfinite(data)):
        raise DataFileError(f"{path}: data contain NaN or inf")
    return Observed(data.astype(np.float64), geometry, path)


def read_segy_shots(path: str | Path, survey: Geometry) -> np.ndarray:
    """SEG-Y shot gathers as ``(n_src, nt, n_rec)`` float64, checked against ``survey`` and sorted by the
    header coordinates (module docstring for the checks)."""
    import segyio

    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"data file {path} does not exist")
    T = segyio.TraceField
    try:
        with segyio.open(str(path), "r", ignore_geometry=True) as f:
            traces = segyio.tools.collect(f.trace[:]).astype(np.float64)
            heads = {k: np.array([h[k] for h in f.header]) for k in (
                T.SourceX, T.GroupX, T.SourceGroupScalar, T.TRACE_SAMPLE_INTERVAL, T.DelayRecordingTime)}
            interval_bin = int(f.bin[segyio.BinField.Interval])
            system = int(f.bin[segyio.BinField.MeasurementSystem])
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise DataFileError(f"{path} is not a readable SEG-Y file ({exc})") from None
    n_src, nt, n_rec = survey.n_src, survey.nt, survey.n_rec
    if traces.ndim != 2 or traces.shape[0] != n_src * n_rec or traces.shape[1] != nt:
        got = f"{traces.shape[0]} traces of {traces.shape[1]} samples" if traces.ndim == 2 else "no traces"
        raise ShapeError(f"{path} holds {got}; the survey needs {n_src}·{n_rec} traces of {nt} samples; match "
                         f"[survey] (n_src, t_max, geometry) to the data")
    want_us = survey.dt * 1000.0
    intervals = {interval_bin, *np.unique(heads[T.TRACE_SAMPLE_INTERVAL]).tolist()} - {0}
    if not intervals:
        raise DataFileError(f"{path} does not state its sample interval (binary header and trace headers are 0); "
                            f"the survey needs {want_us:.1f} µs")
    bad = [i for i in intervals if abs(i - want_us) > 0.5]
    if bad:
        raise ConfigError(f"{path} is sampled every {bad[0] / 1000:g} ms, the survey every {survey.dt:.6g} ms "
                          f"(from the model set's vmax and the grid spacing); resample the data to dt = "
                          f"{survey.dt:.6g} ms")
    if np.any(heads[T.DelayRecordingTime] != 0):
        raise DataFileError(f"{path} has a recording delay (trace header bytes 109-110); the survey starts at t = 0: "
                            f"shift the traces and zero the delay")
    if not np.all(np.isfinite(traces)):
        raise DataFileError(f"{path}: traces contain NaN or inf")
    scalar = heads[T.SourceGroupScalar].astype(np.float64)
    factor = np.where(scalar < 0, -1.0 / np.where(scalar < 0, scalar, -1.0), np.where(scalar > 0, scalar, 1.0))
    factor = factor * (_FEET if system == 2 else 1.0)
    sx, gx = heads[T.SourceX] * factor, heads[T.GroupX] * factor
    if not (np.any(sx) or np.any(gx)):
        raise DataFileError(f"{path} has no source/receiver coordinates (SourceX, GroupX are 0), so its trace order "
                            f"cannot be checked; write them, or save the data with geomem.physics.observed."
                            f"save_observed")
    return _sort_by_coordinates(path, traces, sx, gx, survey)


def _sort_by_coordinates(path: Path, traces: np.ndarray, sx: np.ndarray, gx: np.ndarray,
                         survey: Geometry) -> np.ndarray:
    """Place each trace at its (shot, receiver) slot by matching header x to the survey's x (one common shift)."""
    src_x, rec_x = survey.src_coords[:, 0], survey.rec_coords[:, 0]
    shift = min(sx.min(), gx.min()) - min(src_x.min(), rec_x.min())
    tol = 0.25 * survey.spacing[1]
    i_src = _match(sx - shift, src_x, tol)
    i_rec = _match(gx - shift, rec_x, tol)
    if i_src is None or i_rec is None:
        what = "source" if i_src is None else "receiver"
        raise ConfigError(f"{path}: the trace headers' {what} x coordinates do not match the survey's {what}s "
                          f"(within {tol:g} m after a common shift of {shift:g} m); match [survey] to the data")
    slot = i_src * survey.n_rec + i_rec
    if len(np.unique(slot)) != len(slot):
        raise DataFileError(f"{path}: several traces have the same source and receiver position; one trace per "
                            f"(shot, receiver) is needed")
    out = np.empty((survey.n_src, survey.n_rec, survey.nt))
    out.reshape(-1, survey.nt)[slot] = traces
    return out.transpose(0, 2, 1).copy()


def _match(x: np.ndarray, targets: np.ndarray, tol: float) -> np.ndarray | None:
    """Index of the target each ``x`` lies within ``tol`` of, or None if one matches none (or two)."""
    d = np.abs(x[:, None] - targets[None, :])
    idx = np.argmin(d, axis=1)
    if np.any(d[np.arange(len(x)), idx] > tol) or np.any(np.sum(d <= tol, axis=1) > 1):
        return None
    return idx


def write_segy_shots(path: str | Path, shots: np.ndarray, survey: Geometry, *, coordinate_scalar: int = -100,
                     order: str = "shot") -> Path:
    """Write ``(n_src, nt, n_rec)`` shot records as SEG-Y (IEEE floats) with the survey's sample interval and
    source/receiver x in the headers (``coordinate_scalar`` as in SEG-Y: −100 stores centimetres). ``order``:
    ``"shot"`` (shot by shot) or ``"receiver"`` (receiver by receiver). For exchange and tests."""
    import segyio

    shots = np.asarray(shots, dtype=np.float32)
    n_src, nt, n_rec = shots.shape
    pairs = [(s, r) for s in range(n_src) for r in range(n_rec)]
    if order == "receiver":
        pairs = [(s, r) for r in range(n_rec) for s in range(n_src)]
    mult = (1.0 / -coordinate_scalar) if coordinate_scalar < 0 else float(coordinate_scalar or 1)
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 5, list(range(nt)), len(pairs)
    T = segyio.TraceField
    with segyio.create(str(path), spec) as f:
        f.bin.update({segyio.BinField.Interval: int(round(survey.dt * 1000)), segyio.BinField.MeasurementSystem: 1})
        for i, (s, r) in enumerate(pairs):
            f.header[i] = {T.SourceX: int(round(survey.src_coords[s, 0] / mult)),
                           T.GroupX: int(round(survey.rec_coords[r, 0] / mult)), T.SourceGroupScalar: coordinate_scalar,
                           T.TRACE_SAMPLE_INTERVAL: int(round(survey.dt * 1000)), T.TRACE_SAMPLE_COUNT: nt,
                           T.FieldRecord: s + 1, T.TraceNumber: r + 1}
            f.trace[i] = np.ascontiguousarray(shots[s, :, r])
    return Path(path)


def read_observed(path: str | Path, survey: Geometry) -> np.ndarray:
    """Shot records ``(n_src, nt, n_rec)`` float64 for a run whose survey is ``survey``, from the ``.npz``
    contract (survey checked), SEG-Y (interval, counts, coordinates checked; sorted by them) or a bare ``.npy``
    (shape checked only)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".sgy", ".segy"):
        return read_segy_shots(path, survey)
    if suffix == ".npz":
        obs = load_observed(path)
        obs.check_survey(survey)
        return obs.data
    if suffix != ".npy":
        raise DataFileError(f"observed data {path} must be .npz (geomem model / save_observed), SEG-Y (.sgy, .segy) "
                            f"or .npy")
    if not path.is_file():
        raise DataFileError(f"data file {path} does not exist")
    try:
        y = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(f"{path} is not a .npy array file ({exc})") from None
    want = (survey.n_src, survey.nt, survey.n_rec)
    if y.shape != want:
        raise ShapeError(f"data in {path} have shape {y.shape}, the survey records {want} (n_src, nt, n_rec); "
                         f"match the [survey] settings to the data, or use the .npz format that stores its survey")
    if y.dtype.kind not in "fiu":
        raise DataFileError(f"data in {path} must be numbers, got {y.dtype}")
    if not np.all(np.isfinite(y)):
        raise DataFileError(f"data in {path} contain NaN or inf")
    return y.astype(np.float64)
