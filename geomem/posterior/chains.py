"""What every posterior sampler shares: per-chain randomness, the divergence rule and the result assembly.

Randomness. Chain ``i`` of a run with seed ``s`` draws all its noise from its own generator seeded
``s + i``, so a chain's path does not depend on how many chains run beside it (up to floating-point
reduction order inside batched network or matrix calls: equal to a tolerance, not bit for bit). The
generators live on the chains' device: on the CPU they are ``torch.Generator()`` (the streams of every
earlier version); on a GPU they are that device's generators (Philox on CUDA), so the noise is drawn where
the chains are, with no host copy — and a GPU run draws *different* numbers from a CPU run with the same
seed (each is reproducible on its own device, chain by chain).

Divergence. A chain is reported diverged (and left out of every metric) when its state is not finite, its
misfit grew past ``factor`` × its first value, or — with a parameterization — more than half of its
entries were driven beyond the velocity clamp (``|x| > 1 + margin`` in normalized coordinates): such a chain's
velocity is the clamp value, not a posterior draw.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from geomem.errors import ShapeError, ValueRangeError
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.result import PosteriorSamples
from geomem.priors.denoiser import Denoiser

#: entries this far beyond [−1, 1] (normalized units) count as pushed to the velocity clamp
CLAMP_MARGIN = 0.1
#: a chain with more than this fraction of its entries at the clamp is diverged
CLAMP_FRACTION = 0.5


class ChainNoise:
    """One ``torch.Generator`` per chain (seeds ``seed + i``) on ``device``; draws are stacked in chain order."""

    def __init__(self, seed: int, chains: int, model_shape: tuple[int, ...], dtype: torch.dtype, device):
        if int(chains) < 1:
            raise ValueRangeError(f"the number of chains must be >= 1, got {chains}")
        if int(seed) < 0:
            raise ValueRangeError(f"seed must be >= 0, got {seed}")
        self.seeds = [int(seed) + i for i in range(int(chains))]
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:  # a generator's device carries its index
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.generators = [torch.Generator(device=self.device).manual_seed(s) for s in self.seeds]
        self.shape, self.dtype = tuple(model_shape), dtype

    def normal(self, rows: np.ndarray | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
        """Standard normal ``(B, *model_shape)`` on the device; ``rows`` selects chains (default all); ``out``: a
        buffer of that shape to draw into (the same numbers as a new tensor of its dtype; returned)."""
        gens = self.generators if rows is None else [self.generators[i] for i in rows]
        if out is None:
            out = torch.empty((len(gens), *self.shape), dtype=self.dtype, device=self.device)
        elif tuple(out.shape) != (len(gens), *self.shape) or out.device != self.device:
            raise ValueRangeError(f"out must have shape {(len(gens), *self.shape)} on {self.device}, "
                                  f"got {tuple(out.shape)} on {out.device}")
        if len(gens) == 1:  # the same draw as the loop's (one contiguous row), without a row view
            return out.normal_(generator=gens[0])
        for row, g in zip(out, gens, strict=True):  # in place: one kernel per chain, no stacking copy
            row.normal_(generator=g)
        return out

    def uniform(self) -> np.ndarray:
        """One uniform number per chain ``(B,)`` (float64, on the host: a GPU run waits for the device here)."""
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64, device=self.device)
                         for g in self.generators])
        return u.cpu().numpy()


def check_pair(prior: Denoiser, likelihood: Likelihood) -> tuple[int, ...]:
    """The common model shape of a prior and a likelihood (a clear error if they differ)."""
    if not isinstance(likelihood, Likelihood):
        raise ValueRangeError("pass a geomem.posterior.Likelihood (operator, data, gamma), "
                              f"got {type(likelihood).__name__}")
    if not isinstance(prior, Denoiser):
        raise ValueRangeError(f"pass a prior that is a geomem.priors.Denoiser, got {type(prior).__name__}")
    shape = tuple(prior.model_shape)
    if shape != likelihood.model_shape:
        raise ShapeError(f"prior models have shape {shape} but the operator expects {likelihood.model_shape}")
    return shape


def clamped_fraction(x: torch.Tensor | np.ndarray, likelihood: Likelihood, margin: float = CLAMP_MARGIN) -> np.ndarray:
    """Fraction of each sample's entries beyond the parameterization's range ``[−1, 1]`` by more than ``margin``
    (a sampler's state at noise level σ passes ``CLAMP_MARGIN + 6σ``)."""
    if likelihood.parameterization is None:
        return np.zeros(len(x))
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    return np.mean(np.abs(a.reshape(len(a), -1)) > 1.0 + margin, axis=1)


def clamped_mask(x: torch.Tensor, likelihood: Likelihood, margin: float) -> torch.Tensor:
    """``clamped_fraction(x, likelihood, margin) > CLAMP_FRACTION`` as a bool tensor ``(B,)`` on ``x``'s device
    (no host transfer; the same float64 comparisons, so the same answer)."""
    if likelihood.parameterization is None:
        return torch.zeros(len(x), dtype=torch.bool, device=x.device)
    beyond = x.detach().double().reshape(len(x), -1).abs() > 1.0 + margin
    return beyond.double().mean(dim=1) > CLAMP_FRACTION


def finish(
    method: str,
    x: torch.Tensor,
    likelihood: Likelihood,
    diverged: np.ndarray,
    started: float,
    grads_before: int,
    forwards_before: int,
    info: dict,
    history: np.ndarray | None = None,
    first_misfit: np.ndarray | None = None,
    divergence_factor: float = 1e3,
    weights: np.ndarray | None = None,
) -> PosteriorSamples:
    """Final misfits (forward solves), the divergence rule, costs per sample → :class:`PosteriorSamples`."""
    chains = len(x)
    finite = torch.isfinite(x.flatten(1)).all(dim=1).cpu().numpy()
    diverged = np.asarray(diverged, dtype=bool) | ~finite
    x = x.detach().clone()
    x[torch.from_numpy(~finite).to(x.device)] = 0.0
    misfit = likelihood.residual_norm(x)
    diverged |= ~np.isfinite(misfit)
    if first_misfit is not None:
        diverged |= misfit > divergence_factor * np.maximum(first_misfit, 1e-30)
    diverged |= clamped_fraction(x, likelihood) > CLAMP_FRACTION
    info = dict(info, method=method, chains=chains,
                gradients_per_sample=(likelihood.n_gradient - grads_before) / chains,
                forwards_per_sample=(likelihood.n_forward - forwards_before) / chains,
                wall_time_s=time.time() - started)
    return PosteriorSamples(method, x.double().cpu().numpy(), misfit, likelihood.gamma, likelihood.n_data,
                            weights=weights, diverged=diverged, history=history, info=info)
