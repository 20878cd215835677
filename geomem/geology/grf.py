"""Band-limited Gaussian random fields by FFT filtering of white noise.

White noise ``w`` on a grid padded to twice the model size (so the periodic FFT does not wrap the left
edge onto the right) is filtered by the Gaussian transfer function

    H(k_z, k_x) = exp(−(k_z² ℓ_z² + k_x² ℓ_x²) / 4),   k angular wavenumber (rad per fraction of size),

so the field ``g = F⁻¹[H · F[w]]`` has the covariance ``C(Δz, Δx) ∝ exp(−Δz²/(2ℓ_z²) − Δx²/(2ℓ_x²))``
(``|H|²`` is the Fourier transform of ``C``); ``ℓ_z, ℓ_x`` are correlation lengths in fractions of the
model depth and width. The crop is standardized to zero mean and unit standard deviation.
"""

from __future__ import annotations

import numpy as np


def gaussian_random_field(
    rng: np.random.Generator, nz: int, nx: int, corr_z: float, corr_x: float
) -> np.ndarray:
    """A standardized ``(nz, nx)`` Gaussian random field with correlation lengths ``corr_z, corr_x``
    (fractions of depth and width)."""
    pz, px = 2 * nz, 2 * nx
    noise = rng.standard_normal((pz, px))
    kz = 2 * np.pi * np.fft.fftfreq(pz, d=1.0 / nz)  # rad per model depth (the crop spans 1)
    kx = 2 * np.pi * np.fft.rfftfreq(px, d=1.0 / nx)
    h = np.exp(-0.25 * ((kz[:, None] * corr_z) ** 2 + (kx[None, :] * corr_x) ** 2))
    field = np.fft.irfft2(np.fft.rfft2(noise) * h, s=(pz, px))[:nz, :nx]
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def rescale(field: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Affine map of ``field`` onto ``[vmin, vmax]`` (its minimum to ``vmin``, maximum to ``vmax``)."""
    lo, hi = field.min(), field.max()
    if hi <= lo:
        return np.full_like(field, 0.5 * (vmin + vmax))
    return vmin + (field - lo) * ((vmax - vmin) / (hi - lo))
