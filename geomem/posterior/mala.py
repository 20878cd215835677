"""Metropolis-adjusted Langevin (MALA) on the likelihood tied to an anchor: the likelihood step of the samplers.

Target, per chain, for an anchor ``a`` and a width ``r`` (both fixed during the moves)

    π(z) ∝ exp(−U(z)),   U(z) = φ(z) + ‖z − a‖² / 2r²,   ∇U(z) = ∇φ(z) + (z − a)/r²

with ``φ = ‖y − F(m(z))‖²/2γ²`` from the :class:`~geomem.posterior.likelihood.Likelihood`. A move proposes
``z' = z − D(z) + √(2h) ξ`` (ξ ~ N(0, I) from the chain's generator) with the tamed drift
``D(z) = h ∇U(z) / max(1, h ‖∇U(z)‖ / (r √d))`` (d = model size) and accepts it with probability
``min(1, exp(U(z) − U(z') + log q(z | z') − log q(z' | z)))``, ``log q(b | a) = −‖b − a + D(a)‖²/4h``:
the chain leaves π invariant exactly, whatever ``h``. Taming only acts where the likelihood's gradient step is
longer than the anchor's own scale ``r √d`` (never where the anchor term dominates, since ``c ≤ 1``): in the steep
tails of a super-quadratic ``φ`` (the cubic toy's ``φ ~ z⁶``) the plain drift overshoots by orders of magnitude,
proposals are rejected and chains started there barely move (SMC's burn-in then misses ``π_{ρ_max}``; see
docs/posterior.md). One move costs one likelihood gradient per chain (``φ`` and ``∇φ`` at the proposal; the
current point's are carried in :class:`LangevinState`).

Diagonal preconditioner (``precond = P``, positive, the model's shape, fixed during the moves). The proposal is
``z' = z − D(z) + √(2h P) ξ`` with ``D(z) = tamed(h P ∇U(z))`` and ``log q(b | a) = −Σ (b − a + D(a))² / 4hP``:
still an exact Metropolis step for the fixed ``P`` (the Langevin diffusion of ``π`` in the metric ``P⁻¹``).
Where ``φ``'s curvature varies by orders of magnitude across the model, a plain step is set by the stiffest pixels
and the others barely move; ``P ≈ (∇²U)⁻¹``'s diagonal scaled by ``r²`` lets one ``h`` suit every pixel. Each move
also adds every chain's ``(∇φ)² · M / 2φ`` at the proposal (``M`` data values) to ``state.curvature_sum``
(``state.curvature_count`` counts them): for a white residual ``ε`` of any size ``s`` per value, ``g = Jᵀε/γ²``
has ``E[ggᵀ] = JᵀJ s²/γ⁴`` and ``2φ/M = s²/γ²``, so the term's mean is the Gauss–Newton diagonal
``diag(JᵀJ)/γ²`` — the estimate :mod:`geomem.posterior.annealed` builds ``P`` from (without the ``M/2φ`` a
residual 20× the noise would inflate it 400×).

Step size. ``h = c r²`` with a factor ``c ∈ (0, 1]`` (the anchor alone has curvature ``1/r²``), adapted after
every move towards the acceptance rate 0.574 (optimal for MALA) from the acceptance *averaged over all chains*:
``log c += κ (mean accepted − 0.574)``. One factor for all chains matters: a per-chain factor adapted to that
chain's own acceptance shrinks where acceptance is low and chains then stick there (measured: assignment TV
0.05 → 0.15 on the 4-D validation problem). Each single move is an exact Metropolis step for the current ``h``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from geomem.errors import ValueRangeError
from geomem.posterior.chains import ChainNoise
from geomem.posterior.likelihood import Likelihood

TARGET_ACCEPTANCE = 0.574


@dataclass
class LangevinState:
    """Current point of every chain with its ``φ`` (B,) float64 and ``∇φ``, the step factors ``c`` (B,), and the
    sum over chains and moves of ``(∇φ)² M/2φ`` at the proposals (model shape, float64; ``curvature_count``
    terms; module docstring)."""

    z: torch.Tensor
    phi: torch.Tensor
    grad: torch.Tensor
    c: torch.Tensor
    accepted: int = 0
    proposed: int = 0
    curvature_sum: torch.Tensor | None = None
    curvature_count: int = 0

    @classmethod
    def start(cls, likelihood: Likelihood, z: torch.Tensor, c0: float) -> LangevinState:
        """State at ``z`` (one likelihood gradient per chain)."""
        phi, grad = likelihood.misfit_and_gradient(z)
        return cls(z.clone(), phi, grad, torch.full((len(z),), float(c0), dtype=torch.float64))

    def select(self, rows: np.ndarray) -> LangevinState:
        """The chains ``rows`` (resampling), in that order."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        return LangevinState(self.z[idx.to(self.z.device)].clone(), self.phi[idx.to(self.phi.device)].clone(),
                             self.grad[idx.to(self.grad.device)].clone(), self.c[idx].clone(),
                             self.accepted, self.proposed, self.curvature_sum, self.curvature_count)

    @property
    def acceptance(self) -> float:
        return self.accepted / max(self.proposed, 1)


