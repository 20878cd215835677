"""Diffusion posterior sampling (DPS) with any :class:`~geomem.priors.denoiser.Denoiser` and any operator.

Setting. Data ``y = F(m(x)) + ε``, ``ε ~ N(0, γ² I)``, with ``x`` the prior's (normalized) coordinates and
``m(x)`` the physical model (velocity through a :class:`~geomem.geology.parameterization.Parameterization`,
or ``x`` itself for the toy operators). The prior is given by its denoiser ``D(x, σ) ≈ E[x₀ | x_σ = x]`` in
the variance-exploding convention ``x_σ = x₀ + σ ε``.

At each step of a decreasing schedule ``σ_0 > … > σ_{K-1} = σ_min`` DPS forms the Tweedie estimate
``x̂₀ = D(x, σ)`` and the data misfit ``φ(x̂₀) = ½‖y − F(m(x̂₀))‖²``. Guidance rules (all are heuristics,
none is an exact posterior sampler; geomem scores them against exact posteriors where those exist):

``chung``       (Chung et al., 2023) after the prior step, ``x ← x − ζ ∇ₓ‖r‖² / ‖r‖`` with ``r = y − F(x̂₀)``;
                the gradient goes through the denoiser's Jacobian (``∇ₓ = J_Dᵀ ∇_x̂₀``).
``likelihood``  the approximate posterior score ``∇ log p_σ(x) − λ ∇ₓ φ(x̂₀)/γ²`` replaces the prior score,
                i.e. the prior step uses the guided denoiser ``x̂₀ − λ σ² ∇ₓφ/γ²``.
``normalized``  Jacobian-free, fixed-length steps (as in the paper's reference code): after the prior step,
                ``x ← x − η √d g/‖g‖`` with ``g = ∇_x̂₀ φ`` (no denoiser Jacobian), so every pixel moves by
                ``η`` in root-mean-square; the spread of the result is set by ``η``, not by ``γ``.

The prior step from ``σ_i`` to ``σ_{i+1}`` uses the denoised estimate ``D̃`` (``x̂₀`` or its guided
version): deterministic (DDIM / probability-flow Euler) ``x ← D̃ + (σ_{i+1}/σ_i)(x − D̃)``, or stochastic
(ancestral, the exact Gaussian bridge for the VE process given ``x₀ = D̃``)
``x ← D̃ + (σ_{i+1}²/σ_i²)(x − D̃) + σ_{i+1}√(1 − σ_{i+1}²/σ_i²) z``.
The returned samples are the states ``x`` at ``σ_min`` (draws of the posterior under the prior smoothed
to ``σ_min``, which for the memorized prior is exactly the mixture of width ``σ = σ_min``); their final
Tweedie estimates ``D(x, σ_min)`` are returned too, as ``denoised``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from geomem.errors import ShapeError, ValueRangeError
from geomem.geology.parameterization import Parameterization
from geomem.physics.operator import ForwardOperator
from geomem.priors.denoiser import Denoiser
from geomem.priors.sampling import SIGMA_MAX, SIGMA_MIN, karras_sigmas

GUIDANCE_RULES = ("chung", "likelihood", "normalized")


@dataclass(frozen=True)
class DPSConfig:
    """Settings of a DPS run (the σ schedule is shared with the unconditional samplers)."""

    steps: int = field(default=50, metadata={"min": 2})
    sigma_max: float = field(default=SIGMA_MAX, metadata={"gt": 0})
    sigma_min: float = field(default=SIGMA_MIN, metadata={"gt": 0})
    rho: float = field(default=7.0, metadata={"gt": 0})
    guidance: str = field(default="chung", metadata={"choices": GUIDANCE_RULES})
    zeta: float = field(default=1.0, metadata={"min": 0})
    likelihood_scale: float = field(default=1.0, metadata={"min": 0})
    eta: float = field(default=0.01, metadata={"min": 0})
    guidance_start: float = field(default=0.0, metadata={"min": 0, "max": 1})
    stochastic: bool = True
    divergence_factor: float = field(default=1e3, metadata={"gt": 1})


def _misfit_one(operator: ForwardOperator, y: np.ndarray, p: Parameterization | None,
                x: np.ndarray) -> tuple[float, np.ndarray]:
    """``(½‖F(m(x)) − y‖², ∇ₓ)`` for one model (module-level so Dask workers can run it)."""
    m = p.to_velocity(x) if p is not None else x
    phi, grad_m = operator.misfit_and_gradient(m, y, 1.0)
    if p is None:
        return phi, grad_m
    v = x * p.half_range + p.center
    return phi, grad_m * p.dv_dx * ((v >= p.vmin) & (v <= p.vmax))


def _misfit_value_one(operator: ForwardOperator, y: np.ndarray, p: Parameterization | None, x: np.ndarray) -> float:
    """``½‖F(m(x)) − y‖²`` for one model: one forward solve, no adjoint."""
    r = operator.forward(p.to_velocity(x) if p is not None else x).astype(np.float64) - y
    return 0.5 * float(np.vdot(r, r))


class OperatorMisfit:
    """``φ(x) = ½‖F(m(x)) − y‖²`` per sample and its gradient, for a NumPy :class:`ForwardOperator`.

    ``x``: a torch batch ``(B, *model_shape)`` in prior coordinates. With a parameterization the model is
    the clamped velocity ``m = to_velocity(x)``; the gradient is ``(∂m/∂x) Jᵀ(F(m) − y)`` with
    ``∂m/∂x = v_h`` inside ``[vmin, vmax]`` and 0 where the clamp is active. With a Dask ``client`` the
    chains of a batch run on the workers, one task per chain; the operator and ``y`` are shipped to every
    worker once, when this object is built (the operator keeps its compiled Devito objects there).
    """

    def __init__(
        self,
        operator: ForwardOperator,
        y: np.ndarray,
        parameterization: Parameterization | None = None,
        client=None,
    ):
        y = np.asarray(y)
        if tuple(y.shape) != tuple(operator.data_shape):
            raise ShapeError(f"observed data must have shape {tuple(operator.data_shape)}, got {tuple(y.shape)}")
        if not np.all(np.isfinite(y)):
            raise ValueRangeError("observed data contain NaN or inf")
        self.operator = operator
        self.y = y
        self.parameterization = parameterization
        self.client = client
        if client is not None:
            self._refs = client.scatter([operator, y], broadcast=True, hash=False)

    @property
    def model_shape(self) -> tuple[int, ...]:
        return tuple(self.operator.model_shape)

    def _per_chain(self, fn, x: torch.Tensor) -> list:
        """``fn(operator, y, parameterization, x_b)`` for every chain ``b``: in this process, or one Dask task each."""
        xs = list(x.detach().cpu().double().numpy())
        p = self.parameterization
        if self.client is None:
            return [fn(self.operator, self.y, p, xi) for xi in xs]
        op_ref, y_ref = self._refs
        n = len(xs)
        return self.client.gather(self.client.map(fn, [op_ref] * n, [y_ref] * n, [p] * n, xs, pure=False))

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        results = self._per_chain(_misfit_one, x)
        phi = torch.tensor([r[0] for r in results], dtype=torch.float64)
        grad = torch.from_numpy(np.stack([np.asarray(r[1], dtype=np.float64) for r in results]))
        return phi.to(x.device), grad.to(device=x.device, dtype=x.dtype)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """``φ`` alone ``(B,)`` (forward solves only; :func:`dps` uses it for the samples' final misfit)."""
        phi = self._per_chain(_misfit_value_one, x)
        return torch.tensor(phi, dtype=torch.float64, device=x.device)


@dataclass
class DPSResult:
    """Output of :func:`dps`.

    ``samples``: states at ``σ_min`` ``(B, *model_shape)``; ``denoised``: their Tweedie estimates
    ``D(x, σ_min)``; ``misfit_history``: ``‖y − F(x̂₀)‖`` per step and chain ``(K, B)`` (last row: the
    samples' own misfit); ``final_misfit``: ``‖y − F(sample)‖`` per chain; ``diverged``: chains whose
    state became non-finite or whose misfit (of ``x̂₀`` along the way, or of the final sample) grew past
    ``divergence_factor`` × its first value (they are
    reported, and excluded by :meth:`valid_samples`); ``sigmas``: the schedule.
    """

    samples: torch.Tensor
    denoised: torch.Tensor
    misfit_history: np.ndarray
    final_misfit: np.ndarray
    diverged: np.ndarray
    sigmas: np.ndarray
    seeds: list[int]

    def valid_samples(self) -> torch.Tensor:
        return self.samples[torch.from_numpy(~self.diverged)]


def _chain_noise(generators: list[torch.Generator], shape, dtype, device) -> torch.Tensor:
    """One standard-normal draw per chain from that chain's own generator (reproducible per chain)."""
    return torch.stack([torch.randn(shape, generator=g, dtype=dtype) for g in generators]).to(device)


def dps(
    denoiser: Denoiser,
    misfit: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    n_chains: int,
    config: DPSConfig = DPSConfig(),
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    progress: bool = False,
) -> DPSResult:
    """Run ``n_chains`` DPS chains; chain ``i`` uses seed ``seed + i`` whatever the batch size.

    ``misfit(x̂₀) -> (φ (B,), ∇_x̂₀ φ (B, *model_shape))`` with ``φ = ½‖y − F(m(x̂₀))‖²`` (e.g.
    :class:`OperatorMisfit`). ``callback(step, x, x̂₀)`` is called after each step.
    """
    if config.guidance not in GUIDANCE_RULES:
        raise ValueRangeError(f"guidance must be one of {GUIDANCE_RULES}, got {config.guidance!r}")
    if n_chains < 1:
        raise ValueRangeError(f"n_chains must be >= 1, got {n_chains}")
    model_shape = tuple(denoiser.model_shape)
    misfit_shape = getattr(misfit, "model_shape", model_shape)
    if tuple(misfit_shape) != model_shape:
        raise ShapeError(f"prior models have shape {model_shape} but the operator expects {tuple(misfit_shape)}")

    sigmas = karras_sigmas(config.steps, config.sigma_min, config.sigma_max, config.rho).numpy()
    seeds = [seed + i for i in range(n_chains)]
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    x = sigmas[0] * _chain_noise(gens, model_shape, dtype, device)
    d = math.prod(model_shape)
    start = int(round(config.guidance_start * (len(sigmas) - 1)))
    history = np.zeros((len(sigmas), n_chains))
    diverged = np.zeros(n_chains, dtype=bool)

    def misfit_value_and_cotangent(x0: torch.Tensor, store: dict) -> torch.Tensor:
        phi, grad = misfit(x0)
        store["phi"], store["grad"] = phi, grad
        return grad.to(x0.dtype)

    iterator = range(len(sigmas) - 1)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=f"DPS ({config.guidance})", unit="step")
    for i in iterator:
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        guided = i >= start
        store: dict = {}
        if guided and config.guidance in ("chung", "likelihood"):
            x0, vjp = denoiser.denoise_and_vjp(x, s, lambda d0, store=store: misfit_value_and_cotangent(d0, store))
        else:
            x0 = denoiser.denoise(x, s).detach()
            misfit_value_and_cotangent(x0, store)
            vjp = None
        phi, grad0 = store["phi"], store["grad"]
        history[i] = np.sqrt(2.0 * phi.detach().cpu().double().numpy())

        target = x0
        if guided and config.guidance == "likelihood":
            target = x0 - config.likelihood_scale * s**2 * vjp
        ratio = s_next / s
        if config.stochastic:
            z = _chain_noise(gens, model_shape, dtype, device)
            x = target + ratio**2 * (x - target) + s_next * math.sqrt(max(1.0 - ratio**2, 0.0)) * z
        else:
            x = target + ratio * (x - target)

        if guided and config.guidance == "chung":
            norm = torch.sqrt(2.0 * phi).clamp_min(1e-30).to(x.dtype).reshape(-1, *([1] * len(model_shape)))
            x = x - config.zeta * (2.0 * vjp) / norm  # ∇‖r‖² / ‖r‖
        elif guided and config.guidance == "normalized":
            gnorm = grad0.flatten(1).norm(dim=1).clamp_min(1e-30).reshape(-1, *([1] * len(model_shape)))
            x = x - config.eta * math.sqrt(d) * grad0 / gnorm

        bad = ~torch.isfinite(x.flatten(1)).all(dim=1).cpu().numpy()
        bad |= history[i] > config.divergence_factor * np.maximum(history[0], 1e-30)
        diverged |= bad
        if bad.any():  # freeze diverged chains at a finite value so the batch stays usable
            x[torch.from_numpy(bad).to(x.device)] = 0.0
        if callback is not None:
            callback(i, x, x0)

    denoised = denoiser.denoise(x, float(sigmas[-1])).detach()
    # a misfit with a ``value`` method gives φ without the gradient (saves one adjoint solve per chain)
    phi_final = misfit.value(x) if hasattr(misfit, "value") else misfit(x)[0]
    final_misfit = np.sqrt(2.0 * phi_final.detach().cpu().double().numpy())
    history[-1] = final_misfit
    diverged |= ~np.isfinite(final_misfit) | ~torch.isfinite(x.flatten(1)).all(dim=1).cpu().numpy()
    diverged |= final_misfit > config.divergence_factor * np.maximum(history[0], 1e-30)
    return DPSResult(x.detach(), denoised, history, final_misfit, diverged, sigmas, seeds)
