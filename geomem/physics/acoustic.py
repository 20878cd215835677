"""2-D constant-density acoustic FWI operator on Devito's core API.

Continuous model (velocity ``v`` km/s = m/ms, squared slowness ``m = 1/v²`` in s²/km², time in ms,
distances in m, damping ``η`` in 1/ms, zero outside the absorbing layer)::

    m ∂²u/∂t² + η ∂u/∂t − Δu = q δ(x − x_s),        d = u(x_r, t)

Discretization: leapfrog in time, centred ``space_order`` Laplacian ``L`` (symmetric, zero outside the
padded grid), centred damping term. With ``D = M + η dt/2`` (all diagonal)::

    D u^{n+1} = (2M + dt² L) u^n − (M − η dt/2) u^{n−1} + dt² Sᵀ q^n,     n = 1 … nt−1,  u^0 = u^1 = 0
    d^n = R u^n

``S``/``R`` are Devito's bilinear injection/interpolation. The source term is injected as
``dt² q / D`` with ``D`` taken at each injected node, so the recursion holds exactly as written and the
source does not depend on ``m`` beyond it.

Born (exact derivative of the discrete recursion, ``a^n = u^{n+1} − 2u^n + u^{n−1}``)::

    D δu^{n+1} = (2M + dt² L) δu^n − (M − η dt/2) δu^{n−1} − δm ⊙ a^n,       δd^n = R δu^n

Adjoint Born (the exact transpose, "discretize-then-optimize"): with ``μ^k = D⁻¹ λ^k`` it is the same
stencil run backward, receivers injected as ``Rᵀ δd / D``::

    μ^t = D⁻¹[(2M + dt² L) μ^{t+1} − (M − η dt/2) μ^{t+2} + Rᵀ δd^t],    t = nt−1 … 1,
    Jₘᵀ δd = − Σ_{t=1}^{nt−1} a^t ⊙ μ^{t+1}.

The model is velocity on the unpadded grid, layout ``(1, nz, nx)`` (depth first); Devito arrays are
``(x, z)`` on a grid padded by ``nbl`` points on every side with edge values (operator ``P``). Chain
rule: ``m_pad = (P v)^{−2}`` so ``J_v = J_m diag(−2 v_pad^{−3}) P`` and ``J_vᵀ = Pᵀ diag(−2 v_pad^{−3}) J_mᵀ``,
where ``Pᵀ`` folds the padded layer back onto the edge cells (exact, not a crop).

Implemented divided by ``D``, with the pointwise coefficients ``G = D⁻¹M`` and ``C = dt² D⁻¹`` computed in
NumPy for the fixed ``dt`` (``D⁻¹(M − η dt/2) = 2G − I``), so the stencils do no division and read two
coefficient arrays::

    u^{n+1} = 2G (u^n − u^{n−1}) + u^{n−1} + C L u^n + C Sᵀ q^n

and likewise for Born (``δm`` enters as ``D⁻¹ δm``) and, backward in time, for ``μ`` (receivers injected
as ``C Rᵀ δd / dt²``). Exact in exact arithmetic; the adjoint stays the exact transpose of the code.

Imaging sum, two exact forms (``imaging=``): ``"direct"`` (default) reads the saved ``u`` at three levels each
step for ``a^t``; ``"by_parts"`` uses ``Σ_{t=1}^{T} a^t ⊙ μ^{t+1} = Σ_{k=2}^{T+1} u^k ⊙ (μ^k − 2μ^{k+1} + μ^{k+2})``
(``u^0 = u^1 = 0``, ``μ`` zero past ``T + 1``), reading one saved level per step: at backward step ``t`` the
adjoint buffer's slot about to receive ``μ^t`` still holds ``μ^{t+3}``, read just before it is overwritten. Both
are the same sum reordered (equal up to rounding); the dot and Taylor tests hold for both.

Operators are built once per instance (lazily, one per kind) and reused; the velocity, the source
position and the wavelet are written into preallocated Devito buffers. Shots run one at a time so
memory holds one saved wavefield whatever the number of shots. Instances pickle without their Devito
objects (rebuilt on first use), so one can be shipped once to each Dask worker.
"""

