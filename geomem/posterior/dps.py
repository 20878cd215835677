"""Diffusion posterior sampling (DPS) with any :class:`~geomem.priors.denoiser.Denoiser` and any operator.

Setting. Data ``y = F(m(x)) + ε``, ``ε ~ N(0, γ² I)``, with ``x`` the prior's (normalized) coordinates and
``m(x)`` the physical model (velocity through a :class:`~geomem.geology.parameterization.Parameterization`,
or ``x`` itself for the toy operators). The prior is given by its denoiser ``D(x, σ) ≈ E[x₀ | x_σ = x]`` in
the variance-exploding convention ``x_σ = x₀ + σ ε``.

At each step of a decreasing schedule ``σ_0 > … > σ_{K-1} = σ_min`` DPS forms the Tweedie estimate
``x̂₀ = D(x, σ)`` and the data misfit ``φ(x̂₀) = ‖y − F(m(x̂₀))‖²/2γ²`` of the :class:`Likelihood` (γ is
the likelihood's; nothing else here knows it). Guidance rules (all are heuristics, none is an exact
posterior sampler; ``geomem validate-samplers`` scores them against exact posteriors, docs/posterior.md):

``chung``       (Chung et al., 2023) after the prior step, ``x ← x − ζ ∇ₓ‖r‖² / ‖r‖`` with ``r = y − F(x̂₀)``
                (``= ζ 2γ ∇ₓφ / √(2φ)``: independent of γ); the gradient goes through the denoiser's
                Jacobian (``∇ₓ = J_Dᵀ ∇_x̂₀``).
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
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from geomem.config import Settings
from geomem.errors import ValueRangeError
from geomem.posterior.chains import CLAMP_FRACTION, CLAMP_MARGIN, ChainNoise, check_pair, clamped_mask, finish
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.result import PosteriorSamples
from geomem.priors.denoiser import Denoiser
from geomem.priors.sampling import SIGMA_MAX, karras_sigmas

GUIDANCE_RULES = ("chung", "likelihood", "normalized")


@dataclass(frozen=True)
class DPSConfig(Settings):
    """Settings of a DPS run (the σ schedule is shared with the unconditional samplers).

    Defaults are the FWI values of docs/posterior.md: ``chung`` with ζ = 0.03 (ζ ≥ 0.1 wrote high-wavenumber
    texture into learned-prior samples at 64²), σ from 20 down to 0.01.
    """

    steps: int = field(default=50, metadata={"min": 2})
    sigma_max: float = field(default=SIGMA_MAX, metadata={"gt": 0})
    sigma_min: float = field(default=0.01, metadata={"gt": 0})
    rho: float = field(default=7.0, metadata={"gt": 0})
    guidance: str = field(default="chung", metadata={"choices": GUIDANCE_RULES})
    zeta: float = field(default=0.03, metadata={"min": 0})
    likelihood_scale: float = field(default=1.0, metadata={"min": 0})
    eta: float = field(default=0.01, metadata={"min": 0})
    guidance_start: float = field(default=0.0, metadata={"min": 0, "max": 1})
    stochastic: bool = True
    divergence_factor: float = field(default=1e3, metadata={"gt": 1})

    def __post_init__(self):
        super().__post_init__()
        if not self.sigma_min < self.sigma_max:
            raise ValueRangeError(f"sigma_min ({self.sigma_min}) must be below sigma_max ({self.sigma_max})")


#: ``‖r‖ = γ√(2φ)`` is floored at 1e-30 in the Chung step, i.e. ``φ`` at ``½·10⁻⁶⁰``
_PHI_FLOOR = 0.5e-60


def _fused(device: torch.device) -> bool:
    """Whether the step's update runs as fused kernels (``lerp``, ``addcmul``): off the CPU, where every kernel
    launch costs about as much as the tiny update itself. On the CPU the written-out formulas run, so CPU
    results stay what they were, bit for bit."""
    return device.type != "cpu"


def _finite_rows(x: torch.Tensor, fused: bool) -> torch.Tensor:
    """``(B,)`` bool on ``x``'s device: chain ``b``'s state is finite (float64: its squared norm does not overflow,
    which the memorized prior needs). Narrower floats: ``max |x| ≤ finfo.max`` (NaN propagates through the max, so
    a NaN entry fails it), one reduction kernel when ``fused`` (``abs`` + ``amax`` on the CPU, faster there; the
    same answer). No host synchronization."""
    flat = x.flatten(1)
    if x.dtype == torch.float64:
        return torch.isfinite((flat**2).sum(1))
    top = torch.linalg.vector_norm(flat, ord=math.inf, dim=1) if fused else flat.abs().amax(1)
    return top <= torch.finfo(x.dtype).max


def _device_step(x: torch.Tensor, x0: torch.Tensor, z: torch.Tensor | None, guide: torch.Tensor | None,
                 phi: torch.Tensor, phi_limit: torch.Tensor, coef: torch.Tensor, rule: str | None,
                 clamp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One fused-path step (update, divergence rule, freeze) written for :func:`torch.compile`: ``(new x, bad)``.

    The step's numbers come as a float64 tensor on the device, ``coef = (w, s, f, t)``: ``x ← lerp(D̃, x, w) + s z``
    with ``D̃ = x̂₀ − f J_Dᵀ∇φ`` (``likelihood``: ``f = λσ²``), then ``x −= f vjp/√φ`` (``chung``: ``f = ζ·2γ/√2``)
    or ``x −= f g/‖g‖`` (``normalized``: ``f = η√d``); ``t = 1 + margin`` of the clamp rule. Python floats would be
    compiled into the code (a recompilation per step); a row of a table made once is one more input. ``rule``
    ``None``: an unguided step. Same formulas as the eager fused path, which is the reference for it.
    """
    col = (-1, *([1] * (x.ndim - 1)))
    c = coef.to(x.dtype)
    target = x0 - c[2] * guide if rule == "likelihood" else x0
    x = torch.lerp(target, x, c[0])
    if z is not None:
        x = x + c[1] * z
    if rule == "chung":
        x = x - (coef[2] * torch.rsqrt(phi.clamp_min(_PHI_FLOOR))).to(x.dtype).reshape(col) * guide
    elif rule == "normalized":
        x = x - (c[2] / guide.flatten(1).norm(dim=1).clamp_min(1e-30)).reshape(col) * guide
    bad = torch.le(_finite_rows(x, True), phi > phi_limit)
    if clamp:  # clamped_mask, in float64 like it
        bad = bad | ((x.double().reshape(len(x), -1).abs() > coef[3]).double().mean(dim=1) > CLAMP_FRACTION)
    return x.masked_fill(bad.reshape(col), 0.0), bad


