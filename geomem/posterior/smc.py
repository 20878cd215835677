"""Sequential Monte Carlo over the split-Gibbs family ``π_ρ``, with importance weights and their ESS.

Targets (see :mod:`geomem.posterior.split_gibbs`): ``π_ρ(x, z) ∝ p_{σ₀}(x) N(z; x, ρ²I) exp(−φ(z))``, whose
``z``-marginal is exactly the posterior under the prior at bandwidth ``√(σ₀² + ρ²)``.

Going from ``ρ`` to ``ρ' < ρ``, every particle is moved by a deterministic map that keeps ``x`` and shrinks ``z``
towards it,

    T_a(x, z) = (x, x + a (z − x)),   a ∈ [ρ'/ρ, 1],   |det ∇T_a| = a^d          (d = model size)

and gets the exact incremental weight of SMC with a transport map, ``π_ρ'(T_a(x, z)) |det ∇T_a| / π_ρ(x, z)``;
the prior factor ``p_{σ₀}(x)`` cancels, so with ``q = ‖z − x‖²``

    log w_inc = −q (a²/ρ'² − 1/ρ²)/2 − d log(ρ'/(a ρ))  +  φ(z) − φ(x + a (z − x))

— prior-free (it holds for a learned prior too, as long as its prior step is exact). Two ends of the family:
``a = 1`` leaves ``z`` in place (only the Gaussian ratio; no solve); ``a = ρ'/ρ`` cancels the Gaussian factor
exactly, ``N(x + a(z − x); x, ρ'²I) a^d = N(z; x, ρ²I)``, leaving only the likelihood change (one likelihood
gradient per particle, reused by the next MALA move). The Gaussian ratio carries a ``χ²_d`` noise in
``‖z − x‖²/ρ²`` that says nothing about the posterior; its accumulation once the modes stop exchanging
particles moved mass between modes (quadratic2d TV 0.078 ± 0.050 over three seeds with ``a = 1`` always). Where
the likelihood is flat on the scale ``ρ`` the full transport removes that noise; where it is sharp, moving ``z``
off the likelihood's ridge costs more than it saves. ``a = 1 − t (1 − ρ'/ρ)`` with the fraction ``t ∈ [0, 1]``
of largest predicted ESS (11 values), using the first-order prediction ``φ(z) − φ(T z) ≈ (1 − a) ⟨∇φ(z), z − x⟩``
(no solve). ``t`` is chosen on one level's particles and used at the next level, so that a level's weights do
not select their own map (selecting, on the same particles, the map whose weights look flattest would bias the
mode masses towards equal).

Algorithm:

1. ``burn_in`` split-Gibbs sweeps at ``rho_max`` (unweighted: the start is assumed to have reached
   ``π_{ρ_max}``, where the prior's components overlap and chains mix);
2. repeat: choose ``ρ'`` by bisection on ``log ρ'`` so that the predicted ESS of the new weights is ``ess_target``
   × the current ESS (``ρ' = rho_min`` when that already keeps it); move and reweight exactly; when the ESS falls
   below ``resample_below`` × particles, resample (systematic) and reset the weights; move every particle with one
   split-Gibbs sweep at ``ρ'`` (invariant for ``π_{ρ'}``); stop after ``rho_min`` is reached and ``final_sweeps``
   more sweeps are done. ``max_levels`` caps the levels: the last one jumps to ``rho_min`` whatever the ESS
   (reported). Small steps (``ess_target`` 0.99) give the sweeps time to move particles between modes while they
   still can; the high ``resample_below`` resamples often where weights change fast (large ρ, where the sweeps
   still repair the resampling noise) and rarely once the modes are frozen and the weights hardly change;
3. return the ``z`` particles with their normalized weights. ``info["ess"]`` is the ESS after the last
   reweighting (before any resampling there), ``info["min_ess"]`` the smallest along the way: how many
   independent draws the particles were worth — a small ESS means the answer is unreliable.

Cost per particle: ``1 + (burn_in + levels + final_sweeps) · mala_steps`` likelihood gradients, plus one per
level with ``a < 1``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from geomem.config import Settings
from geomem.errors import ValueRangeError
from geomem.posterior.chains import ChainNoise, check_pair, finish
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.mala import LangevinState
from geomem.posterior.prior_step import PRIOR_STEP_MODES
from geomem.posterior.result import PosteriorSamples
from geomem.posterior.split_gibbs import gibbs_sweep, initial_state, misfit_norm
from geomem.priors.denoiser import Denoiser


@dataclass(frozen=True)
class SMCConfig(Settings):
    """Settings of an SMC run (normalized model units for ρ and σ)."""

    burn_in: int = field(default=10, metadata={"min": 0})
    mala_steps: int = field(default=5, metadata={"min": 1})
    final_sweeps: int = field(default=10, metadata={"min": 0})
    max_levels: int = field(default=200, metadata={"min": 1})
    rho_max: float = field(default=3.0, metadata={"gt": 0})
    rho_min: float = field(default=0.005, metadata={"gt": 0})
    sigma_min: float = field(default=0.01, metadata={"gt": 0})
    ess_target: float = field(default=0.99, metadata={"gt": 0, "max": 1})
    resample_below: float = field(default=0.9, metadata={"gt": 0, "max": 1})
    step_init: float = field(default=0.5, metadata={"gt": 0, "max": 1})
    adapt_rate: float = field(default=0.2, metadata={"min": 0})
    prior_step: str = field(default="auto", metadata={"choices": PRIOR_STEP_MODES})
    prior_steps: int = field(default=20, metadata={"min": 1})
    divergence_factor: float = field(default=1e3, metadata={"gt": 1})

    def __post_init__(self):
        super().__post_init__()
        if not self.rho_min < self.sigma_min:
            raise ValueRangeError(f"rho_min ({self.rho_min}) must be below sigma_min ({self.sigma_min})")
        if not self.rho_min <= self.rho_max:
            raise ValueRangeError(f"rho_min ({self.rho_min}) must not exceed rho_max ({self.rho_max})")

    @property
    def sigma0(self) -> float:
        return math.sqrt(self.sigma_min**2 - self.rho_min**2)


def ess_of(log_w: np.ndarray) -> float:
    """``(Σ w)² / Σ w²`` for log-weights (any shift)."""
    w = np.exp(log_w - np.max(log_w))
    return float(w.sum() ** 2 / np.sum(w**2))


def systematic_resample(log_w: np.ndarray, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """``n`` indices (default ``len(log_w)``) of a systematic resample of the weights ``exp(log_w)``: one uniform
    ``u`` for all, positions ``(u + i)/n`` on the weights' CDF."""
    n = len(log_w) if n is None else int(n)
    w = np.exp(log_w - np.max(log_w))
    cdf = np.cumsum(w / w.sum())
    positions = (rng.random() + np.arange(n)) / n
    return np.minimum(np.searchsorted(cdf, positions), len(log_w) - 1)


