"""Hamiltonian Monte Carlo (HMC) on the likelihood tied to an anchor: a likelihood step that moves farther per gradient.

Target, per chain, as in :mod:`geomem.posterior.mala`: ``π(z) ∝ exp(−U(z))``, ``U(z) = φ(z) + ‖z − a‖²/2r²``.
A trajectory draws a velocity ``v ~ N(0, I)`` and runs ``L`` leapfrog steps of size ``ε r`` in the metric of the
anchor (mass ``I/r²``; with a diagonal preconditioner ``P`` the mass is ``1/(r² P)``):

    v ← v − (ε r/2) √P ∇U(z);   z ← z + ε r √P v;   v ← v − (ε r/2) √P ∇U(z)

then accepts the end point with probability ``min(1, exp(H − H'))``, ``H = U(z) + ‖v‖²/2`` (float64): the
leapfrog map is volume-preserving and reversible, so each trajectory is an exact Metropolis step of ``π`` for any
``ε`` and ``L``. One trajectory costs ``L`` likelihood gradients per chain (the start's is carried in the
:class:`~geomem.posterior.mala.LangevinState`).

Why: where ``φ``'s curvature spans ``λ_min … λ_max`` (FWI: orders of magnitude), the step is bounded by the
stiffest direction (``ε r √λ_max < 2``), and a direction of curvature ``λ`` then relaxes in ``O(λ_max/λ)`` MALA
moves (a random walk of steps ``√(2h)``) but in ``O(√(λ_max/λ))`` gradients along HMC trajectories, which move
ballistically, ``L ε r`` per trajectory. One leapfrog step (``L = 1``) is MALA with ``h = (ε r)²/2`` (without its
taming of steep tails).

Step size. The state's factor ``c`` means what it means for MALA, ``h = c r²``, so ``ε = √(2c)``, and is adapted
after every trajectory from the acceptance averaged over chains, towards 0.65 (the optimal HMC acceptance for
high-dimensional targets, Beskos et al. 2013): ``log c += κ (mean accepted − 0.65)``. Each chain's step is
jittered per trajectory by a factor uniform in ``[0.8, 1.2]`` from its own generator (drawn before the trajectory,
independent of the state, so exactness holds), which breaks the periodic orbits a fixed ``L ε`` can fall into.

A trajectory whose point overflows (a step far too long for a steep ``φ``, e.g. the cubic toy's tails) is
rejected: from the step where it left the finite numbers its remaining gradients are evaluated at its start (the
cost stays ``L`` gradients, and the likelihood never sees a non-finite model).
"""

from __future__ import annotations

import numpy as np
import torch

from geomem.errors import ValueRangeError
from geomem.posterior.chains import ChainNoise
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.mala import LangevinState, add_curvature, flat_sq, metric, metropolis_update

TARGET_ACCEPTANCE = 0.65
STEP_JITTER = 0.2


def hmc_moves(
    likelihood: Likelihood,
    state: LangevinState,
    anchor: torch.Tensor,
    r: float,
    trajectories: int,
    leapfrog_steps: int,
    noise: ChainNoise,
    adapt_rate: float = 0.2,
    c_max: float = 1.0,
    precond: torch.Tensor | None = None,
) -> LangevinState:
    """``trajectories`` HMC trajectories of ``leapfrog_steps`` steps each, for every chain, on
    ``U(z) = φ(z) + ‖z − anchor‖²/2r²`` (module docstring), in the metric of the diagonal preconditioner ``precond``
    (model shape, positive; None: the identity). Costs ``trajectories · leapfrog_steps`` gradients per chain."""
    if int(leapfrog_steps) < 1:
        raise ValueRangeError(f"leapfrog_steps must be ≥ 1, got {leapfrog_steps}")
    r2 = float(r) ** 2
    column = (-1, *([1] * (state.z.ndim - 1)))
    root_p = torch.sqrt(metric(state, precond))

    def grad_u(z, g):
        return g + (z - anchor) / r2

    for _ in range(int(trajectories)):
        z0, phi0, g0 = state.z, state.phi, state.grad
        jitter = 1.0 + STEP_JITTER * (2.0 * noise.uniform() - 1.0)
        eps = torch.sqrt(2.0 * state.c) * torch.from_numpy(jitter)  # (B,) float64
        step = (eps * float(r)).to(device=z0.device, dtype=z0.dtype).reshape(column) * root_p
        v0 = noise.normal()
        h0 = phi0.cpu() + 0.5 * flat_sq(z0 - anchor) / r2 + 0.5 * flat_sq(v0)
        z, phi, g = z0, phi0, g0
        v = v0 - 0.5 * step * grad_u(z, g)
        lost = torch.zeros(len(z0), dtype=torch.bool, device=z0.device)
        for j in range(int(leapfrog_steps)):
            z = z + step * v
            lost |= ~torch.isfinite(z).flatten(1).all(1)  # an overflowed trajectory: evaluated at its start
            phi, g = likelihood.misfit_and_gradient(torch.where(lost.reshape(column), z0, z))
            state = add_curvature(state, likelihood, phi, g)
            g = g.to(z.dtype)
            v = v - (step if j < leapfrog_steps - 1 else 0.5 * step) * grad_u(z, g)
        h1 = phi.cpu() + 0.5 * flat_sq(z - anchor) / r2 + 0.5 * flat_sq(v)
        log_alpha = np.where(lost.cpu().numpy(), -np.inf, (h0 - h1).numpy())  # and rejected
        state = metropolis_update(state, z, phi, g, log_alpha, noise, adapt_rate, TARGET_ACCEPTANCE, c_max)
    return state