def _coefficients(config: DPSConfig, s: float, s_next: float, chung_scale: float, d: int) -> list[float]:
    """``(w, s, f, t)`` of :func:`_device_step` for the step from ``s`` to ``s_next`` (its docstring)."""
    ratio = s_next / s
    weight = ratio**2 if config.stochastic else ratio
    spread = s_next * math.sqrt(max(1.0 - ratio**2, 0.0))
    factor = {"chung": chung_scale, "likelihood": config.likelihood_scale * s**2,
              "normalized": config.eta * math.sqrt(d)}[config.guidance]
    return [weight, spread, factor, 1.0 + (CLAMP_MARGIN + 6.0 * s_next)]  # the threshold clamped_mask forms


_COMPILED_STEP = None


STEP_GRAPHS = 64  # graphs of the compiled step kept per process (torch's default limit is 8)

#: how ``dps`` runs its update: written-out/fused eager ops, ``torch.compile`` of ``_device_step``, or a CUDA graph
#: of ``_device_step`` (:mod:`geomem.posterior.dps_graph`, CUDA only)
STEP_KINDS = ("eager", "compiled", "graph")


def _compiled_step():
    """:func:`_device_step` through :func:`torch.compile` (made once per process; its graphs are cached by torch).

    Each guidance rule, with or without noise and parameterization, on each device and dtype is its own graph; past
    torch's recompile limit (8 per function) a ``fullgraph`` compile fails, so the calls raise it to
    ``STEP_GRAPHS`` (measured: the eight cases of tests/posterior_samplers/test_dps_step.py in one process on a GPU
    machine hit the default limit and fell back to the eager step)."""
    global _COMPILED_STEP
    if _COMPILED_STEP is None:
        compiled = torch.compile(_device_step, fullgraph=True)

        def step(*args):
            with torch._dynamo.config.patch(recompile_limit=STEP_GRAPHS):
                return compiled(*args)

        _COMPILED_STEP = step
    return _COMPILED_STEP


