"""Decoupled annealing posterior sampling (DAPS style) with any prior and any operator.

Over a decreasing schedule ``σ_0 > … > σ_{K−1} = σ_min`` (Karras spacing), each level ``k``:

1. ``x̂₀ = D(x_k, σ_k)`` (Tweedie; one denoiser call for all chains);
2. approximate ``p(x₀ | x_k, y) ∝ N(x₀; x̂₀, r_k² I) exp(−φ(x₀))`` — the denoising posterior replaced by a
   Gaussian of width ``r_k = σ_k τ / √(σ_k² + τ²)`` (the exact width for a Gaussian prior of scale ``τ``,
   ``tau``) — and sample it with ``mala_steps`` Metropolis-adjusted Langevin moves started at ``x̂₀``;
3. re-noise: ``x_{k+1} = x₀ + σ_{k+1} ε``.

The returned samples are the last ``x₀`` (at ``σ_min``, where ``r ≈ σ_min``). The Gaussian stand-in for
``p(x₀ | x_k)`` is the approximation: for a multimodal prior it ignores the other components, so the mode
weights are set by the Tweedie estimates at the levels where they switch — a heuristic, scored against exact
posteriors by ``geomem validate-samplers``.

Importance-resampled start (``prior_draws = P > 0``). Started from pure noise, the chains pick their prior
mode at the first levels, before the likelihood steps can move them between modes (at FWI scale a model is
tens of normalized units from the next one and a Langevin move a tiny fraction of that). The option chooses
the start by the data instead: draw ``P`` unconditional prior samples ``x̃_p`` (the probability-flow sampler
of :func:`geomem.priors.sampling.sample`, ``draw_steps`` Heun steps from ``draw_sigma_max`` to ``sigma_min``; a
start far above the data scale, EDM's 80 by default: from 5 the flow collapses onto a few modes), weigh
them by the likelihood, ``w_p ∝ exp(−φ(x̃_p))`` (sampling–importance resampling: the resampled draws follow
the posterior as ``P → ∞``; ``info["start_ess"]`` = ``(Σw)²/Σw²`` says how many draws the weights are worth,
1 when one draw dominates, as it does at FWI data sizes), give each chain one of them by systematic
resampling, and run the schedule from ``start_sigma`` (not ``sigma_max``) with ``x_0 = x̃ + start_sigma ε``.
Cost: ``P`` forward solves shared by the chains (``P / chains`` per sample) and the prior draws.

MALA step factor (``h = c r²``, :mod:`geomem.posterior.mala`). By default ``c`` is carried from level to level.
Where the likelihood is far stiffer than the anchor at the upper levels (FWI: every proposal rejected from σ = 2
down to σ ≈ 0.1) ``c`` shrinks there by ×0.32 per level of 10 moves and, growing by at most 9 % per move below, is
still 20–100× too small at the last level, which then barely moves from ``x̂₀`` (docs/posterior.md, "The finite-σ
tilt"). ``step_reset = True`` starts every level at ``step_init`` instead. ``step_carry = "size"`` carries the step
*size* ``h`` rather than the factor: level ``k`` starts at ``c_k = min(1, c_{k−1} r_{k−1}² / r_k²)``. Where ``φ``'s
curvature ``λ`` dominates the anchor's (``λ ≫ 1/r²``) MALA's usable step is ``h ≈ 1/λ`` whatever ``r``, so the
factor that was right at the last level is ``r_{k−1}²/r_k²`` too small at the next; where the anchor dominates,
``c`` is capped at 1 (``h = r²``). ``info["step_factors"]`` and ``info["acceptance"]`` give each level's last
``c`` and acceptance rate.

Diagonal preconditioning (``precondition = "all"``, or ``"last"``: the last level only, its factor restarted at
``step_init``; ``last_mala_steps`` sets that level's moves). The FWI likelihood's curvature varies strongly across the
model (largest under the sources), so a plain MALA step is set by the stiffest directions: on the N = 50 learned prior
the step size stays ``h ≈ 4–5·10⁻⁷`` at every level (docs/posterior.md, "MALA step options"). With the option moves
run in the metric ``P = 1 / (1 + r_k² Ĥ)`` (:func:`~geomem.posterior.mala.mala_moves`), ``Ĥ`` the Gauss–Newton
diagonal estimated from the chains' likelihood gradients, ``Ĥ = mean (∇φ)² M/2φ`` (exact in expectation for a white
residual of any size; :func:`~geomem.posterior.mala.curvature_terms`): at level 0 from the gradients at the first
``x̂₀``, after each level ``Ĥ ← (Ĥ + that level's mean over its proposals)/2``. ``P`` is fixed within a level, so
each move stays an exact Metropolis step of that level's target; ``P ≈ 1`` where the anchor dominates
(``r² Ĥ ≪ 1``) and ``≈ 1/(r² Ĥ)`` where the likelihood does, so one factor ``c`` suits every pixel (off-diagonal
coupling, which a diagonal cannot undo, still limits ``c``). ``info["precond_spread"]`` gives each level's
``max P / median P``. Measured on FWI with the N = 50 learned prior, neither option lowered the final misfit (``"all"``
raised it: the weakly constrained pixels then sample the anchor's full width ``r``); they are off by default.

Hamiltonian moves (``moves = "hmc"``, :func:`~geomem.posterior.hmc.hmc_moves`). The likelihood step at each level
is then ``mala_steps / leapfrog_steps`` HMC trajectories of ``leapfrog_steps`` leapfrog steps on the same target
(``mala_steps`` and ``last_mala_steps`` count gradients either way and must be multiples of ``leapfrog_steps``; the
factor ``c`` keeps its meaning, ``h = c r²``, adapted towards 65 % acceptance). A trajectory moves ballistically, so a
direction of curvature ``λ`` relaxes in ``O(√(λ_max/λ))`` gradients rather than MALA's ``O(λ_max/λ)``: on FWI with the
N = 50 learned prior (held-out truth, 40 levels × 40 gradients, ``leapfrog_steps = 8``, ``step_carry = "size"``) three
single chains ended at misfit/noise 1.04, 1.04, 1.10 where plain MALA ended at 1.44 and 1.50, and with 16 chains and
three selections (``data/configs/compare_gpu.toml``) at mean 1.04 (N = 50) and 1.03 (N = 1000) (docs/posterior.md,
"Hamiltonian moves"). On the low-dimensional toys it gains nothing over MALA, and ``step_carry = "size"`` is worse
there (misfit 1.3–1.6 × the exact value against 1.06–1.13; ``scripts/annealed_moves_toys.py``).

Chain start (``chain_start``). By default each level's moves start at its ``x̂₀`` (one extra likelihood gradient per
level). ``"carried"`` starts them at the previous level's samples instead (they are already in the likelihood's basin;
the anchor still moves to ``x̂₀``), which saves that gradient: cost ``K · mala_steps + 1``. Measured: no change of the
FWI N = 50 chain with MALA (seed 0: 1.44 either way); on the linear-Gaussian toy it moved HMC's mean misfit from
1.08 / 1.13 to 1.04 / 1.05 of the exact value (400 chains, seeds 0 / 1000, ``scripts/annealed_moves_toys.py``).

Likelihood-tempered selection (``select_levels = S > 0``; population annealing, a heuristic). The annealing
never moves a chain between basins: a chain whose ``x̂₀`` fell into a wrong basin at the upper levels (FWI: a
local minimum of the misfit) stays there, at several times the noise level, while the others reach it. After
``S`` levels spread evenly over the schedule (after level ``⌊K j/(S+1)⌋ − 1``, ``j = 1 … S``) the chains are
resampled (systematic) with weights ``w_i ∝ exp(−β φ(x₀ᵢ))``, ``β ∈ (0, 1]`` the largest with
``(Σw)²/Σw² ≥ select_ess · chains`` (adaptive tempering: β = 1 when the full likelihood weights already keep
that many). A copy keeps its own noise stream (chain ``i``'s generator stays with slot ``i``), so copies
diverge at the next re-noising. Why weights of this form: between two chains the posterior ratio is
``exp(−Δφ)`` times the prior ratio, and at FWI data sizes ``Δφ`` between a trapped chain and a free one is
thousands of nats; the tempering caps how many chains one selection removes. It is not an SMC correction of
the Gaussian stand-in (the DAPS levels already carry the full likelihood; no prior density is used), so
it biases the population towards lower misfit than the posterior's spread: read ``info["select_ess"]``,
``info["select_beta"]`` and ``info["ancestors"]`` (the starting chain each returned chain descends from; its
number of distinct values is how many independent lineages the samples hold). ``history`` is kept per
lineage (rows permuted with the chains).

Cost per sample: ``K (mala_steps + 1)`` likelihood gradients (one at each new ``x̂₀``; ``K · mala_steps + 1`` with
``chain_start = "carried"``), ``K`` denoiser calls; with ``last_mala_steps`` the last level counts those instead.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from geomem.config import Settings
from geomem.errors import ValueRangeError
from geomem.posterior.chains import ChainNoise, check_pair, finish
from geomem.posterior.hmc import hmc_moves
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.mala import LangevinState, curvature_terms, mala_moves
from geomem.posterior.result import PosteriorSamples
from geomem.posterior.smc import ess_of, systematic_resample
from geomem.posterior.split_gibbs import misfit_norm
from geomem.priors.denoiser import Denoiser
from geomem.priors.sampling import karras_sigmas, sample

_log = logging.getLogger(__name__)  # one INFO line per level (`geomem --verbose`)


@dataclass(frozen=True)
class AnnealedConfig(Settings):
    """Settings of a DAPS-style run (normalized model units)."""

    steps: int = field(default=50, metadata={"min": 2})
    mala_steps: int = field(default=10, metadata={"min": 1})
    sigma_max: float = field(default=5.0, metadata={"gt": 0})
    sigma_min: float = field(default=0.01, metadata={"gt": 0})
    rho: float = field(default=7.0, metadata={"gt": 0})
    tau: float = field(default=0.5, metadata={"gt": 0})
    step_init: float = field(default=0.5, metadata={"gt": 0, "max": 1})
    step_reset: bool = False  # each level's MALA step factor starts at step_init (False: carried from the last level)
    step_carry: str = field(default="factor", metadata={"choices": ("factor", "size")})  # carried: c or h = c r²
    precondition: str = field(default="none", metadata={"choices": ("none", "last", "all")})  # levels in the GN metric
    moves: str = field(default="mala", metadata={"choices": ("mala", "hmc")})  # the likelihood step at each level
    leapfrog_steps: int = field(default=8, metadata={"min": 1})  # per HMC trajectory (moves = "hmc")
    chain_start: str = field(default="denoised", metadata={"choices": ("denoised", "carried")})  # at x̂₀ or last samples
    last_mala_steps: int = field(default=0, metadata={"min": 0})  # MALA moves at the last level (0: mala_steps)
    adapt_rate: float = field(default=0.2, metadata={"min": 0})
    divergence_factor: float = field(default=1e3, metadata={"gt": 1})
    prior_draws: int = field(default=0, metadata={"min": 0})  # P: importance-resampled start (0: off)
    start_sigma: float = field(default=1.0, metadata={"gt": 0})  # σ the schedule starts from after it
    draw_steps: int = field(default=32, metadata={"min": 2})  # Heun steps of each unconditional prior draw
    draw_sigma_max: float = field(default=80.0, metadata={"gt": 0})  # where the prior draws start (EDM's 80)
    select_levels: int = field(default=0, metadata={"min": 0})  # likelihood-tempered selections (0: off)
    select_ess: float = field(default=0.5, metadata={"gt": 0, "max": 1})  # ESS kept per selection / chains

    def __post_init__(self):
        super().__post_init__()
        if not self.sigma_min < self.sigma_max:
            raise ValueRangeError(f"sigma_min ({self.sigma_min}) must be below sigma_max ({self.sigma_max})")
        if self.prior_draws and not self.sigma_min < self.start_sigma <= self.sigma_max:
            raise ValueRangeError(f"start_sigma ({self.start_sigma}) must lie in (sigma_min, sigma_max] = "
                                  f"({self.sigma_min}, {self.sigma_max}] with prior_draws > 0")
        if self.step_reset and self.step_carry != "factor":
            raise ValueRangeError(f"step_carry = {self.step_carry!r} carries the step from level to level and "
                                  "step_reset = true restarts it at step_init: set one of them")
        if self.moves == "hmc":
            for name in ("mala_steps", "last_mala_steps"):
                if getattr(self, name) % self.leapfrog_steps:
                    raise ValueRangeError(f"with moves = 'hmc', {name} ({getattr(self, name)}) counts gradients per "
                                          f"level and must be a multiple of leapfrog_steps ({self.leapfrog_steps})")
        if self.select_levels > self.steps - 1:
            raise ValueRangeError(f"select_levels ({self.select_levels}) must be below steps ({self.steps}): "
                                  "selections happen between levels")

    @property
    def top_sigma(self) -> float:
        """The σ the annealing schedule starts from."""
        return self.start_sigma if self.prior_draws else self.sigma_max

    @property
    def selection_after(self) -> tuple[int, ...]:
        """The levels after whose MALA moves the chains are selected: ``⌊K j/(S+1)⌋ − 1``, ``j = 1 … S``."""
        s = self.select_levels
        return tuple(sorted({self.steps * j // (s + 1) - 1 for j in range(1, s + 1)}))


def annealed(
    prior: Denoiser,
    likelihood: Likelihood,
    chains: int,
    config: AnnealedConfig = AnnealedConfig(),
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> PosteriorSamples:
    """Run ``chains`` DAPS-style chains (module docstring); chain ``i`` uses seed ``seed + i``."""
    model_shape = check_pair(prior, likelihood)
    if not isinstance(config, AnnealedConfig):
        raise ValueRangeError(f"config must be an AnnealedConfig, got {type(config).__name__}")
    started, g0, f0 = time.time(), likelihood.n_gradient, likelihood.n_forward
    sigmas = karras_sigmas(config.steps, config.sigma_min, config.top_sigma, config.rho).numpy()
    noise = ChainNoise(seed, chains, model_shape, dtype, device)
    start_info = {}
    if config.prior_draws:
        start, start_info = resampled_start(prior, likelihood, chains, config, seed, dtype, device)
        x = start + float(sigmas[0]) * noise.normal()
    else:
        x = float(sigmas[0]) * noise.normal()
    history = np.zeros((len(sigmas), chains))
    ancestors = np.arange(chains)
    selections = {"select_after": list(config.selection_after), "select_beta": [], "select_ess": [],
                  "select_lineages": []}
    c, r_last, first, curvature, prev = None, None, None, None, None
    factors, acceptance, spread = [], [], []
    for k, s in enumerate(sigmas):
        s = float(s)
        x0_hat = prior.denoise(x, s).detach()
        if config.chain_start == "carried" and prev is not None:  # the last level's samples: no new gradient
            state = LangevinState(prev.z.clone(), prev.phi.clone(), prev.grad.clone(),
                                  torch.full((chains,), config.step_init, dtype=torch.float64))
        else:
            state = LangevinState.start(likelihood, x0_hat, config.step_init)
        r = s * config.tau / math.sqrt(s**2 + config.tau**2)
        if first is None:
            first = misfit_norm(likelihood, state.phi)
            curvature = curvature_terms(likelihood, state.phi, state.grad).mean(0)
        elif not config.step_reset:
            state.c = c if config.step_carry == "factor" else torch.clamp(c * (r_last / r) ** 2, max=1.0)
        last = k == len(sigmas) - 1
        precond = None
        if config.precondition == "all" or (config.precondition == "last" and last):
            precond = 1.0 / (1.0 + r**2 * curvature)
            if config.precondition == "last":
                state.c = torch.full_like(state.c, config.step_init)  # the metric changed: the factor starts afresh
        moves = config.last_mala_steps if last and config.last_mala_steps else config.mala_steps
        if config.moves == "hmc":
            state = hmc_moves(likelihood, state, x0_hat, r, moves // config.leapfrog_steps, config.leapfrog_steps,
                              noise, config.adapt_rate, precond=precond)
        else:
            state = mala_moves(likelihood, state, x0_hat, r, moves, noise, config.adapt_rate, precond=precond)
        c, r_last = state.c, r
        curvature = 0.5 * (curvature + state.curvature_sum / state.curvature_count)
        factors.append(float(c.max()))
        acceptance.append(state.acceptance)
        if precond is not None:
            spread.append(float(precond.max() / precond.median()))
        history[k] = misfit_norm(likelihood, state.phi)
        mon = history[k] / (likelihood.gamma * math.sqrt(likelihood.n_data))
        _log.info("annealed level %d/%d: sigma %.3g, misfit/noise median %.3f [%.3f, %.3f], step factor %.2g, "
                  "acceptance %.2f, %.0f s", k + 1, len(sigmas), s, np.median(mon), mon.min(), mon.max(),
                  factors[-1], acceptance[-1], time.time() - started)
        if k in config.selection_after:
            j = len(selections["select_beta"])
            rows, beta, ess = tempered_selection(state.phi.double().cpu().numpy(), config.select_ess,
                                                 np.random.default_rng([int(seed), 3, j]))
            state, history[: k + 1], ancestors = state.select(rows), history[: k + 1, rows], ancestors[rows]
            selections["select_beta"].append(beta)
            selections["select_ess"].append(ess)
            selections["select_lineages"].append(int(len(np.unique(ancestors))))
        prev = state
        x = state.z if k == len(sigmas) - 1 else state.z + float(sigmas[k + 1]) * noise.normal()
    select_info = {**selections, "ancestors": ancestors.tolist()} if config.select_levels else {}
    return finish("annealed", x, likelihood, ~np.isfinite(history[-1]), started, g0, f0,
                  info={"steps": config.steps, "sigmas": sigmas.tolist(), "seeds": noise.seeds,
                        "step_factors": factors, "acceptance": acceptance,
                        **({"precond_spread": spread} if spread else {}), **start_info, **select_info},
                  history=history, first_misfit=first, divergence_factor=config.divergence_factor)


def tempered_selection(phi: np.ndarray, ess_fraction: float, rng: np.random.Generator
                       ) -> tuple[np.ndarray, float, float]:
    """Systematic resample of the chains with weights ``exp(−β φ)``, ``β ∈ (0, 1]`` the largest whose effective
    sample size ``(Σw)²/Σw²`` is at least ``ess_fraction · len(φ)`` (bisection on ``log β``, which assumes the ESS
    falls as ``β`` grows: tempered weights). Non-finite ``φ`` (diverged chains) get weight 0. Returns
    ``(rows, β, ESS)``; with no finite
    ``φ`` the chains are kept as they are (``β = 0``, ESS = ``len(φ)``)."""
    phi = np.where(np.isfinite(phi), phi, np.inf)
    n = len(phi)
    if not np.isfinite(phi).any():
        return np.arange(n), 0.0, float(n)
    target = ess_fraction * n
    if ess_of(-phi) >= target:
        beta = 1.0
    else:
        lo, hi = -60.0, 0.0  # log β: ESS(e^lo) ≥ target (spread of φ·1e-26 is nil), ESS(e^hi) < target
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if ess_of(-math.exp(mid) * phi) >= target else (lo, mid)
        beta = math.exp(lo)
    return systematic_resample(-beta * phi, rng), beta, ess_of(-beta * phi)


def resampled_start(prior: Denoiser, likelihood: Likelihood, chains: int, config: AnnealedConfig, seed: int,
                    dtype: torch.dtype, device) -> tuple[torch.Tensor, dict]:
    """Sampling–importance resampling of ``config.prior_draws`` unconditional prior draws by the likelihood
    (module docstring): ``(starts (chains, *model_shape), info)``. The prior draws use the integer seed
    ``seed + 2·10⁶`` (clear of the chains' ``seed + i``), the resampling ``numpy.random.default_rng([seed, 2])``;
    ``info``: ``start_ess``,
    ``start_draws`` (the indices drawn per chain), ``start_misfit_over_noise`` (of each chain's start)."""
    sigmas = karras_sigmas(config.draw_steps, config.sigma_min, config.draw_sigma_max, config.rho)
    draws = sample(prior, config.prior_draws, sigmas, "heun", generator=int(seed) + 2_000_000, dtype=dtype,
                   device=device).detach()
    phi = likelihood.misfit(draws)
    idx = systematic_resample(-phi, np.random.default_rng([int(seed), 2]), chains)
    mon = np.sqrt(2.0 * phi[idx] / likelihood.n_data)
    return draws[torch.as_tensor(idx, device=draws.device)], {
        "start_ess": ess_of(-phi), "start_draws": idx.tolist(), "start_misfit_over_noise": mon.tolist()}
