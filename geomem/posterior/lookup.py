"""The likelihood-weighted lookup: the posterior under a memorized prior as σ → 0.

With the prior ``(1/N) Σ_n δ(x − x_n)`` and data ``y = F(x) + ε``, ``ε ~ N(0, γ² I)``, the posterior is
``Σ_n w_n δ(x − x_n)`` with

    log w_n = −‖y − F(x_n)‖² / 2γ² − logsumexp_k(−‖y − F(x_k)‖² / 2γ²),

computed with a log-sum-exp of logits shifted by the smallest misfit, so that the weights are finite and
normalized for any finite γ > 0 (γ² may under- or overflow). NumPy float64.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from geomem.errors import ShapeError, ValueRangeError


def check_gamma(gamma: float) -> float:
    """γ as a float, checked finite and > 0."""
    g = float(gamma)
    if not (np.isfinite(g) and g > 0):
        raise ValueRangeError(f"gamma (data noise std) must be finite and > 0, got {gamma}")
    return g


def lookup_log_weights(F_train: np.ndarray, y: np.ndarray, gamma: float) -> np.ndarray:
    """Normalized log weights ``log w_n`` (N,) from the predicted data ``F_train`` ``(N, *data_shape)``."""
    gamma = check_gamma(gamma)
    F = np.asarray(F_train)
    y = np.asarray(y, dtype=np.float64)
    if F.ndim < 1 or F.shape[0] == 0:
        raise ValueRangeError("F_train is empty; pass the data of at least one training model")
    if F.shape[1:] != y.shape:
        raise ShapeError(f"F_train must be (N, *y.shape) = (N, {', '.join(map(str, y.shape))}), got {F.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueRangeError("F_train or y contains NaN or inf")
    # misfits in float64, a block of models at a time: memory stays at one block whatever N and F's dtype
    misfit = np.empty(F.shape[0])
    for start in range(0, F.shape[0], 32):
        block = np.asarray(F[start : start + 32], dtype=np.float64)
        if not np.all(np.isfinite(block)):
            raise ValueRangeError("F_train or y contains NaN or inf")
        misfit[start : start + len(block)] = np.sum((block - y).reshape(len(block), -1) ** 2, axis=1)
    # shifting by the smallest misfit leaves the normalized weights unchanged and keeps the best model's logit
    # at 0 (finite) even when γ² under- or overflows; dividing by γ twice avoids forming γ²
    logits = -((misfit - misfit.min()) / (2.0 * gamma)) / gamma
    return logits - logsumexp(logits)


def lookup_weights(F_train: np.ndarray, y: np.ndarray, gamma: float) -> np.ndarray:
    """Normalized weights ``w_n ∝ exp(−‖y − F(x_n)‖²/2γ²)``, shape (N,)."""
    return np.exp(lookup_log_weights(F_train, y, gamma))
