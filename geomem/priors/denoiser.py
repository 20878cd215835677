"""The denoiser protocol every prior implements (variance-exploding convention).

Noisy models are ``x_σ = x₀ + σ ε`` with ``ε ~ N(0, I)``. A prior is a denoiser

    D(x, σ) ≈ E[x₀ | x_σ = x]                         (Tweedie / minimum-MSE estimate)

and its score follows from Tweedie's formula

    ∇ log p_σ(x) = (D(x, σ) − x) / σ².

Tensors are batches ``(B, *model_shape)`` (images are ``(B, 1, nz, nx)``); ``sigma`` is a Python float,
a 0-d tensor, or a ``(B,)`` tensor of per-sample noise levels. Both the exact memorized prior and the
learned (network) prior implement this class, so samplers and posterior samplers treat them alike.
"""

from __future__ import annotations

import abc
import math
import numbers

import numpy as np
import torch

from geomem.errors import ShapeError, ValueRangeError

#: the NumPy scalar types that round a Python float as torch's cast to these dtypes does (IEEE, to nearest even)
_HOST_FLOATS = {torch.float64: np.float64, torch.float32: np.float32, torch.float16: np.float16}


def _rounded(value: float, dtype: torch.dtype) -> float:
    """``value`` rounded to ``dtype`` (±inf past its range), computed on the host."""
    if dtype in _HOST_FLOATS:
        with np.errstate(over="ignore"):
            return float(_HOST_FLOATS[dtype](value))
    return float(torch.tensor(value, dtype=dtype))  # e.g. bfloat16: a CPU tensor, no device involved


def sigma_row(sigma: float | torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``sigma`` as a ``(B,)`` tensor in ``x``'s dtype on its device, checked finite and > 0, and its smallest
    value (in ``x``'s dtype) as a Python float.

    A number is checked on the host and written with one fill kernel: no host/device transfer, so no GPU
    synchronization. A tensor is checked on its device with one host read (its min, or NaN when its max is not
    finite: NaN propagates through both)."""
    if isinstance(sigma, numbers.Real) and x.dtype.is_floating_point:
        value = _rounded(float(sigma), x.dtype)
        if not (math.isfinite(value) and value > 0):
            raise ValueRangeError("sigma must be finite and > 0 for every sample")
        return torch.full((x.shape[0],), value, dtype=x.dtype, device=x.device), value
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if s.ndim == 0:
        s = s.expand(x.shape[0])
    if s.ndim != 1 or s.shape[0] != x.shape[0]:
        raise ShapeError(f"sigma must be a float or a ({x.shape[0]},) tensor, got shape {tuple(s.shape)}")
    lo, hi = torch.aminmax(s.detach())
    low = float(torch.where(torch.isfinite(hi), lo, math.nan))
    if not (math.isfinite(low) and low > 0):
        raise ValueRangeError("sigma must be finite and > 0 for every sample")
    return s, low


def sigma_column(sigma: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sigma`` as a tensor broadcastable against ``x`` (shape ``(B, 1, ..., 1)``), checked > 0
    (:func:`sigma_row`: no GPU synchronization for a number)."""
    return sigma_row(sigma, x)[0].reshape(-1, *([1] * (x.ndim - 1)))


class Denoiser(abc.ABC):
    """``D(x, σ)``: the posterior-mean denoiser of a prior at noise level σ."""

    #: shape of one model, e.g. ``(1, 64, 64)`` or ``(d,)``
    model_shape: tuple[int, ...]

    @abc.abstractmethod
    def denoise(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """Return ``D(x, σ)`` with the shape of ``x``."""

    def __call__(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        return self.denoise(x, sigma)

    def score(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """``∇ₓ log p_σ(x) = (D(x, σ) − x) / σ²``."""
        s = sigma_column(sigma, x)
        return (self.denoise(x, sigma) - x) / s**2

    def denoise_and_vjp(
        self, x: torch.Tensor, sigma: float | torch.Tensor, cotangent_fn
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(D(x, σ), J_D(x)ᵀ g)`` where ``g = cotangent_fn(D(x, σ))``.

        The default differentiates through :meth:`denoise` with autograd; priors with an analytic
        Jacobian (the memorized prior) override it. ``cotangent_fn`` receives a detached tensor.
        """
        x_req = x.detach().requires_grad_(True)
        with torch.enable_grad():
            d = self.denoise(x_req, sigma)
            g = cotangent_fn(d.detach())
            (vjp,) = torch.autograd.grad(d, x_req, grad_outputs=g)
        return d.detach(), vjp

    def check_shape(self, x: torch.Tensor) -> None:
        """Raise :class:`ShapeError` if ``x`` is not a batch of models of this prior's shape (host only)."""
        if x.ndim == 0 or tuple(x.shape[1:]) != tuple(self.model_shape) or x.shape[0] == 0:
            raise ShapeError(
                f"expected a batch of shape (B, {', '.join(map(str, self.model_shape))}) with B >= 1, "
                f"got {tuple(x.shape)}"
            )

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`ShapeError` if ``x`` is not a batch of models of this prior's shape, and
        :class:`ValueRangeError` if it holds NaN or inf (one host read of the device)."""
        self.check_shape(x)
        if not bool(torch.all(torch.isfinite(x))):
            raise ValueRangeError("input contains NaN or inf")
