"""The one place that maps velocity (km/s) to the priors' normalized coordinates and back.

    x = (v − v_c) / v_h,   v_c = (vmax + vmin) / 2,   v_h = (vmax − vmin) / 2

so the model set's ``[vmin, vmax]`` maps to ``[−1, 1]``. ``to_velocity`` clamps to ``[vmin, vmax]`` by
default (a sample slightly outside [−1, 1] is still a physical velocity); ``dv_dx = v_h`` is the chain
rule factor used to carry velocity gradients to normalized coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geomem.errors import ValueRangeError


@dataclass(frozen=True)
class Parameterization:
    vmin: float
    vmax: float

    def __post_init__(self):
        if not (np.isfinite(self.vmin) and np.isfinite(self.vmax)) or self.vmin <= 0:
            raise ValueRangeError(f"vmin must be a positive finite velocity in km/s, got {self.vmin}")
        if self.vmin >= self.vmax:
            raise ValueRangeError(f"vmin ({self.vmin}) must be smaller than vmax ({self.vmax})")

    @property
    def center(self) -> float:
        return 0.5 * (self.vmax + self.vmin)

    @property
    def half_range(self) -> float:
        return 0.5 * (self.vmax - self.vmin)

    @property
    def dv_dx(self) -> float:
        """``∂v/∂x``: multiply a velocity gradient by this to get the normalized-coordinate gradient."""
        return self.half_range

    def to_normalized(self, v):
        """Velocity (km/s) → normalized coordinates. Works on NumPy arrays and torch tensors."""
        return (v - self.center) / self.half_range

    def to_velocity(self, x, clamp: bool = True):
        """Normalized coordinates → velocity (km/s), clamped to ``[vmin, vmax]`` unless ``clamp=False``."""
        v = x * self.half_range + self.center
        if not clamp:
            return v
        if isinstance(v, np.ndarray) or np.isscalar(v):
            return np.clip(v, self.vmin, self.vmax)
        return v.clamp(self.vmin, self.vmax)
