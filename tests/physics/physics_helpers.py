"""Tiny grids, geometries and velocity models shared by the physics tests."""

import numpy as np

from geomem.physics.acquisition import Geometry

SHAPE = (24, 24)
SPACING = 10.0


def tiny_geometry(n_src=2, t_max=300.0):
    return Geometry.surface(SHAPE, SPACING, n_src=n_src, t_max=t_max, f0=15.0)


def random_velocity(seed, shape=SHAPE, lo=2.0, hi=3.0):
    """A smooth-ish random velocity (1, nz, nx) in [lo, hi] km/s."""
    rng = np.random.default_rng(seed)
    z = np.linspace(0, 1, shape[0])[:, None]
    x = np.linspace(0, 1, shape[1])[None, :]
    a, b, c = rng.uniform(0, 2 * np.pi, 3)
    f = 0.5 + 0.25 * np.sin(3 * z + a) * np.cos(2 * x + b) + 0.25 * z * np.cos(c)
    f = f + 0.05 * rng.standard_normal(shape)
    f = (f - f.min()) / (f.max() - f.min())
    return (lo + (hi - lo) * f)[None]
