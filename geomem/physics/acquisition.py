"""Acquisition geometry and the Ricker wavelet.

Units: distances in m, times in ms, frequencies in Hz, velocities in km/s (= m/ms, so ``dx / v`` is in
ms directly). Coordinates are ``(x, z)`` pairs in m, measured from the top-left grid node of the
*unpadded* model: ``x ∈ [0, (nx − 1) dx]`` (horizontal), ``z ∈ [0, (nz − 1) dz]`` (depth).

The time step is fixed from an upper velocity bound ``vmax_bound`` (leapfrog CFL condition for the
``space_order`` centred Laplacian, see :func:`critical_dt`), so the data shape ``(n_src, nt, n_rec)``
never depends on the velocity model being simulated.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import sympy

from geomem.errors import GeometryError, ShapeError, StabilityError, ValueRangeError

#: fraction of the CFL limit used for the time step
CFL_SAFETY = 0.8
#: the highest frequency that matters is taken as ``F_MAX_FACTOR · f0`` (Ricker spectrum ≈ 20% of its peak)
F_MAX_FACTOR = 2.0
#: fewer grid points than this per shortest wavelength triggers a dispersion warning
MIN_POINTS_PER_WAVELENGTH = 5.0
#: below this many points per shortest wavelength (the peak frequency itself spatially aliased) it is an error
HARD_MIN_POINTS_PER_WAVELENGTH = 1.0
#: fewer time samples per period of the highest frequency (``F_MAX_FACTOR · f0``) than this is an error
MIN_SAMPLES_PER_PERIOD = 2.0
#: a record shorter than this many samples is an error
MIN_TIME_SAMPLES = 10
#: largest supported ``space_order``
MAX_SPACE_ORDER = 40


def ricker(f0: float, t: np.ndarray, t0: float | None = None) -> np.ndarray:
    """Ricker wavelet ``r(t) = (1 − 2 π² f² (t − t0)²) exp(−π² f² (t − t0)²)`` with ``f = f0/1000`` per ms.

    ``f0`` is the peak frequency in Hz, ``t`` the times in ms, ``t0`` the delay in ms (default
    ``1000 / f0``, one period, so the wavelet starts near zero). Peak amplitude 1 at ``t = t0``.
    """
    if not (np.isfinite(f0) and f0 > 0):
        raise ValueRangeError(f"peak frequency f0 must be a positive number of Hz, got {f0}")
    t = np.asarray(t, dtype=np.float64)
    f = f0 / 1000.0
    t0 = 1000.0 / f0 if t0 is None else t0
    if not np.isfinite(t0):
        raise ValueRangeError(f"peak frequency f0={f0} Hz gives an infinite wavelet delay 1000/f0 ms; raise f0")
    a = (np.pi * f * (t - t0)) ** 2
    return (1.0 - 2.0 * a) * np.exp(-a)


def laplacian_weights(space_order: int) -> np.ndarray:
    """Centred second-derivative weights ``c_0 … c_{p}`` (``p = space_order / 2``) on a unit grid."""
    if space_order < 2 or space_order % 2 or space_order > MAX_SPACE_ORDER:
        raise ValueRangeError(f"space_order must be an even integer in [2, {MAX_SPACE_ORDER}], got {space_order}")
    return np.array(_laplacian_weights(int(space_order)))


@functools.cache
def _laplacian_weights(space_order: int) -> tuple[float, ...]:
    """The sympy computation behind :func:`laplacian_weights` (slow: ~6 ms), done once per order."""
    p = space_order // 2
    nodes = list(range(-p, p + 1))
    w = sympy.finite_diff_weights(2, nodes, 0)[2][-1]
    return tuple(float(w[p + k]) for k in range(p + 1))


def critical_dt(vmax: float, spacing: tuple[float, float], space_order: int) -> float:
    """Largest stable leapfrog step (ms) for ``u_tt = v² Δu`` with the centred ``space_order`` Laplacian.

    The discrete Laplacian's largest eigenvalue magnitude is ``Σ_d (|c_0| + 2 Σ_k |c_k|) / h_d²``
    (the checkerboard mode), and leapfrog is stable for ``dt ≤ 2 / (v_max √λ_max)``.
    """
    c = laplacian_weights(space_order)
    s = abs(c[0]) + 2.0 * np.sum(np.abs(c[1:]))
    lam = sum(s / h**2 for h in spacing)
    return 2.0 / (vmax * math.sqrt(lam))


@dataclass(frozen=True)
class Geometry:
    """Sources, receivers and time axis of a 2-D survey on an ``(nz, nx)`` grid.

    ``src_coords`` ``(n_src, 2)`` and ``rec_coords`` ``(n_rec, 2)`` are ``(x, z)`` in m; every shot
    records on all receivers. ``t_max`` ms, ``f0`` Hz. The time step ``dt`` (ms) follows from
    ``vmax_bound`` km/s, unless ``time_step`` (ms) gives it explicitly (it must then be within the CFL limit
    at ``vmax_bound``); ``nt = ceil(t_max / dt) + 1`` samples at ``t_n = n dt``.
    """

    shape: tuple[int, int]
    spacing: tuple[float, float]
    src_coords: np.ndarray
    rec_coords: np.ndarray
    t_max: float = 1000.0
    f0: float = 15.0
    vmax_bound: float = 4.5
    space_order: int = 8
    time_step: float | None = None

    def __post_init__(self):
        if len(self.shape) != 2 or len(self.spacing) != 2:
            raise ShapeError(f"shape and spacing must be (nz, nx) and (dz, dx), got {self.shape}, {self.spacing}")
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "spacing", tuple(float(h) for h in self.spacing))
        nz, nx = self.shape
        if nz < 2 or nx < 2:
            raise ShapeError(f"grid shape must be at least (2, 2), got {self.shape}")
        for name, h in zip(("dz", "dx"), self.spacing, strict=True):
            if not (np.isfinite(h) and h > 0):
                raise ValueRangeError(f"grid spacing {name} must be a positive number of m, got {h}")
        if not (np.isfinite(self.t_max) and self.t_max > 0):
            raise ValueRangeError(f"t_max must be a positive number of ms, got {self.t_max}")
        if not (np.isfinite(self.vmax_bound) and self.vmax_bound > 0):
            raise ValueRangeError(f"vmax_bound must be a positive velocity in km/s, got {self.vmax_bound}")
        src = np.atleast_2d(np.asarray(self.src_coords, dtype=np.float64))
        rec = np.atleast_2d(np.asarray(self.rec_coords, dtype=np.float64))
        object.__setattr__(self, "src_coords", src)
        object.__setattr__(self, "rec_coords", rec)
        xmax, zmax = (nx - 1) * self.spacing[1], (nz - 1) * self.spacing[0]
        for name, c in (("source", src), ("receiver", rec)):
            if c.ndim != 2 or c.shape[1] != 2 or c.shape[0] == 0:
                raise ShapeError(f"{name} coordinates must be an (n, 2) array of (x, z) in m, got {c.shape}")
            bad = ~np.isfinite(c).all(axis=1) | (c[:, 0] < 0) | (c[:, 0] > xmax) | (c[:, 1] < 0) | (c[:, 1] > zmax)
            if bad.any():
                i = int(np.argmax(bad))
                raise GeometryError(
                    f"{name} {i} at (x={c[i, 0]:g} m, z={c[i, 1]:g} m) is outside the grid "
                    f"x in [0, {xmax:g}], z in [0, {zmax:g}] m; move it inside"
                )
        ricker(self.f0, np.zeros(1))  # validates f0
        self._check_sampling()

    def _check_sampling(self) -> None:
        """Refuse surveys the solver cannot represent (raised before anything is allocated or simulated):
        ``dt`` below ``t_max`` with at least ``MIN_TIME_SAMPLES`` samples and ``MIN_SAMPLES_PER_PERIOD``
        samples per period of ``F_MAX_FACTOR f0``, and at least ``HARD_MIN_POINTS_PER_WAVELENGTH`` grid points
        per shortest wavelength at ``vmax_bound`` (slower velocities: :meth:`check_dispersion`)."""
        laplacian_weights(self.space_order)  # validates space_order
        if self.time_step is not None:
            limit = critical_dt(self.vmax_bound, self.spacing, self.space_order)
            if not (np.isfinite(self.time_step) and 0 < self.time_step <= limit):
                raise StabilityError(
                    f"time_step={self.time_step} ms is outside (0, {limit:.4g}] ms, the leapfrog CFL limit at "
                    f"vmax_bound={self.vmax_bound:g} km/s on this grid; lower time_step or vmax_bound"
                )
        dt = self.dt
        if not (np.isfinite(dt) and dt > 0) or dt >= self.t_max:
            raise StabilityError(
                f"the time step dt = {dt:.4g} ms (CFL at vmax_bound={self.vmax_bound:g} km/s on a "
                f"{self.spacing[0]:g} x {self.spacing[1]:g} m grid) is not below t_max = {self.t_max:g} ms; "
                "use a finer grid spacing (m) or a longer record"
            )
        if self.nt < MIN_TIME_SAMPLES:
            raise StabilityError(
                f"the record has nt = {self.nt} samples (t_max = {self.t_max:g} ms at dt = {dt:.4g} ms), fewer "
                f"than {MIN_TIME_SAMPLES}; use a finer grid spacing or a longer t_max"
            )
        f_max = F_MAX_FACTOR * self.f0
        per_period = 1000.0 / (f_max * dt)
        if per_period < MIN_SAMPLES_PER_PERIOD:
            raise StabilityError(
                f"dt = {dt:.4g} ms samples the highest frequency {f_max:g} Hz only {per_period:.2f} times a "
                f"period (need {MIN_SAMPLES_PER_PERIOD:g}); lower f0 or use a finer grid spacing"
            )
        self._check_points_per_wavelength(self.vmax_bound)

    def _check_points_per_wavelength(self, v: float) -> float:
        ppw = 1000.0 * v / (F_MAX_FACTOR * self.f0 * max(self.spacing))
        if ppw < HARD_MIN_POINTS_PER_WAVELENGTH:
            raise StabilityError(
                f"only {ppw:.3g} grid points per shortest wavelength at v={v:.3g} km/s (f_max = "
                f"{F_MAX_FACTOR * self.f0:g} Hz, spacing {max(self.spacing):g} m): the grid cannot carry the "
                f"wavelet (need >= {HARD_MIN_POINTS_PER_WAVELENGTH:g}, >= {MIN_POINTS_PER_WAVELENGTH:g} for "
                "accuracy); refine the grid or lower f0"
            )
        return ppw

    @property
    def n_src(self) -> int:
        return self.src_coords.shape[0]

    @property
    def n_rec(self) -> int:
        return self.rec_coords.shape[0]

    @property
    def dt(self) -> float:
        """Time step in ms: ``time_step`` if given, else ``CFL_SAFETY`` times the leapfrog limit at ``vmax_bound``."""
        if self.time_step is not None:
            return float(self.time_step)
        return CFL_SAFETY * critical_dt(self.vmax_bound, self.spacing, self.space_order)

    @property
    def nt(self) -> int:
        return int(math.ceil(self.t_max / self.dt)) + 1

    @property
    def time(self) -> np.ndarray:
        """Sample times ``t_n = n dt`` in ms, shape ``(nt,)``."""
        return np.arange(self.nt) * self.dt

    def wavelet(self) -> np.ndarray:
        """The source signature sampled on :attr:`time`, shape ``(nt,)``."""
        return ricker(self.f0, self.time)

    def check_dispersion(self, vmin: float) -> float:
        """Points per shortest wavelength ``1000 v_min / (F_MAX_FACTOR f0 max(dz, dx))``; warn below 5,
        :class:`StabilityError` below ``HARD_MIN_POINTS_PER_WAVELENGTH``."""
        ppw = self._check_points_per_wavelength(vmin)
        if ppw < MIN_POINTS_PER_WAVELENGTH:
            warnings.warn(
                f"only {ppw:.2f} grid points per shortest wavelength (v_min={vmin:.3g} km/s, "
                f"f_max={F_MAX_FACTOR * self.f0:g} Hz, spacing={max(self.spacing):g} m); "
                f"expect numerical dispersion below {MIN_POINTS_PER_WAVELENGTH:g}: lower f0 or refine the grid",
                stacklevel=3,
            )
        return ppw

    @classmethod
    def surface(
        cls,
        shape: tuple[int, int],
        spacing: float | tuple[float, float] = 10.0,
        n_src: int = 5,
        depth: float | None = None,
        t_max: float = 1000.0,
        f0: float = 15.0,
        vmax_bound: float = 4.5,
        space_order: int = 8,
    ) -> Geometry:
        """OpenFWI-like line survey: ``n_src`` evenly spaced sources and a receiver at every grid column,
        all at ``depth`` m (default one grid spacing below the top)."""
        spacing = (float(spacing), float(spacing)) if np.isscalar(spacing) else tuple(map(float, spacing))
        if len(shape) != 2 or len(spacing) != 2:
            raise ShapeError(f"shape and spacing must be (nz, nx) and (dz, dx), got {shape}, {spacing}")
        nz, nx = (int(n) for n in shape)
        depth = spacing[0] if depth is None else float(depth)
        if n_src < 1:
            raise GeometryError(f"n_src must be >= 1, got {n_src}")
        xs = np.linspace(0.0, (nx - 1) * spacing[1], n_src) if n_src > 1 else np.array([(nx - 1) * spacing[1] / 2])
        xr = np.arange(nx) * spacing[1]
        src = np.stack([xs, np.full_like(xs, depth)], axis=1)
        rec = np.stack([xr, np.full_like(xr, depth)], axis=1)
        return cls(shape, spacing, src, rec, t_max, f0, vmax_bound, space_order)

    @classmethod
    def openfwi(cls, vmax_bound: float = 4.5, space_order: int = 8, depth: float = 10.0) -> Geometry:
        """The OpenFWI survey: a 70 × 70 grid at 10 m, 5 sources at grid columns 0, 17, 34, 52, 69 and a receiver
        at each of the 70 columns, all at ``depth`` m, a 15 Hz Ricker and 1000 samples at 1 ms (0 … 999 ms),
        so that simulated data have OpenFWI's shot layout ``(5, 1000, 70)``. A 1 ms step needs ``vmax_bound``
        within the CFL limit (4.5 km/s at order 8 is: the limit there is 1.23 ms).

        OpenFWI documents sources and receivers at the surface; their exact depth in its generator is not
        part of the files: ``depth`` (default one grid spacing, as in :meth:`surface`) is the user's to set.
        """
        h = OPENFWI["spacing"]
        xs = np.round(np.linspace(0, OPENFWI["shape"][1] - 1, OPENFWI["n_src"])) * h
        xr = np.arange(OPENFWI["n_rec"]) * h
        src = np.stack([xs, np.full_like(xs, depth)], axis=1)
        rec = np.stack([xr, np.full_like(xr, depth)], axis=1)
        return cls(OPENFWI["shape"], (h, h), src, rec, t_max=(OPENFWI["nt"] - 1) * OPENFWI["dt"], f0=OPENFWI["f0"],
                   vmax_bound=vmax_bound, space_order=space_order, time_step=OPENFWI["dt"])


#: OpenFWI's survey: grid (nz, nx), spacing m, sources, receivers, samples, sample interval ms, peak frequency Hz
OPENFWI = {"shape": (70, 70), "spacing": 10.0, "n_src": 5, "n_rec": 70, "nt": 1000, "dt": 1.0, "f0": 15.0}
