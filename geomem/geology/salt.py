"""Salt bodies: a high-velocity blob (A) or a diapir with a stem rising from the bottom (B).

In fractional coordinates ``(z, x)`` (see :mod:`geomem.geology.layers`) the body is

    ρ(z, x) < r(θ),   ρ = √(((z − z_c)/r_z)² + ((x − x_c)/r_x)²),   θ = atan2((z − z_c)/r_z, (x − x_c)/r_x),
    r(θ) = 1 + Σ_{m=2}^{5} a_m cos(mθ + φ_m),   |a_m| ≤ roughness / m,

an ellipse with a rough boundary; a diapir adds a stem ``|x − x_c − s·(z − z_c)| < w/2`` below the centre
(``w`` a fraction of the body's width, ``s`` a small lean).
"""

from __future__ import annotations

import numpy as np


def salt_mask(rng: np.random.Generator, z: np.ndarray, x: np.ndarray, roughness: float, diapir: bool) -> np.ndarray:
    """Boolean mask of a salt body on the fractional grid ``(z, x)``."""
    zc, xc = rng.uniform(0.45, 0.7), rng.uniform(0.3, 0.7)
    rz, rx = rng.uniform(0.1, 0.2), rng.uniform(0.12, 0.28)
    u, w = (z - zc) / rz, (x - xc) / rx
    rho, theta = np.hypot(u, w), np.arctan2(u, w)
    m = np.arange(2, 6)
    a = roughness * rng.uniform(-1, 1, size=m.size) / m
    phi = rng.uniform(0, 2 * np.pi, size=m.size)
    r = 1 + (a[:, None, None] * np.cos(m[:, None, None] * theta[None] + phi[:, None, None])).sum(axis=0)
    mask = rho < r
    if diapir:
        width = rng.uniform(0.3, 0.7) * 2 * rx
        lean = rng.uniform(-0.3, 0.3)
        mask |= (z > zc) & (np.abs(x - xc - lean * (z - zc)) < 0.5 * width)
    return mask