def curvature_terms(likelihood: Likelihood, phi: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Each chain's ``(∇φ)² · M / 2φ`` (B, *model_shape) float64: the Gauss–Newton diagonal if its residual were
    white (module docstring); zero for a non-finite or zero ``φ``."""
    phi = phi.to(device=grad.device, dtype=torch.float64)
    scale = torch.where(torch.isfinite(phi) & (phi > 0), likelihood.n_data / (2.0 * phi), torch.zeros_like(phi))
    terms = grad.double() ** 2 * scale.reshape((-1, *([1] * (grad.ndim - 1))))
    return torch.nan_to_num(terms, nan=0.0, posinf=0.0)


def add_curvature(state: LangevinState, likelihood: Likelihood, phi: torch.Tensor, grad: torch.Tensor
                  ) -> LangevinState:
    """``state`` with the chains' :func:`curvature_terms` at ``(φ, ∇φ)`` added to its running sum."""
    terms = curvature_terms(likelihood, phi, grad).sum(0)
    state.curvature_sum = terms if state.curvature_sum is None else state.curvature_sum + terms
    state.curvature_count += len(grad)
    return state


def flat_sq(t: torch.Tensor) -> torch.Tensor:
    """``‖t_b‖²`` per chain (B,) float64 on the CPU."""
    return (t.double() ** 2).flatten(1).sum(1).cpu()


def tamed_drift(drift: torch.Tensor, cap: float) -> torch.Tensor:
    """``drift`` with each chain's norm capped at ``cap``: ``drift / max(1, ‖drift‖/cap)``."""
    norm = torch.sqrt((drift.double() ** 2).flatten(1).sum(1))
    scale = 1.0 / torch.clamp(norm / cap, min=1.0)
    return drift * scale.to(drift.dtype).reshape((-1, *([1] * (drift.ndim - 1))))


def mala_moves(
    likelihood: Likelihood,
    state: LangevinState,
    anchor: torch.Tensor,
    r: float,
    steps: int,
    noise: ChainNoise,
    adapt_rate: float = 0.2,
    c_max: float = 1.0,
    precond: torch.Tensor | None = None,
) -> LangevinState:
    """``steps`` MALA moves of every chain for ``U(z) = φ(z) + ‖z − anchor‖²/2r²`` (module docstring), in the
    metric of the diagonal preconditioner ``precond`` (model shape, positive; None: the identity)."""
    r2 = float(r) ** 2
    column = (-1, *([1] * (state.z.ndim - 1)))
    cap = float(r) * math.sqrt(state.z[0].numel())
    p = metric(state, precond)
    p64 = p.double()
    for _ in range(int(steps)):
        z, phi, grad = state.z, state.phi, state.grad
        h = (state.c * r2).to(z.device)
        hc = h.to(z.dtype).reshape(column)
        drift = tamed_drift(hc * p * (grad + (z - anchor) / r2), cap)
        kick = torch.sqrt(2.0 * hc * p) * noise.normal()
        prop = z - drift + kick
        phi_p, grad_p = likelihood.misfit_and_gradient(prop)
        state = add_curvature(state, likelihood, phi_p, grad_p)
        drift_p = tamed_drift(hc * p * (grad_p + (prop - anchor) / r2), cap)
        u = phi.cpu() + flat_sq(z - anchor) / (2 * r2)
        u_p = phi_p.cpu() + flat_sq(prop - anchor) / (2 * r2)
        hh = h.double().cpu()
        # z' − z + D(z) is the kick and z − z' + D(z') = D(z) + D(z') − kick: formed without z, whose float32
        # rounding is of the size of the kick where h P is small (a difference of O(1) values)
        root_p = torch.sqrt(p64)
        log_q_fwd = -flat_sq(kick.double() / root_p) / (4 * hh)
        log_q_rev = -flat_sq((drift.double() + drift_p.double() - kick.double()) / root_p) / (4 * hh)
        log_alpha = (u - u_p + log_q_rev - log_q_fwd).numpy()
        state = metropolis_update(state, prop, phi_p, grad_p, log_alpha, noise, adapt_rate, TARGET_ACCEPTANCE, c_max)
    return state


def metric(state: LangevinState, precond: torch.Tensor | None) -> torch.Tensor:
    """The diagonal preconditioner on the chains' device and dtype (a scalar 1 for None), checked to be positive
    with the model's shape."""
    z = state.z
    if precond is None:
        return torch.ones((), dtype=z.dtype, device=z.device)
    p = precond.to(device=z.device, dtype=z.dtype)
    if tuple(p.shape) != tuple(z.shape[1:]) or not bool((p > 0).all()):
        raise ValueRangeError(f"precond must be positive with the model's shape {tuple(z.shape[1:])}, "
                              f"got shape {tuple(p.shape)}")
    return p


def metropolis_update(state: LangevinState, proposal: torch.Tensor, phi_p: torch.Tensor, grad_p: torch.Tensor,
                      log_alpha: np.ndarray, noise: ChainNoise, adapt_rate: float, target: float, c_max: float
                      ) -> LangevinState:
    """Accept each chain's proposal with probability ``min(1, exp(log_alpha))`` (a non-finite ``log_alpha`` is a
    rejection; one uniform per chain from its generator), keep ``φ`` and ``∇φ`` with the chain's point, and adapt
    the common factor: ``c ← clamp(c · exp(κ (mean accepted − target)), 1e-8, c_max)`` (module docstring)."""
    z, phi, grad = state.z, state.phi, state.grad
    column = (-1, *([1] * (z.ndim - 1)))
    accept = np.isfinite(log_alpha) & (np.log(np.maximum(noise.uniform(), 1e-300)) < np.minimum(log_alpha, 0.0))
    a = torch.from_numpy(accept)
    ad = a.to(z.device).reshape(column)
    state.z = torch.where(ad, proposal, z)
    state.phi = torch.where(a.to(phi.device), phi_p.to(phi.device), phi)
    state.grad = torch.where(ad, grad_p.to(grad.dtype), grad)
    state.c = torch.clamp(state.c * math.exp(adapt_rate * (float(accept.mean()) - target)), 1e-8, c_max)
    state.accepted += int(accept.sum())
    state.proposed += len(accept)
    return state