from __future__ import annotations

import threading

import numpy as np

from geomem.errors import ShapeError, StabilityError, ValueRangeError
from geomem.physics import boundary as bnd
from geomem.physics.acquisition import Geometry
from geomem.physics.operator import ForwardOperator, LinearOperator

#: the two exact forms of the gradient's imaging sum (see the module doc)
IMAGING = ("direct", "by_parts")


class AcousticOperator(ForwardOperator):
    """``F(v)``: velocity ``(1, nz, nx)`` km/s → shot records ``(n_src, nt, n_rec)``.

    ``shape=(nz, nx)``, ``spacing`` m (a number or ``(dz, dx)``), ``geometry`` a :class:`Geometry`
    (default: :meth:`Geometry.surface`), ``vmax_bound`` km/s fixes ``dt``, ``nbl`` absorbing-layer width
    in grid points, ``dtype`` float32 (default) or float64. ``boundary`` is ``"sponge"`` (default, the
    damping layer above) or ``"pml"`` (convolutional PML, far less reflective: recommended for field or
    user data); ``free_surface=True`` makes the top edge (``z = 0``) a pressure-free surface (image method).
    Both are described in :mod:`geomem.physics.boundary`.
    """

    def __init__(
        self,
        shape: tuple[int, int] = (64, 64),
        spacing: float | tuple[float, float] = 10.0,
        geometry: Geometry | None = None,
        vmax_bound: float = 4.5,
        space_order: int = 8,
        nbl: int = 20,
        dtype=np.float32,
        boundary: str = "sponge",
        free_surface: bool = False,
        imaging: str = "direct",
    ):
        shape = tuple(int(s) for s in shape)
        spacing = (float(spacing), float(spacing)) if np.isscalar(spacing) else tuple(map(float, spacing))
        if geometry is None:
            geometry = Geometry.surface(shape, spacing, vmax_bound=vmax_bound, space_order=space_order)
        if tuple(geometry.shape) != shape or tuple(geometry.spacing) != spacing:
            raise ShapeError(
                f"geometry is for grid {geometry.shape} at {geometry.spacing} m but the operator is {shape} at "
                f"{spacing} m; build the Geometry with the same shape and spacing"
            )
        if geometry.vmax_bound != vmax_bound or geometry.space_order != space_order:
            raise ValueRangeError(
                f"geometry has vmax_bound={geometry.vmax_bound}, space_order={geometry.space_order} but the "
                f"operator has {vmax_bound}, {space_order}; pass the same values to both"
            )
        if int(nbl) < 0:
            raise ValueRangeError(f"nbl must be >= 0 grid points, got {nbl}")
        if boundary not in bnd.BOUNDARIES:
            raise ValueRangeError(f"boundary must be one of {', '.join(bnd.BOUNDARIES)}, got {boundary!r}")
        if free_surface and int(nbl) < space_order // 2:
            raise ValueRangeError(
                f"a free surface needs nbl >= space_order/2 = {space_order // 2} ghost rows above the model, "
                f"got nbl={nbl}; raise nbl"
            )
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueRangeError(f"dtype must be float32 or float64, got {dtype}")
        self.shape, self.spacing, self.geometry = shape, spacing, geometry
        self.vmax_bound, self.space_order, self.nbl, self.dtype = float(vmax_bound), int(space_order), int(nbl), dtype
        if imaging not in IMAGING:
            raise ValueRangeError(f"imaging must be one of {', '.join(IMAGING)}, got {imaging!r}")
        self.boundary, self.free_surface, self.imaging = boundary, bool(free_surface), imaging
        self._saved_checked = False
        self.check_memory("forward")
        self.model_shape = (1, *shape)
        self.data_shape = (geometry.n_src, geometry.nt, geometry.n_rec)
        self._dv = None  # Devito objects, built lazily (see _devito)
        self._lock = threading.RLock()  # one shot at a time per instance (buffers are shared)

    @classmethod
    def default(cls, size: int = 64, dtype=np.float32, **kwargs) -> AcousticOperator:
        """OpenFWI-like survey on a ``size × size`` grid at 10 m: 5 surface sources, a receiver per column,
        15 Hz Ricker, 1 s, both at 10 m depth."""
        return cls(shape=(size, size), spacing=10.0, dtype=dtype, **kwargs)

    @classmethod
    def openfwi(cls, dtype=np.float32, **kwargs) -> AcousticOperator:
        """The OpenFWI survey (:meth:`Geometry.openfwi`: 70² at 10 m, 5 sources, 70 receivers, 1000 samples at
        1 ms, 15 Hz): data ``(5, 1000, 70)`` per model, OpenFWI's layout. ``kwargs`` go to the constructor
        (``boundary``, ``free_surface``, ``nbl``, ...); ``vmax_bound``/``space_order`` also build the geometry."""
        geometry = Geometry.openfwi(vmax_bound=kwargs.get("vmax_bound", 4.5),
                                    space_order=kwargs.get("space_order", 8))
        return cls(shape=geometry.shape, spacing=geometry.spacing[0], geometry=geometry, dtype=dtype, **kwargs)

    # ------------------------------------------------------------------ pickling (Dask)
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_dv"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ properties
    @property
    def dt(self) -> float:
        return self.geometry.dt

    @property
    def nt(self) -> int:
        return self.geometry.nt

    @property
    def padded_shape(self) -> tuple[int, int]:
        """Devito grid shape ``(nx + 2 nbl, nz + 2 nbl)`` (x first)."""
        return (self.shape[1] + 2 * self.nbl, self.shape[0] + 2 * self.nbl)

    def damping(self) -> np.ndarray:
        """``η`` (1/ms) on the padded ``(x, z)`` grid: ``η_max (d / nbl)²`` at ``d`` points into the layer,
        ``η_max = 3 v_bound ln(1/R) / (2 nbl h)`` (zero with the PML, which absorbs by other terms)."""
        if self.boundary == "pml":
            return np.zeros(self.padded_shape)
        return bnd.sponge_damping(self.padded_shape, self.nbl, self.spacing, self.vmax_bound, self.free_surface)

    def memory_estimate(self) -> dict[str, int]:
        """Bytes the Devito buffers take: ``"forward"`` (every buffer but the saved wavefield: 3 time levels of
        ``u``, ``δu``, ``λ``, 4 pointwise arrays, with the PML 2 levels of 4 auxiliary fields per wavefield and 4
        profiles) and ``"gradient"`` (that plus the saved wavefield, ``(nt + 1)`` levels), on the padded grid
        with Devito's halo of ``space_order / 2`` points per side."""
        nxp, nzp = self.padded_shape
        pts = (nxp + self.space_order) * (nzp + self.space_order) * self.dtype.itemsize
        arrays = 3 * 3 + 4 + ((4 * 2 * 4 + 4) if self.boundary == "pml" else 0)
        # source wavelets, receiver data and the shot records of one call: nt samples per trace
        traces = (self.geometry.n_src + 2 * self.geometry.n_rec) * self.nt * self.dtype.itemsize
        forward = arrays * pts + traces
        return {"forward": forward, "gradient": forward + (self.nt + 1) * pts}

    def check_memory(self, kind: str) -> None:
        """:class:`ValueRangeError` when :meth:`memory_estimate` ``[kind]`` exceeds the memory available now."""
        import psutil

        need, avail = self.memory_estimate()[kind], psutil.virtual_memory().available
        if need > avail:
            raise ValueRangeError(
                f"the {kind} needs about {need / 1e9:.3g} GB of wavefields (padded grid {self.padded_shape}, nt="
                f"{self.nt}, {self.dtype}) but {avail / 1e9:.3g} GB are available; use a smaller grid, a coarser "
                "spacing or a shorter record"
            )

    def pml_profiles(self) -> tuple[np.ndarray, ...]:
        """``(a_x, b_x, a_z, b_z)`` of the PML on the padded ``(x, z)`` grid (no top layer with a free surface)."""
        nxp, nzp = self.padded_shape
        dz, dx = self.spacing
        ax, bx = bnd.pml_coefficients(nxp, self.nbl, dx, self.dt, self.vmax_bound, self.geometry.f0)
        az, bz = bnd.pml_coefficients(nzp, self.nbl, dz, self.dt, self.vmax_bound, self.geometry.f0,
                                      low=not self.free_surface)
        ones = np.ones((nxp, nzp))
        return ax[:, None] * ones, bx[:, None] * ones, az[None, :] * ones, bz[None, :] * ones

    # ------------------------------------------------------------------ input checks
    def check_velocity(self, v: np.ndarray, batched_ok: bool = True) -> np.ndarray:
        """Validate a velocity (or a batch); return it as float64. No PDE is solved before this passes."""
        v = np.asarray(v)
        ok = v.shape == self.model_shape or (batched_ok and v.ndim == 4 and v.shape[1:] == self.model_shape
                                             and v.shape[0] > 0)
        if not ok:
            want = f"{self.model_shape}" + (f" or (B, {', '.join(map(str, self.model_shape))})" if batched_ok else "")
            raise ShapeError(f"velocity must have shape {want} with B >= 1 (depth first, km/s), got {v.shape}")
        v = v.astype(np.float64)
        if not np.all(np.isfinite(v)):
            raise ValueRangeError("velocity contains NaN or inf; pass finite velocities in km/s")
        if np.any(v <= 0):
            raise ValueRangeError(f"velocity must be > 0 km/s everywhere, got min {v.min():g}")
        if v.max() > self.vmax_bound:
            raise StabilityError(
                f"velocity {v.max():.4g} km/s exceeds vmax_bound={self.vmax_bound:g} km/s used for the time step; "
                "raise vmax_bound (smaller dt, more samples) or clip the model"
            )
        self.geometry.check_dispersion(float(v.min()))
        return v

    def _check_shots(self, shots) -> list[int]:
        shots = list(range(self.geometry.n_src)) if shots is None else [int(s) for s in shots]
        for s in shots:
            if not 0 <= s < self.geometry.n_src:
                raise ShapeError(f"shot index {s} out of range [0, {self.geometry.n_src})")
        return shots

    def _check_data(self, d: np.ndarray, n_shots: int, what: str) -> np.ndarray:
        d = np.asarray(d)
        want = (n_shots, self.nt, self.geometry.n_rec)
        if d.shape != want:
            raise ShapeError(f"{what} must have shape {want} (n_src, nt, n_rec), got {d.shape}")
        if not np.all(np.isfinite(d)):
            raise ValueRangeError(f"{what} contains NaN or inf")
        return d

    # ------------------------------------------------------------------ Devito objects
    def _devito(self):
        """Build (once) the grid, the buffers and the four Operators: forward, forward with save,
        fused forward+Born, adjoint with gradient accumulation."""
        if self._dv is not None:
            return self._dv
        from devito import Eq, Function, Grid, Operator, SparseTimeFunction, TimeFunction

        from geomem.env import quiet_devito

        quiet_devito()
        nxp, nzp = self.padded_shape
        dz, dx = self.spacing
        grid = Grid(
            shape=(nxp, nzp),
            extent=((nxp - 1) * dx, (nzp - 1) * dz),
            origin=(-self.nbl * dx, -self.nbl * dz),
            dtype=self.dtype.type,
        )
        # dt stays a symbol (a runtime argument) so the generated C does not depend on its value
        so, nt, dt = self.space_order, self.nt, grid.time_dim.spacing
        # the recursion's pointwise coefficients, written by _set_model for the fixed dt
        g = Function(name="g", grid=grid, space_order=so)
        c = Function(name="c", grid=grid, space_order=so)
        u = TimeFunction(name="u", grid=grid, time_order=2, space_order=so)
        us = TimeFunction(name="us", grid=grid, time_order=2, space_order=so, save=nt + 1)
        du = TimeFunction(name="du", grid=grid, time_order=2, space_order=so)
        lam = TimeFunction(name="lam", grid=grid, time_order=2, space_order=so)
        dm = Function(name="dm", grid=grid, space_order=so)  # holds δm / D (see born_shots)
        # accumulated over nt steps in the operator's precision: a float64 accumulator makes Devito evaluate the
        # whole adjoint stencil in double (2-3x slower); the float32 gradient's error is dominated by the float32
        # wavefields either way (relative difference to float64 ~7e-5 with and without a float64 accumulator)
        grad = Function(name="grad", grid=grid, space_order=so)
        # sparse buffers hold nt + 1 samples to match the saved wavefield; sample nt is never used
        src = SparseTimeFunction(name="src", grid=grid, npoint=1, nt=nt + 1)
        rec = SparseTimeFunction(name="rec", grid=grid, npoint=self.geometry.n_rec, nt=nt + 1)
        rec.coordinates.data[:] = self.geometry.rec_coords

        pml, fs = self.boundary == "pml", self.free_surface
        surface, half = self.nbl, so // 2  # the model's top row in the padded grid; ghost rows above it
        coef = tuple(Function(name=n, grid=grid, space_order=so) for n in ("ax", "bx", "az", "bz")) if pml else ()

        def aux_fields(prefix):
            """The PML's auxiliary fields of one wavefield (none without the PML)."""
            if not pml:
                return ()
            return tuple(TimeFunction(name=f"{prefix}{n}", grid=grid, time_order=1, space_order=so)
                         for n in ("px", "pz", "zx", "zz"))

        aux = {name: aux_fields(name) for name in ("u", "us", "du", "lam")}

        strips = bnd.pml_strips(grid, self.nbl, so // 2, fs) if pml and self.nbl else None

        def step(w, later, earlier, extra=0):
            """``later = 2g (w − earlier) + earlier + c (L w + PML terms) + extra``: the recursion divided by
            ``D``, with the PML's auxiliary updates before it and its terms added in the layers after it."""
            before, after = bnd.pml_forward_eqs(w, aux[w.name], coef, strips, c) if strips else ([], [])
            return [*before, Eq(later, 2 * g * (w - earlier) + earlier + c * w.laplace + extra), *after]

        def mirror(w):
            return bnd.mirror_eqs(w, 1, surface, half) if fs else []

        def inject_src(w):
            return [src.inject(field=w.forward, expr=src * c)]  # dt² q / D

        def forward_eqs(w):
            return [*step(w, w.forward, w.backward), *inject_src(w), *mirror(w)]

        born_src = -dm * (u.forward - 2 * u + u.backward)
        adj_before, adj_after = bnd.pml_adjoint_eqs(lam, aux["lam"], coef, strips, c) if strips else ([], [])
        ops = {
            "forward": Operator([*forward_eqs(u), rec.interpolate(expr=u)], name="fwd"),
            "forward_save": Operator([*forward_eqs(us), rec.interpolate(expr=us)], name="fwd_save"),
            "born": Operator(
                [*forward_eqs(u), *step(du, du.forward, du.backward, born_src), *mirror(du),
                 rec.interpolate(expr=du)], name="born"
            ),
            "adjoint": Operator(
                [
                    *adj_before,
                    # by parts: before lam.backward's slot (it holds λ_{t+2}, see the class doc) is overwritten
                    *([Eq(grad, grad - us.forward * (lam - 2 * lam.forward + lam.backward))]
                      if self.imaging == "by_parts" else []),
                    Eq(lam.backward, 2 * g * (lam - lam.forward) + lam.forward + c * lam.laplace),
                    *adj_after,
                    rec.inject(field=lam.backward, expr=rec * c / dt**2),  # Rᵀ δd / D
                    *(bnd.mirror_adjoint_eqs(lam, -1, surface, half) if fs else []),
                    *([Eq(grad, grad - (us.forward - 2 * us + us.backward) * lam)]
                      if self.imaging == "direct" else []),
                ],
                name="adjoint",
            ),
        }
        # plain ndarray views of the buffers' domains: writing through them skips Devito's Data indexing
        # (~0.1 ms a call); the memory is the same, and the halos, never written, stay zero
        arrays = {f.name: f.data.view(np.ndarray) for f in (g, c, u, du, lam, dm, grad, src, rec)}
        arrays["src_coords"] = src.coordinates.data.view(np.ndarray)
        for f, values in zip(coef, self.pml_profiles() if pml else (), strict=True):
            f.data[:] = values
        # the PML's auxiliary buffers each kind runs with, zeroed before every run (see _run)
        views = {k: [f.data.view(np.ndarray) for f in v] for k, v in aux.items()}
        reset = {"forward": views["u"], "forward_save": views["us"], "born": views["u"] + views["du"],
                 "adjoint": views["lam"]}
        self._dv = dict(grid=grid, g=g, c=c, eta_half_dt=self.damping() * (self.dt / 2),
                        u=u, us=us, du=du, lam=lam, dm=dm, grad=grad, src=src, rec=rec, ops=ops, args={},
                        a=arrays, reset=reset, wavelet=self.geometry.wavelet())
        return self._dv

    def check_halo(self, func) -> None:
        """Raise :class:`ShapeError` unless ``func`` has the halo the operators were built with.

        A Devito ``Function`` with another halo passed in place of the Born perturbation is read at shifted
        offsets and gives wrong Born data without any error from Devito.
        """
        ref = self._devito()["dm"]
        if tuple(func.halo) != tuple(ref.halo) or tuple(func.shape) != tuple(ref.shape):
            raise ShapeError(
                f"perturbation Function has halo {tuple(func.halo)} and shape {func.shape}; the Born operator expects "
                f"halo {tuple(ref.halo)} and shape {ref.shape}: build it with space_order={self.space_order}"
            )

    def _pad(self, a: np.ndarray) -> np.ndarray:
        """``P``: ``(nz, nx)`` → padded ``(x, z)`` by edge replication."""
        return np.pad(a.T, self.nbl, mode="edge")

    def _pad_adjoint(self, g: np.ndarray) -> np.ndarray:
        """``Pᵀ``: padded ``(x, z)`` → ``(nz, nx)``, summing the layer onto the edge cells."""
        b = self.nbl
        g = np.array(g, dtype=np.float64)
        if b:
            g[b, :] += g[:b, :].sum(axis=0)
            g[-b - 1, :] += g[-b:, :].sum(axis=0)
            g = g[b:-b, :]
            g[:, b] += g[:, :b].sum(axis=1)
            g[:, -b - 1] += g[:, -b:].sum(axis=1)
            g = g[:, b:-b]
        return g.T

    def _set_model(self, v2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write the coefficients of ``m = (P v)^{−2}`` into Devito; return ``P v`` (float64, padded ``(x, z)``)
        and ``D = m + η dt/2``."""
        vp = self._pad(v2d)
        m = 1.0 / vp**2
        dv = self._devito()
        big_d = m + dv["eta_half_dt"]
        dv["a"]["g"][:] = m / big_d
        dv["a"]["c"][:] = self.dt**2 / big_d
        if self.free_surface:  # C mirror-symmetric over the ghost rows: the adjoint's Eᵀ is then exact
            s, half = self.nbl, self.space_order // 2
            dv["a"]["c"][:, s - half : s] = dv["a"]["c"][:, s + half : s : -1]
        return vp, big_d

    def _set_shot(self, s: int) -> None:
        dv = self._devito()
        dv["a"]["src_coords"][0] = self.geometry.src_coords[s]
        dv["a"]["src"][: self.nt, 0] = dv["wavelet"]

    def _run(self, kind: str) -> None:
        """Run operator ``kind`` over time steps 1 … nt−1.

        The first run of each kind goes through Devito's argument processing (``Operator.arguments``, the
        checks ``apply`` does); its argument values are kept and later runs call the compiled function with
        them directly. That is valid because every buffer is allocated once and only written in place, and
        it saves Devito's per-call argument processing (several ms per call, a third of a 64² forward shot).
        """
        dv = self._devito()
        for buf in dv["reset"][kind]:
            buf[:] = 0
        op = dv["ops"][kind]
        values = dv["args"].get(kind)
        if values is None:
            args = op.arguments(time_m=1, time_M=self.nt - 1, dt=self.dtype.type(self.dt))
            values = dv["args"][kind] = [args[p.name] for p in op.parameters]
        status = op.cfunction(*values)
        if status != 0:
            from devito.exceptions import ExecutionError

            raise ExecutionError(f"Devito operator {kind!r} returned status {status}")

    # ------------------------------------------------------------------ shot-level kernels
    def forward_shots(self, v: np.ndarray, shots=None) -> np.ndarray:
        """Shot records ``(len(shots), nt, n_rec)`` for one velocity ``(1, nz, nx)``."""
        v = self.check_velocity(v, batched_ok=False)
        shots = self._check_shots(shots)
        with self._lock:
            dv = self._devito()
            self._set_model(v[0])
            out = np.zeros((len(shots), self.nt, self.geometry.n_rec), dtype=self.dtype)
            for i, s in enumerate(shots):
                self._set_shot(s)
                dv["a"]["u"][:] = 0
                dv["a"]["rec"][:] = 0
                self._run("forward")
                out[i] = dv["a"]["rec"][: self.nt]
        return out

    def born_shots(self, v: np.ndarray, dv_model: np.ndarray, shots=None) -> np.ndarray:
        """Born data ``J δv`` ``(len(shots), nt, n_rec)`` for a velocity perturbation ``(1, nz, nx)`` km/s."""
        v = self.check_velocity(v, batched_ok=False)
        shots = self._check_shots(shots)
        dvm = np.asarray(dv_model, dtype=np.float64)
        if dvm.shape != self.model_shape:
            raise ShapeError(f"velocity perturbation must have shape {self.model_shape}, got {dvm.shape}")
        with self._lock:
            d = self._devito()
            vp, big_d = self._set_model(v[0])
            self.check_halo(d["dm"])
            d["a"]["dm"][:] = -2.0 * vp**-3 * self._pad(dvm[0]) / big_d
            out = np.zeros((len(shots), self.nt, self.geometry.n_rec), dtype=self.dtype)
            for i, s in enumerate(shots):
                self._set_shot(s)
                d["a"]["u"][:] = 0
                d["a"]["du"][:] = 0
                d["a"]["rec"][:] = 0
                self._run("born")
                out[i] = d["a"]["rec"][: self.nt]
        return out

    def _adjoint_shot(self, s: int, d_target: np.ndarray, residual: bool) -> np.ndarray:
        """Forward with save for shot ``s`` (recording ``F_s(v)``), then the adjoint run injecting
        ``F_s(v) − d_target`` if ``residual`` else ``d_target``; accumulates ``J_mᵀ(·)`` into ``grad``.
        Returns the recorded ``F_s(v)``."""
        if not self._saved_checked:  # the saved wavefield is allocated by the first forward_save run
            self.check_memory("gradient")
            self._saved_checked = True
        d = self._devito()
        self._set_shot(s)
        d["a"]["rec"][:] = 0
        self._run("forward_save")
        data = np.array(d["a"]["rec"][: self.nt])
        d["a"]["rec"][: self.nt] = data - d_target if residual else d_target
        d["a"]["lam"][:] = 0
        self._run("adjoint")
        return data

    def _shot_gradient(self, vp: np.ndarray) -> np.ndarray:
        """The accumulated ``J_mᵀ(·)`` carried to velocity: ``Pᵀ(−2 v_pad^{−3} ⊙ grad)``, ``(1, nz, nx)`` float64."""
        g = np.array(self._devito()["a"]["grad"], dtype=np.float64) * (-2.0 * vp**-3)
        return self._pad_adjoint(g)[None]

    def adjoint_born_shots(self, v: np.ndarray, dd: np.ndarray, shots=None) -> np.ndarray:
        """Per-shot adjoint Born ``J_sᵀ δd_s`` for ``δd`` ``(len(shots), nt, n_rec)``: ``(len(shots), 1, nz, nx)``
        float64 (sum over axis 0 for ``Jᵀ δd``; kept per shot so serial and parallel sums are identical)."""
        v = self.check_velocity(v, batched_ok=False)
        shots = self._check_shots(shots)
        dd = self._check_data(dd, len(shots), "data perturbation")
        with self._lock:
            d = self._devito()
            vp, _ = self._set_model(v[0])
            out = np.zeros((len(shots), *self.model_shape))
            for i, s in enumerate(shots):
                d["a"]["grad"][:] = 0
                self._adjoint_shot(s, dd[i], residual=False)
                out[i] = self._shot_gradient(vp)
        return out

    def misfit_gradient_shots(self, v: np.ndarray, d_obs: np.ndarray, shots=None) -> tuple[np.ndarray, np.ndarray]:
        """Per-shot ``½‖F_s(v) − d_s‖²`` ``(len(shots),)`` and ``J_sᵀ(F_s(v) − d_s)`` ``(len(shots), 1, nz, nx)``,
        float64, for ``d_obs`` ``(len(shots), nt, n_rec)`` (γ = 1; see :func:`combine_shots`)."""
        v = self.check_velocity(v, batched_ok=False)
        shots = self._check_shots(shots)
        d_obs = self._check_data(d_obs, len(shots), "observed data")
        with self._lock:
            d = self._devito()
            vp, _ = self._set_model(v[0])
            phis, grads = np.zeros(len(shots)), np.zeros((len(shots), *self.model_shape))
            for i, s in enumerate(shots):
                d["a"]["grad"][:] = 0
                data = self._adjoint_shot(s, d_obs[i], residual=True)
                r = data.astype(np.float64) - d_obs[i]
                phis[i] = 0.5 * float(np.sum(r * r))
                grads[i] = self._shot_gradient(vp)
        return phis, grads

    # ------------------------------------------------------------------ ForwardOperator protocol
    def forward(self, v: np.ndarray) -> np.ndarray:
        """``F(v)``: ``(1, nz, nx)`` → ``(n_src, nt, n_rec)``, or ``(B, 1, nz, nx)`` → ``(B, n_src, nt, n_rec)``."""
        v = self.check_velocity(v)
        if v.ndim == 4:
            return np.stack([self.forward_shots(vi) for vi in v])
        return self.forward_shots(v)

    def jacobian(self, v: np.ndarray) -> LinearOperator:
        """``J = ∂F/∂v`` at ``v``: ``matvec`` is Born modelling, ``rmatvec`` adjoint Born (velocity units)."""
        v = self.check_velocity(v, batched_ok=False)
        return LinearOperator(
            self.model_shape,
            self.data_shape,
            lambda dvm: self.born_shots(v, dvm),
            lambda dd: self.adjoint_born_shots(v, dd).sum(axis=0).astype(self.dtype),
        )

    def misfit_and_gradient(self, v: np.ndarray, d_obs: np.ndarray, gamma: float) -> tuple[float, np.ndarray]:
        """``½‖F(v) − d_obs‖²/γ²`` and its adjoint-state gradient ``(1, nz, nx)``, one shot at a time."""
        check_gamma(gamma)
        phis, grads = self.misfit_gradient_shots(v, d_obs)
        return combine_shots(phis, grads, gamma, self.dtype)


def check_gamma(gamma: float) -> float:
    if not (np.isfinite(gamma) and gamma > 0):
        raise ValueRangeError(f"gamma must be a positive, finite noise level, got {gamma}")
    return float(gamma)


def combine_shots(phis: np.ndarray, grads: np.ndarray, gamma: float, dtype) -> tuple[float, np.ndarray]:
    """``(Σ_s φ_s / γ², Σ_s g_s / γ²)`` summed in shot order in float64, the gradient cast to ``dtype``."""
    return float(np.sum(phis)) / gamma**2, (np.sum(grads, axis=0) / gamma**2).astype(dtype)
