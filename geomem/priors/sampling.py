"""σ schedules and unconditional samplers shared by every :class:`~geomem.priors.denoiser.Denoiser`.

Variance-exploding (EDM) convention: ``x_σ = x₀ + σ ε``. The probability-flow ODE in σ-time is

    dx/dσ = (x − D(x, σ)) / σ                                   (= −σ ∇ log p_σ(x))

and is integrated from ``σ_max`` down to ``σ_min`` over a decreasing schedule ``σ_0 > … > σ_{n−1}``:

- ``euler``: ``x ← x + (σ_{i+1} − σ_i) d_i`` with ``d_i = (x − D(x, σ_i))/σ_i``. In the VE parameterization
  this is exactly deterministic DDIM (η = 0).
- ``heun``: Euler predictor ``x̃``, then ``x ← x + (σ_{i+1} − σ_i)(d_i + d̃)/2`` with
  ``d̃ = (x̃ − D(x̃, σ_{i+1}))/σ_{i+1}`` (Karras et al. 2022, Algorithm 1):
  2(n − 1) denoiser calls, plus one for the final ``D(x, σ_min)``.
- ``stochastic``: EDM Algorithm 2. Before each Heun step, when ``s_tmin ≤ σ_i ≤ s_tmax``, noise is added to go
  up to ``σ̂ = σ_i (1 + γ)``, ``γ = min(s_churn / (n − 1), √2 − 1)``: ``x̂ = x + √(σ̂² − σ_i²) s_noise ε``, then
  a Heun step from ``σ̂`` to ``σ_{i+1}``.

Start: ``x = σ_0 ε`` (the data term is negligible next to ``σ_max``). End: the sampler stops *at* ``σ_min``
(the bandwidth of the memorized mixture) and, by default, returns the posterior mean ``D(x, σ_min)``
(``denoise_last=True``); with ``denoise_last=False`` it returns ``x`` at ``σ_min``, a draw from ``p_{σ_min}``.
For the memorized prior, ``D(x, σ_min)`` at small ``σ_min`` has one-hot responsibilities, so the samples
*are* training models to numerical precision; ``x`` at ``σ_min`` differs from one by about ``σ_min``.

Why not diffusers' ``EDMEulerScheduler``: its ``step`` expects the raw network output and applies its own
``c_skip``/``c_out`` preconditioning, while a :class:`Denoiser` already returns ``D(x, σ)`` (the memorized
prior has no network at all); it also has no Heun variant and works in float32. The Karras σ spacing is the
same formula, and the tests check :func:`karras_sigmas` against that scheduler's σ values.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from geomem.errors import ConfigError, ShapeError, ValueRangeError
from geomem.priors.denoiser import Denoiser

#: default schedule ends (normalized units; models in [−1, 1]). σ_max = 20 is far above the data scale
#: (max distance between two models in [−1,1]^d is tiny next to 20·√d), σ_min = 0.005 is well below the
#: typical spacing between 64×64 training models, so the memorized prior is in its lookup regime there.
SIGMA_MAX = 20.0
SIGMA_MIN = 0.005
METHODS = ("euler", "heun", "stochastic")


def karras_sigmas(n: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, rho: float = 7.0,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Karras/EDM spacing ``σ_i = (σ_max^{1/ρ} + i/(n−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ``, i = 0…n−1.

    Decreasing from ``sigma_max`` to ``sigma_min`` (both included), shape ``(n,)``.
    """
    if n < 2:
        raise ConfigError(f"a σ schedule needs at least 2 steps, got n={n}")
    if not (0 < sigma_min < sigma_max) or not math.isfinite(sigma_max):
        raise ValueRangeError(f"need 0 < sigma_min < sigma_max < inf, got sigma_min={sigma_min}, sigma_max={sigma_max}")
    if rho <= 0:
        raise ValueRangeError(f"rho must be > 0, got {rho}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sig = (hi + ramp * (lo - hi)) ** rho
    sig[0], sig[-1] = sigma_max, sigma_min
    return sig.to(dtype)


def _check_sigmas(sigmas: torch.Tensor) -> torch.Tensor:
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
    if sigmas.numel() < 2:
        raise ConfigError("a σ schedule needs at least 2 values")
    if not bool(torch.all(torch.isfinite(sigmas))) or bool(torch.any(sigmas <= 0)):
        raise ValueRangeError("every σ in the schedule must be finite and > 0 (the sampler stops at σ_min > 0)")
    if not bool(torch.all(sigmas[1:] < sigmas[:-1])):
        raise ValueRangeError("the σ schedule must be strictly decreasing, from σ_max to σ_min")
    return sigmas


@torch.no_grad()
def sample(
    denoiser: Denoiser,
    n: int,
    sigmas: torch.Tensor,
    method: str = "heun",
    generator: torch.Generator | int | None = None,
    *,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = float("inf"),
    s_noise: float = 1.0,
    denoise_last: bool = True,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    batch_size: int | None = None,
    callback: Callable[[int, float, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Draw ``n`` unconditional samples ``(n, *denoiser.model_shape)`` by integrating the PF-ODE (module doc).

    ``generator`` is a ``torch.Generator`` or an integer seed (required: sampling is deterministic given it).
    ``callback(i, σ_i, x, D(x, σ_i))`` is called after each denoiser evaluation at a schedule point.
    ``batch_size`` splits ``n`` into chunks to bound memory; all noise is drawn up front on the CPU, so the
    result does not depend on ``batch_size`` or on ``device``.
    """
    if method not in METHODS:
        raise ConfigError(f"sampler method must be one of {list(METHODS)}, got {method!r}")
    if n < 1:
        raise ValueRangeError(f"number of samples must be >= 1, got {n}")
    if generator is None:
        raise ConfigError("pass a generator or an integer seed: sampling must be reproducible")
    sig = _check_sigmas(sigmas)
    if isinstance(generator, int):
        generator = torch.Generator(device="cpu").manual_seed(generator)
    device = torch.device(device) if device is not None else torch.device("cpu")
    shape = tuple(getattr(denoiser, "model_shape", ()))
    if not shape:
        raise ShapeError("the denoiser has no model_shape; cannot size the samples")
    steps = sig.numel()
    gamma = min(s_churn / (steps - 1), math.sqrt(2.0) - 1.0) if method == "stochastic" else 0.0
    # all noise drawn up front on the CPU generator: identical numbers whatever the device or the batching
    x_all = torch.randn((n, *shape), generator=generator, dtype=torch.float64) * float(sig[0])
    churn = (torch.randn((steps - 1, n, *shape), generator=generator, dtype=torch.float64)
             if method == "stochastic" and gamma > 0 else None)
    bs = n if batch_size is None else max(1, int(batch_size))
    out = []
    for start in range(0, n, bs):
        sl = slice(start, min(n, start + bs))
        x = x_all[sl].to(device=device, dtype=dtype)
        eps = churn[:, sl] if churn is not None else None
        out.append(_integrate(denoiser, x, sig, method, gamma, s_tmin, s_tmax, s_noise, eps, denoise_last, callback))
    return torch.cat(out, dim=0)


def _integrate(denoiser, x, sig, method, gamma, s_tmin, s_tmax, s_noise, eps, denoise_last, callback):
    steps = sig.numel()
    for i in range(steps - 1):
        s_cur, s_next = float(sig[i]), float(sig[i + 1])
        if eps is not None and s_tmin <= s_cur <= s_tmax:
            s_hat = s_cur * (1.0 + gamma)
            x = x + math.sqrt(s_hat**2 - s_cur**2) * s_noise * eps[i].to(device=x.device, dtype=x.dtype)
            s_cur = s_hat
        den = denoiser(x, s_cur)
        if callback is not None:
            callback(i, s_cur, x, den)
        d_cur = (x - den) / s_cur
        x_next = x + (s_next - s_cur) * d_cur
        if method != "euler":
            d_next = (x_next - denoiser(x_next, s_next)) / s_next
            x_next = x + (s_next - s_cur) * 0.5 * (d_cur + d_next)
        x = x_next
    if not denoise_last:
        return x
    den = denoiser(x, float(sig[-1]))
    if callback is not None:
        callback(steps - 1, float(sig[-1]), x, den)
    return den
