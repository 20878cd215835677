"""Layered velocity models: interfaces, increasing layer velocities, and dip-slip faults.

Coordinates are fractions of the model: depth ``z ∈ (0, 1)`` (``z = (iz + ½)/nz``) and horizontal
distance ``x ∈ (0, 1)`` (``x = (ix + ½)/nx``), so a family looks the same at any grid size.

- Interface ``j`` lies at depth ``d_j(x) = b_j + Σ_m a_jm sin(2π f_m x + φ_jm)``; interfaces are made
  non-crossing by a running maximum over ``j`` (a deeper interface pinches out against the one above).
- The layer index of a point is the number of interfaces above it, ``k(z, x) = Σ_j [z ≥ d_j(x)]``, and
  the velocity is ``v = v_k`` with ``v_0 < v_1 < …`` (km/s): velocity increases with depth.
- A fault is a plane through ``(z0, x0)`` dipping at ``θ`` degrees from horizontal. The hanging wall
  (the block above the plane) slid along the plane by ``throw`` (fraction of depth; > 0 normal fault,
  hanging wall down; < 0 reverse). A point ``(z, x)`` of the hanging wall shows the unfaulted model at
  ``(z − t, x − t·∂x/∂z)`` with ``∂x/∂z = s·cot θ·nz/nx`` the plane's slope in fractional units
  (``s = ±1`` its dip direction). Faults are listed oldest first and undone youngest first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interfaces:
    """Interface depths ``d_j(x) = b_j + Σ_m a_jm sin(2π f_m x + φ_jm)`` (fractions of depth)."""

    base: np.ndarray  # (J,)
    amp: np.ndarray  # (J, M)
    freq: np.ndarray  # (M,) cycles per model width
    phase: np.ndarray  # (J, M)

    def depth(self, x: np.ndarray) -> np.ndarray:
        """Depths ``(J, *x.shape)`` at fractional horizontal positions ``x``, non-crossing."""
        d = np.broadcast_to(self.base.reshape((-1,) + (1,) * x.ndim), (len(self.base),) + x.shape).copy()
        for m in range(len(self.freq)):
            arg = 2 * np.pi * self.freq[m] * x
            d += self.amp[:, m].reshape((-1,) + (1,) * x.ndim) * np.sin(
                arg[None] + self.phase[:, m].reshape((-1,) + (1,) * x.ndim)
            )
        return np.maximum.accumulate(d, axis=0)


@dataclass(frozen=True)
class Fault:
    """A dip-slip fault: plane through ``(z0, x0)`` (fractions), ``dip`` in degrees, ``direction`` ±1
    (+1: the plane moves to larger x with depth), ``throw`` in fractions of depth (> 0 normal)."""

    x0: float
    z0: float
    dip: float
    direction: int
    throw: float

    def slope(self, nz: int, nx: int) -> float:
        """``∂x/∂z`` of the plane in fractional coordinates."""
        return self.direction * nz / (nx * np.tan(np.radians(self.dip)))

    def hanging_wall(self, z: np.ndarray, x: np.ndarray, nz: int, nx: int) -> np.ndarray:
        """Boolean mask of the points above the fault plane."""
        xf = self.x0 + (z - self.z0) * self.slope(nz, nx)
        return self.direction * (x - xf) > 0


def grid(nz: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Fractional cell-centre coordinates ``(z, x)``, each ``(nz, nx)``."""
    z = (np.arange(nz) + 0.5) / nz
    x = (np.arange(nx) + 0.5) / nx
    return np.broadcast_to(z[:, None], (nz, nx)), np.broadcast_to(x[None, :], (nz, nx))


