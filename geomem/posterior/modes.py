"""How many posterior modes survive, and the noise level where the mixture collapses into spikes.

- Effective number of modes of weights ``w`` (normalized): ``exp(H(w))``, ``H(w) = −Σ_n w_n log w_n``
  (1 for a single component, N for equal weights).
- Collapse scale: training models a distance δ apart, data noise std γ and Jacobian norm ``‖F'‖``;
  the components stay separate spikes for ``σ < σ_crit = sqrt(δ γ / ‖F'‖)``.
"""

from __future__ import annotations

import numpy as np

from geomem.errors import ShapeError, ValueRangeError


def effective_modes(weights: np.ndarray) -> float:
    """``exp(−Σ w log w)`` of non-negative weights that sum to 1 (zeros contribute nothing)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ShapeError(f"weights must be a non-empty 1-D array, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1.0) > 1e-6:
        raise ValueRangeError("weights must be finite, non-negative and sum to 1; normalize them first")
    nz = w[w > 0]
    return float(np.exp(-np.sum(nz * np.log(nz))))


def sigma_crit(delta: float, gamma: float, jac_norm: float) -> float:
    """``σ_crit = sqrt(δ γ / ‖F'‖)`` for spacing δ, data noise γ and Jacobian norm ‖F'‖ (all > 0)."""
    for name, v in (("delta", delta), ("gamma", gamma), ("jac_norm", jac_norm)):
        if not (np.isfinite(v) and v > 0):
            raise ValueRangeError(f"{name} must be finite and > 0, got {v}")
    return float(np.sqrt(delta * gamma / jac_norm))
