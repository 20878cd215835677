"""Boundaries of the acoustic operator: the damping sponge, a convolutional PML, and a free surface.

Layer profiles live on the padded Devito grid ``(x, z)``; ``f ∈ [0, 1]`` is the fraction of the way into
an ``nbl``-point layer (``f = d / nbl`` at ``d`` points into it, ``0`` in the model). Units: ``dt`` ms,
spacing m, velocity km/s (m/ms), so every rate below is in 1/ms.

**Sponge** (the default): a damping term ``η ∂u/∂t`` with ``η = η_max f²``,
``η_max = 3 v_bound ln(1/R) / (2 nbl h)``; it reflects a few percent at a 20-point layer (see
``docs/physics.md``).

**Convolutional PML** (``boundary="pml"``; second-order form of Pasalic & McGarry 2010), per axis ``x``
(likewise ``z``), with ``σ = σ_max f²``, ``α = α_max (1 − f)``, ``σ_max = η_max`` above and
``α_max = π f0 / 1000``::

    b = exp(−(σ + α) dt),   a = σ / (σ + α) · (b − 1)          (a = b = 0 outside the layer)
    ψ^n = b ψ^{n−1} + a D_x u^n
    ζ^n = b ζ^{n−1} + a (D_xx u^n + D_x ψ^n)
    u^{n+1} = 2u^n − u^{n−1} + C (L u^n + D_x ψ^n + ζ^n + D_z φ^n + ξ^n) + C Sᵀ q^n

with ``D_x`` the centred first derivative (antisymmetric: ``D_xᵀ = −D_x`` on the padded grid, whose halo
stays zero) and ``D_xx`` the second. Its exact adjoint (reverse mode of the recursion above, ``ν^k = C ū^k``
the operator's adjoint field, ``Z``/``P`` the adjoints of ``ζ``/``ψ``), run backward::

    Z^n = ν^{n+1} + b Z^{n+1}
    P^n = −D_x ν^{n+1} − D_x(a Z^n) + b P^{n+1}
    ν^n = 2ν^{n+1} − ν^{n+2} + C (L ν^{n+1} + D_xx(a Z^n) − D_x(a P^n) + [z terms] + Rᵀ δd^n)

**Free surface** (``free_surface=True``; image method): ``u = 0`` on the model's top row ``z = 0``
(padded row ``s = nbl``) and ``u(s − k) = −u(s + k)`` on the ``p = space_order / 2`` ghost rows above it,
applied after every update: ``u^{n+1} = E(·)``. No absorbing layer on the top side. Rows above the ghost
rows never reach the model. The adjoint applies ``Eᵀ`` (fold the ghost rows onto their mirrors with a minus
sign, then zero the ghost and surface rows) after every adjoint update; this is exact when ``C`` is
mirror-symmetric over the ghost rows, which the operator arranges (``C`` there never affects the forward).
"""

from __future__ import annotations

import math

import numpy as np

#: reflection coefficient the layer profiles are designed for
R_TARGET = 1e-3
BOUNDARIES = ("sponge", "pml")


def layer_fraction(n: int, nbl: int, low: bool = True, high: bool = True) -> np.ndarray:
    """``f`` along one padded axis of ``n`` points: ``(nbl − i)/nbl`` in the low layer, ``0`` inside,
    likewise in the high layer; a side with ``low``/``high`` False has no layer (zeros)."""
    if nbl == 0:
        return np.zeros(n)
    i = np.arange(n)
    lo = np.maximum(nbl - i, 0) if low else np.zeros(n)
    hi = np.maximum(i - (n - 1 - nbl), 0) if high else np.zeros(n)
    return np.maximum(lo, hi) / nbl


def sigma_max(vmax: float, nbl: int, h: float) -> float:
    """``3 v ln(1/R) / (2 nbl h)`` in 1/ms (quadratic profile, target reflection ``R_TARGET``)."""
    return 3.0 * vmax * math.log(1.0 / R_TARGET) / (2.0 * nbl * h)