def unfault(z: np.ndarray, x: np.ndarray, faults: list[Fault], nz: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each present-day point was before faulting: undo faults youngest first."""
    z, x = z.copy(), x.copy()
    for f in reversed(faults):
        hw = f.hanging_wall(z, x, nz, nx)
        z[hw] -= f.throw
        x[hw] -= f.throw * f.slope(nz, nx)
    return z, x


def render(
    interfaces: Interfaces, velocities: np.ndarray, nz: int, nx: int, faults: list[Fault] | None = None
) -> np.ndarray:
    """Velocity ``(nz, nx)`` of a layered model: ``v[k(z, x)]`` after undoing ``faults``."""
    z, x = grid(nz, nx)
    if faults:
        z, x = unfault(z, x, faults, nz, nx)
        depths = interfaces.depth(x)  # (J, nz, nx)
    else:
        depths = interfaces.depth(x[0])[:, None, :]  # (J, 1, nx): columns share their interfaces
    k = (z[None] >= depths).sum(axis=0)
    return velocities[k]


def increasing_velocities(
    rng: np.random.Generator, k: int, vmin: float, vmax: float, top: tuple[float, float] = (0.0, 0.3),
    span: tuple[float, float] = (0.5, 1.0), min_step: float = 0.03,
) -> np.ndarray:
    """``k`` velocities ``v_0 < … < v_{k−1}`` in ``[vmin, vmax]`` (km/s).

    ``v_0 = vmin + u·(vmax − vmin)`` with ``u ~ U(top)``; the total increase is a fraction ``U(span)`` of
    ``vmax − v_0``, split in Dirichlet steps of at least ``min_step·(vmax − vmin)`` (less if they cannot fit).
    """
    r = vmax - vmin
    v0 = vmin + rng.uniform(*top) * r
    total = rng.uniform(*span) * (vmax - v0)
    if k == 1:
        return np.array([v0])
    step = min(min_step * r, 0.5 * total / (k - 1))
    steps = step + rng.dirichlet(np.full(k - 1, 2.0)) * (total - (k - 1) * step)
    return np.minimum(v0 + np.concatenate([[0.0], np.cumsum(steps)]), vmax)


def layer_bases(rng: np.random.Generator, j: int, top: float = 0.08, bottom: float = 0.95) -> np.ndarray:
    """``j`` increasing interface depths in ``(top, bottom)`` with Dirichlet(3) layer thicknesses."""
    frac = np.cumsum(rng.dirichlet(np.full(j + 1, 3.0)))[:-1]
    return top + (bottom - top) * frac


def folded_interfaces(
    rng: np.random.Generator, j: int, n_waves: int, amp: tuple[float, float], own_amp: float,
    freq: tuple[float, float] = (0.3, 1.5),
) -> Interfaces:
    """Interfaces sharing one fold ``Σ_m A_m sin(2π f_m x + φ_m)`` (``Σ A_m ~ U(amp)``), each with its own
    extra perturbation of the same sinusoids up to ``own_amp`` (0: parallel folds; no waves: flat)."""
    base = layer_bases(rng, j)
    if n_waves == 0:
        empty = np.zeros((j, 0))
        return Interfaces(base, empty, np.zeros(0), empty)
    f = rng.uniform(*freq, size=n_waves)
    weights = rng.dirichlet(np.ones(n_waves)) * rng.uniform(*amp)
    shared_phase = rng.uniform(0, 2 * np.pi, size=n_waves)
    a = weights[None, :] + own_amp * rng.uniform(-1, 1, size=(j, n_waves))
    phase = np.broadcast_to(shared_phase, (j, n_waves)).copy()
    return Interfaces(base, a, f, phase)


def random_faults(
    rng: np.random.Generator, count: int, throw: tuple[float, float], dip: tuple[float, float], reverse: bool
) -> list[Fault]:
    """``count`` faults crossing mid-depth in the central half of the model, throws ``U(throw)``
    (sign flipped with probability ½ when ``reverse``)."""
    faults = []
    for _ in range(count):
        t = rng.uniform(*throw)
        if reverse and rng.random() < 0.5:
            t = -t
        faults.append(
            Fault(x0=rng.uniform(0.25, 0.75), z0=rng.uniform(0.3, 0.7), dip=rng.uniform(*dip),
                  direction=int(rng.choice([-1, 1])), throw=t)
        )
    return faults