def dps(
    prior: Denoiser,
    likelihood: Likelihood,
    chains: int,
    config: DPSConfig = DPSConfig(),
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    progress: bool = False,
    step: str = "eager",
) -> PosteriorSamples:
    """Run ``chains`` DPS chains; chain ``i`` uses seed ``seed + i`` whatever the batch size.

    Returns the states at ``σ_min`` as :class:`PosteriorSamples` (``history``: ``‖y − F(x̂₀)‖`` per step and
    chain, last row the samples' own misfit; ``info["denoised"]``: the final Tweedie estimates).
    ``callback(step, x, x̂₀)`` is called after each step.

    ``step`` (one of :data:`STEP_KINDS`) picks how the update runs; all three compute the documented formulas.
    ``"eager"``: on the CPU the written-out formulas, off the CPU fused kernels (11 launches per step, no host
    read). ``"compiled"``: :func:`torch.compile` of :func:`_device_step` (the update, the divergence rule and the
    freeze in a few generated kernels; the first call compiles, tens of seconds); if compiling fails it warns and
    keeps the eager fused step. ``"graph"`` (CUDA only): :func:`_device_step` captured as a CUDA graph and
    replayed (:class:`~geomem.posterior.dps_graph.GraphedStep`: per step three input copies, the noise draws and
    one replay; a process captures once per shapes, later runs replay the kept graphs, ``info["graph_captures"]``);
    ``callback`` then receives the state buffer that the next step overwrites (clone it to keep it).
    ``info["step"]`` says which ran to the end; their GPU speed is measured by
    ``python -m benchmarks --cases dps --dps-steps eager,compiled,graph``.
    """
    model_shape = check_pair(prior, likelihood)
    if not isinstance(config, DPSConfig):
        raise ValueRangeError(f"config must be a DPSConfig, got {type(config).__name__}")
    if step not in STEP_KINDS:
        raise ValueRangeError(f"step must be one of {', '.join(STEP_KINDS)}, got {step!r}")
    started, g0, f0 = time.time(), likelihood.n_gradient, likelihood.n_forward
    sigmas = karras_sigmas(config.steps, config.sigma_min, config.sigma_max, config.rho).numpy()
    noise = ChainNoise(seed, chains, model_shape, dtype, device)
    x = sigmas[0] * noise.normal()
    d = math.prod(model_shape)
    start = int(round(config.guidance_start * (len(sigmas) - 1)))
    # φ per step and the divergence flags stay on the chains' device and are read back once at the end: no
    # host synchronization per step (the frozen chains are masked on the device too)
    phis: list[torch.Tensor] = []
    column = (-1, *([1] * len(model_shape)))
    fused = _fused(x.device)

    def value_and_cotangent(x0: torch.Tensor, store: dict) -> torch.Tensor:
        phi, grad = likelihood.misfit_and_gradient(x0)
        store["phi"], store["grad"] = phi, grad
        return grad.to(x0.dtype)

    iterator = range(len(sigmas) - 1)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=f"DPS ({config.guidance})", unit="step")
    gamma = likelihood.gamma
    # per-step numbers on the host, once: the loop reads no device value and converts nothing per step
    levels = sigmas.tolist()
    chung_scale = config.zeta * 2.0 * gamma / math.sqrt(2.0)  # ζ·2γ/‖r‖ = chung_scale/√φ
    bads: list[torch.Tensor] = []
    step_fn = _compiled_step() if step == "compiled" else None
    if step != "eager":  # (w, s, f, t) of _device_step per step: one table, one copy to the device
        table = torch.tensor([_coefficients(config, levels[i], levels[i + 1], chung_scale, d)
                              for i in range(len(levels) - 1)], dtype=torch.float64, device=x.device)
    graphed = None
    if step == "graph":
        from geomem.posterior.dps_graph import graphed_step

        graphed = graphed_step(x, table, noise if config.stochastic else None, likelihood.parameterization is not None)
    for i in iterator:
        s, s_next = levels[i], levels[i + 1]
        guided = i >= start
        store: dict = {}
        if guided and config.guidance in ("chung", "likelihood"):
            x0, vjp = prior.denoise_and_vjp(x, s, lambda d0, store=store: value_and_cotangent(d0, store))
        else:
            x0 = prior.denoise(x, s).detach()
            value_and_cotangent(x0, store)
            vjp = None
        phi, grad0 = store["phi"], store["grad"]
        phis.append(phi.detach())  # history ‖y − F(x̂₀)‖ = γ √(2φ), formed at the end
        if i == 0:  # a chain diverges when ‖y − F(x̂₀)‖ > factor × its first value, i.e. when φ > phi_limit
            first = (gamma * torch.sqrt(2.0 * phis[0].double())).clamp_min(1e-30)
            phi_limit = (config.divergence_factor * first) ** 2 / (2.0 * gamma**2)

        if graphed is not None:
            rule = config.guidance if guided else None
            guide = vjp if rule in ("chung", "likelihood") else grad0 if rule == "normalized" else None
            x = graphed(i, x, x0, guide, phi, phi_limit, rule)
            if callback is not None:
                callback(i, x, x0)
            continue

        if step_fn is not None:
            rule = config.guidance if guided else None
            args = (x, x0, noise.normal() if config.stochastic else None,
                    vjp if rule in ("chung", "likelihood") else grad0 if rule == "normalized" else None,
                    phi, phi_limit, table[i], rule, likelihood.parameterization is not None)
            try:
                x, bad = step_fn(*args)
            except Exception as err:  # noqa: BLE001 (a compiler failure; anything else fails again just below)
                warnings.warn(f"torch.compile of the DPS step failed ({type(err).__name__}: {err}); "
                              f"running the eager fused step", RuntimeWarning, stacklevel=2)
                step_fn = None
                x, bad = _device_step(*args)
                fused = True
            bads.append(bad)
            if callback is not None:
                callback(i, x, x0)
            continue

        ratio = s_next / s
        spread = s_next * math.sqrt(max(1.0 - ratio**2, 0.0))
        if fused:  # the same formulas in fewer kernels (rounding differs from the CPU form)
            target = x0
            if guided and config.guidance == "likelihood":
                target = torch.add(x0, vjp, alpha=-config.likelihood_scale * s**2)
            x = torch.lerp(target, x, ratio**2 if config.stochastic else ratio)
            if config.stochastic:
                x.add_(noise.normal(), alpha=spread)
            if guided and config.guidance == "chung":  # x −= (ζ·2γ/√2) vjp / √φ, φ floored: one kernel for x
                x.addcmul_(vjp, phi.clamp_min(_PHI_FLOOR).rsqrt().reshape(column), value=-chung_scale)
            elif guided and config.guidance == "normalized":
                inv = grad0.flatten(1).norm(dim=1).clamp_min(1e-30).reciprocal().reshape(column)
                x.addcmul_(grad0, inv, value=-config.eta * math.sqrt(d))
        else:
            target = x0
            if guided and config.guidance == "likelihood":
                target = x0 - config.likelihood_scale * s**2 * vjp  # x̂₀ + σ² ∇ log p(y|x̂₀): φ carries 1/γ²
            if config.stochastic:
                x = target + ratio**2 * (x - target) + spread * noise.normal()
            else:
                x = target + ratio * (x - target)
            if guided and config.guidance == "chung":  # ∇‖r‖²/‖r‖ = 2γ ∇φ / √(2φ)
                norm = torch.sqrt(2.0 * phi).clamp_min(1e-30).to(x.dtype).reshape(column)
                x = x - config.zeta * (2.0 * gamma * vjp) / norm
            elif guided and config.guidance == "normalized":
                gnorm = grad0.flatten(1).norm(dim=1).clamp_min(1e-30).reshape(column)
                x = x - config.eta * math.sqrt(d) * grad0 / gnorm

        # divergence, on the device with no host synchronization: a non-finite state, or φ past its limit
        # bad = not finite, or φ > limit: for bools (False < True) that is the one comparison finite ≤ (φ > limit)
        bad = torch.le(_finite_rows(x, fused), phi > phi_limit)
        if likelihood.parameterization is not None:
            # guidance drove the chain far beyond the velocity clamp (6σ of noise allowed at this level)
            bad |= clamped_mask(x, likelihood, CLAMP_MARGIN + 6.0 * s_next)
        bads.append(bad)
        # freeze diverged chains at a finite value so the batch stays usable (on the device, no sync)
        x.masked_fill_(bad.reshape(column), 0.0)
        if callback is not None:
            callback(i, x, x0)

    denoised = prior.denoise(x, float(sigmas[-1])).detach()
    history = np.zeros((len(sigmas), chains))  # the last row: the samples' own misfit, set below
    history[:-1] = gamma * np.sqrt(2.0 * torch.stack(phis).double().cpu().numpy())
    diverged = (graphed.bad if graphed is not None else torch.stack(bads).any(0)).cpu().numpy()
    ran = ("graph" if graphed is not None and graphed.replayed else "compiled" if step_fn is not None
           else "eager")
    result = finish("dps", x, likelihood, diverged, started, g0, f0,
                    info={"guidance": config.guidance, "steps": config.steps, "seeds": noise.seeds,
                          "sigmas": sigmas.tolist(), "step": ran,
                          **({"graph_captures": graphed.captures} if graphed is not None else {})},
                    history=history, first_misfit=history[0], divergence_factor=config.divergence_factor)
    if graphed is not None:  # finish copied the state out of the graph's buffer
        graphed.release()
    result.history[-1] = result.misfit
    result.info["denoised"] = denoised.double().cpu().numpy()
    return result