def sponge_damping(padded_shape: tuple[int, int], nbl: int, spacing: tuple[float, float], vmax: float,
                   free_surface: bool = False) -> np.ndarray:
    """``η`` (1/ms) on the padded ``(x, z)`` grid: ``η_max (f_x² + f_z²)``; no top layer with a free surface."""
    nxp, nzp = padded_shape
    if nbl == 0:
        return np.zeros((nxp, nzp))
    eta = sigma_max(vmax, nbl, max(spacing))
    fx, fz = layer_fraction(nxp, nbl), layer_fraction(nzp, nbl, low=not free_surface)
    return eta * (fx[:, None] ** 2 + fz[None, :] ** 2)


def pml_coefficients(n: int, nbl: int, h: float, dt: float, vmax: float, f0: float, low: bool = True,
                     high: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` of the convolutional PML along one padded axis of ``n`` points (see the module doc)."""
    f = layer_fraction(n, nbl, low, high)
    inside = f > 0
    a, b = np.zeros(n), np.zeros(n)
    if not inside.any():
        return a, b
    sigma = sigma_max(vmax, nbl, h) * f[inside] ** 2
    alpha = (math.pi * f0 / 1000.0) * (1.0 - f[inside])
    b[inside] = np.exp(-(sigma + alpha) * dt)
    a[inside] = sigma / (sigma + alpha) * (b[inside] - 1.0)
    return a, b


# ---------------------------------------------------------------------- Devito equations
def pml_strips(grid, nbl: int, half_order: int, free_surface: bool) -> dict[str, list]:
    """Devito ``SubDomain`` strips where the PML works: ``"x"``/``"z"`` the layers of that axis (``nbl`` points;
    no top layer with a free surface), ``"x_ext"``/``"z_ext"`` the same widened by ``half_order`` points into the
    model, where the update still reads the auxiliary fields through a derivative. Outside the strips ``a = 0``,
    so the auxiliary fields are exactly zero there and are neither computed nor read."""
    from devito import SubDomain

    class Strip(SubDomain):
        def __init__(self, name, axis, side, width, **kwargs):
            self.name, self._spec = name, (axis, side, width)
            super().__init__(**kwargs)

        def define(self, dimensions):
            axis, side, width = self._spec
            return {d: ((side, width) if i == axis else d) for i, d in enumerate(dimensions)}

    sides = {"x": ("left", "right"), "z": ("right",) if free_surface else ("left", "right")}
    out = {}
    for ext, width in (("", nbl), ("_ext", nbl + half_order)):
        for axis, key in enumerate(("x", "z")):
            size = grid.shape[axis]
            out[key + ext] = [Strip(f"pml{key}{ext}{side}", axis, side, min(width, size), grid=grid)
                              for side in sides[key]]
    return out


def pml_forward_eqs(w, aux, coef, strips, c):
    """One forward PML step for the field ``w``: ``(before, after)``. ``before`` updates the auxiliary fields
    ``aux = (psi_x, psi_z, zeta_x, zeta_z)`` (time-order-1 ``TimeFunction``) in their layers and must run before
    the update of ``w.forward``; ``after`` adds ``C (D_x ψ + ζ_x)`` (and the ``z`` terms) to ``w.forward`` in the
    widened strips and must run after it. ``coef = (ax, bx, az, bz)`` (``Function``), ``c`` the ``C`` array."""
    from devito import Eq

    px, pz, zx, zz = aux
    ax, bx, az, bz = coef
    before = [Eq(px, bx * px.backward + ax * w.dx, subdomain=sd) for sd in strips["x"]]
    before += [Eq(pz, bz * pz.backward + az * w.dy, subdomain=sd) for sd in strips["z"]]
    # ζ^n with ψ^n substituted (D_x ψ^n = D_x(b ψ^{n−1}) + D_x(a D_x u^n)): no update reads another field of the
    # same step at an offset, which Devito 4.8.23 mis-scheduled (fused into one loop) on one-sided strips
    before += [Eq(zx, bx * zx.backward + ax * (w.dx2 + (bx * px.backward).dx + (ax * w.dx).dx), subdomain=sd)
               for sd in strips["x"]]
    before += [Eq(zz, bz * zz.backward + az * (w.dy2 + (bz * pz.backward).dy + (az * w.dy).dy), subdomain=sd)
               for sd in strips["z"]]
    after = [Eq(w.forward, w.forward + c * (px.dx + zx), subdomain=sd) for sd in strips["x_ext"]]
    after += [Eq(w.forward, w.forward + c * (pz.dy + zz), subdomain=sd) for sd in strips["z_ext"]]
    return before, after


def pml_adjoint_eqs(lam, aux, coef, strips, c):
    """One backward adjoint PML step (``lam`` holds ``ν``; ``aux = (P_x, P_z, Z_x, Z_z)``): ``(before, after)``
    as in :func:`pml_forward_eqs`, ``after`` adding ``C (D_xx(a Z) − D_x(a P))`` (and ``z``) to ``lam.backward``."""
    from devito import Eq

    px, pz, zx, zz = aux
    ax, bx, az, bz = coef
    before = [Eq(zx, lam + bx * zx.forward, subdomain=sd) for sd in strips["x"]]
    before += [Eq(zz, lam + bz * zz.forward, subdomain=sd) for sd in strips["z"]]
    # P^n with a Z^n = a ν^{n+1} + a b Z^{n+1} substituted (see pml_forward_eqs for why)
    before += [Eq(px, -((1 + ax) * lam).dx - (ax * bx * zx.forward).dx + bx * px.forward, subdomain=sd)
               for sd in strips["x"]]
    before += [Eq(pz, -((1 + az) * lam).dy - (az * bz * zz.forward).dy + bz * pz.forward, subdomain=sd)
               for sd in strips["z"]]
    after = [Eq(lam.backward, lam.backward + c * ((ax * zx).dx2 - (ax * px).dx), subdomain=sd)
             for sd in strips["x_ext"]]
    after += [Eq(lam.backward, lam.backward + c * ((az * zz).dy2 - (az * pz).dy), subdomain=sd)
              for sd in strips["z_ext"]]
    return before, after


def _at_row(f, shift: int, row: int):
    """The field ``f`` at time ``t + shift`` and the fixed depth index ``row``. Indexed by the grid's stepping
    dimension for a buffered field (by the time dimension, Devito maps another buffer's modulo index onto it
    when fields of several buffer sizes share the operator) and by the time dimension for a saved one."""
    _, x_index, _ = f.indices
    time_index = f.indices[0] if f.save else f.grid.stepping_dim
    return f[time_index + shift, x_index, row]


def mirror_eqs(f, shift: int, surface: int, half_order: int):
    """``E`` on ``f`` at time ``t + shift``: ghost rows ``surface − k`` = ``−`` rows ``surface + k``
    (``k = 1 … p``), then the surface row zeroed."""
    from devito import Eq

    eqs = [Eq(_at_row(f, shift, surface - k), -_at_row(f, shift, surface + k)) for k in range(1, half_order + 1)]
    return [*eqs, Eq(_at_row(f, shift, surface), 0)]


def mirror_adjoint_eqs(f, shift: int, surface: int, half_order: int):
    """``Eᵀ`` on ``f`` at time ``t + shift``: rows ``surface + k`` −= rows ``surface − k``, then the ghost and
    surface rows zeroed."""
    from devito import Eq

    fold = [Eq(_at_row(f, shift, surface + k), _at_row(f, shift, surface + k) - _at_row(f, shift, surface - k))
            for k in range(1, half_order + 1)]
    return [*fold, *(Eq(_at_row(f, shift, surface - k), 0) for k in range(half_order + 1))]