def _moments(state: LangevinState, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``q = ‖z − x‖²`` and ``g = ⟨∇φ(z), z − x⟩`` per particle (B,) float64."""
    dz = (state.z - x).double()
    return (dz**2).flatten(1).sum(1).cpu().numpy(), (state.grad.double() * dz).flatten(1).sum(1).cpu().numpy()


def gaussian_increment(q: np.ndarray, d: int, rho: float, rho_new: float, a: float) -> np.ndarray:
    """``log N(x + a(z − x); x, ρ'²I) + d log a − log N(z; x, ρ²I)`` from ``q = ‖z − x‖²`` (B,)."""
    return -0.5 * q * (a**2 / rho_new**2 - 1.0 / rho**2) - d * math.log(rho_new / (a * rho))


def predicted_increment(q, g, d, rho, rho_new, a) -> np.ndarray:
    """First-order prediction of :func:`transport`'s log-weight (``φ(z) − φ(T z) ≈ (1 − a) g``): no solve."""
    return gaussian_increment(q, d, rho, rho_new, a) + (1.0 - a) * g


def shrink(t: float, rho: float, rho_new: float) -> float:
    """The shrink ``a = 1 − t (1 − ρ'/ρ)``: ``t = 0`` leaves ``z`` in place, ``t = 1`` transports fully."""
    return 1.0 - t * (1.0 - rho_new / rho)


def best_fraction(log_w, q, g, d, rho, rho_new, grid: int = 11) -> float:
    """The fraction ``t`` in ``[0, 1]`` (``grid`` values) of largest predicted ESS."""
    ts = np.linspace(0.0, 1.0, grid)
    ess = [ess_of(log_w + predicted_increment(q, g, d, rho, rho_new, shrink(t, rho, rho_new))) for t in ts]
    return float(ts[int(np.argmax(ess))])


def transport(likelihood: Likelihood, state: LangevinState, x: torch.Tensor, q: np.ndarray, rho: float,
              rho_new: float, a: float):
    """Move every ``z`` to ``x + a (z − x)`` (``q = ‖z − x‖²`` of the particles before the move): the new state and
    the exact log-weight increment (B,) ``gaussian_increment + φ(z) − φ(x + a(z − x))`` (one likelihood gradient
    per particle, reused by the next MALA move; none when ``a = 1``)."""
    inc = gaussian_increment(q, int(state.z[0].numel()), rho, rho_new, a)
    if a == 1.0:
        return state, inc
    z_new = x + a * (state.z - x)
    phi, grad = likelihood.misfit_and_gradient(z_new)
    inc = inc + (state.phi.double() - phi.double()).cpu().numpy()
    moved = LangevinState(z_new, phi, grad, state.c, state.accepted, state.proposed)
    return moved, np.where(np.isfinite(inc), inc, -np.inf)


def next_level(log_w: np.ndarray, q: np.ndarray, g: np.ndarray, d: int, rho: float, rho_min: float,
               target: float, t: float) -> float:
    """The largest step down, ``ρ'`` in ``[rho_min, ρ)`` whose predicted ESS with the fraction ``t`` is ``target`` ×
    ESS(log_w) (bisection on ``log ρ'``; ``q``, ``g`` from :func:`_moments`, ``d`` the model size)."""
    goal = target * ess_of(log_w)

    def ess_at(r):
        return ess_of(log_w + predicted_increment(q, g, d, rho, r, shrink(t, rho, r)))

    if ess_at(rho_min) >= goal:
        return rho_min
    lo, hi = math.log(rho_min), math.log(rho)  # ESS(lo) < target ≤ ESS(hi) = ESS(log_w)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if ess_at(math.exp(mid)) >= goal:
            hi = mid
        else:
            lo = mid
    return min(math.exp(hi), rho * (1 - 1e-9))


def smc(
    prior: Denoiser,
    likelihood: Likelihood,
    chains: int,
    config: SMCConfig = SMCConfig(),
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> PosteriorSamples:
    """Run SMC with ``chains`` particles (module docstring); particle ``i`` draws its noise from seed ``seed + i``,
    resampling from ``numpy.random.default_rng([seed, 1])``. Returns weighted ``z`` particles at ``rho_min``
    (``info``: ``ess``, ``ess_history``, ``rhos``, ``shrinks`` ``a`` per level, ``resampled`` levels,
    ``acceptance``)."""
    model_shape = check_pair(prior, likelihood)
    if not isinstance(config, SMCConfig):
        raise ValueRangeError(f"config must be an SMCConfig, got {type(config).__name__}")
    started, g0, f0 = time.time(), likelihood.n_gradient, likelihood.n_forward
    noise = ChainNoise(seed, chains, model_shape, dtype, device)
    rng = np.random.default_rng([int(seed), 1])
    sigma0, mode, ps = config.sigma0, config.prior_step, config.prior_steps
    rho = float(config.rho_max)
    x, state = initial_state(prior, likelihood, noise, rho, sigma0, mode, ps, config.step_init)
    first = misfit_norm(likelihood, state.phi)

    def sweep(x, state, r):
        return gibbs_sweep(prior, likelihood, state, r, sigma0, noise, config.mala_steps, config.adapt_rate, mode, ps)

    for _ in range(config.burn_in):
        x, state = sweep(x, state, rho)
    log_w, d = np.zeros(chains), math.prod(model_shape)
    rhos, ess_history, resampled, history, shrinks = [], [], [], [], []
    level, t = 0, 0.0  # the first level leaves z in place; later ones use the fraction chosen one level before
    while rho > config.rho_min and level < config.max_levels:
        last = level == config.max_levels - 1
        q, g = _moments(state, x)
        new = config.rho_min if last else next_level(log_w, q, g, d, rho, config.rho_min, config.ess_target, t)
        a = shrink(t, rho, new)
        t = best_fraction(log_w, q, g, d, rho, new)  # for the next level
        state, increment = transport(likelihood, state, x, q, rho, new, a)
        shrinks.append(a)
        log_w = log_w + increment
        rho = new
        ess = ess_of(log_w)
        ess_history.append(ess)
        rhos.append(rho)
        if ess < config.resample_below * chains:
            idx = systematic_resample(log_w, rng)
            state, x = state.select(idx), x[torch.as_tensor(idx, device=x.device)]
            log_w = np.zeros(chains)
            resampled.append(level)
        x, state = sweep(x, state, rho)
        history.append(misfit_norm(likelihood, state.phi))
        level += 1
    for _ in range(config.final_sweeps):
        x, state = sweep(x, state, rho)
        history.append(misfit_norm(likelihood, state.phi))
    weights = np.exp(log_w - np.max(log_w))
    result = finish("smc", state.z, likelihood, ~np.isfinite(first), started, g0, f0,
                    info={"rhos": rhos, "shrinks": shrinks, "ess_history": ess_history, "resampled": resampled,
                          "ess": ess_history[-1] if ess_history else float(chains),
                          "min_ess": min(ess_history, default=float(chains)), "sigma0": sigma0,
                          "sigma_min": config.sigma_min,
                          "acceptance": state.acceptance, "seeds": noise.seeds},
                    history=np.array(history).reshape(-1, chains), first_misfit=first,
                    divergence_factor=config.divergence_factor, weights=weights)
    return result
